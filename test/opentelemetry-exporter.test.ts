/** DatadogSpanExporter: OTel SDK spans (BasicTracerProvider + BatchSpanProcessor) mapped as the agent maps OTLP, decoded by the agent. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import {
  DatadogSpanExporter,
  type ExportResult,
  ExportResultCode,
  operationName,
  type ReadableSpanLike,
  resourceName,
  spanType,
} from "../opentelemetry.ts";
import { TestAgent } from "../testing.ts";
import { assertNoLeaks } from "./helpers.ts";
import { byName } from "./tracer-helpers.ts";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

test.after.each(assertNoLeaks);

type Raw = Record<string, unknown>;

/** Runs `fn` with an agent, a DatadogSpanExporter behind a BatchSpanProcessor, and a provider with `resource`; shuts all down. */
async function withProvider<T>(
  fn: (provider: BasicTracerProvider, agent: TestAgent, exporter: DatadogSpanExporter) => Promise<T>,
  resource: Record<string, string> = { "service.name": "shop", "deployment.environment.name": "staging", "service.version": "2.0.0" },
): Promise<T> {
  const agent = await TestAgent.start();
  const exporter = new DatadogSpanExporter({ url: agent.url, service: "shop" });
  const typed: SpanExporter = exporter; // the SDK's interface, checked by the compiler
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(resource),
    spanProcessors: [new BatchSpanProcessor(typed, { scheduledDelayMillis: 60_000 })],
  });
  try {
    return await fn(provider, agent, exporter);
  } finally {
    await provider.shutdown();
    await agent.close();
  }
}

/** The low 64 bits, the high 64 bits (hex) and the full hex of an OTel trace id. */
function ids(traceId: string) {
  return { low: BigInt(`0x${traceId.slice(16)}`), high: traceId.slice(0, 16), full: traceId };
}

/** Meta every span of the default resource gets: the resource's attributes, `env`, `version`, the scope and the ids. */
function common(traceId: string, resource: Record<string, string> = {}): Record<string, string> {
  return {
    "deployment.environment.name": "staging",
    "service.version": "2.0.0",
    env: "staging",
    version: "2.0.0",
    "otel.scope.name": "test-scope",
    "otel.library.name": "test-scope",
    "otel.scope.version": "1.2.3",
    "otel.library.version": "1.2.3",
    "otel.trace_id": traceId,
    "_dd.p.tid": traceId.slice(0, 16),
    ...resource,
  };
}

