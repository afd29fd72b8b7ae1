/**
 * A fake Datadog agent for tests: an HTTP server that accepts traces the way
 * the real agent does, decodes them strictly and records everything it
 * receives, with switchable failure modes (error status, delay, dropped
 * connection) to exercise an exporter's retry and timeout paths.
 *
 * Runs unchanged on Node (≥ 20), Bun and Deno: it uses only `node:` built-ins
 * and `@msgpack/msgpack`.
 *
 * ```ts
 * await using agent = await TestAgent.start();
 * // point the exporter at agent.url, send traces, then:
 * const [chunk] = await agent.waitForTraces(1);
 * ```
 *
 * Endpoints:
 * - `POST`/`PUT /v0.4/traces`: msgpack body, an array of trace chunks, each an
 *   array of span maps. Answers 200 with `{"rate_by_service":{…}}`
 *   (`Content-Type: application/json`), or 400 when the body does not decode.
 * - `POST /v1/traces`: OTLP/HTTP with a JSON body. Answers 200 with `{}`, or
 *   400 when the body is not JSON, 415 when it is protobuf.
 * - anything else: 404 (also `/info`, so clients fall back to their defaults);
 *   405 for a wrong method on a trace endpoint.
 *
 * Bodies sent with `Content-Encoding: gzip` or `deflate` are inflated before
 * they are decoded; {@link AgentRequest.body} always holds the bytes as sent.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { lstatSync, rmSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { gunzipSync, inflateSync } from "node:zlib";
import { decode } from "@msgpack/msgpack";
import { UNTRACED_SERVER } from "../tracer/instrument/node-http.ts";

/** Where and how {@link TestAgent.start} listens. */
export interface AgentOptions {
  /**
   * Listen on this unix domain socket (file path, relative paths are resolved
   * against the current directory) instead of TCP. A stale socket file that
   * nobody listens on is replaced; the file is removed by {@link TestAgent.close}.
   * Cannot be combined with `port`.
   */
  socketPath?: string;
  /** TCP port; default 0, i.e. a random free port chosen by the OS. */
  port?: number;
  /** TCP host/interface to bind; default `"127.0.0.1"`. */
  host?: string;
  /**
   * The `rate_by_service` map answered to every accepted `/v0.4/traces`
   * request: keys `"service:<name>,env:<env>"`, values sampling rates in
   * [0, 1]. Default `{"service:,env:": 1}`. Can be changed later with
   * {@link TestAgent.setRates}.
   */
  rates?: Record<string, number>;
}

/**
 * How the next trace requests (`/v0.4/traces`, `/v1/traces`) are answered;
 * other paths are never affected (so a client polling `/info` does not use up
 * `times`). The request is always read completely, decoded and recorded first.
 *
 * - `{ status, body? }`: answer with that HTTP status (200–599) and body
 *   (`text/plain`, default empty). The traces are not accepted.
 * - `{ delayMs }`: wait `delayMs` milliseconds, then answer normally (the
 *   traces count as accepted when the delay ends, even if the client has
 *   given up by then, as a real agent would have processed them).
 * - `{ drop: true }`: destroy the connection without answering. The traces
 *   are not accepted.
 *
 * `times`: how many requests the mode applies to (a positive integer);
 * omitted means every request until {@link TestAgent.fail} is called again.
 */
export type FailMode =
  | { status: number; times?: number; body?: string }
  | { delayMs: number; times?: number }
  | { drop: true; times?: number };

