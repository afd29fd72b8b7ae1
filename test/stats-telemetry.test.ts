/**
 * libdatadog's client-side stats and telemetry, end to end through Datadog's test agent
 * (ddapm-test-agent, test/ddapm.ts): its `/info` lists `/v0.6/stats` and `client_drop_p0s`, so
 * libdatadog's stats worker starts (libdd-data-pipeline trace_exporter/stats.rs), P0 chunks without an
 * error are dropped client-side, and the buckets reach `/v0.6/stats` when the exporter closes. Telemetry
 * reaches `/telemetry/proxy/api/v2/apmtelemetry`: `app-started`, `app-heartbeat` at each interval and
 * `app-closing` from the library's lifecycle worker (libdd-telemetry, `Full` flavor), and libdatadog's
 * exporter metrics (`trace_api.requests`, …) from its own `MetricsLogs` worker.
 *
 * libdatadog reads the agent's `/info` in the background and keeps it process-wide; the tests wait until
 * stats are on by sending P0 probes until one is dropped (the behaviour itself, not a delay).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Span, TraceExporter, Tracer } from "../mod.ts";
import { VERSION } from "../src/version.ts";
import { DdapmAgent, type StatsGroup, type TelemetryEvent } from "./ddapm.ts";
import { createServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { assertNoLeaks, assertNoLeaksSoon, bundled, bundledOnly, span } from "./helpers.ts";
import { runScript, runtimeName, sleep } from "./tracer-helpers.ts";

let agent: DdapmAgent;
let startError: unknown;
test.before(async () => {
  try {
    agent = await DdapmAgent.start();
  } catch (e) {
    startError = e;
  }
});
test.after(async () => {
  await agent?.close();
});
test.after.each(assertNoLeaks);

let sessions = 0;
async function session(): Promise<string> {
  if (startError) throw startError;
  const token = `ddffi-stats-${runtimeName}-${Date.now()}-${++sessions}`;
  await agent.startSession(token);
  return token;
}

/** The resources of the spans the agent (`on`) received in the session. */
async function resources(token: string, on: DdapmAgent = agent): Promise<string[]> {
  return (await on.traces(token)).flat().map((s) => s.resource as string);
}

/**
 * Sends P0 probes (`send(resource)` sends one and resolves when the agent answered) until one is not
 * received: libdatadog has read `/info` and computes stats, dropping P0 chunks. Bounded at 30 s.
 */
async function untilStatsOn(token: string, send: (resource: string) => Promise<unknown>): Promise<void> {
  const until = Date.now() + 30_000;
  for (let i = 0; Date.now() < until; i++) {
    const resource = `probe ${i}`;
    await send(resource);
    if (!(await resources(token)).includes(resource)) return;
    await sleep(100);
  }
  throw new Error("libdatadog never turned client stats on (is /v0.6/stats in the agent's /info?)");
}

/** Every stats group of the session, by resource (a resource counted in several buckets is summed). */
async function statsByResource(token: string, on: DdapmAgent = agent): Promise<Record<string, StatsGroup>> {
  const out: Record<string, StatsGroup> = {};
  for (const payload of await on.stats(token)) {
    for (const bucket of payload.Stats ?? []) {
      for (const g of bucket.Stats ?? []) {
        const had = out[g.Resource];
        out[g.Resource] = had ? { ...g, Hits: had.Hits + g.Hits, TopLevelHits: had.TopLevelHits + g.TopLevelHits, Errors: had.Errors + g.Errors } : g;
      }
    }
  }
  return out;
}

const P0 = { _sampling_priority_v1: 0 };
const P1 = { _sampling_priority_v1: 1 };

