/**
 * The TypeScript → C boundary: every write into the scratch buffer is
 * bounds-checked and every user value is read once (issue 11, items 1 and 6).
 * A value a getter or Proxy returns differently on a second read is sent as
 * it was read the first (and only) time.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decode } from "@msgpack/msgpack";
import { encodeValue, TraceExporter, ValidationError } from "../mod.ts";
import { Binding, encodeUtf8, getBinding, MAX_SCRATCH, ScratchOverflow } from "../src/binding.ts";
import { buildTraceChunks } from "../src/build.ts";
import { TestAgent } from "../testing.ts";
import { assertNoLeaks, rejects, span, traceRequests, withExporter } from "./helpers.ts";
import { withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);
// These tests leave a big heap behind: collect it now, not in the middle of the next file's timing test.
test.after(() => {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
});

type Raw = Record<string, unknown>;

/** An object whose property `k` returns `first` on the first read and `later` after; `reads()` counts them. */
function changing<T>(k: string, first: T, later: T): { object: Record<string, T>; reads: () => number } {
  let n = 0;
  const object = {} as Record<string, T>;
  Object.defineProperty(object, k, { enumerable: true, get: () => (n++ === 0 ? first : later) });
  return { object, reads: () => n };
}

const LONGER = "x".repeat(200_000);

test("encodeUtf8 never writes or counts past `end`", () => {
  const u8 = new Uint8Array(16).fill(0xee);
  assert.is(encodeUtf8(u8, 0, "abcdefgh", 8), 8);
  assert.is(encodeUtf8(u8, 0, "abcdefghi", 8), -1, "ASCII one byte too long");
  assert.is(u8[8], 0xee, "nothing written at end");
  assert.is(encodeUtf8(u8, 4, "ab€", 8), -1, "the euro sign needs 3 bytes, 2 left");
  assert.is(encodeUtf8(u8, 4, "a€", 8), 4);
  assert.equal(Array.from(u8.subarray(4, 8)), [0x61, 0xe2, 0x82, 0xac]);
  assert.is(encodeUtf8(u8, 10, "x", 8), -1, "start past the end");
  assert.is(encodeUtf8(u8, 8, "", 8), 0);
  assert.is(encodeUtf8(u8, 0, "\ud800", 3), 3, "a lone surrogate is U+FFFD, 3 bytes");
  assert.equal(Array.from(u8.subarray(0, 3)), [0xef, 0xbf, 0xbd]);
  assert.is(u8[15], 0xee);
});

test("the binding refuses writes past the room reserved, and calls over MAX_SCRATCH", () => {
  const b = getBinding();
  b.reserve(8);
  b.writeString("12345678");
  assert.throws(() => b.writeString("9"), (e: unknown) => e instanceof ScratchOverflow);
  b.reserve(4);
  assert.throws(() => b.arg("x".repeat(300), true), (e: unknown) => e instanceof ScratchOverflow, "an uncached string");
  assert.throws(() => b.claim(5), (e: unknown) => e instanceof ScratchOverflow);
  assert.throws(() => b.reserve(MAX_SCRATCH), (e: unknown) => e instanceof ScratchOverflow && /too large/.test(e.message));
});

test("with the string cache off every string goes through the scratch buffer, reserved for (the _dd.p.tid key too)", () => {
  const b = new Binding(getBinding().native, { stringCache: false });
  const handle = buildTraceChunks(b, [[span({
    traceId: (1n << 100n) | 5n, meta: { ["m".repeat(300)]: "v" }, metrics: { ["n".repeat(300)]: 1 },
    metaStruct: { ["s".repeat(300)]: { k: "v" } }, links: [{ traceId: 1n, spanId: 1n, attributes: { ["a".repeat(300)]: "b" } }],
    events: [{ name: "e".repeat(300), time: 1n, attributes: { ["x".repeat(300)]: ["y"] } }],
  })]]);
  b.symbols.ddog_tracer_trace_chunks_free(handle);
});

