/**
 * The batch path against the per-field path: the same bytes on the wire for
 * the whole golden and span-data corpus (compared as maps where libdatadog's
 * order varies: with a real libdatadog); the same ValidationError and
 * nothing sent for bad input; a corrupt or truncated batch is an error,
 * never a crash, and frees everything.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Span, type TraceChunk, TraceExporter, TraceExporterError, ValidationError } from "../mod.ts";
import { TestAgent } from "../testing.ts";
import { BATCH_MAGIC, records } from "../ffi/batch.ts";
import { BatchWriter } from "../src/batch/writer.ts";
import { getBinding } from "../src/binding.ts";
import { assertNoLeaks, rejects, span, traceRequests } from "./helpers.ts";
import { corpus, nest } from "./batch-corpus.ts";
import { assertBothPathsAgree, assertRefused, sendRaw } from "./batch-helpers.ts";

test.after.each(assertNoLeaks);

for (const [name, traces] of Object.entries(corpus)) {
  test(`both paths, the same bytes: ${name}`, async () => {
    await assertBothPathsAgree(traces);
  });
}

const o: Record<string, unknown> = { a: 1 };
o.self = o;
/** Every bad input of span-data.test.ts and more: `[over, message]`. */
const bad: [string, Partial<Span>, RegExp][] = [
  ["cycle", { metaStruct: { o } }, /traces\[0\]\[1\]\.metaStruct\["o"\]\["self"\]: a cycle/],
  ["function", { metaStruct: { f: { fn: () => 1 } } }, /metaStruct\["f"\]\["fn"\]: cannot encode a function/],
  ["symbol", { metaStruct: { s: [Symbol("x")] } }, /metaStruct\["s"\]\[0\]: cannot encode a symbol/],
  ["class instance", { metaStruct: { d: new Date() } }, /metaStruct\["d"\]: cannot encode Date/],
  ["bigint out of range", { metaStruct: { b: 2n ** 64n } }, /bigint out of the i64\/u64 range/],
  ["65 deep", { metaStruct: { deep: nest(65) } }, /metaStruct\["deep"\](\[0\])+: nested deeper than 64/],
  ["mixed array", { events: [{ name: "e", time: 1n, attributes: { m: ["a", 1] as never } }] }, /events\[0\]\.attributes\["m"\]\[1\]: a mixed array/],
  ["object attribute", { events: [{ name: "e", time: 1n, attributes: { o: {} as never } }] }, /attributes\["o"\]: span event attributes must be/],
  ["missing time", { events: [{ name: "e" } as never] }, /events\[0\]\.time: expected nanoseconds/],
  ["missing name", { events: [{ time: 1n } as never] }, /events\[0\]\.name: expected a string/],
  ["bad link trace id", { links: [{ traceId: -1n, spanId: 1n }] }, /links\[0\]\.traceId: id out of range/],
  ["non-string link attribute", { links: [{ traceId: 1n, spanId: 1n, attributes: { n: 1 as never } }] }, /links\[0\]\.attributes\["n"\]: expected a string/],
  ["link flags", { links: [{ traceId: 1n, spanId: 1n, flags: 2 ** 32 }] }, /links\[0\]\.flags: expected a u32/],
  ["links not an array", { links: {} as never }, /\.links: expected an array/],
  ["name", { name: 1 as never }, /traces\[0\]\[1\]\.name: expected a string/],
  ["trace id", { traceId: 2n ** 128n }, /traces\[0\]\[1\]\.traceId: id out of range/],
  ["span id as float", { spanId: 1.5 as never }, /traces\[0\]\[1\]\.spanId: expected a non-negative integer id/],
  ["start", { start: -1n }, /traces\[0\]\[1\]\.start: nanoseconds out of range/],
  ["error", { error: "yes" as never }, /traces\[0\]\[1\]\.error: expected a boolean/],
  ["meta value", { meta: { k: 1 as never } }, /traces\[0\]\[1\]\.meta\["k"\]: expected a string/],
  ["metric", { metrics: { k: NaN } }, /traces\[0\]\[1\]\.metrics\["k"\]: expected a finite number/],
];

