/** Exporter options: every config setter reachable, env defaults, OTLP export, and the optional ddffi_* setters. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type ExporterOptions, TraceExporter, TraceExporterError, ValidationError } from "../mod.ts";
import { TestAgent } from "../testing.ts";
import { getBinding } from "../src/binding.ts";
import { resolveOptions } from "../src/options.ts";
import { assertNoLeaks, bundled, closedPort, rejects, span, withExporter } from "./helpers.ts";

test.after.each(assertNoLeaks);

const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;

type Otlp = {
  resourceSpans: {
    resource: { attributes: { key: string; value: Record<string, unknown> }[] };
    scopeSpans: { scope: { name: string; version?: string }; spans: Record<string, unknown>[] }[];
  }[];
};
const attrs = (list: { key: string; value: Record<string, unknown> }[]) =>
  Object.fromEntries(list.map((a) => [a.key, Object.values(a.value)[0]]));

test("every option's setter accepts its value", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send([[span()]]);
    assert.is(agent.spans().length, 1);
  }, {
    service: "svc", env: "test", version: "1.2.3", hostname: "host-1", tracerVersion: "9.9.9",
    language: "nodejs", languageVersion: "20.0.0", languageInterpreter: "v8", processTags: "entrypoint.name:demo",
    testSessionToken: "tok", connectionTimeoutMs: 1000, computeStats: false, clientComputedStats: false, healthMetrics: false,
  }));

// libdatadog is the engine: what the C library refused works (end to end in stats-telemetry.test.ts and
// export-targets.test.ts); here each is accepted and traces still reach the agent, or the log.
for (
  const [option, value] of [
    ["computeStats", true],
    ["healthMetrics", true],
    ["telemetry", { intervalMs: 1000, runtimeId: "abc", debug: true }],
    ["telemetry", true],
    ["telemetry", false],
    ["clientComputedTopLevel", true],
  ] as const
) {
  // These two reach our own ddffi_* setters: a libdatadog release build refuses them (tested below).
  if (!bundled && (option === "healthMetrics" || option === "clientComputedTopLevel")) continue;
  test(`${option}: ${JSON.stringify(value)} is accepted and traces reach the agent`, async () =>
    await withExporter(async (exporter, agent) => {
      await exporter.send([[span({ name: `with.${option}` })]]);
      assert.is(agent.spans()[0].name, `with.${option}`);
    }, { [option]: value, ...(option === "healthMetrics" ? { dogstatsdUrl: `udp://127.0.0.1:${await closedPort()}` } : {}) }));
}

test("outputToLogMaxLineSize: traces go to the log (stdout), not to the agent", () =>
  withExporter(async (exporter, agent) => {
    const r = await exporter.send([[span({ name: "to.log" })]]);
    assert.is(r.body.length, 0, "the log path answers an empty body");
    assert.is(agent.requests.filter((q) => q.path.startsWith("/v0.4/traces")).length, 0);
  }, { outputToLogMaxLineSize: 1000 }));

test("DD_TRACE_STATS_COMPUTATION_ENABLED, DD_INSTRUMENTATION_TELEMETRY_ENABLED, DD_TRACE_HEALTH_METRICS_ENABLED: read as booleans; a bad one names the variable", async () => {
  await using agent = await TestAgent.start();
  const saved = { ...env };
  const names = ["DD_TRACE_STATS_COMPUTATION_ENABLED", "DD_INSTRUMENTATION_TELEMETRY_ENABLED", "DD_TRACE_HEALTH_METRICS_ENABLED", "DD_DOGSTATSD_URL", "DD_TELEMETRY_HEARTBEAT_INTERVAL"];
  try {
    Object.assign(env, { DD_TRACE_STATS_COMPUTATION_ENABLED: "true", DD_INSTRUMENTATION_TELEMETRY_ENABLED: "1", DD_TRACE_HEALTH_METRICS_ENABLED: "TRUE", DD_DOGSTATSD_URL: "udp://127.0.0.1:9", DD_TELEMETRY_HEARTBEAT_INTERVAL: "0.5" });
    const exporter = new TraceExporter({ url: agent.url });
    await exporter.send([[span({ name: "env.flags" })]]);
    await exporter.close();
    assert.is(agent.spans()[0].name, "env.flags");
    for (const name of names.slice(0, 3)) {
      env[name] = "yes";
      await rejects(() => new TraceExporter({ url: agent.url }), ValidationError, new RegExp(`^${name}: expected true, false, 1 or 0`));
      env[name] = "false";
    }
    env.DD_TRACE_HEALTH_METRICS_ENABLED = "true";
    env.DD_DOGSTATSD_URL = "127.0.0.1:8125";
    await rejects(() => new TraceExporter({ url: agent.url }), ValidationError, /^DD_DOGSTATSD_URL: expected udp:\/\/host:port/);
    env.DD_TELEMETRY_HEARTBEAT_INTERVAL = "-1";
    await rejects(() => new TraceExporter({ url: agent.url, telemetry: true }), ValidationError, /^DD_TELEMETRY_HEARTBEAT_INTERVAL/);
  } finally {
    for (const k of names) {
      if (saved[k] === undefined) delete env[k];
      else env[k] = saved[k];
    }
  }
});

test("options reaching ddffi_* setters fail naming the option when the loaded library lacks them (a libdatadog release build); healthMetrics with no dogstatsdUrl is taken, with no DogStatsD client", async () => {
  const b = getBinding();
  const lacking = Object.create(b, {
    symbols: {
      value: {
        ...b.symbols,
        ddffi_trace_exporter_config_set_agentless: undefined,
        ddffi_trace_exporter_config_set_dogstatsd_url: undefined,
        ddffi_trace_exporter_config_set_client_computed_top_level: undefined,
      },
    },
  }) as typeof b;
  const run = (options: ExporterOptions) => {
    const calls = resolveOptions(options, b.native.runtime);
    b.symbols.ddog_trace_exporter_config_new(b.out);
    const config = b.takeOut();
    try {
      for (const call of calls) call(lacking, config);
    } finally {
      b.symbols.ddog_trace_exporter_config_free(config);
    }
  };
  for (
    const [options, option, fn] of [
      [{ agentless: { apiKey: "k" } }, "agentless", "ddffi_trace_exporter_config_set_agentless"],
      [{ healthMetrics: true, dogstatsdUrl: "udp://127.0.0.1:8125" }, "dogstatsdUrl", "ddffi_trace_exporter_config_set_dogstatsd_url"],
      [{ clientComputedTopLevel: true }, "clientComputedTopLevel", "ddffi_trace_exporter_config_set_client_computed_top_level"],
    ] as const
  ) {
    const e = await rejects(() => run(options), TraceExporterError);
    assert.is(e.option, option);
    assert.is(e.function, fn);
    assert.match(e.message, new RegExp(`^options\\.${option}: ${fn}: InvalidArgument: not in the loaded library`));
  }
  run({ healthMetrics: true }); // the default DogStatsD address: set only where the library has the setter
});

test("agentless: an API key is needed; url and otlp cannot be combined with it", async () => {
  const saved = env.DD_API_KEY;
  delete env.DD_API_KEY;
  try {
    await rejects(() => new TraceExporter({ agentless: {} }), ValidationError, /^options\.agentless\.apiKey: an API key is needed/);
    await rejects(() => new TraceExporter({ agentless: { apiKey: "k" }, url: "http://127.0.0.1:8126" }), ValidationError, /options\.url/);
    await rejects(() => new TraceExporter({ agentless: { apiKey: "k" }, otlp: { endpoint: "http://127.0.0.1:4318/v1/traces" } }), ValidationError, /options\.otlp/);
    await rejects(() => new TraceExporter({ agentless: { apiKey: "k\n" } }), ValidationError, /control character/);
  } finally {
    if (saved !== undefined) env.DD_API_KEY = saved;
  }
});

test("OTLP over http/protobuf is accepted (libdatadog's OtlpProtocol)", async () => {
  const exporter = new TraceExporter({ otlp: { endpoint: "http://127.0.0.1:4318/v1/traces", protocol: "http/protobuf" } });
  await exporter.close();
  await rejects(() => new TraceExporter({ otlp: { endpoint: "http://127.0.0.1:4318/v1/traces", protocol: "http/xml" } }), TraceExporterError);
});

test("clientComputedStats: libdatadog's header on v0.4 traces (`true`) and, from libdatadog 14 (the bundled library; not v41), on OTLP/HTTP (`yes`, and the resource attribute `_dd.stats_computed`: libdd-data-pipeline 14 trace_exporter/mod.rs)", async () => {
  await using agent = await TestAgent.start();
  const v04 = new TraceExporter({ url: agent.url, clientComputedStats: true });
  const otlp = new TraceExporter({ clientComputedStats: true, otlp: { endpoint: `${agent.url}/v1/traces` } });
  try {
    await v04.send([[span()]]);
    await otlp.send([[span()]]);
  } finally {
    await v04.close();
    await otlp.close();
  }
  const [trace] = await agent.waitForRequests(1, 5000, "/v0.4/traces");
  assert.is(trace.headers["datadog-client-computed-stats"], "true");
  const [otlpReq] = await agent.waitForRequests(1, 5000, "/v1/traces");
  assert.is(otlpReq.headers["datadog-client-computed-stats"], bundled ? "yes" : undefined);
  assert.is(attrs((agent.otlp()[0] as Otlp).resourceSpans[0].resource.attributes)["_dd.stats_computed"], bundled ? "true" : undefined, "and the resource attribute");
});

test("option types are checked before any native call", async () => {
  await rejects(() => new TraceExporter({ telemetry: { intervalMs: -5 } }), ValidationError, /options\.telemetry\.intervalMs/);
  await rejects(() => new TraceExporter({ otlp: { endpoint: 5 as never } }), ValidationError, /options\.otlp\.endpoint/);
  await rejects(() => new TraceExporter({ otlp: { endpoint: "x", instrumentationScope: {} as never } }), ValidationError, /instrumentationScope\.name/);
  await rejects(() => new TraceExporter(null as never), ValidationError, /^options/);
});

test("OTLP/HTTP JSON export to a local receiver", async () => {
  await using receiver = await TestAgent.start();
  const exporter = new TraceExporter({
    service: "checkout", env: "staging", version: "2.0.0",
    otlp: { endpoint: `${receiver.url}/v1/traces`, protocol: "http/json", instrumentationScope: { name: "my-scope", version: "0.1" } },
  });
  try {
    await exporter.send([[
      span({ name: "http.request", resource: "GET /cart", traceId: (0xabn << 64n) | 0xcdn, spanId: 0x10n, meta: { "span.kind": "server", "http.method": "GET" }, metrics: { "_sampling_priority_v1": 1, count: 3 } }),
      span({ name: "db.query", resource: "SELECT 1", traceId: (0xabn << 64n) | 0xcdn, spanId: 0x11n, parentId: 0x10n, error: 1, meta: { "error.message": "boom" } }),
    ]]);
  } finally {
    await exporter.close();
  }
  const [req] = await receiver.waitForRequests(1, 5000, "/v1/traces");
  assert.is(req.headers["content-type"], "application/json");
  assert.is(receiver.requests.filter((r) => r.path === "/v0.4/traces").length, 0);
  const body = receiver.otlp()[0] as Otlp;
  const rs = body.resourceSpans[0];
  const resource = attrs(rs.resource.attributes);
  assert.is(resource["service.name"], "checkout");
  assert.is(resource["deployment.environment.name"], "staging");
  assert.is(resource["service.version"], "2.0.0");
  assert.is(rs.scopeSpans[0].scope.name, "my-scope");
  const [server, db] = rs.scopeSpans[0].spans;
  assert.is(server.traceId, "00000000000000ab00000000000000cd");
  assert.is(server.spanId, "0000000000000010");
  assert.is(db.parentSpanId, "0000000000000010");
  assert.is(server.name, "GET /cart");
  assert.is(server.kind, 2, "span.kind server");
  assert.is((db.status as { code: number }).code, 2, "error → STATUS_CODE_ERROR");
  assert.is(attrs(server.attributes as never)["http.method"], "GET");
});

test("env defaults: DD_TRACE_AGENT_URL, DD_SERVICE, DD_ENV, DD_VERSION", async () => {
  await using receiver = await TestAgent.start();
  const saved = { ...env };
  Object.assign(env, { DD_TRACE_AGENT_URL: receiver.url, DD_SERVICE: "from-env", DD_ENV: "env-env", DD_VERSION: "7.7.7" });
  try {
    // the agent URL from the environment
    const viaAgent = new TraceExporter();
    await viaAgent.send([[span({ name: "env.url" })]]);
    await viaAgent.close();
    assert.is(receiver.spans()[0].name, "env.url");
    // service, env, version from the environment, seen in the OTLP resource
    const viaOtlp = new TraceExporter({ otlp: { endpoint: `${receiver.url}/v1/traces` } });
    await viaOtlp.send([[span()]]);
    await viaOtlp.close();
    const resource = attrs((receiver.otlp()[0] as Otlp).resourceSpans[0].resource.attributes);
    assert.is(resource["service.name"], "from-env");
    assert.is(resource["deployment.environment.name"], "env-env");
    assert.is(resource["service.version"], "7.7.7");
  } finally {
    for (const k of ["DD_TRACE_AGENT_URL", "DD_SERVICE", "DD_ENV", "DD_VERSION"]) {
      if (saved[k] === undefined) delete env[k];
      else env[k] = saved[k];
    }
  }
});

test("DD_AGENT_HOST and DD_TRACE_AGENT_PORT", async () => {
  await using agent = await TestAgent.start();
  const port = new URL(agent.url).port;
  const saved = { ...env };
  delete env.DD_TRACE_AGENT_URL;
  Object.assign(env, { DD_AGENT_HOST: "127.0.0.1", DD_TRACE_AGENT_PORT: port });
  try {
    const exporter = new TraceExporter();
    await exporter.send([[span({ name: "host.port" })]]);
    await exporter.close();
    assert.is(agent.spans()[0].name, "host.port");
  } finally {
    for (const k of ["DD_AGENT_HOST", "DD_TRACE_AGENT_PORT", "DD_TRACE_AGENT_URL"]) {
      if (saved[k] === undefined) delete env[k];
      else env[k] = saved[k];
    }
  }
});

test.run();
