/** Tracer: dd-trace-js's API — the default tracer and init(), scope(), wrap(), inject/extract formats, span context ids, setOperationName/addTags, DD_TRACE_ENABLED and DD_TRACE_DEBUG. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import defaultTracer, { type SpanContext, tracer as namedTracer, Tracer, TracerProxy, TracerSpan } from "../mod.ts";
import { liveNativeObjects, TestAgent } from "../testing.ts";
import { assertNoLeaks } from "./helpers.ts";
import { byName, runScript, runtimeName, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const proc = (globalThis as unknown as { process: { execPath: string; env: Record<string, string | undefined> } }).process;
const env = proc.env;

test("scope(): active(), activate(), bind() as in dd-trace-js", () =>
  withTracer(async (tracer) => {
    const scope = tracer.scope();
    assert.is(scope.active(), null);
    const span = tracer.startSpan("a");
    const other = tracer.startSpan("b");
    assert.is(scope.activate(span, () => scope.active()), span);
    assert.is(scope.activate(null, () => scope.active()), null);
    const bound = scope.activate(span, () => scope.bind(function (this: unknown, x: number) {
      return [scope.active(), this, x];
    }));
    const self = {};
    assert.equal(bound.call(self, 3), [span, self, 3], "the span active at bind time; this and arguments passed");
    assert.is(scope.activate(other, () => bound(1)[0]), span, "not the caller's");
    assert.is(scope.bind(() => scope.active(), other)(), other);
    assert.is(scope.bind(() => scope.active(), null)(), null);
    const notAFunction = { x: 1 };
    assert.is(scope.bind(notAFunction), notAFunction);
    // Bound across an await.
    await scope.activate(span, async () => {
      await new Promise((r) => setTimeout(r, 1));
      assert.is(scope.active(), span);
    });
    span.finish();
    other.finish();
  }));

test("wrap(name, options, fn): a span per call; sync, promise and callback forms; options as a function; errors recorded", () =>
  withTracer(async (tracer, agent) => {
    const add = tracer.wrap("math.add", { resource: "add", tags: { kind: "sync" } }, function (this: { base: number }, a: number, b: number) {
      assert.is(tracer.activeSpan()?.name, "math.add");
      return this.base + a + b;
    });
    assert.is(add.call({ base: 10 }, 1, 2), 13);
    const later = tracer.wrap("job.async", (n: unknown) => ({ resource: `job ${n}` }), async (n: number) => {
      await new Promise((r) => setTimeout(r, 1));
      if (n < 0) throw new RangeError("negative");
      return n * 2;
    });
    assert.is(await later(4), 8);
    await later(-1).then(() => assert.unreachable(), (e) => assert.instance(e, RangeError));
    const withCallback = tracer.wrap("io.read", (path: string, cb: (err: Error | null, data?: string) => void) => {
      setTimeout(() => (path === "missing" ? cb(new Error("ENOENT")) : cb(null, `data of ${path}`)), 2);
    });
    const results = await tracer.trace("caller", async (caller) => {
      return await Promise.all(["a.txt", "missing"].map((p) =>
        new Promise((resolve) => withCallback(p, (err, data) => resolve([err?.message ?? data, tracer.activeSpan() === caller])))
      ));
    });
    assert.equal(results, [["data of a.txt", true], ["ENOENT", true]], "the callback runs in the caller's context");
    const noOptions = tracer.wrap("plain", () => tracer.activeSpan()?.name);
    assert.is(noOptions(), "plain");
    await tracer.flush();
    const spans = (await agent.waitForTraces(5)).flat();
    const s = byName(spans);
    assert.is(s["math.add"].resource, "add");
    assert.is(s["math.add"].meta.kind, "sync");
    const jobs = spans.filter((x) => x.name === "job.async");
    assert.equal(jobs.map((j) => [j.resource, j.error]).sort(), [["job -1", 1], ["job 4", 0]]);
    const reads = spans.filter((x) => x.name === "io.read");
    assert.is(reads.length, 2);
    for (const r of reads) assert.is(r.parent_id, s.caller.span_id);
    assert.equal(reads.map((r) => r.error).sort(), [0, 1]);
    assert.is(reads.find((r) => r.error)!.meta["error.message"], "ENOENT");
    assert.ok(s.plain);
  }));

test('inject(span, "http_headers" | "text_map" | "log", carrier) and extract(format, carrier); other formats are ignored with a warning', () =>
  withTracer((tracer, _agent, logs) => {
    const span = tracer.startSpan("x", { childOf: { traceId: 77n, spanId: 5n, samplingPriority: 1 } });
    const plain: Record<string, string> = {};
    tracer.inject(span, plain);
    for (const format of ["http_headers", "text_map"]) {
      const h: Record<string, string> = {};
      tracer.inject(span, format, h);
      assert.equal(h, plain, format);
      assert.ok(h["x-datadog-trace-id"], "no longer {}");
      const c = tracer.extract(format, h)!;
      assert.is(c.traceId, 77n);
      assert.is(c.spanId, span.spanId);
    }
    const record: Record<string, unknown> = {};
    tracer.inject(span, "log", record);
    assert.equal(record, { dd: { trace_id: "77", span_id: span.spanId.toString(), service: "svc", env: "test", version: "1.2.3" } });
    const nothing: Record<string, string> = {};
    tracer.inject(span, "binary", nothing);
    assert.equal(nothing, {});
    assert.is(tracer.extract("binary", plain), undefined);
    assert.is(logs.filter((l) => /unsupported format "binary"/.test(l)).length, 2);
    // The active span by default, dd-trace-js style.
    const active: Record<string, string> = {};
    tracer.activate(span, () => tracer.inject(null, "http_headers", active));
    assert.equal(active, plain);
    span.finish();
  }));

test("span.context() and extract() have dd-trace-js's toTraceId(), toSpanId(), toTraceparent()", () =>
  withTracer((tracer) => {
    const require = createRequire(import.meta.url);
    const DdContext = require("dd-trace/packages/dd-trace/src/opentracing/span_context.js");
    const id = require("dd-trace/packages/dd-trace/src/id.js");
    const span = tracer.startSpan("x");
    span.keep();
    const c = span.context();
    const hex = span.traceId.toString(16).padStart(32, "0");
    const theirs = new DdContext({
      traceId: id(hex.slice(16), 16),
      spanId: id(span.spanId.toString(16).padStart(16, "0"), 16),
      sampling: { priority: 2 },
      trace: { tags: { "_dd.p.tid": hex.slice(0, 16) }, started: [], finished: [] },
    });
    assert.is(c.toTraceId(), theirs.toTraceId());
    assert.is(c.toTraceId(true), theirs.toTraceId(true));
    assert.is(c.toSpanId(), theirs.toSpanId());
    assert.is(c.toSpanId(true), theirs.toSpanId(true));
    assert.is(c.toTraceparent(), theirs.toTraceparent());
    assert.is(c.toTraceId(), (span.traceId & ((1n << 64n) - 1n)).toString());
    const h: Record<string, string> = {};
    tracer.inject(span, h);
    const back = tracer.extract(h)!;
    assert.is(back.toTraceId(true), hex);
    assert.is(back.toTraceparent(), h.traceparent);
    // Still plain data: the methods are not enumerable.
    assert.equal(Object.keys(back).includes("toTraceId"), false);
    const rejected = tracer.extract({ "x-datadog-trace-id": "1", "x-datadog-parent-id": "2", "x-datadog-sampling-priority": "-1" })!;
    assert.is(rejected.toTraceparent(), "00-00000000000000000000000000000001-0000000000000002-00");
    span.finish();
  }));

test("setOperationName() and addTags() reach the agent", () =>
  withTracer(async (tracer, agent) => {
    const span = tracer.startSpan("before");
    span.setOperationName("after").addTags({ "a.b": "c", n: 2 });
    span.finish();
    span.setOperationName("too.late");
    await tracer.flush();
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.name, "after");
    assert.is(s.meta["a.b"], "c");
    assert.is(s.metrics.n, 2);
  }));

test("enabled: false (DD_TRACE_ENABLED=false) is a no-op tracer: spans work, nothing is sent or injected, no native object is made", async () => {
  await using agent = await TestAgent.start();
  const before = liveNativeObjects();
  env.DD_TRACE_ENABLED = "false";
  let tracer: Tracer;
  try {
    tracer = new Tracer({ url: agent.url, flushOnExit: false });
  } finally {
    delete env.DD_TRACE_ENABLED;
  }
  assert.is(tracer.enabled, false);
  assert.is(liveNativeObjects(), before, "no exporter");
  const result = tracer.trace("noop", (span) => {
    assert.ok(span instanceof TracerSpan);
    span.setTag("k", 1);
    return tracer.activeSpan() === span;
  });
  assert.ok(result);
  const h: Record<string, string> = {};
  tracer.inject(tracer.startSpan("x"), h);
  assert.equal(h, {});
  assert.is(tracer.extract({ "x-datadog-trace-id": "1", "x-datadog-parent-id": "2" })?.traceId, 1n, "extract still reads");
  await tracer.flush();
  assert.is(tracer.counters.tracesSent, 0);
  await tracer.shutdown();
  assert.is(agent.traces().length, 0);
  const explicit = new Tracer({ url: agent.url, enabled: false, flushOnExit: false });
  assert.is(explicit.enabled, false);
  await explicit.shutdown();
  env.DD_TRACE_ENABLED = "true";
  try {
    const on = new Tracer({ url: agent.url, flushOnExit: false });
    assert.is(on.enabled, true);
    await on.shutdown();
  } finally {
    delete env.DD_TRACE_ENABLED;
  }
});

test("the default export: a TracerProxy, disabled until init(); init() makes the tracer once", () =>
  withTracer(async (_t, agent) => {
    assert.is(defaultTracer, namedTracer);
    assert.instance(defaultTracer, TracerProxy);
    assert.is(defaultTracer.initialized, false);
    assert.is(defaultTracer.enabled, false);
    assert.is(defaultTracer.trace("before.init", () => 5), 5);
    const logs: string[] = [];
    const proxy = new TracerProxy();
    assert.is(proxy.init({ url: agent.url, service: "proxied", logger: (m) => logs.push(m), flushOnExit: false }), proxy);
    proxy.init({ service: "ignored", logger: (m) => logs.push(m) });
    assert.match(logs[0], /init\(\) was called again/);
    assert.is(proxy.service, "proxied");
    assert.ok(proxy.tracer instanceof Tracer);
    proxy.trace("via.proxy", () => {
      const h: Record<string, string> = {};
      proxy.inject(proxy.activeSpan(), "http_headers", h);
      const c: SpanContext | undefined = proxy.extract("http_headers", h);
      assert.is(c?.spanId, proxy.scope().active()?.spanId);
      proxy.wrap("wrapped", () => {})();
    });
    await proxy.flush();
    const s = byName((await agent.waitForTraces(1)).flat());
    assert.is(s["via.proxy"].service, "proxied");
    assert.is(s.wrapped.parent_id, s["via.proxy"].span_id);
    await proxy.shutdown();
  }));

const CHILD = fileURLToPath(new URL("./fixtures/debug-child.ts", import.meta.url));

function runChild(extraEnv: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return runScript(CHILD, [], extraEnv);
}

test(`DD_TRACE_DEBUG: the tracer's debug lines and libdatadog's own logs; DD_TRACE_ENABLED=false sends nothing (${runtimeName})`, async () => {
  await using agent = await TestAgent.start();
  const { code, output } = await runChild({ DD_TRACE_AGENT_URL: agent.url, DD_TRACE_DEBUG: "true" });
  assert.is(code, 0, output);
  assert.match(output, /debug: configuration: \{"enabled":true,"service":"debug-test"/);
  assert.match(output, /debug: trace chunk queued: 1 spans/);
  assert.match(output, /debug: agent answered/);
  if (env.DD_LIBDATADOG_PATH) {
    assert.match(output, /libdatadog's own logs (are on|are not available)/);
  } else {
    // The bundled library has libdatadog's logger: libdatadog's own line for the send is on stderr.
    assert.match(output, /libdatadog's own logs are on \(stderr, from debug\)/);
    assert.match(output, / DEBUG libdd_data_pipeline::trace_exporter: Trace chunks sent successfully to agent chunks=1/);
  }
  assert.is(agent.traces().length, 1);
  const quiet = await runChild({ DD_TRACE_AGENT_URL: agent.url });
  assert.is(quiet.code, 0, quiet.output);
  assert.is(quiet.output.trim(), "done enabled=true", "no debug lines without DD_TRACE_DEBUG");
  const off = await runChild({ DD_TRACE_AGENT_URL: agent.url, DD_TRACE_ENABLED: "false" });
  assert.is(off.code, 0, off.output);
  assert.is(off.output.trim(), "done enabled=false");
  assert.is(agent.traces().length, 2, "nothing from the disabled tracer");
});

test.run();