test("computeStats: stats reach /v0.6/stats at close; P0 chunks are dropped unless one of their spans has an error", async () => {
  const token = await session();
  const exporter = new TraceExporter({ url: agent.url, testSessionToken: token, computeStats: true, service: "stats-svc", env: "stats-env", version: "1.0" });
  const chunk = (id: bigint, resource: string, metrics: Record<string, number>, over: Partial<Span> = {}): Span[] => [
    span({ service: "stats-svc", traceId: id, spanId: id, resource, metrics, ...over }),
    // The same service: not top level; measured, so counted all the same.
    span({ service: "stats-svc", name: "db.query", traceId: id, spanId: id + 1n, parentId: id, resource: `${resource} query`, metrics: { "_dd.measured": 1 } }),
    // Neither top level nor measured: not in the stats.
    span({ service: "stats-svc", name: "internal.work", traceId: id, spanId: id + 2n, parentId: id, resource: `${resource} internal` }),
  ];
  try {
    let probe = 0x100n;
    await untilStatsOn(token, (resource) => exporter.send([[span({ service: "stats-svc", traceId: ++probe, spanId: probe, resource, metrics: P0 })]]));
    await exporter.send([
      chunk(0x10n, "GET /kept", P1),
      chunk(0x20n, "GET /dropped", P0),
      chunk(0x30n, "GET /error", P0, { error: 1, meta: { "error.message": "boom" } }),
    ]);
  } finally {
    await exporter.close();
  }
  const received = await resources(token);
  assert.ok(received.includes("GET /kept"), "a P1 chunk is sent");
  assert.ok(received.includes("GET /error"), "a P0 chunk with an error is sent");
  assert.not.ok(received.includes("GET /dropped"), "a P0 chunk without an error is dropped");
  assert.not.ok(received.includes("GET /dropped query"));

  const traceRequests = (await agent.requests(token)).filter((r) => r.url.includes("/v0.4/traces"));
  const last = traceRequests[traceRequests.length - 1];
  const header = (name: string) => Object.entries(last.headers).find(([k]) => k.toLowerCase() === name)?.[1];
  assert.ok(header("datadog-client-computed-stats"), "Datadog-Client-Computed-Stats");
  assert.ok(header("datadog-client-computed-top-level"), "Datadog-Client-Computed-Top-Level");

  const stats = await statsByResource(token);
  for (const r of ["GET /kept", "GET /dropped", "GET /error"]) {
    assert.ok(stats[r], `stats for ${r} (dropped or not): ${Object.keys(stats)}`);
    assert.is(stats[r].Hits, 1, r);
    assert.is(stats[r].TopLevelHits, 1, r);
    assert.is(stats[r].Service, "stats-svc");
    assert.is(stats[r].Name, "web.request");
  }
  assert.is(stats["GET /error"].Errors, 1);
  assert.is(stats["GET /kept"].Errors, 0);
  assert.is(stats["GET /kept query"]?.Hits, 1, "a measured span is counted");
  assert.is(stats["GET /kept query"]?.TopLevelHits, 0);
  assert.is(stats["GET /kept internal"], undefined, "a span neither top level nor measured is not");
  const payload = (await agent.stats(token))[0];
  assert.is(payload.Env, "stats-env");
  assert.is(payload.Version, "1.0");
});

const FILTERS_CHILD = fileURLToPath(new URL("./fixtures/filters-child.ts", import.meta.url));

test("computeStats: the traces the agent's /info filters out (ignore_resources, filter_tags_regex on the root span) are neither sent nor counted; a pattern with a Unicode class is skipped by regex-lite", async () => {
  // An agent of its own, and the exporter in a child process of this runtime (test/fixtures/filters-child.ts):
  // libdatadog keeps the first /info it reads for the whole process.
  const filtering = await DdapmAgent.start({
    extraInfo: { ignore_resources: ["^GET /health", "^\\p{Lu}nicode$"], filter_tags_regex: { reject: ["http.url:^/internal/"] } },
  });
  const token = `ddffi-filters-${runtimeName}-${Date.now()}`;
  try {
    await filtering.startSession(token);
    const { code, output } = await runScript(FILTERS_CHILD, [filtering.url, token]);
    assert.is(code, 0, output);

    const received = await resources(token, filtering);
    const stats = await statsByResource(token, filtering);
    assert.ok(received.includes("GET /users"), "a trace that no filter matches is sent");
    assert.is(stats["GET /users"]?.Hits, 1, "and counted");
    for (const r of ["GET /health/live", "GET /orders"]) {
      assert.not.ok(received.includes(r), `${r} is filtered out`);
      assert.is(stats[r], undefined, `${r} is not counted`);
    }
    // The bundled library builds libdatadog with regex-lite (lib/Cargo.toml), which has no Unicode
    // classes: that pattern does not compile and libdatadog skips it. A libdatadog release build has
    // the full regex crate, where it matches.
    assert.is(received.includes("Unicode"), bundled, "the \\p{Lu} pattern: skipped on the bundled library only");
  } finally {
    await filtering.close();
  }
});