test("a server span, its database and HTTP client children, an error span with an exception, links and events", () =>
  withProvider(async (provider, agent) => {
    const tracer = provider.getTracer("test-scope", "1.2.3");
    const start = Date.now();
    const server = tracer.startSpan("GET /users/:id", {
      kind: SpanKind.SERVER,
      startTime: start,
      attributes: {
        "http.request.method": "GET",
        "http.route": "/users/:id",
        "url.path": "/users/42",
        "http.response.status_code": 200,
        "user_agent.original": "curl/8",
      },
    });
    const inServer = trace.setSpan(ROOT_CONTEXT, server);
    const db = tracer.startSpan("SELECT users", {
      kind: SpanKind.CLIENT,
      attributes: {
        "db.system": "postgresql",
        "db.statement": "SELECT * FROM users WHERE id = $1",
        "db.namespace": "users_db",
        "db.rows": 3,
        "db.cached": false,
        "db.params": ["42"],
      },
    }, inServer);
    db.end();
    const http = tracer.startSpan("POST", {
      kind: SpanKind.CLIENT,
      attributes: { "http.request.method": "POST", "http.route": "/charge", "url.full": "http://pay/charge", "server.address": "pay" },
    }, inServer);
    http.end();
    const failing = tracer.startSpan("work", {
      attributes: { "operation.name": "Custom.Op", "resource.name": "custom resource", "span.type": "worker", "sampling.priority": 2 },
      links: [{
        context: { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: TraceFlags.SAMPLED },
        attributes: { "link.reason": "retry", attempt: 2 },
      }],
    }, inServer);
    failing.addEvent("cache.miss", { key: "user:42", size: 12, ratio: 0.5, hot: true, tags: ["a", "b"] }, [1_700_000_000, 5]);
    const error = new TypeError("boom");
    failing.recordException(error, [1_700_000_001, 0]);
    failing.setStatus({ code: SpanStatusCode.ERROR, message: "work failed" });
    failing.end();
    server.end(start + 25);
    await provider.forceFlush();

    const [chunk] = await agent.waitForTraces(1);
    assert.is(chunk.length, 4, "one trace chunk with the four spans");
    const traceId = server.spanContext().traceId;
    const { low, full } = ids(traceId);
    const s = byName(chunk);

    const root = s["http.server.request"];
    assert.ok(root, "server span: http.server.request");
    assert.is(root.service, "shop");
    assert.is(root.resource, "GET /users/:id");
    assert.is(root.type, "web");
    assert.is(root.trace_id, low);
    assert.is(root.span_id, BigInt(`0x${server.spanContext().spanId}`));
    assert.is(root.parent_id, 0n);
    assert.is(root.error, 0);
    assert.is(root.start, BigInt(start) * 1_000_000n);
    assert.is(root.duration, 25_000_000n);
    assert.equal(root.meta, {
      ...common(full),
      "span.kind": "server",
      "http.method": "GET",
      "http.route": "/users/:id",
      "url.path": "/users/42",
      "http.useragent": "curl/8",
      "otel.status_code": "Unset",
    });
    assert.equal(root.metrics, { "http.status_code": 200, "_dd.top_level": 1, _sampling_priority_v1: 1 });

    const q = s["postgresql.query"];
    assert.ok(q, "database span: <db.system>.query");
    assert.is(q.resource, "SELECT * FROM users WHERE id = $1");
    assert.is(q.type, "sql");
    assert.is(q.parent_id, root.span_id);
    assert.is(q.trace_id, low);
    assert.equal(q.meta, {
      ...common(full),
      "span.kind": "client",
      "db.system": "postgresql",
      "db.statement": "SELECT * FROM users WHERE id = $1",
      "db.namespace": "users_db",
      "db.name": "users_db",
      "db.cached": "false",
      "db.params": '["42"]',
      "otel.status_code": "Unset",
    });
    assert.equal(q.metrics, { "db.rows": 3, "_dd.measured": 1, _sampling_priority_v1: 1 });

    const c = s["http.client.request"];
    assert.ok(c, "HTTP client span");
    assert.is(c.resource, "POST", "a client span's resource has no route");
    assert.is(c.type, "http");
    assert.equal(c.meta, {
      ...common(full),
      "span.kind": "client",
      "http.method": "POST",
      "http.route": "/charge",
      "http.url": "http://pay/charge",
      "http.server_name": "pay",
      "otel.status_code": "Unset",
    });

    const w = s["custom.op"];
    assert.ok(w, "operation.name sets the name (normalized as the agent does)");
    assert.is(w.resource, "custom resource");
    assert.is(w.type, "worker");
    assert.is(w.error, 1);
    assert.is(w.parent_id, root.span_id);
    assert.equal(w.meta, {
      ...common(full),
      "span.kind": "internal",
      "otel.status_code": "Error",
      "otel.status_description": "work failed",
      "error.message": "boom",
      "error.type": "TypeError",
      "error.stack": error.stack!,
      "_dd.span_events.has_exception": "true",
    });
    assert.equal(w.metrics, { _sampling_priority_v1: 2 }, "sampling.priority sets the priority");
    const [link] = w.span_links as Raw[];
    assert.equal(link, {
      trace_id: 0x8448eb211c80319cn,
      trace_id_high: 0x0af7651916cd43ddn,
      span_id: 0xb7ad6b7169203331n,
      attributes: { "link.reason": "retry", attempt: "2" },
      flags: 0x80000001,
    });
    const [miss, exception] = w.span_events as Raw[];
    assert.equal(miss, {
      name: "cache.miss",
      time_unix_nano: 1_700_000_000_000_000_005n,
      attributes: {
        key: { type: 0, string_value: "user:42" },
        size: { type: 2, int_value: 12 },
        ratio: { type: 3, double_value: 0.5 },
        hot: { type: 1, bool_value: true },
        tags: { type: 4, array_value: { values: [{ type: 0, string_value: "a" }, { type: 0, string_value: "b" }] } },
      },
    });
    assert.equal(exception, {
      name: "exception",
      time_unix_nano: 1_700_000_001_000_000_000n,
      attributes: {
        "exception.type": { type: 0, string_value: "TypeError" },
        "exception.message": { type: 0, string_value: "boom" },
        "exception.stacktrace": { type: 0, string_value: error.stack! },
      },
    });
    assert.is(context.active(), ROOT_CONTEXT, "no context manager was needed");
  }));

