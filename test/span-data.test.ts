/** Span links, span events and meta_struct, end to end, and their bad inputs (the good ones are in batch-corpus.ts, which both send paths must agree on). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decode, encode } from "@msgpack/msgpack";
import { encodeValue, ValidationError } from "../mod.ts";
import { assertNoLeaks, rejects, span, withExporter } from "./helpers.ts";
import { corpus, nest } from "./batch-corpus.ts";

test.after.each(assertNoLeaks);

type Raw = Record<string, unknown>;

test("span links: 128-bit trace id, span id, attributes, tracestate, flags with bit 31", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send(corpus["span-data: links"]);
    const [[s]] = await agent.waitForTraces(1);
    const [a, b] = s.span_links as Raw[];
    assert.is(a.trace_id, 0xbbbbn);
    assert.is(a.trace_id_high, 0xaaaan);
    assert.is(a.span_id, 2n ** 64n - 1n);
    assert.equal(a.attributes, { "link.kind": "follows", "é": "🚀" });
    assert.is(a.tracestate, "dd=s:1");
    assert.is(Number(a.flags), 0x80000001);
    assert.is(b.trace_id, 5n);
    assert.is(b.span_id, 6n);
    assert.is(b.flags, undefined, "flags 0 is omitted");
    assert.is(b.attributes, undefined, "no attributes: omitted");
  }));

test("span events: typed attributes and homogeneous arrays", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send(corpus["span-data: events"]);
    const [[s]] = await agent.waitForTraces(1);
    const [e, bare] = s.span_events as Raw[];
    assert.is(e.name, "exception");
    assert.is(e.time_unix_nano, 1_700_000_000_123_456_789n);
    const at = e.attributes as Record<string, Raw>;
    assert.equal(at.str, { type: 0, string_value: "boom" });
    assert.equal(at.yes, { type: 1, bool_value: true });
    assert.equal(at.int, { type: 2, int_value: 42 });
    assert.equal(at.big, { type: 2, int_value: -(2n ** 63n) });
    assert.equal(at.dbl, { type: 3, double_value: 2.5 });
    assert.equal(at.forced, { type: 3, double_value: 3 });
    const values = (a: Raw) => ((a.array_value as Raw).values as Raw[]);
    assert.is(at.strs.type, 4);
    assert.equal(values(at.strs), [{ type: 0, string_value: "a" }, { type: 0, string_value: "b" }]);
    assert.equal(values(at.bools), [{ type: 1, bool_value: true }, { type: 1, bool_value: false }]);
    assert.equal(values(at.ints), [{ type: 2, int_value: 1 }, { type: 2, int_value: -2 }, { type: 2, int_value: 3 }]);
    assert.equal(values(at.dbls), [{ type: 3, double_value: 1.5 }, { type: 3, double_value: 2 }]);
    assert.equal(values(at.forcedDbls), [{ type: 3, double_value: 1 }, { type: 3, double_value: 2 }]);
    assert.is(bare.name, "bare");
    assert.is(bare.attributes, undefined);
  }));

test("meta_struct: caller-encoded bytes and plain JS values", () =>
  withExporter(async (exporter, agent) => {
    const preEncoded = encode({ pre: ["encoded", 1] });
    const value = {
      str: "s", emoji: "🎉", int: -5, float: 1.25, big: 2n ** 64n - 1n, neg: -(2n ** 63n), yes: false, nil: null,
      bytes: new Uint8Array([0, 1, 255]), list: [1, "two", [3]], nested: { deeper: { deepest: true } }, empty: {}, none: [],
    };
    await exporter.send([[span({ metaStruct: { blob: preEncoded, value, scalar: "just a string", arr: [1, 2] } })]]);
    const [[s]] = await agent.waitForTraces(1);
    assert.equal(s.meta_struct.blob, preEncoded);
    // useBigInt64: 64-bit integers decode as bigint, smaller ones as numbers (compact encoding)
    const opts = { useBigInt64: true };
    assert.equal(decode(s.meta_struct.value, opts), {
      str: "s", emoji: "🎉", int: -5, float: 1.25, big: 2n ** 64n - 1n, neg: -(2n ** 63n), yes: false, nil: null,
      bytes: new Uint8Array([0, 1, 255]), list: [1, "two", [3]], nested: { deeper: { deepest: true } }, empty: {}, none: [],
    });
    assert.is(decode(s.meta_struct.scalar), "just a string");
    assert.equal(decode(s.meta_struct.arr), [1, 2]);
  }));

test("meta_struct nested 64 containers deep is fine; 65 is a typed error", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send(corpus["span-data: meta_struct 64 deep"]);
    const [[s]] = await agent.waitForTraces(1);
    let v = decode(s.meta_struct.deep) as unknown;
    for (let i = 0; i < 64; i++) v = (v as unknown[])[0];
    assert.is(v, "leaf");
    await rejects(exporter.send([[span({ metaStruct: { deep: nest(65) } })]]), ValidationError, /metaStruct\["deep"\](\[0\])+: nested deeper than 64/);
  }));

/** Sends one span with `over`; expects a ValidationError matching `message`, nothing sent. */
async function bad(over: Parameters<typeof span>[0], message: RegExp) {
  await withExporter(async (exporter, agent) => {
    await rejects(exporter.send([[span(), span(over)]]), ValidationError, message);
    assert.is(agent.requests.length, 0);
  });
}