/** One HTTP request received by the {@link TestAgent}, recorded when its body has been read completely. */
export interface AgentRequest {
  /** HTTP method, e.g. `"POST"`. */
  method: string;
  /** Request target as sent, including any query string, e.g. `"/v0.4/traces"`. */
  path: string;
  /** Headers, names lowercased; repeated headers are joined with `", "`. */
  headers: Record<string, string>;
  /** The body bytes exactly as received (still compressed if it was sent compressed). */
  body: Uint8Array;
  /** For `/v0.4/traces`: the decoded trace chunks, when the body decoded successfully. */
  traces?: DecodedSpan[][];
  /** For `/v1/traces`: the parsed JSON body, when it parsed. */
  otlp?: unknown;
  /** Why the body of a trace request could not be decoded (the agent answered 4xx). */
  decodeError?: string;
  /** When the request arrived, in milliseconds since the Unix epoch (`Date.now()`). */
  receivedAt: number;
  /**
   * The HTTP status answered; `undefined` while a delayed answer is pending
   * and when the connection was dropped.
   */
  status?: number;
  /** `true` when the connection was dropped by a `{ drop: true }` fail mode. */
  dropped?: boolean;
  /**
   * `true` when the agent processed the request normally, i.e. its traces
   * are part of {@link TestAgent.traces} / {@link TestAgent.otlp}: it decoded
   * and no `status`/`drop` fail mode applied to it.
   */
  accepted: boolean;
}

/**
 * One span of a v0.4 payload, normalised: keys omitted on the wire get their
 * default (`""`, `0n`, `0`, `{}`, `[]`). `raw` is the map as decoded.
 */
export interface DecodedSpan {
  /** Service name; default `""`. */
  service: string;
  /** Operation name; default `""`. */
  name: string;
  /** Resource; default `""`. */
  resource: string;
  /** Low 64 bits of the trace id, unsigned (the high bits travel in meta `_dd.p.tid`). */
  trace_id: bigint;
  /** Span id, unsigned 64-bit. */
  span_id: bigint;
  /** Parent span id, unsigned 64-bit; `0n` for a root span (key omitted). */
  parent_id: bigint;
  /** Start time in nanoseconds since the Unix epoch (signed 64-bit). */
  start: bigint;
  /** Duration in nanoseconds (signed 64-bit). */
  duration: bigint;
  /** Error flag, normally 0 or 1; default 0. */
  error: number;
  /**
   * String tags; default `{}`. Without {@link EXPORT_MARKER}, the tag
   * libdatadog's trace exporter (14 and later) adds to the first span of each
   * trace chunk on its own: it is in `raw`.
   */
  meta: Record<string, string>;
  /** Numeric tags as JavaScript numbers (integers on the wire are converted); default `{}`. */
  metrics: Record<string, number>;
  /** Span type, e.g. `"web"`; default `""`. */
  type: string;
  /** Structured tags: key → msgpack-encoded blob (a copy); default `{}`. */
  meta_struct: Record<string, Uint8Array>;
  /** Span links as decoded (maps; 64-bit integers as bigint); default `[]`. */
  span_links: unknown[];
  /** Span events as decoded (maps; 64-bit integers as bigint); default `[]`. */
  span_events: unknown[];
  /**
   * The span map exactly as decoded by `@msgpack/msgpack` with
   * `useBigInt64: true`: only the keys that were present, in wire order
   * (`Object.keys(raw)`), values untransformed (`uint 64`/`int 64` values are
   * bigint, smaller integers are numbers, `bin` values are views into the
   * decoded body). A key repeated on the wire keeps its first position and
   * its last value.
   */
  raw: Record<string, unknown>;
}

/** Default answered `rate_by_service`. */
const DEFAULT_RATES: Readonly<Record<string, number>> = { "service:,env:": 1 };
/** Default timeout of the `waitFor…` methods, in milliseconds. */
const DEFAULT_WAIT_MS = 5000;
const TRACES_V04 = "/v0.4/traces";
const TRACES_OTLP = "/v1/traces";
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const encoder = new TextEncoder();

type Waiter = { check: () => boolean; reject: (error: Error) => void };

/**
 * A fake Datadog agent. Create it with {@link TestAgent.start}; close it with
 * {@link TestAgent.close} or `await using`.
 */
export class TestAgent implements AsyncDisposable {
  /**
   * Base URL to give to the exporter: `"http://127.0.0.1:PORT"` for TCP
   * (IPv6 hosts in brackets) or `"unix:///absolute/path.sock"` for a unix socket.
   */
  readonly url: string;
  /** Every request received, in arrival order (cleared by {@link reset}). */
  readonly requests: AgentRequest[] = [];