test("bad input: both paths throw the same ValidationError and send nothing", async () => {
  const agent = await TestAgent.start({});
  const batch = new TraceExporter({ url: agent.url });
  const fields = new TraceExporter({ url: agent.url, sendPath: "fields" });
  try {
    for (const [what, over, message] of bad) {
      const a = await rejects(batch.send([[span(), span(over)]]), ValidationError, message);
      const b = await rejects(fields.send([[span(), span(over)]]), ValidationError, message);
      assert.is(a.message, b.message, what);
    }
    await rejects(batch.send("x" as never), ValidationError, /^traces: expected an array/);
    await rejects(batch.send([1] as never), ValidationError, /^traces\[0\]: expected an array of spans/);
    // The writer is reusable after a failed write.
    await batch.send([[span()]]);
    await agent.waitForRequests(1, 5000, "/v0.4/traces");
    assert.is(traceRequests(agent), 1);
  } finally {
    await batch.close();
    await fields.close();
    await agent.close();
  }
});

test("a getter is read once", async () => {
  const agent = await TestAgent.start({});
  const exporter = new TraceExporter({ url: agent.url });
  try {
    let reads = 0;
    const meta = {
      get k() {
        reads++;
        return reads === 1 ? "first" : 1;
      },
    };
    await exporter.send([[span({ meta: meta as never })]]);
    const [[s]] = await agent.waitForTraces(1);
    assert.is(reads, 1);
    assert.is(s.meta.k, "first");
  } finally {
    await exporter.close();
    await agent.close();
  }
});

/** Requests with traces (a real libdatadog also asks for /info). */

/** The raw bytes the writer makes for `traces`. */
function batchBytes(traces: TraceChunk[]): Uint8Array {
  const b = getBinding();
  const w = new BatchWriter(b.native, 64);
  try {
    const n = w.write(traces);
    return b.native.read(w.address, n);
  } finally {
    w.free();
  }
}


test("a truncated, corrupt or foreign batch is InvalidArgument, and nothing leaks", async () => {
  const agent = await TestAgent.start({});
  try {
    const good = batchBytes(corpus["golden: 128-bit, meta_struct, link, event"].concat(corpus["span-data: events"], corpus["span-data: meta_struct"]));
    const view = new DataView(good.buffer);
    assert.is(view.getUint32(records.header.magic, true), BATCH_MAGIC);
    const cases: Uint8Array[] = [];
    for (let n = 0; n < good.length; n += Math.max(1, good.length >> 6)) cases.push(good.slice(0, n));
    cases.push(good.slice(0, good.length - 1));
    const grown = new Uint8Array(good.length + 1);
    grown.set(good);
    cases.push(grown); // trailing garbage
    for (const field of Object.values(records.header)) {
      if (field === records.header.size || field === records.header.flags) continue;
      const c = good.slice();
      new DataView(c.buffer).setUint32(field, 0xffffffff, true);
      cases.push(c);
    }
    await assertRefused(agent, cases);
    // The unchanged batch does go out.
    assert.equal(await sendRaw(agent.url, [good]), ["ok"]);
    const [[first]] = await agent.waitForTraces(1);
    assert.is(first.name, "op");
  } finally {
    await agent.close();
  }
});

test("random byte flips: an error or a send, never a crash; nothing leaks", async () => {
  const agent = await TestAgent.start({});
  try {
    const good = batchBytes(corpus["span-data: events"].concat(corpus["span-data: links"], corpus["span-data: meta_struct"]));
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    const cases: Uint8Array[] = [];
    for (let i = 0; i < 60; i++) {
      const c = good.slice();
      for (let k = 0; k < 1 + rand(3); k++) c[records.header.size + rand(c.length - records.header.size)] = rand(256);
      cases.push(c);
    }
    const results = await sendRaw(agent.url, cases);
    for (const r of results) assert.ok(["ok", "InvalidArgument", "InvalidInput"].includes(r), r);
  } finally {
    await agent.close();
  }
});

test("a failed send frees the batch's spans (agent down)", async () => {
  const exporter = new TraceExporter({ url: "http://127.0.0.1:1", connectionTimeoutMs: 200 });
  try {
    await rejects(exporter.send(corpus["many spans and chunks: the string table refers back"]), TraceExporterError);
  } finally {
    await exporter.close();
  }
});

test.run();