test("a 70,000-character link attribute key (past the 64 KiB scratch buffer and the string cache) arrives intact", () =>
  withExporter(async (exporter, agent) => {
    const k = "k".repeat(70_000);
    const v = "é".repeat(30_000);
    await exporter.send([[span({ links: [{ traceId: 3n, spanId: 4n, attributes: { [k]: v, small: "s" }, tracestate: "t".repeat(70_000) }] })]]);
    const [[s]] = await agent.waitForTraces(1);
    const [link] = s.span_links as Raw[];
    assert.equal(link.attributes, { [k]: v, small: "s" });
    assert.is(link.tracestate, "t".repeat(70_000));
  }));

test("Tracer: span.addLink(other, { ['k'.repeat(3e6)]: 'v' }) arrives intact", () =>
  withTracer(async (tracer, agent) => {
    const k = "k".repeat(3e6);
    const other = tracer.startSpan("other");
    other.finish();
    const s = tracer.startSpan("x");
    s.addLink(other, { [k]: "v" });
    s.finish();
    await tracer.flush();
    const spans = (await agent.waitForTraces(2)).flat();
    const x = spans.find((sp) => sp.name === "x")!;
    const [link] = x.span_links as Raw[];
    assert.equal(link.attributes, { [k]: "v" });
    assert.is(link.span_id, other.spanId);
  }));

test("long keys and values everywhere cross the scratch buffer and the string cache", () =>
  withExporter(async (exporter, agent) => {
    const big = (c: string) => c.repeat(100_000);
    await exporter.send([[span({
      name: big("n"), service: big("s"), resource: big("r"), type: big("t"),
      meta: { [big("a")]: big("b"), ["🎉".repeat(40_000)]: "é".repeat(40_000) },
      metrics: { [big("m")]: 1.5 },
      metaStruct: { [big("c")]: { [big("d")]: [big("e")] }, [big("f")]: new Uint8Array(100_000).fill(7) },
      events: [{ name: big("g"), time: 1n, attributes: { [big("h")]: big("i"), [big("j")]: [big("k"), "l"] } }],
    })]]);
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.name, big("n"));
    assert.is(s.service, big("s"));
    assert.is(s.resource, big("r"));
    assert.is(s.type, big("t"));
    assert.is(s.meta[big("a")], big("b"));
    assert.is(s.meta["🎉".repeat(40_000)], "é".repeat(40_000));
    assert.is(s.metrics[big("m")], 1.5);
    assert.equal(decode(s.meta_struct[big("c")]), { [big("d")]: [big("e")] });
    assert.equal(s.meta_struct[big("f")], new Uint8Array(100_000).fill(7));
    const [e] = s.span_events as Raw[];
    assert.is(e.name, big("g"));
    const at = e.attributes as Record<string, Raw>;
    assert.equal(at[big("h")], { type: 0, string_value: big("i") });
    assert.equal((at[big("j")].array_value as Raw).values, [{ type: 0, string_value: big("k") }, { type: 0, string_value: "l" }]);
  }));