  #server: Server;
  #socketPath: string | undefined;
  #rates: Record<string, number>;
  #fail: FailMode | null = null;
  #failLeft = Infinity;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #waiters = new Set<Waiter>();
  #sockets = new Set<Socket>();
  #closing: Promise<void> | undefined;

  private constructor(server: Server, url: string, socketPath: string | undefined, rates: Record<string, number>) {
    this.#server = server;
    this.url = url;
    this.#socketPath = socketPath;
    this.#rates = rates;
    server.on("request", (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    server.on("connection", (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  /**
   * Starts an agent and resolves once it is listening: by default on
   * `127.0.0.1` at a random free port, or on `options.socketPath` (unix socket).
   * Rejects when it cannot listen (e.g. the port or socket is in use).
   */
  static async start(options: AgentOptions = {}): Promise<TestAgent> {
    const { socketPath, port, host = "127.0.0.1" } = options;
    if (socketPath !== undefined && port !== undefined) {
      throw new TypeError("TestAgent.start: give either socketPath or port, not both");
    }
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      throw new TypeError(`TestAgent.start: port must be an integer in 0..65535, got ${port}`);
    }
    const rates = copyRates(options.rates ?? DEFAULT_RATES);
    const server = createServer();
    // Never traced by an instrumented node:http in the same process (its intake would make spans of its own).
    (server as unknown as Record<symbol, boolean>)[UNTRACED_SERVER] = true;
    if (socketPath !== undefined) {
      const path = resolvePath(socketPath);
      try {
        await listen(server, path);
      } catch (error) {
        if ((error as { code?: string }).code !== "EADDRINUSE" || !(await isStaleSocket(path))) throw error;
        rmSync(path, { force: true });
        await listen(server, path);
      }
      return new TestAgent(server, "unix://" + path, path, rates);
    }
    await listen(server, port ?? 0, host);
    const address = server.address();
    if (address === null || typeof address === "string") {
      server.close();
      throw new Error("TestAgent.start: server has no TCP address");
    }
    const h = address.address.includes(":") ? `[${address.address}]` : address.address;
    return new TestAgent(server, `http://${h}:${address.port}`, undefined, rates);
  }

  /**
   * All trace chunks of all accepted `/v0.4/traces` requests (see
   * {@link AgentRequest.accepted}), flattened across requests in arrival
   * order: one array of spans per chunk, spans in wire order.
   */
  traces(): DecodedSpan[][] {
    const out: DecodedSpan[][] = [];
    for (const r of this.requests) if (r.accepted && r.traces) out.push(...r.traces);
    return out;
  }

  /** All spans of {@link traces}, flattened, in order. */
  spans(): DecodedSpan[] {
    return this.traces().flat();
  }

  /** The parsed JSON bodies of all accepted `/v1/traces` (OTLP/HTTP JSON) requests, in order. */
  otlp(): unknown[] {
    const out: unknown[] = [];
    for (const r of this.requests) if (r.accepted && r.otlp !== undefined) out.push(r.otlp);
    return out;
  }

  /**
   * Resolves with {@link traces} as soon as at least `count` chunks have been
   * accepted; rejects after `timeoutMs` milliseconds (default 5000) with an
   * error that says what did arrive, or when the agent is (or gets) closed
   * before enough arrived.
   */
  waitForTraces(count: number, timeoutMs: number = DEFAULT_WAIT_MS): Promise<DecodedSpan[][]> {
    return this.#waitFor("waitForTraces", count, timeoutMs, `${count} accepted trace chunk(s)`, () => {
      const traces = this.traces();
      return traces.length >= count ? traces : undefined;
    });
  }

  /**
   * Resolves with {@link requests} (a copy) as soon as at least `count`
   * requests have been recorded, counting only requests to `path` (compared
   * without query string) when given, in which case only those are returned.
   * Note that clients may also call other endpoints such as `/info`. Rejects
   * after `timeoutMs` milliseconds (default 5000), or when the agent is (or
   * gets) closed before enough arrived.
   */
  waitForRequests(count: number, timeoutMs: number = DEFAULT_WAIT_MS, path?: string): Promise<AgentRequest[]> {
    const what = `${count} request(s)` + (path === undefined ? "" : ` to ${path}`);
    return this.#waitFor("waitForRequests", count, timeoutMs, what, () => {
      const requests = path === undefined
        ? this.requests.slice()
        : this.requests.filter((r) => pathname(r.path) === path);
      return requests.length >= count ? requests : undefined;
    });
  }

