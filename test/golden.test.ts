/**
 * Golden bytes: the exact v0.4 payload for a few spans, written out by hand
 * from libdatadog's encoder rules (libdd-trace-utils msgpack_encoder/v04):
 * - span keys in the order service, name, resource, trace_id, span_id,
 *   parent_id, start, duration, error, meta, metrics, type, meta_struct,
 *   span_links, span_events; parent_id/error omitted when 0, type and the
 *   maps/lists omitted when empty;
 * - trace_id (low 64 bits), span_id, parent_id always `cf` + 8 bytes; start
 *   always `d3` + 8 bytes; duration and error via rmp's write_sint (unsigned
 *   markers for non-negative values); metrics values always `cb`;
 *   meta_struct values as `bin` (`c4`);
 * - meta/metrics are de-duplicated before sending (libdatadog's VecMap
 *   dedup): libdatadog 14 (the bundled library) keeps each key at its last
 *   write, in order, and marks the first span of each chunk with meta
 *   `_dd.sdk.otlp_export: "false"` (trace_exporter `add_native_export_marker`);
 *   libdatadog v41 (a release build at DD_LIBDATADOG_PATH) sends them in the
 *   reverse order of their last write, with no marker;
 * - a link: trace_id, trace_id_high (always), span_id, attributes,
 *   tracestate, flags (`ce`, omitted when 0); an event: time_unix_nano (`cf`),
 *   name, attributes as `{type: cc NN, <kind>_value: …}` (in any order:
 *   libdatadog keeps link and event attributes in HashMaps).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { EXPORT_MARKER } from "../testing.ts";
import { assertNoLeaks, bundled, sentOrder, withExporter } from "./helpers.ts";

test.after.each(assertNoLeaks);

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
/** A fixstr (< 32 bytes). */
const s = (t: string) => {
  const b = new TextEncoder().encode(t);
  return (0xa0 | b.length).toString(16) + hex(b);
};

/** The meta entries of a span, in the order of their last write, as the library sends them (see above). */
const metaEntries = (entries: [string, string][], firstOfChunk: boolean): [string, string][] => {
  const value = new Map(entries);
  const sent = sentOrder(entries.map(([k]) => k)).map((k): [string, string] => [k, value.get(k)!]);
  return bundled && firstOfChunk ? [...sent, [EXPORT_MARKER, "false"]] : sent;
};

/** A span's map header and its meta, for `count` other fields: `meta` and its entries when there are any. */
const withMeta = (count: number, entries: [string, string][], firstOfChunk = true) => {
  const m = metaEntries(entries, firstOfChunk);
  const header = (0x80 | (count + (m.length ? 1 : 0))).toString(16);
  const map = m.length ? s("meta") + (0x80 | m.length).toString(16) + m.map(([k, v]) => s(k) + s(v)).join("") : "";
  return { header, map };
};

test("a minimal span: omitted fields, fixed-width ids and start, compact duration", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send([[{
      name: "op", service: "svc", resource: "res",
      traceId: 1n, spanId: 2n, start: 3n, duration: 200n,
    }]]);
    const [req] = await agent.waitForRequests(1, 5000, "/v0.4/traces");
    const m = withMeta(7, []);
    assert.is(hex(req.body), [
      "91", "91", m.header,
      s("service"), s("svc"), s("name"), s("op"), s("resource"), s("res"),
      s("trace_id"), "cf0000000000000001",
      s("span_id"), "cf0000000000000002",
      s("start"), "d30000000000000003",
      s("duration"), "ccc8", // 200: write_sint → u8
      m.map,
    ].join(""));
  }));

test("meta and metrics: de-duplicated, in the library's order of last write; error; type; negative-free duration widths", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send([[{
      name: "op", service: "svc", resource: "res", type: "web",
      traceId: 0xffffffffffffffffn, spanId: 2n, parentId: 1n, start: 1_700_000_000_000_000_000n, duration: 1_000_000n,
      error: 1,
      meta: { a: "1", b: "2" },
      metrics: { m: 1.5 },
    }]]);
    const [req] = await agent.waitForRequests(1, 5000, "/v0.4/traces");
    const m = withMeta(11, [["a", "1"], ["b", "2"]]);
    assert.is(hex(req.body), [
      "91", "91", m.header,
      s("service"), s("svc"), s("name"), s("op"), s("resource"), s("res"),
      s("trace_id"), "cfffffffffffffffff",
      s("span_id"), "cf0000000000000002",
      s("parent_id"), "cf0000000000000001",
      s("start"), "d317979cfe362a0000",
      s("duration"), "ce000f4240",
      s("error"), "01",
      m.map,
      s("metrics"), "81", s("m"), "cb3ff8000000000000",
      s("type"), s("web"),
    ].join(""));
  }));