test("getters that return a longer string the second time are read once, everywhere", () =>
  withExporter(async (exporter, agent) => {
    const meta = changing("m", "short", LONGER);
    const metric = changing("n", 1, 2);
    const struct = changing("s", "short", LONGER);
    const nested = changing("deep", "short", LONGER);
    const attr = changing("a", "short", LONGER);
    const eventAttr = changing("e", "short", LONGER);
    const arrayAttr: string[] = [];
    let arrayReads = 0;
    Object.defineProperty(arrayAttr, 0, { enumerable: true, get: () => (arrayReads++ === 0 ? "short" : LONGER) });
    const link = { traceId: 1n, spanId: 2n, attributes: attr.object, tracestate: "" };
    let stateReads = 0;
    Object.defineProperty(link, "tracestate", { get: () => (stateReads++ === 0 ? "dd=s:1" : LONGER) });
    const eventAttributes = eventAttr.object as Record<string, unknown>;
    eventAttributes.arr = arrayAttr;
    const event = { time: 1n, attributes: eventAttributes } as Raw;
    let nameReads = 0;
    Object.defineProperty(event, "name", { enumerable: true, get: () => (nameReads++ === 0 ? "ev" : LONGER) });
    const s0 = span({ meta: meta.object, metrics: metric.object, metaStruct: { ...struct.object, n: [nested.object] }, links: [link], events: [event as never] });
    let nameRead = 0;
    Object.defineProperty(s0, "name", { get: () => (nameRead++ === 0 ? "op" : LONGER), enumerable: true });
    await exporter.send([[s0]]);
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.name, "op");
    assert.is(s.meta.m, "short");
    assert.is(s.metrics.n, 1);
    assert.is(decode(s.meta_struct.s), "short");
    assert.equal(decode(s.meta_struct.n), [{ deep: "short" }]);
    const [l] = s.span_links as Raw[];
    assert.equal(l.attributes, { a: "short" });
    assert.is(l.tracestate, "dd=s:1");
    const [e] = s.span_events as Raw[];
    assert.is(e.name, "ev");
    const at = e.attributes as Record<string, Raw>;
    assert.equal(at.e, { type: 0, string_value: "short" });
    assert.equal((at.arr.array_value as Raw).values, [{ type: 0, string_value: "short" }]);
    for (const [what, n] of [["meta", meta.reads()], ["metric", metric.reads()], ["metaStruct", struct.reads()], ["nested", nested.reads()], ["link attribute", attr.reads()], ["tracestate", stateReads], ["event name", nameReads], ["event attribute", eventAttr.reads()], ["array element", arrayReads], ["span name", nameRead]] as const) {
      assert.is(n, 1, `${what} read ${n} times`);
    }
  }));

test("encodeValue reads a getter once", () => {
  const v = changing("k", "short", LONGER);
  assert.equal(decode(encodeValue({ a: [v.object] })), { a: [{ k: "short" }] });
  assert.is(v.reads(), 1);
});

/** A Proxy of `target` whose key list grows by one each time it is asked for, and whose values grow on each read. */
function growing(target: Record<string, unknown>): { proxy: Record<string, unknown>; ownKeysCalls: () => number } {
  let calls = 0;
  const proxy = new Proxy(target, {
    ownKeys(t) {
      calls++;
      for (let i = 0; i < 1000 * calls; i++) t[`grown${calls}.${i}`] = "g".repeat(100);
      return Reflect.ownKeys(t);
    },
    get(t, k) {
      const v = Reflect.get(t, k);
      if (typeof k === "string" && typeof v === "string") t[k] = v + "+".repeat(70_000);
      return v;
    },
  });
  return { proxy, ownKeysCalls: () => calls };
}

test("Proxies whose keys and values grow during the build: no RangeError, one consistent snapshot sent", () =>
  withExporter(async (exporter, agent) => {
    const meta = growing({ a: "1" });
    const struct = growing({ a: "1" });
    const attrs = growing({ a: "1" });
    const eventAttrs = growing({ a: "1" });
    await exporter.send([[span({
      meta: meta.proxy as Record<string, string>,
      metaStruct: { v: struct.proxy },
      links: [{ traceId: 1n, spanId: 2n, attributes: attrs.proxy as Record<string, string> }],
      events: [{ name: "e", time: 1n, attributes: eventAttrs.proxy as Record<string, string> }],
    })]]);
    const [[s]] = await agent.waitForTraces(1);
    const snapshot = (n: number) => {
      const o: Record<string, string> = { a: "1" };
      for (let i = 0; i < n; i++) o[`grown1.${i}`] = "g".repeat(100);
      return o;
    };
    assert.equal(s.meta, snapshot(1000));
    assert.equal(decode(s.meta_struct.v), snapshot(1000));
    assert.equal((s.span_links[0] as Raw).attributes, snapshot(1000));
    assert.is(Object.keys((s.span_events[0] as Raw).attributes as Raw).length, 1001);
    for (const p of [meta, struct, attrs, eventAttrs]) assert.is(p.ownKeysCalls(), 1, "keys asked for once");
  }));