  /**
   * Sets how the next trace requests are answered (see {@link FailMode});
   * `null` goes back to answering normally. Replaces any previous mode.
   * Throws a TypeError for an invalid mode.
   */
  fail(mode: FailMode | null): void {
    if (mode !== null) validateFailMode(mode);
    this.#fail = mode === null ? null : { ...mode };
    this.#failLeft = mode?.times ?? Infinity;
  }

  /** Replaces the `rate_by_service` map answered from now on (keys `"service:<name>,env:<env>"`, rates in [0, 1]). */
  setRates(rates: Record<string, number>): void {
    this.#rates = copyRates(rates);
  }

  /**
   * Forgets all recorded requests (so {@link traces}, {@link spans},
   * {@link otlp} start empty again). Fail mode and rates are kept; pending
   * `waitFor…` calls keep waiting and count from zero.
   */
  reset(): void {
    this.requests.length = 0;
  }

  /**
   * Stops the agent: ends all open connections at once (including requests
   * waiting on a delay), clears its timers, rejects pending `waitFor…` calls
   * and removes the unix socket file. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Same as {@link close}; enables `await using agent = await TestAgent.start()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const error = new Error("TestAgent closed while waiting");
    for (const waiter of [...this.#waiters]) waiter.reject(error);
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    (this.#server as { closeAllConnections?: () => void }).closeAllConnections?.();
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await closed;
    if (this.#socketPath !== undefined) {
      try {
        if (lstatSync(this.#socketPath).isSocket()) rmSync(this.#socketPath, { force: true });
      } catch {
        // already removed (Node and Bun unlink it on close)
      }
    }
  }

  #waitFor<T>(method: string, count: number, timeoutMs: number, what: string, get: () => T | undefined): Promise<T> {
    if (!(Number.isInteger(count) && count >= 0)) {
      return Promise.reject(new TypeError(`TestAgent.${method}: count must be a non-negative integer, got ${count}`));
    }
    if (!(typeof timeoutMs === "number" && timeoutMs >= 0 && timeoutMs <= 2 ** 31 - 1)) {
      return Promise.reject(new TypeError(`TestAgent.${method}: timeoutMs must be a number of milliseconds, got ${timeoutMs}`));
    }
    const now = get();
    if (now !== undefined) return Promise.resolve(now);
    if (this.#closing) return Promise.reject(new Error(`TestAgent.${method}: the agent is closed; ${this.#summary()}`));
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#timers.delete(timer);
        this.#waiters.delete(waiter);
      };
      const waiter: Waiter = {
        check: () => {
          const value = get();
          if (value === undefined) return false;
          done();
          resolve(value);
          return true;
        },
        reject: (error) => {
          done();
          reject(new Error(`TestAgent.${method}: ${error.message} for ${what}; ${this.#summary()}`));
        },
      };
      const timer = setTimeout(
        () => waiter.reject(new Error(`timed out after ${timeoutMs} ms waiting`)),
        timeoutMs,
      );
      this.#timers.add(timer);
      this.#waiters.add(waiter);
    });
  }

  /** What has arrived so far, for error messages. */
  #summary(): string {
    const chunks = this.traces().length;
    let text = `received ${this.requests.length} request(s), ${chunks} accepted trace chunk(s)`;
    if (this.requests.length > 0) {
      const list = this.requests.slice(-5).map((r) =>
        `${r.method} ${r.path} → ${r.dropped ? "dropped" : r.status ?? "pending"}` +
        (r.decodeError ? ` (${r.decodeError})` : "")
      );
      text += `; last: ${list.join(", ")}`;
    }
    if (this.#fail !== null) text += `; fail mode ${JSON.stringify(this.#fail)}`;
    return text;
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter.check();
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const receivedAt = Date.now();
    const chunks: Uint8Array[] = [];
    let size = 0;
    res.on("error", () => {});
    req.on("error", () => {});
    req.on("data", (chunk: Uint8Array) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    req.on("end", () => {
      if (this.#closing) {
        req.socket.destroy();
        return;
      }
      const body = new Uint8Array(size);
      let offset = 0;
      for (const chunk of chunks) {
        body.set(chunk, offset);
        offset += chunk.length;
      }
      chunks.length = 0;
      this.#handle(req, res, body, receivedAt);
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse, body: Uint8Array, receivedAt: number): void {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const record: AgentRequest = { method, path, headers: lowercaseHeaders(req.rawHeaders), body, receivedAt, accepted: false };
    this.requests.push(record);

    const route = pathname(path);
    let answer: () => void;
    if (route === TRACES_V04 || route === TRACES_OTLP) {
      const allowed = route === TRACES_V04 ? ["POST", "PUT"] : ["POST"];
      if (!allowed.includes(method)) {
        answer = () => this.#send(record, res, 405, "text/plain", `method ${method} not allowed`, { allow: allowed.join(", ") });
      } else if (route === TRACES_V04) {
        this.#decodeV04(record);
        answer = () => {
          if (record.decodeError !== undefined) {
            this.#send(record, res, 400, "text/plain", record.decodeError);
          } else {
            record.accepted = true;
            this.#send(record, res, 200, "application/json", JSON.stringify({ rate_by_service: this.#rates }));
          }
        };
      } else {
        const unsupported = this.#decodeOtlp(record);
        answer = () => {
          if (record.decodeError !== undefined) {
            this.#send(record, res, unsupported ? 415 : 400, "text/plain", record.decodeError);
          } else {
            record.accepted = true;
            this.#send(record, res, 200, "application/json", "{}");
          }
        };
      }
      const mode = this.#takeFailMode();
      if (mode !== null) {
        if ("drop" in mode) {
          record.dropped = true;
          req.socket.destroy();
          res.destroy();
          this.#notify();
          return;
        }
        if ("status" in mode) {
          this.#send(record, res, mode.status, "text/plain", mode.body ?? "");
          return;
        }
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          answer();
        }, mode.delayMs);
        this.#timers.add(timer);
        this.#notify();
        return;
      }
    } else {
      answer = () => this.#send(record, res, 404, "text/plain", "404 page not found");
    }
    answer();
  }

  /** Consumes one use of the current fail mode. */
  #takeFailMode(): FailMode | null {
    const mode = this.#fail;
    if (mode === null) return null;
    if (--this.#failLeft <= 0) {
      this.#fail = null;
      this.#failLeft = Infinity;
    }
    return mode;
  }

