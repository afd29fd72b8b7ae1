/** TracerProvider: @opentelemetry/api spans made as Tracer spans, one context with the Tracer, propagation through the Tracer's headers. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { EventEmitter } from "node:events";
import {
  context,
  type ContextManager,
  createContextKey,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  trace,
  type TracerProvider as OtelTracerProvider,
} from "@opentelemetry/api";
import type { Tracer } from "../mod.ts";
import { TracerProvider } from "../opentelemetry.ts";
import type { TestAgent } from "../testing.ts";
import { assertNoLeaks } from "./helpers.ts";
import { byName, sleep, traceIdOf, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

/** Runs `fn` with a tracer and agent (see withTracer) and the bridge registered; unregisters after. */
function withBridge<T>(fn: (tracer: Tracer, agent: TestAgent, provider: TracerProvider) => Promise<T>): Promise<T> {
  return withTracer(async (tracer, agent) => {
    const provider = new TracerProvider(tracer);
    // The OTel API's interfaces, checked by the compiler.
    const _types: [OtelTracerProvider, ContextManager, TextMapPropagator] = [provider, provider.contextManager, provider.propagator];
    provider.register();
    try {
      return await fn(tracer, agent, provider);
    } finally {
      provider.unregister();
    }
  });
}

test("OTel spans and Tracer spans nest in one trace, both ways, across await", () =>
  withBridge(async (tracer, agent) => {
    const otel = trace.getTracer("bridge-scope", "0.1.0");
    await otel.startActiveSpan("GET /users/:id", {
      kind: SpanKind.SERVER,
      attributes: { "http.request.method": "GET", "http.route": "/users/:id", "http.response.status_code": 200 },
    }, async (server) => {
      assert.is(tracer.activeSpan()?.name, "http.server.request", "the OTel span is the Tracer's active span");
      await tracer.trace("db.query", { service: "shop-db", type: "sql", resource: "SELECT 1" }, async () => {
        await sleep(1);
        const active = trace.getActiveSpan();
        assert.ok(active, "the Tracer's span is OTel's active span");
        active!.setAttribute("db.rows", 1);
        const inner = otel.startSpan("cache get", { kind: SpanKind.CLIENT, attributes: { "db.system": "redis", "db.statement": "GET user:42" } });
        await sleep(1);
        inner.end();
      });
      server.end();
    });
    assert.is(trace.getActiveSpan(), undefined);
    await tracer.flush();
    const [chunk] = await agent.waitForTraces(1);
    assert.is(chunk.length, 3);
    const s = byName(chunk);
    const root = s["http.server.request"];
    assert.is(chunk[0], root, "the OTel server span is the local root");
    assert.is(root.resource, "GET /users/:id");
    assert.is(root.type, "web");
    assert.is(root.service, "svc");
    assert.is(root.parent_id, 0n);
    assert.equal(root.meta, {
      language: "javascript",
      "runtime-id": tracer.runtimeId,
      env: "test",
      version: "1.2.3",
      "span.kind": "server",
      "http.method": "GET",
      "http.route": "/users/:id",
      "http.status_code": "200",
      "otel.scope.name": "bridge-scope",
      "otel.library.name": "bridge-scope",
      "otel.scope.version": "0.1.0",
      "otel.library.version": "0.1.0",
      "otel.status_code": "Unset",
      "_dd.p.dm": "-0",
      "_dd.p.tid": root.meta["_dd.p.tid"],
    });
    assert.match(root.meta["_dd.p.tid"], /^[0-9a-f]{16}$/);
    assert.equal(root.metrics, {
      process_id: root.metrics.process_id,
      _sampling_priority_v1: 1,
      "_dd.top_level": 1,
      "_dd.measured": 1,
      "_dd.agent_psr": 1,
    });
    const db = s["db.query"];
    assert.is(db.parent_id, root.span_id, "a Tracer span inside an OTel span is its child");
    assert.is(db.service, "shop-db");
    assert.is(db.metrics["db.rows"], 1, "an attribute set through OTel on a Tracer span");
    const cache = s["redis.query"];
    assert.ok(cache, "the inner OTel span: redis.query");
    assert.is(cache.parent_id, db.span_id, "an OTel span inside a Tracer span is its child");
    assert.is(cache.resource, "GET user:42");
    assert.is(cache.type, "redis");
    assert.is(cache.service, "shop-db", "it inherits its parent's service, as Tracer spans do");
    assert.is(cache.meta["span.kind"], "client");
    assert.is(cache.meta["db.statement"], "GET user:42");
    for (const span of chunk) assert.is(traceIdOf(span), traceIdOf(root));
  }));

