/** Tracer: span lifecycle, tags, errors, links, events, context across await/timers/callbacks, ids, time, span data. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SamplingPriority, Tracer, TracerSpan } from "../mod.ts";
import { assertNoLeaks } from "./helpers.ts";
import { byName, sleep, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

test("parent/child structure across await, timers, callbacks and concurrent branches", () =>
  withTracer(async (tracer, agent) => {
    assert.is(tracer.activeSpan(), undefined);
    await tracer.trace("root", async (root) => {
      assert.is(tracer.activeSpan(), root);
      await sleep(2);
      assert.is(tracer.activeSpan(), root, "after await");
      await tracer.trace("after.await", async () => {
        await sleep(1);
        tracer.trace("nested", () => {});
      });
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          tracer.trace("in.timer", () => {});
          resolve();
        }, 1)
      );
      await new Promise<void>((resolve) => queueMicrotask(() => tracer.trace("in.microtask", () => resolve())));
      await Promise.all(["a", "b"].map((branch) =>
        tracer.trace(`branch.${branch}`, async () => {
          await sleep(branch === "a" ? 3 : 1);
          await tracer.trace(`leaf.${branch}`, () => sleep(1));
        })
      ));
    });
    assert.is(tracer.activeSpan(), undefined, "nothing active after");
    await tracer.flush();
    const [chunk] = await agent.waitForTraces(1);
    const s = byName(chunk);
    assert.is(chunk.length, 9);
    assert.is(chunk[0].name, "root", "the local root comes first");
    assert.is(s.root.parent_id, 0n);
    const root = s.root.span_id;
    assert.is(s["after.await"].parent_id, root);
    assert.is(s.nested.parent_id, s["after.await"].span_id);
    assert.is(s["in.timer"].parent_id, root);
    assert.is(s["in.microtask"].parent_id, root);
    assert.is(s["branch.a"].parent_id, root);
    assert.is(s["branch.b"].parent_id, root);
    assert.is(s["leaf.a"].parent_id, s["branch.a"].span_id);
    assert.is(s["leaf.b"].parent_id, s["branch.b"].span_id);
    for (const span of chunk) assert.is(span.trace_id, s.root.trace_id);
  }));

test("startSpan: explicit childOf, null for a new trace, the active span by default; activate()", () =>
  withTracer(async (tracer, agent) => {
    const a = tracer.startSpan("a");
    const b = tracer.startSpan("b", { childOf: a });
    const c = tracer.activate(b, () => tracer.startSpan("c"));
    const d = tracer.activate(b, () => tracer.startSpan("d", { childOf: null }));
    assert.is(b.parentId, a.spanId);
    assert.is(c.parentId, b.spanId);
    assert.is(c.traceId, a.traceId);
    assert.is(d.parentId, 0n);
    assert.is.not(d.traceId, a.traceId);
    for (const s of [d, c, b, a]) s.finish();
    await tracer.flush();
    assert.is((await agent.waitForTraces(2)).length, 2);
  }));

test("setTag: strings to meta, numbers to metrics, booleans as 1/0 metrics, bigints, objects, special keys", () =>
  withTracer(async (tracer, agent) => {
    const span = tracer.startSpan("op", { tags: { initial: "yes" } });
    span.setTag("str", "v").setTag("num", 2.5).setTag("int", 7).setTag("yes", true).setTag("no", false);
    span.setTag("big", 12345678901234567890n).setTag("obj", { a: "x", b: 2, deep: { c: 1 } });
    span.setTag("nan", NaN).setTag("inf", Infinity).setTag("undef", undefined).setTag("nil", null);
    span.setTag("changes", "first").setTag("changes", 3);
    span.setTags({ "service.name": "other-svc", "resource.name": "GET /things", "span.type": "web", "http.status_code": 404 });
    span.finish();
    await tracer.flush();
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.service, "other-svc");
    assert.is(s.resource, "GET /things");
    assert.is(s.type, "web");
    assert.is(s.meta.initial, "yes");
    assert.is(s.meta.str, "v");
    assert.is(s.metrics.num, 2.5);
    assert.is(s.metrics.int, 7);
    assert.is(s.metrics.yes, 1);
    assert.is(s.metrics.no, 0);
    assert.is(s.meta.big, "12345678901234567890");
    assert.is(s.meta["obj.a"], "x");
    assert.is(s.metrics["obj.b"], 2);
    assert.is(s.meta["obj.deep"], undefined, "flattened one level only");
    assert.is(s.metrics["obj.deep.c"], undefined);
    for (const k of ["nan", "inf", "undef", "nil"]) assert.ok(!(k in s.meta) && !(k in s.metrics), k);
    assert.is(s.metrics.changes, 3);
    assert.is(s.meta.changes, undefined, "a tag lives in meta or metrics, not both");
    assert.is(s.meta["http.status_code"], "404");
  }));

test("setError: the error flag, error.type, error.message, error.stack; non-Error values", () =>
  withTracer(async (tracer, agent) => {
    class PaymentError extends Error {
      override name = "PaymentError";
    }
    const e = new PaymentError("card declined");
    tracer.startSpan("a").setError(e).finish();
    tracer.startSpan("b").setError("plain text").finish();
    tracer.startSpan("c").setTag("error", true).finish();
    tracer.startSpan("d").setTag("error", new TypeError("bad")).finish();
    await tracer.flush();
    const s = byName((await agent.waitForTraces(4)).flat());
    assert.is(s.a.error, 1);
    assert.is(s.a.meta["error.type"], "PaymentError");
    assert.is(s.a.meta["error.message"], "card declined");
    assert.is(s.a.meta["error.stack"], e.stack);
    assert.is(s.b.error, 1);
    assert.is(s.b.meta["error.message"], "plain text");
    assert.is(s.c.error, 1);
    assert.is(s.c.meta["error.type"], undefined);
    assert.is(s.d.meta["error.type"], "TypeError");
  }));

test("trace(): returns fn's value, records a throw or a rejection and passes it on", () =>
  withTracer(async (tracer, agent) => {
    assert.is(tracer.trace("sync", () => 42), 42);
    // deno-lint-ignore require-await
    assert.is(await tracer.trace("async", async () => "done"), "done");
    assert.throws(() => tracer.trace("throws", () => { throw new RangeError("sync boom"); }), /sync boom/);
    let caught: unknown;
    try {
      await tracer.trace("rejects", { resource: "r" }, async () => {
        await sleep(1);
        throw new Error("async boom");
      });
    } catch (e) {
      caught = e;
    }
    assert.is((caught as Error).message, "async boom");
    await tracer.flush();
    const s = byName((await agent.waitForTraces(4)).flat());
    assert.is(s.sync.error, 0);
    assert.is(s.async.error, 0);
    assert.is(s.throws.error, 1);
    assert.is(s.throws.meta["error.type"], "RangeError");
    assert.is(s.rejects.error, 1);
    assert.is(s.rejects.meta["error.message"], "async boom");
    assert.is(s.rejects.resource, "r");
  }));

test("finishing twice is a no-op; tags, errors, links and events after finish are ignored", () =>
  withTracer(async (tracer, agent) => {
    const span = tracer.startSpan("once");
    span.setTag("before", 1);
    span.finish();
    const duration = span.duration;
    await sleep(5);
    span.finish();
    span.setTag("after", 1).setError(new Error("late")).addEvent("late").addLink(span);
    assert.is(span.duration, duration);
    assert.ok(span.finished);
    await tracer.flush();
    await sleep(50);
    const spans = agent.spans();
    assert.is(spans.length, 1);
    assert.is(spans[0].duration, duration);
    assert.is(spans[0].metrics.before, 1);
    assert.is(spans[0].metrics.after, undefined);
    assert.is(spans[0].error, 0);
    assert.equal(spans[0].span_events, []);
    assert.equal(spans[0].span_links, []);
  }));

test("addLink and addEvent", () =>
  withTracer(async (tracer, agent) => {
    const other = tracer.startSpan("other", { childOf: null });
    const remote = { traceId: (5n << 64n) | 6n, spanId: 7n, samplingPriority: 1, tracestate: "vendor=x" };
    const span = tracer.startSpan("linked", { links: [remote] });
    span.addLink(other, { "link.kind": "follows_from", n: 3 });
    span.addLink({ traceId: -1n, spanId: 1n }); // invalid: ignored
    span.addEvent("cache.miss", { key: "user:1", hits: 0, ratio: 0.5, ok: false, tags: ["a", "b"], big: 2n ** 40n, bad: { no: 1 }, mixed: [1, "a"] }, 1_700_000_000_000);
    span.addEvent("bare");
    span.finish();
    other.finish();
    await tracer.flush();
    const s = byName((await agent.waitForTraces(2)).flat());
    const links = s.linked.span_links as Record<string, unknown>[];
    assert.is(links.length, 2);
    assert.is(links[0].trace_id, 6n);
    assert.is(links[0].trace_id_high, 5n);
    assert.is(links[0].span_id, 7n);
    assert.is(Number(links[0].flags), 0x80000001);
    assert.is(links[0].tracestate, "vendor=x");
    assert.is(links[1].span_id, other.spanId);
    assert.equal(links[1].attributes, { "link.kind": "follows_from", n: "3" });
    const events = s.linked.span_events as Record<string, unknown>[];
    assert.is(events.length, 2);
    assert.is(events[0].name, "cache.miss");
    assert.is(events[0].time_unix_nano, 1_700_000_000_000_000_000n);
    const attrs = events[0].attributes as Record<string, unknown>;
    assert.equal(Object.keys(attrs).sort(), ["big", "hits", "key", "ok", "ratio", "tags"]);
    assert.is(events[1].name, "bare");
    assert.ok((events[1].time_unix_nano as bigint) >= s.linked.start);
  }));

test("the span data Datadog tracers send: env, version, language, runtime-id, process_id, top level, priority, decision maker", () =>
  withTracer(async (tracer, agent) => {
    await tracer.trace("web.request", { type: "web" }, async () => {
      tracer.trace("same.service", () => {});
      await tracer.trace("db.query", { service: "svc-db" }, () => tracer.trace("db.inner", () => {}));
    });
    await tracer.flush();
    const [chunk] = await agent.waitForTraces(1);
    const s = byName(chunk);
    for (const span of chunk) {
      assert.is(span.meta.env, "test", span.name);
      assert.is(span.meta.language, "javascript");
      assert.is(span.meta["runtime-id"], tracer.runtimeId);
      assert.match(tracer.runtimeId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok(Number.isInteger(span.metrics.process_id) && span.metrics.process_id > 0);
      assert.is(span.metrics._sampling_priority_v1, SamplingPriority.AUTO_KEEP);
      assert.ok(span.meta["_dd.p.tid"], "128-bit trace id");
    }
    assert.is(s["web.request"].meta.version, "1.2.3");
    assert.is(s["db.query"].meta.version, undefined, "version only on the tracer's service");
    assert.is(s["db.query"].meta["_dd.base_service"], "svc");
    assert.is(s["web.request"].metrics["_dd.top_level"], 1, "local root");
    assert.is(s["db.query"].metrics["_dd.top_level"], 1, "service entry");
    assert.is(s["same.service"].metrics["_dd.top_level"], undefined);
    assert.is(s["db.inner"].metrics["_dd.top_level"], undefined);
    assert.is(s["db.inner"].service, "svc-db", "children inherit the parent's service");
    assert.is(chunk[0].meta["_dd.p.dm"], "-0", "no agent rates yet: default mechanism");
    assert.is(chunk[0].metrics["_dd.agent_psr"], 1);
    for (const span of chunk.slice(1)) assert.is(span.meta["_dd.p.dm"], undefined, "trace tags on the chunk's first span");
  }));

test("ids: random 64-bit span ids, 128-bit trace ids in Datadog's layout (time in the high 32 bits)", () =>
  withTracer(async (tracer) => {
    const seconds = BigInt(Math.floor(Date.now() / 1000));
    const spans = Array.from({ length: 200 }, () => tracer.startSpan("x", { childOf: null }));
    const spanIds = new Set(spans.map((s) => s.spanId));
    const traceIds = new Set(spans.map((s) => s.traceId));
    assert.is(spanIds.size, 200);
    assert.is(traceIds.size, 200);
    assert.ok(spans.some((s) => s.spanId >= 1n << 63n), "the full 64 bits are used");
    for (const s of spans) {
      assert.ok(s.spanId > 0n && s.spanId < 1n << 64n);
      const high = s.traceId >> 64n;
      assert.ok(high >> 32n >= seconds - 5n && high >> 32n <= seconds + 5n, `high bits hold the time: ${high.toString(16)}`);
      assert.is(high & 0xffffffffn, 0n);
      assert.ok((s.traceId & ((1n << 64n) - 1n)) > 0n);
    }
    const tracer64 = new Tracer({ traceId128BitGeneration: false, flushOnExit: false });
    try {
      assert.ok(tracer64.startSpan("x").traceId < 1n << 64n);
    } finally {
      await tracer64.shutdown();
    }
    for (const s of spans) s.finish();
  }));

test("time: nanoseconds since the epoch, sub-millisecond, durations from a monotonic clock; explicit start and end", () =>
  withTracer(async (tracer, agent) => {
    // Wide margins: the monotonic clock is anchored to the wall clock once, at start.
    const before = BigInt(Date.now() - 1000) * 1_000_000n;
    const spans = Array.from({ length: 20 }, () => {
      const s = tracer.startSpan("quick", { childOf: null });
      s.finish();
      return s;
    });
    const after = BigInt(Date.now() + 1000) * 1_000_000n;
    for (const s of spans) assert.ok(s.startTime >= before && s.startTime <= after, `${s.startTime} within [${before}, ${after}]`);
    assert.ok(spans.some((s) => s.startTime % 1_000_000n !== 0n), "start has sub-millisecond digits");
    assert.ok(spans.every((s) => s.duration! >= 0n && s.duration! < 1_000_000_000n), "back-to-back spans are short");
    assert.ok(spans.some((s) => s.duration! > 0n && s.duration! < 1_000_000n), "sub-millisecond durations");
    const explicit = tracer.startSpan("explicit", { startTime: 1_700_000_000_000_000_123n });
    explicit.finish(1_700_000_000_002_000_123n);
    const ms = tracer.startSpan("ms", { startTime: 1_700_000_000_000 });
    ms.finish(new Date(1_700_000_000_250));
    const backwards = tracer.startSpan("backwards", { startTime: 2_000n });
    backwards.finish(1_000n);
    await tracer.flush();
    const s = byName((await agent.waitForTraces(23)).flat());
    assert.is(s.explicit.start, 1_700_000_000_000_000_123n);
    assert.is(s.explicit.duration, 2_000_000n);
    assert.is(s.ms.start, 1_700_000_000_000_000_000n);
    assert.is(s.ms.duration, 250_000_000n);
    assert.is(s.backwards.duration, 0n, "never negative");
  }));

test("TracerSpan getters and context()", () =>
  withTracer((tracer) => {
    const span = tracer.startSpan("op", { service: "s", resource: "r", type: "t" });
    assert.ok(span instanceof TracerSpan);
    assert.is(span.name, "op");
    assert.is(span.service, "s");
    assert.is(span.resource, "r");
    assert.is(span.type, "t");
    assert.is(span.finished, false);
    assert.is(span.duration, undefined);
    span.setTag("k", "v").setTag("m", 1);
    assert.is(span.getTag("k"), "v");
    assert.is(span.getTag("m"), 1);
    const context = span.context();
    assert.is(context.traceId, span.traceId);
    assert.is(context.spanId, span.spanId);
    assert.is(context.samplingPriority, undefined, "not decided yet");
    span.finish();
    assert.is(span.samplingPriority, 1, "decided when the trace is flushed");
  }));

test.run();
