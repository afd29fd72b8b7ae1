/**
 * Datadog's own test agent, `ddapm-test-agent` (PyPI, pinned in
 * `.ci/requirements.txt`), which Datadog's tracers test against. `.ci/run`
 * installs it into the ignored virtualenv `.venv/`; `DdapmAgent.start()` runs
 * it on free loopback ports and `close()` stops it. Start one per test file
 * (about a second of startup), and keep each test's traces apart with its own
 * test session token.
 *
 * Its trace checks are all enabled except `trace_stall`, and their failures
 * are pooled per session token (`GET /test/trace_check/failures`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { closedPort } from "./helpers.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/** The test agent's command in the virtualenv `.ci/run` makes. */
export const DDAPM_BIN = join(root, ".venv", "bin", "ddapm-test-agent");

/** The checks enabled: every v0.4 trace check but `trace_stall` (which only delays). */
const CHECKS = [
  "trace_count_header",
  "meta_tracer_version_header",
  "trace_content_length",
  "meta_events_is_valid_json",
  "trace_peer_service",
  "trace_dd_service",
];

/** A span as the test agent returns it from `/test/session/traces`: its decoded v0.4 map, JSON, ids as bigint. */
export type AgentSpan = Record<string, unknown> & {
  trace_id: bigint;
  span_id: bigint;
  parent_id?: bigint;
  meta?: Record<string, string>;
  metrics?: Record<string, number>;
};

/**
 * Parses JSON keeping every integer that a double cannot hold exactly as a
 * bigint (ids are u64): such numbers are quoted with a marker before
 * `JSON.parse`, outside strings only.
 */