test("a Proxy whose keys grow inside a span of a batch is a ValidationError when it becomes invalid, never a RangeError", () =>
  withExporter(async (exporter, agent) => {
    // Its key list grows by one non-string value each time it is asked for.
    let calls = 0;
    const target: Record<string, unknown> = { a: "1" };
    const proxy = new Proxy(target, {
      ownKeys(t) {
        if (calls++ > 0) t[`n${calls}`] = 5;
        return Reflect.ownKeys(t);
      },
    });
    // Asked for once: a consistent, valid snapshot.
    await exporter.send([[span({ meta: proxy as Record<string, string> })]]);
    assert.equal((await agent.waitForTraces(1))[0][0].meta, { a: "1" });
    // The second time it has a non-string value: a typed error naming it, nothing sent.
    const e = await rejects(exporter.send([[span(), span({ meta: proxy as Record<string, string> })]]), ValidationError, /traces\[0\]\[1\]\.meta\["n2"\]: expected a string/);
    assert.is(e.path, 'traces[0][1].meta["n2"]');
    assert.is(traceRequests(agent), 1);
  }));

for (const sendPath of ["fields", "batch"] as const) {
  test(`a Uint8Array resized while the span is read (${sendPath} path): a ValidationError (per field), or sent as read (batch, one pass)`, () =>
    withExporter(async (exporter, agent) => {
      type Resizable = ArrayBuffer & { resize(n: number): void };
      const buffer = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable)(8, { maxByteLength: 1 << 20 });
      const bytes = new Uint8Array(buffer); // tracks the buffer's length
      bytes.fill(7);
      const later = {} as Record<string, unknown>;
      Object.defineProperty(later, "x", { enumerable: true, get: () => (buffer.resize(1 << 20), 1) });
      const traces = [[span({ metaStruct: { v: [bytes, later] } })]];
      if (sendPath === "fields") {
        // Measured in a first pass, written in a second: the change is caught.
        await rejects(exporter.send(traces), ValidationError, /metaStruct\["v"\]\[0\]: the Uint8Array changed length/);
        assert.is(traceRequests(agent), 0);
      } else {
        // Written as it is read: the 8 bytes of the first read go out.
        await exporter.send(traces);
        const [[s]] = await agent.waitForTraces(1);
        assert.ok(s.meta_struct?.v, "meta_struct sent");
        const decoded = decode(s.meta_struct!.v) as [Uint8Array, Record<string, unknown>];
        assert.equal([...decoded[0]], [7, 7, 7, 7, 7, 7, 7, 7]);
        assert.equal(decoded[1], { x: 1 });
      }
    }, { sendPath }));
}

test("properties added to Object.prototype are not keys of meta, metrics, metaStruct, links, events, nor options", async () => {
  const proto = Object.prototype as Record<string, unknown>;
  const polluted = ["polluted", "hostname", "telemetry", "otlp", "connectionTimeoutMs"];
  const agent = await TestAgent.start();
  try {
    proto.polluted = { not: "a string" };
    proto.hostname = 42;
    proto.telemetry = "nonsense";
    proto.otlp = 7;
    proto.connectionTimeoutMs = -1;
    const exporter = new TraceExporter({ url: agent.url });
    try {
      await exporter.send([[span({
        meta: { a: "b" }, metrics: { m: 1 }, metaStruct: { s: { k: "v" } },
        links: [{ traceId: 1n, spanId: 2n, attributes: { x: "y" } }],
        events: [{ name: "e", time: 1n, attributes: { z: true } }],
      })]]);
    } finally {
      await exporter.close();
    }
    const [[s]] = await agent.waitForTraces(1);
    assert.equal(s.meta, { a: "b" });
    assert.equal(s.metrics, { m: 1 });
    assert.equal(decode(s.meta_struct.s), { k: "v" });
    assert.equal((s.span_links[0] as Raw).attributes, { x: "y" });
    assert.equal(Object.keys((s.span_events[0] as Raw).attributes as Raw), ["z"]);
    assert.equal(decode(encodeValue({ k: 1 })), { k: 1 });
  } finally {
    for (const k of polluted) delete proto[k];
    await agent.close();
  }
});

