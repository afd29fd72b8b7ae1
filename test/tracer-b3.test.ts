/** Tracer: B3 (single and multi header) and W3C baggage propagation, style names and their warnings, and the headers compared with dd-trace-js's own propagator. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRequire } from "node:module";
import { type PropagationStyle, Tracer } from "../mod.ts";
import { assertNoLeaks } from "./helpers.ts";
import { byName, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const TID = 0x640cfd8e00000000n;
const LOW = 0xa3ce929d0e0e4736n;
const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;

/** dd-trace-js's TextMapPropagator, span context, id and baggage modules (a devDependency). */
// deno-lint-ignore no-explicit-any
type Any = any;
const require = createRequire(import.meta.url);
const dd = {
  Propagator: require("dd-trace/packages/dd-trace/src/opentracing/propagation/text_map.js") as Any,
  SpanContext: require("dd-trace/packages/dd-trace/src/opentracing/span_context.js") as Any,
  id: require("dd-trace/packages/dd-trace/src/id.js") as Any,
  baggage: require("dd-trace/packages/dd-trace/src/baggage.js") as Any,
};

/** dd-trace-js's style name for ours: its v5 reads a bare "b3" as multi-header, "b3 single header" is the single one. */
const theirStyle = (s: PropagationStyle) => (s === "b3" ? "b3 single header" : s);

function theirPropagator(styles: PropagationStyle[]): Any {
  const names = styles.map(theirStyle);
  return new dd.Propagator({
    tracePropagationStyle: { inject: names, extract: names },
    baggageMaxItems: 64,
    baggageMaxBytes: 8192,
    baggageTagKeys: [],
    DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH: 512,
  });
}

const hex = (n: bigint, d: number) => n.toString(16).padStart(d, "0");

/** dd-trace-js's span context for the same trace, span, parent, priority, origin and tags. */
function theirContext(traceId: bigint, spanId: bigint, parentId: bigint, priority: number, tags: Record<string, string>, origin?: string): Any {
  const high = traceId >> 64n;
  return new dd.SpanContext({
    traceId: dd.id(hex(traceId & ((1n << 64n) - 1n), 16), 16),
    spanId: dd.id(hex(spanId, 16), 16),
    parentId: parentId ? dd.id(hex(parentId, 16), 16) : null,
    sampling: { priority },
    trace: { tags: { ...tags, ...(high ? { "_dd.p.tid": hex(high, 16) } : {}) }, origin, started: [], finished: [] },
  });
}

/** The `x-datadog-tags` and `tracestate` `dd` member as sets (dd-trace-js orders them differently). */
function normalize(h: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...h };
  if (h["x-datadog-tags"]) out["x-datadog-tags"] = h["x-datadog-tags"].split(",").sort();
  if (h.tracestate) {
    const [dd, ...rest] = h.tracestate.split(",");
    out.tracestate = [dd.slice(3).split(";").filter((f) => !f.startsWith("p:") && !f.startsWith("t.tid:")).sort(), rest];
  }
  return out;
}

const ALL: PropagationStyle[] = ["datadog", "tracecontext", "b3", "b3multi", "baggage"];

test("inject: the same headers as dd-trace-js for each style (128- and 64-bit ids, each priority, a parent, baggage)", () =>
  withTracer((tracer) => {
    for (const traceId of [(TID << 64n) | LOW, LOW]) {
      for (const priority of [-1, 0, 1, 2]) {
        const parent = tracer.startSpan("parent", { childOf: { traceId, spanId: 7n, samplingPriority: priority, origin: "rum", traceTags: { "_dd.p.dm": "-4" } } });
        const span = tracer.startSpan("child", { childOf: parent });
        span.setBaggageItem("user.id", "a b");
        span.setBaggageItem("k", "v,x=1");
        for (const style of ALL) {
          const ours: Record<string, string> = {};
          tracer.inject(span, ours);
          const theirs: Record<string, string> = {};
          dd.baggage.setAllBaggageItems({ "user.id": "a b", k: "v,x=1" });
          theirPropagator([style]).inject(theirContext(traceId, span.spanId, parent.spanId, priority, { "_dd.p.dm": "-4" }, "rum"), theirs);
          dd.baggage.removeAllBaggageItems();
          // Compare only the headers of this style.
          const pick = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).filter(([k]) => styleOf(k) === style));
          assert.equal(normalize(pick(ours)), normalize(pick(theirs)), `${style} priority ${priority} trace ${hex(traceId, 32)}`);
        }
        span.finish();
        parent.finish();
      }
    }
  }, { propagationStyleInject: ALL }));