test("Tracer with computeStats: its top-level and measured marks reach the stats, and shutdown() gets them out", async () => {
  const token = await session();
  const tracer = new Tracer({
    url: agent.url, testSessionToken: token, computeStats: true, service: "tracer-stats", telemetry: false,
    samplingRules: [{ resource: "probe*", sample_rate: 0 }, { sample_rate: 1 }],
  });
  try {
    await untilStatsOn(token, async (resource) => {
      tracer.trace("probe", { resource }, () => {});
      await tracer.flush();
    });
    tracer.trace("web.request", { resource: "GET /tracer" }, () => {
      // Another service: top level (the Tracer marks _dd.top_level).
      tracer.trace("redis.command", { service: "tracer-stats-redis", resource: "GET key" }, () => {});
      // A client span of the same service: measured (_dd.measured).
      tracer.trace("http.request", { resource: "GET /downstream", tags: { "span.kind": "client" } }, () => {});
    });
  } finally {
    await tracer.shutdown();
  }
  const spans = (await agent.traces(token)).flat();
  const redis = spans.find((s) => s.resource === "GET key")!;
  assert.is(redis.metrics?.["_dd.top_level"], 1);
  assert.is(spans.find((s) => s.resource === "GET /downstream")!.metrics?.["_dd.measured"], 1);
  const stats = await statsByResource(token);
  assert.is(stats["GET /tracer"]?.TopLevelHits, 1, `stats: ${Object.keys(stats)}`);
  assert.is(stats["GET key"]?.TopLevelHits, 1);
  assert.is(stats["GET key"]?.Service, "tracer-stats-redis");
  assert.is(stats["GET /downstream"]?.Hits, 1, "measured");
  assert.is(stats["GET /downstream"]?.TopLevelHits, 0);
});

bundledOnly("Tracer with computeStats and partial flushes: a span whose parent went in another chunk is not top level (the Tracer's _dd.top_level is what counts)", "the Tracer's top level is taken through this package's ddffi_trace_exporter_config_set_client_computed_top_level; libdatadog's FFI has no setter for it", () =>
  test("Tracer with computeStats and partial flushes: a span whose parent went in another chunk is not top level (the Tracer's _dd.top_level is what counts)", async () => {
    const token = await session();
    const tracer = new Tracer({
      url: agent.url, testSessionToken: token, computeStats: true, service: "partial-stats", telemetry: false, partialFlushMinSpans: 2,
      samplingRules: [{ resource: "probe*", sample_rate: 0 }, { sample_rate: 1 }],
    });
    try {
      await untilStatsOn(token, async (resource) => {
        tracer.trace("probe", { resource }, () => {});
        await tracer.flush();
      });
      await tracer.trace("web.request", { resource: "GET /partial" }, async () => {
        for (const step of ["step a", "step b", "step c"]) tracer.trace("step", { resource: step }, () => {});
        // The first two steps went in a chunk of their own, without their parent.
        await tracer.flush();
      });
    } finally {
      await tracer.shutdown();
    }
    const spans = (await agent.traces(token)).flat();
    assert.equal(spans.filter((s) => s.name === "step").map((s) => s.resource).sort(), ["step a", "step b", "step c"]);
    const stats = await statsByResource(token);
    assert.is(stats["GET /partial"]?.TopLevelHits, 1, `stats: ${Object.keys(stats)}`);
    for (const step of ["step a", "step b", "step c"]) assert.is(stats[step], undefined, `${step}: neither top level nor measured`);
  }));

