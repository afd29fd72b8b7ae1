/**
 * Where libdatadog sends, end to end: an agent over https (a local TLS server whose test CA the child
 * process trusts through SSL_CERT_FILE), the agentless intake (a local HTTP server standing in for it),
 * health metrics to DogStatsD (a local UDP socket), and OTLP over http/json and http/protobuf to Datadog's
 * test agent (ddapm-test-agent, which decodes both).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { fileURLToPath } from "node:url";
import { decode } from "@msgpack/msgpack";
import { decompress } from "fzstd";
import { TraceExporter, Tracer } from "../mod.ts";
import { agentlessUrl } from "../src/options.ts";
import { TestAgent } from "../testing.ts";
import { DdapmAgent } from "./ddapm.ts";
import { assertNoLeaks, bundledOnly, span } from "./helpers.ts";
import { runScript, runtimeName, sleep } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const proc = (globalThis as unknown as { process: { execPath: string; env: Record<string, string | undefined> } }).process;
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** One request a local server received: its headers (lowercased) and body. */
interface Received {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

/** Records a request, then answers it with `answer` (status, JSON body). */
function recorder(log: Received[], answer: (r: Received) => [number, string]) {
  return (req: IncomingMessage, res: import("node:http").ServerResponse) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (d: Uint8Array) => chunks.push(d));
    req.on("end", () => {
      const r = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: new Uint8Array(Buffer.concat(chunks)) };
      log.push(r);
      const [status, body] = answer(r);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(body);
    });
  };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

/** Runs test/fixtures/https-child.ts on this runtime, sending one span to `url`; resolves with what it printed. */
async function sendFromChild(url: string, env: Record<string, string | undefined>): Promise<string> {
  return (await runScript(fixture("https-child.ts"), [url], env)).output.trim();
}