function styleOf(header: string): PropagationStyle {
  if (header.startsWith("x-datadog-")) return "datadog";
  if (header === "traceparent" || header === "tracestate") return "tracecontext";
  if (header === "b3") return "b3";
  if (header.startsWith("x-b3-")) return "b3multi";
  return "baggage";
}

test("extract: what dd-trace-js injects, each style alone, gives the same trace, parent, priority and baggage", () =>
  withTracer(async (tracer) => {
    for (const style of ALL.filter((s) => s !== "baggage")) {
      for (const traceId of [(TID << 64n) | LOW, LOW]) {
        for (const priority of [0, 1, 2]) {
          const theirs: Record<string, string> = {};
          dd.baggage.setAllBaggageItems({ "session.id": "s 1", x: "é" });
          theirPropagator([style, "baggage"]).inject(theirContext(traceId, 0x1234n, 0x99n, priority, {}), theirs);
          dd.baggage.removeAllBaggageItems();
          const reader = new Tracer({ url: "http://127.0.0.1:1", flushOnExit: false, enabled: false, propagationStyleExtract: [style, "baggage"] });
          const c = reader.extract(theirs)!;
          const what = `${style} priority ${priority} trace ${hex(traceId, 32)}`;
          assert.ok(c, what);
          // A 64-bit id from W3C is 128-bit with zero high bits: the same number.
          assert.is(c.traceId, traceId, what);
          assert.is(c.spanId, 0x1234n, what);
          // The single b3 header has no user-keep: dd-trace-js writes 2 as sampled, "1".
          const expected = style === "b3" && priority === 2 ? 1 : priority;
          assert.is(c.samplingPriority, expected, what);
          assert.equal(c.baggage, { "session.id": "s 1", x: "é" }, what);
          // And dd-trace-js reads back what we inject for the same context.
          const ours: Record<string, string> = {};
          const writer = new Tracer({ url: "http://127.0.0.1:1", flushOnExit: false, propagationStyleInject: [style, "baggage"] });
          writer.inject(c, ours);
          await writer.shutdown();
          const back = theirPropagator([style, "baggage"]).extract(ours);
          assert.is(back.toTraceId(true), hex(traceId, 32), what);
          assert.is(back.toSpanId(true), "0000000000001234", what);
          assert.is(back._sampling.priority, expected, what);
          assert.equal(dd.baggage.getAllBaggageItems(), { "session.id": "s 1", x: "é" }, what);
          dd.baggage.removeAllBaggageItems();
        }
      }
    }
    assert.ok(tracer);
  }));