test("errors, exceptions, events, links, attributes, updateName, explicit times, root: true", () =>
  withBridge(async (tracer, agent) => {
    const otel = trace.getTracer("errors");
    const linked = tracer.startSpan("linked");
    linked.finish();
    const span = otel.startSpan("work", {
      attributes: { "service.name": "worker", "resource.name": "job 7", attempt: 2, ok: false },
      links: [{ context: { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1 }, attributes: { why: "retry" } }],
      startTime: [1_700_000_000, 500],
    });
    span.addEvent("step", { n: 1 }, [1_700_000_000, 600]);
    const error = new RangeError("out of range");
    span.recordException(error, [1_700_000_000, 700]);
    span.setStatus({ code: SpanStatusCode.ERROR, message: "work failed" });
    span.setAttribute("late", "yes");
    span.updateName("work renamed");
    span.end([1_700_000_001, 0]);
    assert.is(span.isRecording(), false);
    span.setAttribute("after", "end"); // ignored
    span.end(); // a no-op
    const fresh = tracer.trace("outer", () => otel.startSpan("new trace", { root: true }));
    fresh.end();
    await tracer.flush();
    const traces = await agent.waitForTraces(4);
    const s = Object.fromEntries(traces.flat().map((x) => [x.resource, x]));
    const w = s["job 7"];
    assert.is(w.name, "Internal", "an internal span without conventions is named by its kind, as the agent does");
    assert.is(w.service, "worker");
    assert.is(w.resource, "job 7");
    assert.is(w.type, "custom");
    assert.is(w.error, 1);
    assert.is(w.start, 1_700_000_000_000_000_500n);
    assert.is(w.duration, 999_999_500n);
    assert.is(w.meta["error.message"], "out of range");
    assert.is(w.meta["error.type"], "RangeError");
    assert.is(w.meta["error.stack"], error.stack);
    assert.is(w.meta["otel.status_code"], "Error");
    assert.is(w.meta["otel.status_description"], "work failed");
    assert.is(w.meta["_dd.span_events.has_exception"], "true");
    assert.is(w.meta.ok, "false");
    assert.is(w.meta.late, "yes");
    assert.is(w.meta.after, undefined);
    assert.is(w.metrics.attempt, 2);
    const [link] = w.span_links as Record<string, unknown>[];
    assert.is(link.trace_id, 0x8448eb211c80319cn);
    assert.is(link.span_id, 0xb7ad6b7169203331n);
    assert.equal(link.attributes, { why: "retry" });
    const events = w.span_events as Record<string, unknown>[];
    assert.equal(events.map((e) => [e.name, e.time_unix_nano]), [["step", 1_700_000_000_000_000_600n], ["exception", 1_700_000_000_000_000_700n]]);
    assert.is(w.parent_id, 0n);
    const outer = s.outer;
    const n = s["new trace"];
    assert.is(n.parent_id, 0n, "root: true starts a new trace");
    assert.not.equal(traceIdOf(n), traceIdOf(outer));
  }));