export function parseJsonBig(text: string): unknown {
  const marked = text.replace(/"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])-?\d{16,}(?![.eE\d])/g, (m) => (m[0] === '"' ? m : `"\\u0000big:${m}"`));
  return JSON.parse(marked, (_k, v) => {
    if (typeof v !== "string" || !v.startsWith("\u0000big:")) return v;
    const n = BigInt(v.slice(5));
    return Number.isSafeInteger(Number(n)) ? Number(n) : n;
  });
}

/** One group of a stats bucket (`ClientGroupedStats` of the v0.6 payload). */
export type StatsGroup = Record<string, unknown> & { Name: string; Resource: string; Service: string; Hits: number; TopLevelHits: number; Errors: number };

/** A `/v0.6/stats` payload (`ClientStatsPayload`), as the test agent decodes it. */
export type StatsPayload = Record<string, unknown> & { Env?: string; Version?: string; Stats: { Start: number; Duration: number; Stats: StatsGroup[] }[] };

/** A telemetry event as the test agent decodes it. */
export type TelemetryEvent = Record<string, unknown> & {
  request_type: string;
  runtime_id: string;
  application: Record<string, string>;
  payload?: unknown;
};

/** One running ddapm-test-agent. */
export class DdapmAgent {
  /** The agent's URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its OTLP/HTTP receiver, `http://127.0.0.1:<port>` (traces at `/v1/traces`, JSON or protobuf). */
  readonly otlpUrl: string;
  #child: ChildProcess;
  #exited: Promise<void>;

  private constructor(url: string, otlpUrl: string, child: ChildProcess, exited: Promise<void>) {
    this.url = url;
    this.otlpUrl = otlpUrl;
    this.#child = child;
    this.#exited = exited;
  }

  /**
   * Starts the agent from `.venv/` and waits until it answers `GET /info`. `extraInfo`: fields
   * added to its `/info` answer (its `DD_AGENT_EXTRA_INFO`), e.g. the agent's trace filters.
   * @throws {Error} when `.venv/` lacks it (the message says how to install it), or it does not start within 30 s.
   */
  static async start(options: { extraInfo?: Record<string, unknown> } = {}): Promise<DdapmAgent> {
    if (!existsSync(DDAPM_BIN)) {
      throw new Error(
        `Datadog's test agent is not installed (${DDAPM_BIN} is missing). Install it with \`bash .ci/run\`, or: ` +
          "python3 -m venv .venv && .venv/bin/pip install -r .ci/requirements.txt",
      );
    }
    // Three different ports: a port just closed can be handed out again, and the agent refuses to start on a repeat.
    const ports = new Set<number>();
    while (ports.size < 3) ports.add(await closedPort());
    const [port, otlpHttp, otlpGrpc] = [...ports];
    const child = spawn(DDAPM_BIN, [], {
      cwd: tmpdir(),
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        ...(globalThis as unknown as { process: { env: Record<string, string> } }).process.env,
        HOST: "127.0.0.1",
        PORT: String(port),
        OTLP_HTTP_PORT: String(otlpHttp),
        OTLP_GRPC_PORT: String(otlpGrpc),
        ENABLED_CHECKS: CHECKS.join(","),
        DD_POOL_TRACE_CHECK_FAILURES: "true",
        LOG_LEVEL: "WARNING",
        PYTHONUNBUFFERED: "1",
        ...(options.extraInfo ? { DD_AGENT_EXTRA_INFO: JSON.stringify(options.extraInfo) } : {}),
      },
    });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
    let done = false;
    const exited = new Promise<void>((r) => child.on("exit", () => ((done = true), r())));
    const url = `http://127.0.0.1:${port}`;
    const until = Date.now() + 30_000;
    for (;;) {
      if (done) throw new Error(`ddapm-test-agent exited at startup:\n${stderr}`);
      try {
        const r = await fetch(`${url}/info`);
        await r.arrayBuffer();
        if (r.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) {
        child.kill();
        throw new Error(`ddapm-test-agent did not answer on ${url} within 30 s:\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return new DdapmAgent(url, `http://127.0.0.1:${otlpHttp}`, child, exited);
  }

  async #get(path: string, token: string, base = this.url): Promise<{ status: number; text: string }> {
    const sep = path.includes("?") ? "&" : "?";
    const r = await fetch(`${base}${path}${sep}test_session_token=${encodeURIComponent(token)}`);
    return { status: r.status, text: await r.text() };
  }

  /** Starts a session for `token`: later requests with it are its traces. */
  async startSession(token: string): Promise<void> {
    const r = await this.#get("/test/session/start", token);
    if (r.status !== 200) throw new Error(`/test/session/start answered ${r.status}: ${r.text}`);
  }

  /** The session's traces: spans grouped by trace id, as the agent decoded them. */
  async traces(token: string): Promise<AgentSpan[][]> {
    const r = await this.#get("/test/session/traces", token);
    if (r.status !== 200) throw new Error(`/test/session/traces answered ${r.status}: ${r.text}`);
    return parseJsonBig(r.text) as AgentSpan[][];
  }

  /** `GET /test/trace_check/failures` for the session: 200 when no trace check failed, else 400 and what failed. */
  checkFailures(token: string): Promise<{ status: number; text: string }> {
    return this.#get("/test/trace_check/failures", token);
  }

  /** The session's requests as the agent recorded them (method, url, headers). */
  async requests(token: string): Promise<{ method: string; url: string; headers: Record<string, string> }[]> {
    const r = await this.#get("/test/session/requests", token);
    if (r.status !== 200) throw new Error(`/test/session/requests answered ${r.status}: ${r.text}`);
    return JSON.parse(r.text);
  }

  /** The session's client stats payloads (`/v0.6/stats`), as the agent decoded them. */
  async stats(token: string): Promise<StatsPayload[]> {
    const r = await this.#get("/test/session/stats", token);
    if (r.status !== 200) throw new Error(`/test/session/stats answered ${r.status}: ${r.text}`);
    return JSON.parse(r.text);
  }

  /** The session's telemetry events (`/telemetry/proxy/api/v2/apmtelemetry`), as the agent decoded them. */
  async telemetry(token: string): Promise<TelemetryEvent[]> {
    const r = await this.#get("/test/session/apmtelemetry", token);
    if (r.status !== 200) throw new Error(`/test/session/apmtelemetry answered ${r.status}: ${r.text}`);
    return JSON.parse(r.text);
  }

  /** The session's OTLP trace requests (`/v1/traces` on `otlpUrl`), each decoded to OTLP JSON. */
  async otlpTraces(token: string): Promise<unknown[]> {
    const r = await this.#get("/test/session/traces", token, this.otlpUrl);
    if (r.status !== 200) throw new Error(`OTLP /test/session/traces answered ${r.status}: ${r.text}`);
    return JSON.parse(r.text);
  }

  /** Stops the agent. */
  async close(): Promise<void> {
    this.#child.kill("SIGTERM");
    await this.#exited;
  }
}