test("B3: single header forms, multi headers, malformed ones counted; B3 continues a trace end to end", () =>
  withTracer(async (tracer, agent) => {
    const t128 = "640cfd8e00000000a3ce929d0e0e4736";
    assert.equal(tracer.extract({ b3: `${t128}-00000000000004d2-d` }), { traceId: (TID << 64n) | LOW, spanId: 1234n, samplingPriority: 2 });
    assert.equal(tracer.extract({ b3: `a3ce929d0e0e4736-00000000000004d2-0-0000000000000007` }), { traceId: LOW, spanId: 1234n, samplingPriority: 0 });
    assert.equal(tracer.extract({ b3: `a3ce929d0e0e4736-00000000000004d2` }), { traceId: LOW, spanId: 1234n });
    assert.equal(tracer.extract({ "X-B3-TraceId": t128, "x-b3-spanid": "00000000000004d2", "x-b3-sampled": "1" }), { traceId: (TID << 64n) | LOW, spanId: 1234n, samplingPriority: 1 });
    assert.equal(tracer.extract({ "x-b3-traceid": t128, "x-b3-spanid": "00000000000004d2", "x-b3-flags": "1" })?.samplingPriority, 2);
    const before = tracer.counters.malformedHeaders;
    assert.is(tracer.extract({ b3: "garbage" }), undefined);
    assert.is(tracer.extract({ b3: "1" }), undefined, "a lone sampling flag has no ids");
    assert.is(tracer.extract({ "x-b3-traceid": "xyz", "x-b3-spanid": "00000000000004d2" }), undefined);
    assert.is(tracer.extract({ "x-b3-traceid": "0000000000000000", "x-b3-spanid": "00000000000004d2" }), undefined);
    assert.is(tracer.counters.malformedHeaders, before + 3);

    const c = tracer.extract({ b3: `${t128}-00000000000004d2-1` });
    tracer.trace("from.b3", { childOf: c }, (span) => {
      const h: Record<string, string> = {};
      tracer.inject(span, h);
      assert.is(h.b3, `${t128}-${hex(span.spanId, 16)}-1-00000000000004d2`, "the remote parent");
      assert.is(h["x-b3-traceid"], t128);
      assert.is(h["x-b3-parentspanid"], "00000000000004d2");
      tracer.trace("inner", (inner) => {
        const h2: Record<string, string> = {};
        tracer.inject(inner, h2);
        assert.is(h2["x-b3-parentspanid"], hex(span.spanId, 16));
        assert.is(h2.b3, `${t128}-${hex(inner.spanId, 16)}-1-${hex(span.spanId, 16)}`);
      });
    });
    await tracer.flush();
    const s = byName((await agent.waitForTraces(1)).flat());
    assert.is(s["from.b3"].trace_id, LOW);
    assert.is(s["from.b3"].meta["_dd.p.tid"], "640cfd8e00000000");
    assert.is(s["from.b3"].parent_id, 1234n);
  }, { propagationStyleExtract: ["b3", "b3multi"], propagationStyleInject: ["b3", "b3multi"] }));

test("baggage: set on a span, sent, extracted, inherited by child spans; malformed baggage is dropped whole; baggage alone starts a trace", () =>
  withTracer((tracer) => {
    const root = tracer.startSpan("root");
    root.setBaggageItem("user.id", "42").setBaggageItem("bad key", "x");
    const child = tracer.startSpan("child", { childOf: root });
    assert.is(child.getBaggageItem("user.id"), "42");
    const h: Record<string, string> = {};
    tracer.inject(child, h);
    assert.is(h.baggage, "user.id=42", "a key that is not a token is left out");
    const c = tracer.extract({ ...h, baggage: "a=1;prop=2, b = x%20y ,c=%E2%9C%93" })!;
    assert.equal(c.baggage, { a: "1", b: "x y", c: "✓" });
    const continued = tracer.startSpan("continued", { childOf: c });
    assert.is(continued.getBaggageItem("b"), "x y");
    const before = tracer.counters.malformedHeaders;
    assert.is(tracer.extract({ ...h, baggage: "a=1,novalue" })?.baggage, undefined);
    assert.is(tracer.counters.malformedHeaders, before + 1);
    const only = tracer.extract({ baggage: "k=v" })!;
    assert.equal(only, { traceId: 0n, spanId: 0n, baggage: { k: "v" } });
    assert.equal(tracer.extract({ baggage: "user.id=u1,k=v" })?.traceTags, { "baggage.user.id": "u1" }, "DD_TRACE_BAGGAGE_TAG_KEYS' default keys");
    const fresh = tracer.startSpan("fresh", { childOf: only });
    assert.ok(fresh.traceId > 0n && fresh.parentId === 0n, "a new trace");
    assert.is(fresh.getBaggageItem("k"), "v");
    for (const s of [fresh, continued, child, root]) s.finish();
  }));