test("tracer.shutdown({ timeoutMs }) bounds libdatadog's last flushes: it resolves while libdatadog's shutdown still waits on a hung agent", async () => {
  // An agent that reads every request and never answers.
  const sockets = new Set<Socket>();
  let received = "";
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("data", (d) => (received += d));
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const tracer = new Tracer({ url, computeStats: true, telemetry: { intervalMs: 3_600_000 }, connectionTimeoutMs: 200, logger: () => {} });
    tracer.trace("web.request", () => {});
    // A send that fails after libdatadog's retries leaves telemetry metrics for its last flush, which hangs.
    await tracer.flush();
    await tracer.shutdown({ timeoutMs: 300 });
    // Without the bound, shutdown() would resolve only once libdatadog's shutdown gave up and closed its connections.
    assert.ok(sockets.size > 0, "libdatadog's shutdown still holds a connection to the hung agent");
    assert.match(received, /POST \/v0\.4\/traces/);
  } finally {
    // Answered by a closed connection: libdatadog's shutdown ends, and the exporter is freed.
    for (const socket of sockets) socket.destroy();
    await new Promise((r) => server.close(r));
  }
  await assertNoLeaksSoon();
});

/** Polls the session's telemetry (up to 20 s) until `done` holds for this runtime id's events. */
async function telemetryUntil(token: string, runtimeId: string, done: (events: TelemetryEvent[]) => boolean): Promise<TelemetryEvent[]> {
  const until = Date.now() + 20_000;
  for (;;) {
    const events = (await agent.telemetry(token)).filter((e) => e.runtime_id === runtimeId);
    if (done(events)) return events;
    if (Date.now() > until) throw new Error(`telemetry: ${JSON.stringify(events)}`);
    await sleep(100);
  }
}

type Series = { metric: string; points: [number, number][]; tags: string[] };

/** Every payload of the events, `message-batch` ones unpacked. */
const payloads = (events: TelemetryEvent[]) => events.flatMap((e) => e.request_type === "message-batch" ? (e.payload as TelemetryEvent[]) : [e]);
const kinds = (events: TelemetryEvent[]) => payloads(events).map((p) => p.request_type);
const count = (events: TelemetryEvent[], kind: string) => kinds(events).filter((k) => k === kind).length;

/** The metric series of the events' `generate-metrics` payloads. */
function series(events: TelemetryEvent[]): Series[] {
  return payloads(events).filter((p) => p.request_type === "generate-metrics").flatMap((p) => (p.payload as { series: Series[] }).series);
}

/** How many trace requests libdatadog counted (`trace_api.requests`). */
const requestsCounted = (events: TelemetryEvent[]) =>
  series(events).filter((s) => s.metric === "trace_api.requests").reduce((n, s) => n + s.points.reduce((m, p) => m + p[1], 0), 0);

bundledOnly("telemetry: app-started, heartbeats at the interval, libdatadog's metrics, and app-closing at close, named for this package", "app-started, heartbeats and app-closing come from this package's telemetry worker; libdatadog's FFI exporter sends its metrics only", () =>
  test("telemetry: app-started, heartbeats at the interval, libdatadog's metrics, and app-closing at close, named for this package", async () => {
    const token = await session();
    const runtimeId = crypto.randomUUID();
    const exporter = new TraceExporter({ url: agent.url, testSessionToken: token, service: "telemetry-svc", env: "tel-env", runtimeId, telemetry: { intervalMs: 200 } });
    let events: TelemetryEvent[];
    try {
      await exporter.send([[span({ service: "telemetry-svc" })]]);
      // With the exporter still open: started, two heartbeats, and the send's metrics.
      events = await telemetryUntil(token, runtimeId, (e) => count(e, "app-started") === 1 && count(e, "app-heartbeat") >= 2 && requestsCounted(e) === 1);
      assert.is(count(events, "app-closing"), 0);
    } finally {
      await exporter.close();
    }
    for (const e of events) {
      assert.is(e.application.language_name, "nodejs");
      assert.is(e.application.tracer_version, VERSION);
      assert.is(e.application.service_name, "telemetry-svc");
      assert.is(e.application.env, "tel-env");
    }
    const names = new Set(series(events).map((s) => s.metric));
    for (const m of ["trace_api.requests", "trace_api.responses", "trace_chunks_sent"]) assert.ok(names.has(m), `${m} in ${[...names]}`);
    assert.ok(series(events).find((s) => s.metric === "trace_api.responses")!.tags.includes("status_code:200"));
    // close() waits for libdatadog's shutdown: app-closing is in by now.
    const all = (await agent.telemetry(token)).filter((e) => e.runtime_id === runtimeId);
    assert.is(count(all, "app-closing"), 1);
  }));