for (const sendPath of ["fields", "batch"] as const) {
  test(`keys of meta, metrics, link and event attributes are their own enumerable keys, whatever their prototype (${sendPath} path)`, () =>
    withExporter(async (exporter, agent) => {
      const inherit = <T>(own: Record<string, T>, inherited: Record<string, T>) => Object.assign(Object.create(inherited), own);
      const bare = <T>(own: Record<string, T>) => Object.assign(Object.create(null), own);
      await exporter.send([[
        span({
          spanId: 1n,
          meta: inherit({ a: "1", b: "2" }, { inherited: "x" }),
          metrics: inherit({ m: 1 }, { n: 2 }),
          links: [{ traceId: 1n, spanId: 2n, attributes: inherit({ x: "y" }, { w: "z" }) }],
          events: [{ name: "e", time: 1n, attributes: inherit<unknown>({ z: true }, { q: 1 }) }],
        }),
        span({
          spanId: 9n,
          meta: bare({ c: "4" }),
          metrics: bare({ k: 3 }),
          links: [{ traceId: 1n, spanId: 2n, attributes: bare({ u: "v" }) }],
          events: [{ name: "e", time: 1n, attributes: bare({ y: "t" }) }],
        }),
      ]]);
      const [trace] = await agent.waitForTraces(1);
      const [s1, s2] = [...trace].sort((p, q) => Number(p.span_id) - Number(q.span_id));
      assert.equal(s1.meta, { a: "1", b: "2" });
      assert.equal(s1.metrics, { m: 1 });
      assert.equal((s1.span_links[0] as Raw).attributes, { x: "y" });
      assert.equal(Object.keys((s1.span_events[0] as Raw).attributes as Raw), ["z"]);
      assert.equal(s2.meta, { c: "4" });
      assert.equal(s2.metrics, { k: 3 });
      assert.equal((s2.span_links[0] as Raw).attributes, { u: "v" });
      assert.equal(Object.keys((s2.span_events[0] as Raw).attributes as Raw), ["y"]);
    }, { sendPath }));
}

test("batch path: a getter that puts an enumerable property on Object.prototype while the batch is written gets a ValidationError, nothing sent", async () => {
  const proto = Object.prototype as Record<string, unknown>;
  const agent = await TestAgent.start();
  try {
    const exporter = new TraceExporter({ url: agent.url, sendPath: "batch" });
    try {
      assert.is(exporter.sendPath, "batch");
      const meta = {
        get a() {
          proto.sneaky = "inherited";
          return "b";
        },
      };
      const e = await rejects(exporter.send([[span({ meta }), span({ meta: { c: "d" } })]]), ValidationError, /Object\.prototype/);
      assert.is(e.path, "traces");
      delete proto.sneaky;
      // The writer is usable again, and what goes next is whole.
      await exporter.send([[span({ meta: { c: "d" } })]]);
    } finally {
      delete proto.sneaky;
      await exporter.close();
    }
    const traces = await agent.waitForTraces(1);
    assert.is(traces.length, 1);
    assert.equal(traces[0][0].meta, { c: "d" });
  } finally {
    await agent.close();
  }
});

test.run();
