/**
 * `instrumentNodeHttp(tracer)`: server spans for every `node:http` and
 * `node:https` server, and client spans for `http.request` / `http.get`
 * (and https's), on Node, Bun and Deno alike, without wrapping handlers.
 *
 * Servers: `Server.prototype.emit` is patched so that each `'request'`
 * event runs in a server span (as dd-trace-js's http server plugin does;
 * the `http.server.request.start` diagnostics channel is not used because
 * Bun does not publish it, and a channel subscriber cannot make the span
 * active for the handler). The span continues the trace of the request's
 * headers, is active for the whole handler (its awaits and callbacks
 * included), and ends when the response finishes or the connection closes,
 * with dd-trace-js's tags: `web.request`, type `web`, resource the method,
 * `span.kind: server`, `component: http`, `http.method`, `http.url`
 * (without query), `http.useragent`, `http.status_code`; a 5xx answer is
 * an error. A handler that throws has the error recorded and
 * `http.status_code` 500 (the exception is passed on unchanged).
 *
 * Clients: the span is a child of the active span (see `client.ts` for its
 * tags); the trace context headers are set on the request; it ends when
 * the response body ends, or on an error or an aborted request. The module
 * objects are patched (`import http from "node:http"`, `require("http")`);
 * on Node, named imports follow (`syncBuiltinESMExports`); on Bun and Deno a
 * named import taken before the patch keeps the original.
 *
 * @module
 */
import http, { type IncomingMessage, type RequestOptions, type ServerResponse } from "node:http";
import https from "node:https";
import nodeModule from "node:module";
import { type AnyTracer, resolveTracer } from "../any-tracer.ts";
import type { TracerSpan } from "../span.ts";
import { clientStatus, type HttpInstrumentationOptions, serverError, startClientSpan, stripQuery } from "./client.ts";
import type { Instrumentation } from "./fetch.ts";
import { markServerSpan } from "./server.ts";

type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean;
type RequestFn = typeof http.request;

/** Options of {@link instrumentNodeHttp}. */
export interface NodeHttpOptions extends HttpInstrumentationOptions {
  /** Trace servers. Default true. */
  server?: boolean;
  /** Trace `request` / `get`. Default true. */
  client?: boolean;
  /** The server spans' operation name. Default `"web.request"`. */
  serverName?: string;
}

let active: (() => void) | undefined;

/**
 * A server with this property set to true is never traced: the project's
 * own `TestAgent` sets it, so that an application tracing node:http in the
 * same process does not trace the agent's intake (spans that would make
 * more spans).
 */
export const UNTRACED_SERVER: unique symbol = Symbol.for("@dd-ffi/trace.untraced-server");

/**
 * Patches `node:http` and `node:https` (servers and clients). Calling it
 * again replaces the previous instrumentation.
 *
 * ```ts
 * const httpTracing = instrumentNodeHttp(tracer);
 * http.createServer((req, res) => res.end("hi")).listen(8080); // a web.request span per request
 * httpTracing.uninstrument();
 * ```
 */
export function instrumentNodeHttp(t: AnyTracer, options: NodeHttpOptions = {}): Instrumentation {
  active?.();
  const restore: (() => void)[] = [];
  if (options.server ?? true) {
    for (const proto of new Set([http.Server.prototype, https.Server.prototype])) {
      const target = proto as unknown as { emit: Emit };
      const hadOwn = Object.hasOwn(proto, "emit");
      const original = target.emit;
      target.emit = function emit(this: unknown, event: string | symbol, ...args: unknown[]): boolean {
        if (event !== "request" || (this as { [UNTRACED_SERVER]?: boolean })?.[UNTRACED_SERVER] === true) return original.call(this, event, ...args);
        return serve(resolveTracer(t), options, args[0] as IncomingMessage, args[1] as ServerResponse, () => original.call(this, event, ...args));
      };
      restore.push(() => {
        if (hadOwn) target.emit = original;
        else delete (target as { emit?: Emit }).emit;
      });
    }
  }
  if (options.client ?? true) {
    for (const [mod, protocol] of [[http, "http:"], [https, "https:"]] as const) {
      const m = mod as unknown as { request: RequestFn; get: RequestFn };
      const originalRequest = m.request;
      const originalGet = m.get;
      const request = function request(this: unknown, ...args: unknown[]): http.ClientRequest {
        return traceRequest(resolveTracer(t), options, protocol, args, (a) => (originalRequest as (...x: unknown[]) => http.ClientRequest).apply(this, a));
      } as RequestFn;
      const get = function get(this: unknown, ...args: unknown[]): http.ClientRequest {
        const req = (request as (...x: unknown[]) => http.ClientRequest).apply(this, args);
        req.end();
        return req;
      } as RequestFn;
      m.request = request;
      m.get = get;
      restore.push(() => {
        m.request = originalRequest;
        m.get = originalGet;
      });
    }
  }
  syncExports();
  let done = false;
  const uninstrument = () => {
    if (done) return;
    done = true;
    for (const r of restore.reverse()) r();
    syncExports();
    if (active === uninstrument) active = undefined;
  };
  active = uninstrument;
  return { uninstrument };
}