bundledOnly("telemetry: what is left is flushed when the exporter closes", "app-closing comes from this package's telemetry worker; libdatadog's FFI exporter sends its metrics only", () =>
  test("telemetry: what is left is flushed when the exporter closes", async () => {
    const token = await session();
    const runtimeId = crypto.randomUUID();
    // A heartbeat far away: only the shutdown flush can send the metrics.
    const exporter = new TraceExporter({ url: agent.url, testSessionToken: token, runtimeId, telemetry: { intervalMs: 3_600_000 } });
    try {
      await exporter.send([[span()]]);
    } finally {
      await exporter.close();
    }
    const events = (await agent.telemetry(token)).filter((e) => e.runtime_id === runtimeId);
    assert.is(requestsCounted(events), 1, JSON.stringify(events));
    assert.equal([count(events, "app-started"), count(events, "app-heartbeat"), count(events, "app-closing")], [1, 0, 1]);
  }));

bundledOnly("Tracer: telemetry is on by default (dd-trace-js), DD_TELEMETRY_HEARTBEAT_INTERVAL (seconds) sets the interval, DD_INSTRUMENTATION_TELEMETRY_ENABLED=false turns it off", "app-started and heartbeats come from this package's telemetry worker; libdatadog's FFI exporter sends its metrics only", () =>
  test("Tracer: telemetry is on by default (dd-trace-js), DD_TELEMETRY_HEARTBEAT_INTERVAL (seconds) sets the interval, DD_INSTRUMENTATION_TELEMETRY_ENABLED=false turns it off", async () => {
    const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
    const token = await session();
    const [on, off] = [crypto.randomUUID(), crypto.randomUUID()];
    env.DD_TELEMETRY_HEARTBEAT_INTERVAL = "0.2";
    try {
      const tracer = new Tracer({ url: agent.url, testSessionToken: token, service: "telemetry-tracer", runtimeId: on });
      try {
        tracer.trace("web.request", () => {});
        await tracer.flush();
        // Before shutdown: heartbeats at 0.2 s (the default, 60 s, would not come in 20 s).
        const events = await telemetryUntil(token, on, (e) => count(e, "app-started") === 1 && count(e, "app-heartbeat") >= 2);
        assert.is(events[0].application.service_name, "telemetry-tracer");
      } finally {
        await tracer.shutdown();
      }
      env.DD_INSTRUMENTATION_TELEMETRY_ENABLED = "false";
      const quiet = new Tracer({ url: agent.url, testSessionToken: token, service: "telemetry-tracer", runtimeId: off });
      quiet.trace("web.request", () => {});
      await quiet.flush();
      await quiet.shutdown();
    } finally {
      delete env.DD_TELEMETRY_HEARTBEAT_INTERVAL;
      delete env.DD_INSTRUMENTATION_TELEMETRY_ENABLED;
    }
    // Its app-closing would have been sent by now: shutdown waits for libdatadog's shutdown.
    assert.is(count((await agent.telemetry(token)).filter((e) => e.runtime_id === on), "app-closing"), 1);
    assert.equal((await agent.telemetry(token)).filter((e) => e.runtime_id === off), []);
  }));

test.run();