test("DD_TRACE_BAGGAGE_TAG_KEYS: extracted baggage keys tagged baggage.<key> on the trace (default user.id, session.id, account.id; * for all), not propagated as trace tags", async () => {
  for (const [keys, expected] of [
    [undefined, { "baggage.user.id": "u1", "baggage.session.id": "s1" }],
    ["*", { "baggage.user.id": "u1", "baggage.session.id": "s1", "baggage.cart": "3" }],
    ["cart", { "baggage.cart": "3" }],
    ["", {}],
  ] as const) {
    if (keys === undefined) delete env.DD_TRACE_BAGGAGE_TAG_KEYS;
    else env.DD_TRACE_BAGGAGE_TAG_KEYS = keys;
    try {
      await withTracer(async (tracer, agent) => {
        const c = tracer.extract({ "x-datadog-trace-id": "10", "x-datadog-parent-id": "20", baggage: "user.id=u1,session.id=s1,cart=3" });
        tracer.trace("server", { childOf: c }, (span) => {
          tracer.trace("child", () => {});
          const h: Record<string, string> = {};
          tracer.inject(span, h);
          assert.is(h["x-datadog-tags"], "_dd.p.dm=-0", "baggage tags are not _dd.p tags");
          assert.not.match(h.tracestate, /baggage/);
          assert.is(h.baggage, "user.id=u1,session.id=s1,cart=3");
        });
        await tracer.flush();
        const s = byName((await agent.waitForTraces(1)).flat());
        const tags = Object.fromEntries(Object.entries(s.server.meta).filter(([k]) => k.startsWith("baggage.")));
        assert.equal(tags, expected, String(keys));
        assert.equal(Object.keys(s.child.meta).filter((k) => k.startsWith("baggage.")), [], "on the chunk's first span only");
      });
    } finally {
      delete env.DD_TRACE_BAGGAGE_TAG_KEYS;
    }
  }
});

test("DD_TRACE_PROPAGATION_STYLE takes b3, b3multi, baggage (any case, b3 single header as an alias); unknown styles warn, from the environment or an option", async () => {
  const logs: string[] = [];
  /** The header names a tracer made with `options` (and the environment now) injects. */
  const injected = async (options = {}) => {
    const t = new Tracer({ url: "http://127.0.0.1:1", flushOnExit: false, logger: (m) => logs.push(m), ...options });
    const h: Record<string, string> = {};
    t.inject({ traceId: 5n, spanId: 6n, samplingPriority: 1, baggage: { k: "v" } }, h);
    await t.shutdown();
    return Object.keys(h).sort();
  };
  try {
    env.DD_TRACE_PROPAGATION_STYLE = "B3,b3multi , baggage";
    assert.equal(await injected(), ["b3", "baggage", "x-b3-sampled", "x-b3-spanid", "x-b3-traceid"]);
    env.DD_TRACE_PROPAGATION_STYLE = "b3 single header";
    assert.equal(await injected(), ["b3"]);
    assert.equal(logs, []);
    env.DD_TRACE_PROPAGATION_STYLE = "datadog,jaeger";
    assert.equal(await injected(), ["x-datadog-parent-id", "x-datadog-sampling-priority", "x-datadog-trace-id"]);
    assert.is(logs.length, 1);
    assert.match(logs[0], /DD_TRACE_PROPAGATION_STYLE: unknown propagation style "jaeger"/);
    env.DD_TRACE_PROPAGATION_STYLE = "jaeger";
    assert.equal(await injected(), ["baggage", "traceparent", "tracestate", "x-datadog-parent-id", "x-datadog-sampling-priority", "x-datadog-trace-id"], "nothing known: the default");
    env.DD_TRACE_PROPAGATION_STYLE_INJECT = "b3multi";
    assert.equal(await injected(), ["x-b3-sampled", "x-b3-spanid", "x-b3-traceid"], "_INJECT wins");
    delete env.DD_TRACE_PROPAGATION_STYLE;
    delete env.DD_TRACE_PROPAGATION_STYLE_INJECT;
    logs.length = 0;
    assert.equal(await injected({ propagationStyleInject: ["b3multi", "zipkin" as PropagationStyle] }), ["x-b3-sampled", "x-b3-spanid", "x-b3-traceid"]);
    assert.is(logs.length, 1);
    assert.match(logs[0], /options\.propagationStyleInject: unknown propagation style "zipkin"/);
    assert.equal(await injected({ propagationStyleInject: "none" }), []);
    assert.equal(await injected({ propagationStyleInject: [] }), []);
    assert.throws(() => new Tracer({ propagationStyleExtract: 3 as never, flushOnExit: false }), /options\.propagationStyleExtract/);
  } finally {
    delete env.DD_TRACE_PROPAGATION_STYLE;
    delete env.DD_TRACE_PROPAGATION_STYLE_INJECT;
  }
});

test.run();