test("128-bit trace id, meta_struct, a span link and a span event", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send([[{
      name: "op", service: "svc", resource: "res", type: "web",
      traceId: (0x1112131415161718n << 64n) | 0x0102030405060708n,
      spanId: 0x2122232425262728n, parentId: 0x3132333435363738n,
      start: 1_700_000_000_000_000_000n, duration: 1_000_000n, error: 1,
      meta: { k: "v" },
      metrics: { m: 1.5 },
      metaStruct: { ms: { a: 1 } },
      links: [{ traceId: (2n << 64n) | 1n, spanId: 3n, attributes: { lk: "lv" }, tracestate: "ts=1", flags: 0x80000001 }],
      events: [{ name: "ev", time: 42n, attributes: { s: "x", arr: [1, -1] } }],
    }]]);
    const [req] = await agent.waitForRequests(1, 5000, "/v0.4/traces");
    // Event attributes are a HashMap in libdatadog: either order is right.
    const attrS = [s("s"), "82", s("type"), "cc00", s("string_value"), s("x")].join("");
    const attrArr = [
      s("arr"), "82", s("type"), "cc04", s("array_value"), "81", s("values"), "92",
      "82", s("type"), "cc02", s("int_value"), "01",
      "82", s("type"), "cc02", s("int_value"), "ff",
    ].join("");
    // _dd.p.tid (set after k) carries the high 64 bits
    const m = withMeta(14, [["k", "v"], ["_dd.p.tid", "1112131415161718"]]);
    const expected = (attrs: string) => [
      "91", "91", m.header,
      s("service"), s("svc"), s("name"), s("op"), s("resource"), s("res"),
      s("trace_id"), "cf0102030405060708", // the low 64 bits only
      s("span_id"), "cf2122232425262728",
      s("parent_id"), "cf3132333435363738",
      s("start"), "d317979cfe362a0000",
      s("duration"), "ce000f4240",
      s("error"), "01",
      m.map,
      s("metrics"), "81", s("m"), "cb3ff8000000000000",
      s("type"), s("web"),
      s("meta_struct"), "81", s("ms"), "c404", "81a16101", // bin8 of msgpack {a: 1}
      s("span_links"), "91", "86",
      s("trace_id"), "cf0000000000000001",
      s("trace_id_high"), "cf0000000000000002",
      s("span_id"), "cf0000000000000003",
      s("attributes"), "81", s("lk"), s("lv"),
      s("tracestate"), s("ts=1"),
      s("flags"), "ce80000001", // bit 31 kept
      s("span_events"), "91", "83",
      s("time_unix_nano"), "cf000000000000002a",
      s("name"), s("ev"),
      s("attributes"), "82", attrs,
    ].join("");
    const got = hex(req.body);
    assert.is(got, got === expected(attrArr + attrS) ? expected(attrArr + attrS) : expected(attrS + attrArr));
  }));

test("two chunks: the payload is an array of chunks, each an array of spans", () =>
  withExporter(async (exporter, agent) => {
    const sp = { name: "o", service: "s", resource: "r", traceId: 1n, spanId: 1n, start: 0n, duration: 0n };
    await exporter.send([[sp], [sp, sp]]);
    const [req] = await agent.waitForRequests(1, 5000, "/v0.4/traces");
    const one = (firstOfChunk: boolean) => {
      const m = withMeta(7, [], firstOfChunk);
      return [m.header, s("service"), s("s"), s("name"), s("o"), s("resource"), s("r"),
        s("trace_id"), "cf0000000000000001", s("span_id"), "cf0000000000000001",
        s("start"), "d30000000000000000", s("duration"), "00", m.map].join("");
    };
    assert.is(hex(req.body), `92 91${one(true)} 92${one(true)}${one(false)}`.replace(/ /g, ""));
    assert.is(req.headers["x-datadog-trace-count"], "2");
  }));

test.run();