test("https agent: traces go over TLS to an agent whose certificate's CA is trusted through SSL_CERT_FILE", async () => {
  const log: Received[] = [];
  const server = createHttpsServer(
    { cert: readFileSync(fixture("tls-localhost-cert.pem")), key: readFileSync(fixture("tls-localhost-key.pem")) },
    recorder(log, (r) => r.path.startsWith("/v0.4/traces") ? [200, '{"rate_by_service":{"service:,env:":1}}'] : [404, "{}"]),
  );
  server.on("tlsClientError", () => {});
  const port = await listen(server);
  try {
    const output = await sendFromChild(`https://127.0.0.1:${port}`, { SSL_CERT_FILE: fixture("tls-ca-cert.pem"), SSL_CERT_DIR: undefined });
    assert.is(output, "sent");
    const traces = log.filter((r) => r.path === "/v0.4/traces");
    assert.is(traces.length, 1);
    const [[sent]] = decode(traces[0].body) as { name: string; service: string }[][];
    assert.is(sent.name, "tls.span");
    assert.is(sent.service, "tls");
    // Not trusted: the handshake fails (libdatadog's rustls checks the chain) and nothing is sent.
    const untrusted = await sendFromChild(`https://127.0.0.1:${port}`, { SSL_CERT_FILE: fixture("localhost-cert.pem"), SSL_CERT_DIR: undefined });
    assert.match(untrusted, /^ConnectionReset: .*Connect/);
    assert.is(log.filter((r) => r.path === "/v0.4/traces").length, 1);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

type IntakeSpan = Record<string, unknown> & { name: string; service: string; resource: string; meta: Record<string, string>; metrics: Record<string, number> };

bundledOnly("agentless: spans go to the intake URL as JSON with the API key in dd-api-key, no agent involved", "agentless is this package's ddffi_trace_exporter_config_set_agentless; libdatadog's FFI has no agentless setter", () =>
  test("agentless: spans go to the intake URL as JSON with the API key in dd-api-key, no agent involved", async () => {
    const log: Received[] = [];
    const server = createHttpServer(recorder(log, () => [202, "{}"]));
    const port = await listen(server);
    const saved = proc.env.DD_API_KEY;
    proc.env.DD_API_KEY = "test-api-key-0123";
    try {
      const exporter = new TraceExporter({ service: "intake-svc", env: "intake-env", agentless: { url: `http://127.0.0.1:${port}/v1/input` } });
      try {
        await exporter.send([[span({ name: "intake.span", service: "intake-svc", resource: "GET /intake", meta: { "http.method": "GET" }, metrics: { "_sampling_priority_v1": 1 } })]]);
      } finally {
        await exporter.close();
      }
    } finally {
      if (saved === undefined) delete proc.env.DD_API_KEY;
      else proc.env.DD_API_KEY = saved;
      await new Promise((r) => server.close(r));
    }
    assert.equal(log.map((r) => `${r.method} ${r.path}`), ["POST /v1/input"], "one request, no /info, no telemetry");
    const [req] = log;
    assert.is(req.headers["dd-api-key"], "test-api-key-0123");
    assert.is(req.headers["content-type"], "application/json");
    const raw = req.headers["content-encoding"] === "zstd" ? decompress(req.body) : req.body;
    const payload = JSON.parse(new TextDecoder().decode(raw));
    const spans: IntakeSpan[] = JSON.stringify(payload).includes("intake.span") ? findSpans(payload) : [];
    assert.is(spans.length, 1, JSON.stringify(payload));
    assert.is(spans[0].service, "intake-svc");
    assert.is(spans[0].resource, "GET /intake");
    assert.is(spans[0].meta["http.method"], "GET");
  }));

/** The span objects (those with a `name` of "intake.span") anywhere in an intake payload. */
function findSpans(v: unknown): IntakeSpan[] {
  if (Array.isArray(v)) return v.flatMap(findSpans);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o.name === "intake.span") return [o as IntakeSpan];
    return Object.values(o).flatMap(findSpans);
  }
  return [];
}

test("agentless: the default intake URL of a site (libdatadog's, agentless/mod.rs)", () => {
  assert.is(agentlessUrl("datadoghq.eu"), "https://public-trace-http-intake.logs.datadoghq.eu/v1/input");
});

/** A UDP socket on a free loopback port collecting DogStatsD lines. */
async function dogstatsd(): Promise<{ url: string; lines: string[]; close: () => void }> {
  const socket = createSocket("udp4");
  const lines: string[] = [];
  socket.on("message", (m) => lines.push(...new TextDecoder().decode(m).split("\n").filter((l) => l)));
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
  return { url: `udp://127.0.0.1:${socket.address().port}`, lines, close: () => socket.close() };
}

/** Waits (up to 10 s) until a line starts with `prefix`. */
async function line(lines: string[], prefix: string): Promise<string> {
  const until = Date.now() + 10_000;
  for (;;) {
    const found = lines.find((l) => l.startsWith(prefix));
    if (found) return found;
    if (Date.now() > until) throw new Error(`no DogStatsD line ${prefix}… in ${JSON.stringify(lines)}`);
    await sleep(20);
  }
}

bundledOnly("healthMetrics: libdatadog's health metrics reach the DogStatsD URL", "the DogStatsD URL is this package's ddffi_trace_exporter_config_set_dogstatsd_url; libdatadog's FFI has no setter for it", () =>
  test("healthMetrics: libdatadog's health metrics reach the DogStatsD URL", async () => {
    const statsd = await dogstatsd();
    await using agent = await TestAgent.start();
    const exporter = new TraceExporter({ url: agent.url, healthMetrics: true, dogstatsdUrl: statsd.url });
    try {
      await exporter.send([[span(), span({ spanId: 2n, parentId: 0x5678n })]]);
      assert.match(await line(statsd.lines, "datadog.tracer.exporter.transport.traces.successful:"), /^datadog\.tracer\.exporter\.transport\.traces\.successful:1\|c\|#libdatadog_version:/);
      assert.match(await line(statsd.lines, "datadog.tracer.exporter.transport.traces.sent:"), /:1\|d/);
      assert.match(await line(statsd.lines, "datadog.tracer.exporter.transport.requests:"), /:1\|d/);
    } finally {
      await exporter.close();
      statsd.close();
    }
  }));

bundledOnly("Tracer: DD_TRACE_HEALTH_METRICS_ENABLED and DD_DOGSTATSD_URL", "the DogStatsD URL is this package's ddffi_trace_exporter_config_set_dogstatsd_url; libdatadog's FFI has no setter for it", () =>
  test("Tracer: DD_TRACE_HEALTH_METRICS_ENABLED and DD_DOGSTATSD_URL", async () => {
    const statsd = await dogstatsd();
    await using agent = await TestAgent.start();
    Object.assign(proc.env, { DD_TRACE_HEALTH_METRICS_ENABLED: "true", DD_DOGSTATSD_URL: statsd.url });
    try {
      const tracer = new Tracer({ url: agent.url, telemetry: false });
      try {
        tracer.trace("web.request", () => {});
        await tracer.flush();
        await line(statsd.lines, "datadog.tracer.exporter.transport.traces.successful:1|c");
      } finally {
        await tracer.shutdown();
      }
    } finally {
      delete proc.env.DD_TRACE_HEALTH_METRICS_ENABLED;
      delete proc.env.DD_DOGSTATSD_URL;
      statsd.close();
    }
  }));

type Loose = Record<string, unknown>;
/** A field of the agent's OTLP JSON: camelCase from a JSON request, the proto's snake_case from a protobuf one. */
const field = (o: Loose, camel: string): unknown => o[camel] ?? o[camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)];
/** An id as hex: the JSON encoding's hex, or the protobuf decoding's base64 bytes. */
const hexId = (v: string) => /^[0-9a-f]+$/.test(v) ? v : Array.from(atob(v), (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");

for (const protocol of ["http/json", "http/protobuf"]) {
  test(`OTLP over ${protocol}: Datadog's test agent decodes the spans`, async () => {
    const agent = await DdapmAgent.start();
    try {
      const token = `ddffi-otlp-${runtimeName}-${Date.now()}`;
      await agent.startSession(token);
      const exporter = new TraceExporter({ service: "otlp-svc", otlp: { endpoint: `${agent.otlpUrl}/v1/traces`, protocol } });
      try {
        await exporter.send([[span({ name: "otlp.span", resource: `GET /${protocol}`, meta: { "span.kind": "server" } })]]);
      } finally {
        await exporter.close();
      }
      const resourceSpans = ((await agent.otlpTraces(token)) as Loose[]).flatMap((r) => field(r, "resourceSpans") as Loose[]);
      assert.is(resourceSpans.length, 1);
      const resource = (resourceSpans[0].resource as { attributes: Loose[] }).attributes;
      const service = resource.find((a) => a.key === "service.name")!.value as Loose;
      assert.is(field(service, "stringValue"), "otlp-svc");
      const spans = (field(resourceSpans[0], "scopeSpans") as Loose[]).flatMap((ss) => ss.spans as Loose[]);
      assert.equal(spans.map((s) => s.name), [`GET /${protocol}`]);
      assert.is(hexId(field(spans[0], "traceId") as string), "00000000000000000000000000001234");
      assert.is(hexId(field(spans[0], "spanId") as string), "0000000000005678");
    } finally {
      await agent.close();
    }
  });
}

test.run();