test("meta_struct: a cycle", () => {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return bad({ metaStruct: { o } }, /traces\[0\]\[1\]\.metaStruct\["o"\]\["self"\]: a cycle/);
});
test("meta_struct: a function", () => bad({ metaStruct: { f: { fn: () => 1 } } }, /metaStruct\["f"\]\["fn"\]: cannot encode a function/));
test("meta_struct: a symbol", () => bad({ metaStruct: { s: [Symbol("x")] } }, /metaStruct\["s"\]\[0\]: cannot encode a symbol/));
test("meta_struct: a class instance", () => bad({ metaStruct: { d: new Date() } }, /metaStruct\["d"\]: cannot encode Date/));
test("meta_struct: a bigint out of range", () => bad({ metaStruct: { b: 2n ** 64n } }, /bigint out of the i64\/u64 range/));
test("event: a mixed array", () => bad({ events: [{ name: "e", time: 1n, attributes: { m: ["a", 1] as never } }] }, /events\[0\]\.attributes\["m"\]\[1\]: a mixed array/));
test("event: an object attribute", () => bad({ events: [{ name: "e", time: 1n, attributes: { o: {} as never } }] }, /attributes\["o"\]: span event attributes must be/));
test("event: a missing time", () => bad({ events: [{ name: "e" } as never] }, /events\[0\]\.time: expected nanoseconds/));
test("event: a missing name", () => bad({ events: [{ time: 1n } as never] }, /events\[0\]\.name: expected a string/));
test("link: a bad trace id", () => bad({ links: [{ traceId: -1n, spanId: 1n }] }, /links\[0\]\.traceId: id out of range/));
test("link: a non-string attribute", () => bad({ links: [{ traceId: 1n, spanId: 1n, attributes: { n: 1 as never } }] }, /links\[0\]\.attributes\["n"\]: expected a string/));
test("link: flags not a u32", () => bad({ links: [{ traceId: 1n, spanId: 1n, flags: 2 ** 32 }] }, /links\[0\]\.flags: expected a u32/));
test("links not an array", () => bad({ links: {} as never }, /\.links: expected an array/));

test("encodeValue: ddog_tracer_encode_value's bytes decode back to the value", async () => {
  const value = { a: [1, -1, 2.5, "x", true, null], b: new Uint8Array([7]), big: 2n ** 63n, n: { m: {} } };
  const bytes = encodeValue(value);
  assert.equal(decode(bytes, { useBigInt64: true }), { a: [1, -1, 2.5, "x", true, null], b: new Uint8Array([7]), big: 2n ** 63n, n: { m: {} } });
  assert.equal(Array.from(encodeValue({ a: 1 })), [0x81, 0xa1, 0x61, 0x01]);
  assert.equal(Array.from(encodeValue(-1)), [0xff]);
  await rejects(() => encodeValue(() => 1), ValidationError, /^value: cannot encode a function/);
});

test.run();