/** Makes named imports (`import { request } from "node:http"`) see the patch too, where the runtime can (Node's `syncBuiltinESMExports`). */
function syncExports(): void {
  try {
    (nodeModule as { syncBuiltinESMExports?: () => void }).syncBuiltinESMExports?.();
  } catch {
    // Not available: only `http.request` through the module object is traced.
  }
}

/** Runs one `'request'` event in a server span. */
function serve(tracer: ReturnType<typeof resolveTracer>, options: NodeHttpOptions, req: IncomingMessage, res: ServerResponse, emit: () => boolean): boolean {
  let span: TracerSpan;
  try {
    const method = (req.method ?? "GET").toUpperCase();
    const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
    const url = stripQuery(`${encrypted ? "https" : "http"}://${req.headers.host ?? "localhost"}${req.url ?? "/"}`);
    if (options.ignore?.(url)) return emit();
    span = tracer.startSpan(options.serverName ?? "web.request", {
      childOf: tracer.extract(req.headers) ?? null,
      service: options.service,
      type: "web",
      resource: method,
      tags: {
        "span.kind": "server",
        component: "http",
        "http.method": method,
        "http.url": url,
        "http.useragent": req.headers["user-agent"],
      },
    });
    markServerSpan(span);
  } catch {
    return emit();
  }
  let finished = false;
  const finish = (status?: number) => {
    if (finished) return;
    finished = true;
    // A connection closed before the headers went out has no status to record.
    const code = status ?? (res.headersSent ? res.statusCode : undefined);
    if (typeof code === "number" && code > 0) {
      span.setTag("http.status_code", String(code));
      if ((options.serverError ?? serverError)(code)) span.setTag("error", true);
    }
    span.finish();
  };
  // One listener for both (`finished` keeps the first), not a `once` wrapper each: `close` follows `finish`.
  const end = () => finish();
  res.on("finish", end);
  res.on("close", end);
  try {
    return tracer.activate(span, emit);
  } catch (error) {
    span.setError(error);
    finish(500);
    throw error;
  }
}

/** The method, URL and host of a `request(url?, options?, callback?)` call. */
function requestInfo(protocol: string, args: unknown[]): { method: string; url: string; hostname: string; port?: number } {
  let options: RequestOptions & { href?: string } = {};
  let base: URL | undefined;
  const first = args[0];
  if (typeof first === "string" || first instanceof URL) {
    base = new URL(String(first));
    if (args[1] && typeof args[1] === "object") options = args[1] as RequestOptions;
  } else if (first && typeof first === "object") {
    options = first as RequestOptions;
  }
  const proto = options.protocol ?? base?.protocol ?? protocol;
  const hostname = (options.hostname ?? options.host?.replace(/:\d+$/, "") ?? base?.hostname ?? "localhost").replace(/^\[|\]$/g, "");
  const portText = options.port ?? (base?.port || undefined);
  const port = portText !== undefined && portText !== null && portText !== "" ? Number(portText) : proto === "https:" ? 443 : 80;
  const path = options.path ?? (base ? `${base.pathname}${base.search}` : "/");
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const defaultPort = (proto === "https:" && port === 443) || (proto === "http:" && port === 80);
  const url = stripQuery(`${proto}//${host}${defaultPort ? "" : `:${port}`}${path}`);
  return { method: options.method ?? "GET", url, hostname, port };
}

/** Runs one `request()` call in a client span. */
function traceRequest(
  tracer: ReturnType<typeof resolveTracer>,
  options: NodeHttpOptions,
  protocol: string,
  args: unknown[],
  call: (args: unknown[]) => http.ClientRequest,
): http.ClientRequest {
  let info: ReturnType<typeof requestInfo>;
  try {
    info = requestInfo(protocol, args);
  } catch {
    return call(args);
  }
  if (options.ignore?.(info.url)) return call(args);
  const span = startClientSpan(tracer, "http", info, options);
  let req: http.ClientRequest;
  try {
    req = tracer.activate(span, () => call(args));
  } catch (error) {
    span.setError(error);
    span.finish();
    throw error;
  }
  let finished = false;
  const finish = (error?: unknown) => {
    if (finished) return;
    finished = true;
    if (error !== undefined) span.setError(error);
    span.finish();
  };
  try {
    const headers: Record<string, string> = {};
    tracer.inject(span, headers);
    for (const [name, value] of Object.entries(headers)) req.setHeader(name, value);
  } catch {
    // The headers were already sent: the request goes without the context.
  }
  let responded = false;
  req.once("response", (res: IncomingMessage) => {
    responded = true;
    if (typeof res.statusCode === "number") clientStatus(span, res.statusCode, options);
    res.once("end", () => finish());
    res.once("close", () => finish());
    res.once("error", (e) => finish(e));
  });
  req.once("error", (e) => finish(e));
  // Closed without a response: aborted (an error, if any, came first).
  req.once("close", () => responded || finish());
  return req;
}