/** A plain ended span, as the SDK's ReadableSpan has it. */
function readable(over: Partial<ReadableSpanLike> & { traceId?: string; spanId?: string; flags?: number }): ReadableSpanLike {
  const { traceId = "0000000000000000000000000000abcd", spanId = "00000000000000e1", flags = TraceFlags.SAMPLED, ...rest } = over;
  return {
    name: "op",
    kind: SpanKind.INTERNAL,
    spanContext: () => ({ traceId, spanId, traceFlags: flags }),
    startTime: [1_700_000_000, 0],
    endTime: [1_700_000_000, 1_000],
    status: { code: SpanStatusCode.UNSET },
    attributes: {},
    links: [],
    events: [],
    resource: { attributes: {} },
    ...rest,
  };
}

function exportNow(exporter: DatadogSpanExporter, spans: ReadableSpanLike[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

test("direct export: unsampled spans, fallbacks of every rule, invalid ids reported, the rest sent; shutdown", async () => {
  const agent = await TestAgent.start();
  const exporter = new DatadogSpanExporter({ url: agent.url });
  try {
    const result = await exportNow(exporter, [
      readable({ name: "unsampled", flags: TraceFlags.NONE, spanId: "00000000000000e1" }),
      readable({
        name: "odd method", kind: SpanKind.SERVER, spanId: "00000000000000e2", parentSpanContext: { traceId: "0000000000000000000000000000abcd", spanId: "00000000000000e1", traceFlags: 0 },
        attributes: { "http.request.method": "_OTHER", "http.response.status_code": 503 },
        status: { code: SpanStatusCode.ERROR },
        resource: { attributes: { "deployment.environment": "Prod Env" } },
      }),
      readable({ name: "publish", kind: SpanKind.PRODUCER, spanId: "00000000000000e3", attributes: { "messaging.system": "Kafka", "messaging.operation": "publish", "messaging.destination.name": "orders" } }),
      readable({ name: "s3", kind: SpanKind.CLIENT, spanId: "00000000000000e4", attributes: { "rpc.system": "aws-api", "rpc.service": "S3", "rpc.method": "GetObject" } }),
      readable({ name: "plain", kind: SpanKind.CONSUMER, spanId: "00000000000000e5", attributes: { "service.name": "Worker Pool" } }),
      readable({ name: "bad", traceId: "00000000000000000000000000000000" }),
    ]);
    assert.is(result.code, ExportResultCode.FAILED);
    assert.match(String(result.error), /1 span\(s\) with an invalid trace id or span id/);
    const [chunk] = await agent.waitForTraces(1);
    const s = Object.fromEntries(chunk.map((span) => [span.resource, span]));
    assert.is(chunk.length, 5, "the valid spans were sent, as one chunk");
    assert.is(s.unsampled.name, "Internal");
    assert.is(s.unsampled.service, "otlpresourcenoservicename");
    assert.is(s.unsampled.type, "custom");
    assert.equal(s.unsampled.metrics, { "_dd.top_level": 1, _sampling_priority_v1: 0 }, "not sampled: priority 0");
    assert.equal(s.unsampled.meta, { "span.kind": "internal", "otel.status_code": "Unset", "otel.trace_id": "0000000000000000000000000000abcd" });
    const odd = s.HTTP;
    assert.ok(odd, "_OTHER becomes HTTP");
    assert.is(odd.name, "http.server.request");
    assert.is(odd.parent_id, 0xe1n);
    assert.is(odd.error, 1);
    assert.equal(odd.meta, {
      "span.kind": "server",
      "http.method": "_OTHER",
      "otel.status_code": "Error",
      "error.message": "503 Service Unavailable",
      env: "prod_env",
      "deployment.environment": "Prod Env",
      "otel.trace_id": "0000000000000000000000000000abcd",
    });
    assert.equal(odd.metrics, { "http.status_code": 503, "_dd.top_level": 1, _sampling_priority_v1: 1 });
    const pub = s["publish orders"];
    assert.is(pub.name, "kafka.publish");
    assert.is(pub.type, "custom");
    assert.equal(pub.metrics, { "_dd.top_level": 1, "_dd.measured": 1, _sampling_priority_v1: 1 });
    const aws = s["GetObject S3"];
    assert.is(aws.name, "aws.s3.request");
    assert.is(aws.type, "http");
    const plain = s.plain;
    assert.is(plain.name, "Consumer");
    assert.is(plain.service, "worker_pool", "the span's service.name wins, normalized as the agent does");
    assert.equal(Object.keys(plain.meta).sort(), ["otel.status_code", "otel.trace_id", "span.kind"]);

    await exporter.forceFlush();
    await exporter.shutdown();
    const late = await exportNow(exporter, [readable({})]);
    assert.is(late.code, ExportResultCode.FAILED);
    assert.is(late.error?.name, "ClosedError");
  } finally {
    await exporter.shutdown();
    await agent.close();
  }
});

test("a span the trace exporter rejects is left out, the rest of the batch is sent, the result names it", async () => {
  const agent = await TestAgent.start();
  const exporter = new DatadogSpanExporter({ url: agent.url });
  try {
    const result = await exportNow(exporter, [
      readable({ name: "good.1", spanId: "00000000000000f1" }),
      readable({ name: "bad", spanId: "00000000000000f2", startTime: [-5, 0] }),
      readable({ name: "good.2", spanId: "00000000000000f3", traceId: "0000000000000000000000000000beef" }),
    ]);
    assert.is(result.code, ExportResultCode.FAILED);
    assert.match(String(result.error?.message), /1 span\(s\) were not exported: traces\[0\]\[1\]\.start/);
    const chunks = await agent.waitForTraces(2);
    assert.equal(chunks.map((c) => c.map((x) => x.resource)), [["good.1"], ["good.2"]]);
  } finally {
    await exporter.shutdown();
    await agent.close();
  }
});

test("the rules, case by case (the cases of the agent's otel_util_test.go, and more)", () => {
  const S = SpanKind.SERVER, C = SpanKind.CLIENT, I = SpanKind.INTERNAL, P = SpanKind.PRODUCER, K = SpanKind.CONSUMER;
  // [kind, span attributes, resource attributes, operation name, resource, type]
  const cases: [number, Record<string, string>, Record<string, string>, string, string, string][] = [
    [I, {}, {}, "Internal", "span_name", "custom"],
    [I, { "resource.name": "res" }, {}, "Internal", "res", "custom"],
    [I, { "http.request.method": "GET" }, {}, "Internal", "GET", "custom"],
    [I, { "http.method": "GET", "http.route": "/" }, {}, "Internal", "GET", "custom"],
    [S, { "http.method": "GET", "http.route": "/" }, {}, "http.server.request", "GET /", "web"],
    [C, { "http.request.method": "GET", "http.route": "/x" }, {}, "http.client.request", "GET", "http"],
    [I, { "graphql.operation.name": "myQuery" }, {}, "Internal", "span_name", "custom"],
    [I, { "graphql.operation.type": "query", "graphql.operation.name": "myQuery" }, {}, "graphql.server.request", "query myQuery", "custom"],
    [C, { "span.name": "span_name" }, { "db.system": "mysql", "db.statement": "SELECT * FROM table WHERE id = 12345" }, "mysql.query", "SELECT * FROM table WHERE id = 12345", "sql"],
    [C, {}, { "db.system": "redis", "db.query.text": "SET key value" }, "redis.query", "SET key value", "redis"],
    [C, { "db.system": "memcached" }, { "db.system": "redis" }, "memcached.query", "span_name", "memcached"],
    [C, { "db.system": "couchdb" }, {}, "couchdb.query", "span_name", "db"],
    [C, { "db.system": "opensearch" }, {}, "opensearch.query", "span_name", "opensearch"],
    [I, { "resource.name": "res_span" }, { "resource.name": "res_resource" }, "Internal", "res_span", "custom"],
    [I, { "http.request.method": "GET" }, { "http.request.method": "POST" }, "Internal", "GET", "custom"],
    [K, { "messaging.operation": "process", "messaging.system": "rabbitmq" }, { "messaging.operation": "receive" }, "rabbitmq.process", "process", "custom"],
    [P, { "messaging.system": "kafka", "messaging.operation": "publish", "messaging.destination": "t" }, {}, "kafka.publish", "publish t", "custom"],
    [I, { "rpc.method": "span_method", "rpc.service": "span_service" }, { "rpc.method": "resource_method", "rpc.service": "resource_service" }, "Internal", "span_method span_service", "custom"],
    [S, { "rpc.system": "grpc", "rpc.method": "Get", "rpc.service": "Users" }, {}, "grpc.server.request", "Get Users", "web"],
    [C, { "rpc.system": "grpc" }, {}, "grpc.client.request", "span_name", "http"],
    [C, { "rpc.system": "aws-api" }, {}, "aws.client.request", "span_name", "http"],
    [C, { "faas.invoked_provider": "aws", "faas.invoked_name": "fn" }, {}, "aws.fn.invoke", "span_name", "http"],
    [S, { "faas.trigger": "http" }, {}, "http.invoke", "span_name", "web"],
    [S, { "network.protocol.name": "amqp" }, {}, "amqp.server.request", "span_name", "web"],
    [C, {}, {}, "client.request", "span_name", "http"],
    [S, {}, {}, "server.request", "span_name", "web"],
    [P, {}, {}, "Producer", "span_name", "custom"],
    [I, { "operation.name": "My Op", "span.type": "span-type" }, { "span.type": "resource-type" }, "my_op", "span_name", "span-type"],
    [I, {}, { "span.type": "resource-type" }, "Internal", "span_name", "resource-type"],
  ];
  for (const [kind, sattr, rattr, name, resource, type] of cases) {
    const what = JSON.stringify([kind, sattr, rattr]);
    assert.is(operationName(kind, sattr, rattr), name, `name of ${what}`);
    assert.is(resourceName("span_name", kind, sattr, rattr), resource, `resource of ${what}`);
    assert.is(spanType(kind, sattr, rattr), type, `type of ${what}`);
  }
  assert.is(resourceName("x", I, { "resource.name": "a".repeat(5001) }, {}).length, 5000, "resources are cut at 5000");
});

test("the main entry never loads @opentelemetry/*: its import graph has no OTel module", () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const seen = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    for (const [, spec] of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["']([^"']+)["']/g)) {
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec));
      else bare.add(spec);
    }
    for (const [, spec] of text.matchAll(/import\(\s*["']([^"']+)["']\s*\)/g)) {
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec));
      else bare.add(spec);
    }
  };
  visit(join(root, "mod.ts"));
  assert.ok(seen.size > 10, `walked ${seen.size} modules`);
  assert.equal([...bare].filter((s) => s.includes("opentelemetry")), []);
  assert.equal([...seen].filter((f) => f.includes("opentelemetry")), []);
  seen.clear();
  bare.clear();
  visit(join(root, "opentelemetry.ts"));
  assert.ok(bare.has("@opentelemetry/api"), "while the OTel entry does import the API");
});

test.run();