  #send(record: AgentRequest, res: ServerResponse, status: number, type: string, text: string, extra: Record<string, string> = {}): void {
    record.status = status;
    if (!res.destroyed && !res.writableEnded) {
      const bytes = encoder.encode(text);
      res.writeHead(status, { "content-type": type, "content-length": String(bytes.length), ...extra });
      res.end(bytes);
    }
    this.#notify();
  }

  #decodeV04(record: AgentRequest): void {
    try {
      const bytes = inflate(record.body, record.headers["content-encoding"]);
      const decoded = decode(bytes, { useBigInt64: true, mapKeyConverter: stringKey });
      record.traces = normalizePayload(decoded);
    } catch (error) {
      record.decodeError = errorMessage(error);
    }
  }

  /** Returns true when the body is in a format this agent does not support (protobuf). */
  #decodeOtlp(record: AgentRequest): boolean {
    const type = record.headers["content-type"] ?? "";
    if (type.includes("protobuf")) {
      record.decodeError = `unsupported OTLP content type ${type}: only JSON (application/json) is decoded`;
      return true;
    }
    try {
      const bytes = inflate(record.body, record.headers["content-encoding"]);
      record.otlp = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (error) {
      record.decodeError = `invalid OTLP JSON body: ${errorMessage(error)}`;
    }
    return false;
  }
}