test("propagation: the Tracer's headers out, and in (the Datadog details kept)", () =>
  withBridge(async (tracer, agent) => {
    const otel = trace.getTracer("prop");
    const headers: Record<string, string> = {};
    otel.startActiveSpan("client", { kind: SpanKind.CLIENT }, (span) => {
      propagation.inject(context.active(), headers);
      const expected: Record<string, string> = {};
      tracer.inject(tracer.activeSpan(), expected);
      assert.equal(headers, expected, "the same headers as tracer.inject()");
      assert.is(headers["x-datadog-parent-id"], BigInt(`0x${span.spanContext().spanId}`).toString());
      span.end();
    });
    const incoming = {
      "x-datadog-trace-id": "1234",
      "x-datadog-parent-id": "5678",
      "x-datadog-sampling-priority": "2",
      "x-datadog-origin": "synthetics",
      "x-datadog-tags": "_dd.p.dm=-4",
    };
    const extracted = propagation.extract(ROOT_CONTEXT, incoming);
    const remote = trace.getSpanContext(extracted)!;
    assert.is(remote.traceId, "000000000000000000000000000004d2");
    assert.is(remote.spanId, "000000000000162e");
    assert.is(remote.isRemote, true);
    const server = otel.startSpan("handle", { kind: SpanKind.SERVER }, extracted);
    context.with(trace.setSpan(extracted, server), () => {
      const out: Record<string, string> = {};
      propagation.inject(context.active(), out);
      assert.is(out["x-datadog-trace-id"], "1234");
      assert.is(out["x-datadog-sampling-priority"], "2");
      assert.is(out["x-datadog-origin"], "synthetics");
    });
    server.end();
    assert.equal(propagation.extract(ROOT_CONTEXT, {}), ROOT_CONTEXT, "no headers: the context unchanged");
    await tracer.flush();
    const traces = await agent.waitForTraces(2);
    const handle = traces.flat().find((x) => x.meta["otel.scope.name"] === "prop" && x.meta["span.kind"] === "server")!;
    assert.is(handle.trace_id, 1234n);
    assert.is(handle.parent_id, 5678n);
    assert.is(handle.metrics._sampling_priority_v1, 2, "the upstream priority");
    assert.is(handle.meta["_dd.origin"], "synthetics");
    assert.is(handle.meta["_dd.p.dm"], "-4");
  }));

test("the context manager: OTel values survive, ROOT_CONTEXT has no span, bind() for functions and emitters", () =>
  withBridge(async (tracer) => {
    const key = createContextKey("test key");
    const otel = trace.getTracer("ctx");
    await context.with(context.active().setValue(key, "v"), async () => {
      await sleep(1);
      assert.is(context.active().getValue(key), "v");
      await tracer.trace("inside", async (span) => {
        assert.is(context.active().getValue(key), "v", "kept inside a Tracer span");
        assert.is(context.active(), context.active(), "the same context object while nothing changes");
        assert.is(trace.getActiveSpan()?.spanContext().spanId, span.spanId.toString(16).padStart(16, "0"));
        context.with(ROOT_CONTEXT, () => {
          assert.is(tracer.activeSpan(), undefined, "ROOT_CONTEXT: nothing active in the Tracer either");
          assert.is(trace.getActiveSpan(), undefined);
        });
        const bound = context.bind(context.active(), () => tracer.activeSpan());
        const emitter = context.bind(context.active(), new EventEmitter());
        let seen: unknown;
        const listener = () => (seen = tracer.activeSpan());
        emitter.on("ping", listener);
        await tracer.trace("elsewhere", async () => {
          await sleep(1);
          assert.is(bound(), span, "a bound function runs in its context");
          emitter.emit("ping");
          assert.is(seen, span, "a bound emitter's listener runs in its context");
          emitter.off("ping", listener);
          assert.is(emitter.listenerCount("ping"), 0, "off() removes the bound listener");
        });
      });
    });
    const s = otel.startSpan("x");
    s.end();
    assert.throws(() => new TracerProvider(tracer).register(), /already has a global tracer provider/);
    assert.ok(trace.getTracer("still") instanceof Object);
    await tracer.flush();
  }));

test.run();
