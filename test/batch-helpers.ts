/**
 * What the batch tests share: sending on both paths, calling
 * `ddffi_batch_send` on hand-made bytes, and comparing decoded payloads as
 * maps (a real libdatadog's link and event attributes are HashMaps).
 *
 * @module
 */
import * as assert from "uvu/assert";
import { decode } from "@msgpack/msgpack";
import { type TraceChunk, TraceExporter } from "../mod.ts";
import { TestAgent } from "../testing.ts";
import { batchAvailable } from "../src/batch/writer.ts";
import { getBinding } from "../src/binding.ts";
import { traceRequests } from "./helpers.ts";

/** `v` with every map's keys sorted, for comparing payloads as maps. */
export function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v instanceof Uint8Array) return v;
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, normalize(x)]));
  }
  return v;
}

/** Sends `traces` on both paths to one agent; returns the two bodies. */
export async function both(traces: TraceChunk[]): Promise<[Uint8Array, Uint8Array]> {
  const agent = await TestAgent.start({});
  const batch = new TraceExporter({ url: agent.url });
  const fields = new TraceExporter({ url: agent.url, sendPath: "fields" });
  try {
    assert.is(batch.sendPath, "batch");
    assert.is(fields.sendPath, "fields");
    await batch.send(traces);
    await fields.send(traces);
    const [a, b] = await agent.waitForRequests(2, 5000, "/v0.4/traces");
    return [a.body, b.body];
  } finally {
    await batch.close();
    await fields.close();
    await agent.close();
  }
}

/** Sends each of `cases` with {@link sendRaw}: every one must be InvalidArgument, and none reach `agent`. */
export async function assertRefused(agent: TestAgent, cases: Uint8Array[]): Promise<void> {
  const results = await sendRaw(agent.url, cases);
  for (const [i, r] of results.entries()) assert.is(r, "InvalidArgument", `case ${i}`);
  assert.is(traceRequests(agent), 0);
}

/** Calls ddffi_batch_send on each of `list` with a raw exporter; the error code names, or "ok". */
export async function sendRaw(url: string, list: Uint8Array[]): Promise<string[]> {
  const b = getBinding();
  assert.ok(batchAvailable(b), "the batch decoder is bound");
  const s = b.symbols;
  s.ddog_trace_exporter_config_new(b.out);
  const config = b.takeOut();
  b.reserve(3 * url.length);
  b.arg(url, false);
  b.unwrap(s.ddog_trace_exporter_config_set_url(config, b.argPtrWord, b.argLenWord), "set_url");
  b.unwrap(s.ddog_trace_exporter_new(b.out, config), "exporter_new");
  const exporter = b.takeOut();
  s.ddog_trace_exporter_config_free(config);
  const results: string[] = [];
  try {
    for (const bytes of list) {
      const memory = b.native.alloc(8 + Math.max(bytes.length, 1));
      try {
        new Uint8Array(memory.buffer).set(bytes, 8);
        const error = await b.native.async.ddffi_batch_send!(exporter, memory.address + 8, bytes.length, memory.address, 0);
        if (error) {
          results.push(b.takeError(error, "ddffi_batch_send").code);
        } else {
          const u32 = new Uint32Array(memory.buffer, 0, 2);
          const response = u32[0] + u32[1] * 2 ** 32;
          s.ddog_trace_exporter_response_free(response);
          results.push("ok");
        }
      } finally {
        b.native.free(memory);
      }
    }
  } finally {
    s.ddog_trace_exporter_free(exporter);
  }
  return results;
}

/**
 * Sends `traces` on both paths and asserts the two bodies are the same bytes
 * (against a real libdatadog, the same maps: its link and event attributes
 * are HashMaps).
 */
export async function assertBothPathsAgree(traces: TraceChunk[]): Promise<void> {
  const [a, b] = await both(traces);
  // Compared as maps: libdatadog keeps link and event attributes in HashMaps, whose order varies.
  assert.equal(normalize(decode(a, { useBigInt64: true })), normalize(decode(b, { useBigInt64: true })));
}