// ---------------------------------------------------------------------------
// helpers

function listen(server: Server, target: string | number, host?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    if (typeof target === "string") server.listen(target, onListening);
    else server.listen(target, host, onListening);
  });
}

/** True when `path` is a unix socket file nobody accepts connections on. */
// deno-lint-ignore require-await
async function isStaleSocket(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) return false;
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: Error & { code?: string }) => {
      socket.destroy();
      resolve(error.code === "ECONNREFUSED" || error.code === "ENOENT");
    });
  });
}

function pathname(path: string): string {
  const q = path.indexOf("?");
  return q < 0 ? path : path.slice(0, q);
}

function lowercaseHeaders(raw: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    headers[name] = name in headers ? `${headers[name]}, ${raw[i + 1]}` : raw[i + 1];
  }
  return headers;
}

function copyRates(rates: Record<string, number>): Record<string, number> {
  const copy: Record<string, number> = {};
  for (const [key, rate] of Object.entries(rates)) {
    if (typeof rate !== "number" || !Number.isFinite(rate)) {
      throw new TypeError(`TestAgent: rate for ${JSON.stringify(key)} must be a finite number, got ${rate}`);
    }
    copy[key] = rate;
  }
  return copy;
}

function validateFailMode(mode: FailMode): void {
  const m = mode as { status?: unknown; delayMs?: unknown; drop?: unknown; times?: unknown; body?: unknown };
  const kinds = ["status", "delayMs", "drop"].filter((k) => (m as Record<string, unknown>)[k] !== undefined);
  if (kinds.length !== 1) {
    throw new TypeError(`TestAgent.fail: give exactly one of status, delayMs, drop; got ${JSON.stringify(mode)}`);
  }
  if (m.times !== undefined && !(Number.isInteger(m.times) && (m.times as number) > 0)) {
    throw new TypeError(`TestAgent.fail: times must be a positive integer, got ${m.times}`);
  }
  if (m.status !== undefined && !(Number.isInteger(m.status) && (m.status as number) >= 200 && (m.status as number) <= 599)) {
    throw new TypeError(`TestAgent.fail: status must be an integer in 200..599, got ${m.status}`);
  }
  if (m.body !== undefined && typeof m.body !== "string") {
    throw new TypeError("TestAgent.fail: body must be a string");
  }
  if (m.delayMs !== undefined && !(typeof m.delayMs === "number" && m.delayMs >= 0 && m.delayMs <= 2 ** 31 - 1)) {
    throw new TypeError(`TestAgent.fail: delayMs must be a number of milliseconds, got ${m.delayMs}`);
  }
  if (m.drop !== undefined && m.drop !== true) {
    throw new TypeError("TestAgent.fail: drop must be true");
  }
}

function inflate(body: Uint8Array, encoding: string | undefined): Uint8Array {
  const e = (encoding ?? "identity").trim().toLowerCase();
  if (e === "identity" || e === "") return body;
  if (e === "gzip" || e === "x-gzip") return new Uint8Array(gunzipSync(body));
  if (e === "deflate") return new Uint8Array(inflateSync(body));
  throw new Error(`unsupported Content-Encoding ${encoding}`);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function stringKey(key: unknown): string {
  if (typeof key !== "string") throw new Error(`map key must be a string, got ${typeof key} ${String(key)}`);
  return key;
}

function describe(value: unknown): string {
  if (value === null) return "nil";
  if (Array.isArray(value)) return "array";
  if (value instanceof Uint8Array) return "bin";
  if (typeof value === "object") return isMap(value) ? "map" : (value as object).constructor?.name ?? "object";
  return typeof value;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** Checks the payload shape (array of arrays of maps) and normalises every span. */
function normalizePayload(payload: unknown): DecodedSpan[][] {
  if (!Array.isArray(payload)) throw new Error(`payload must be an array of trace chunks, got ${describe(payload)}`);
  return payload.map((chunk, c) => {
    if (!Array.isArray(chunk)) throw new Error(`chunk ${c} must be an array of spans, got ${describe(chunk)}`);
    return chunk.map((span, s) => {
      if (!isMap(span)) throw new Error(`chunk ${c} span ${s} must be a map, got ${describe(span)}`);
      return normalizeSpan(span, `chunk ${c} span ${s}`);
    });
  });
}

function normalizeSpan(raw: Record<string, unknown>, where: string): DecodedSpan {
  const get = (key: string) => (raw[key] === null ? undefined : raw[key]);
  const fail = (key: string, expected: string): never => {
    throw new Error(`${where}: "${key}" must be ${expected}, got ${describe(raw[key])} ${stringify(raw[key])}`);
  };
  const str = (key: string): string => {
    const v = get(key);
    if (v === undefined) return "";
    return typeof v === "string" ? v : fail(key, "a string");
  };
  const int = (key: string, min: bigint, max: bigint, expected: string): bigint => {
    const v = get(key);
    if (v === undefined) return 0n;
    let n: bigint | undefined;
    if (typeof v === "bigint") n = v;
    else if (typeof v === "number" && Number.isSafeInteger(v)) n = BigInt(v);
    if (n === undefined || n < min || n > max) return fail(key, expected);
    return n;
  };
  const map = <T>(key: string, expected: string, value: (v: unknown) => T | undefined): Record<string, T> => {
    const v = get(key);
    const out: Record<string, T> = {};
    if (v === undefined) return out;
    if (!isMap(v)) return fail(key, `a map of ${expected}`);
    for (const [k, item] of Object.entries(v)) {
      const converted = value(item);
      if (converted === undefined) {
        throw new Error(`${where}: "${key}" value for ${JSON.stringify(k)} must be ${expected}, got ${describe(item)} ${stringify(item)}`);
      }
      out[k] = converted;
    }
    return out;
  };
  const array = (key: string): unknown[] => {
    const v = get(key);
    if (v === undefined) return [];
    return Array.isArray(v) ? v : fail(key, "an array");
  };
  const u64 = "an unsigned 64-bit integer";
  const i64 = "a signed 64-bit integer";
  return {
    service: str("service"),
    name: str("name"),
    resource: str("resource"),
    trace_id: int("trace_id", 0n, U64_MAX, u64),
    span_id: int("span_id", 0n, U64_MAX, u64),
    parent_id: int("parent_id", 0n, U64_MAX, u64),
    start: int("start", I64_MIN, I64_MAX, i64),
    duration: int("duration", I64_MIN, I64_MAX, i64),
    error: Number(int("error", -(1n << 31n), (1n << 31n) - 1n, "a 32-bit integer")),
    meta: withoutMarker(map("meta", "strings", (v) => (typeof v === "string" ? v : undefined))),
    metrics: map("metrics", "numbers", (v) => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined)),
    type: str("type"),
    meta_struct: map("meta_struct", "bin (msgpack blobs)", (v) => (v instanceof Uint8Array ? v.slice() : undefined)),
    span_links: array("span_links"),
    span_events: array("span_events"),
    raw,
  };
}

/**
 * The meta tag libdatadog's trace exporter adds to the first span of each
 * trace chunk, `"false"` when sent to an agent or the intake, not over OTLP
 * (libdd-data-pipeline 14, `trace_exporter::add_native_export_marker`).
 */
export const EXPORT_MARKER = "_dd.sdk.otlp_export";

function withoutMarker(meta: Record<string, string>): Record<string, string> {
  delete meta[EXPORT_MARKER];
  return meta;
}

function stringify(value: unknown): string {
  try {
    const text = JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
    return text === undefined ? String(value) : text.length > 60 ? text.slice(0, 57) + "..." : text;
  } catch {
    return String(value);
  }
}
