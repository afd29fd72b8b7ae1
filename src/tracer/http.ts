/**
 * HTTP servers: `traceHandler` wraps a fetch-style handler
 * (`(request: Request) => Response | Promise<Response>`, the shape of
 * `Deno.serve`, `Bun.serve` and most modern frameworks) in a server span;
 * `nodeListener` serves such a handler from `node:http`.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { runWithArg } from "./context.ts";
import { consoleLogger, type Logger, loggerOf } from "./log.ts";
import type { TracerSpan } from "./span.ts";
import type { Tracer } from "./tracer.ts";
import { activeServerSpan, routeOf, serverStatus, serverThrew, setRoute, startServerSpan } from "./instrument/server.ts";

/** A fetch-style handler; extra arguments (Deno's `info`, Bun's `server`) are passed through. */
export type FetchHandler<Rest extends unknown[] = []> = (request: Request, ...rest: Rest) => Response | Promise<Response>;

/** Options of {@link traceHandler}. */
export interface TraceHandlerOptions {
  /** The span's service. Default the tracer's. */
  service?: string;
  /** The operation name. Default `"web.request"` (as dd-trace-js names server spans). */
  name?: string;
  /**
   * The route template of a request, e.g. `"/users/:id"`: tagged
   * `http.route`, and the resource becomes `"<METHOD> <route>"` (else just
   * the method, as dd-trace-js does for unrouted requests). The handler may
   * also set them on `tracer.activeSpan()`.
   */
  route?: (request: Request) => string | undefined;
  /** Extra tags on every server span. */
  tags?: Record<string, unknown>;
}

/**
 * Wraps a fetch-style handler: each request runs in a server span (type
 * `web`, `span.kind: server`) that continues the trace of the incoming
 * headers (Datadog or W3C), is active for the handler's whole execution,
 * and carries Datadog's `http.method`, `http.url` (without the query
 * string), `http.useragent`, `http.route` and `http.status_code` tags.
 * A 5xx answer flags the span as an error; a thrown error or rejection is
 * recorded, with `http.status_code` 500 (what Deno.serve, Bun.serve and
 * `nodeListener` answer), and passed on. The span finishes when the
 * handler's `Response` is returned (a streamed body may still be flowing).
 *
 * Under an instrumentation's server span (the `http`, `deno-serve` or
 * `bun-serve` integration, on by default after `tracer.init()`), it makes
 * no second span: its `route` and `tags` go on the active server span, and
 * `name` and `service` are not used.
 *
 * ```ts
 * Deno.serve(traceHandler(tracer, (request) => new Response("hi")));
 * Bun.serve({ fetch: traceHandler(tracer, (request) => new Response("hi")) });
 * ```
 */
export function traceHandler<Rest extends unknown[]>(
  tracer: Tracer,
  handler: FetchHandler<Rest>,
  options: TraceHandlerOptions = {},
): (request: Request, ...rest: Rest) => Promise<Response> {
  // Not an async function: a promise chain on the handler's own result costs less per request than an async
  // function awaiting it (on JavaScriptCore most of all).
  const traced = (request: Request, ...rest: Rest): Promise<Response> => {
    // Already in the server span of an instrumentation (node:http, Deno.serve, Bun.serve): add to it, not a second one.
    let span: TracerSpan;
    try {
      const current = activeServerSpan(tracer);
      if (current) return underServerSpan(current, request, rest);
      span = startServerSpan(tracer, request, "fetch", options)!;
    } catch (error) {
      return Promise.reject(error);
    }
    const threw = (error: unknown): never => {
      serverThrew(span, error);
      span.finish();
      throw error;
    };
    let result: Response | Promise<Response>;
    try {
      // Without extra arguments, the request goes through the context's run: no closure per request.
      result = rest.length === 0 ? runWithArg(span, handler as unknown as FetchHandler, request) : tracer.activate(span, () => handler(request, ...rest));
    } catch (error) {
      serverThrew(span, error);
      span.finish();
      return Promise.reject(error);
    }
    return Promise.resolve(result).then((response) => {
      try {
        const status = response?.status;
        if (typeof status === "number") serverStatus(span, status, {});
      } catch (error) {
        threw(error);
      }
      span.finish();
      return response;
    }, threw);
  };
  /** The handler under an instrumentation's server span `current`: `route` and `tags` go on it. */
  const underServerSpan = async (current: TracerSpan, request: Request, rest: Rest): Promise<Response> => {
    try {
      setRoute(current, request.method.toUpperCase(), routeOf(request, options));
      if (options.tags) current.setTags(options.tags);
    } catch {
      // A request without a method: the span keeps what the instrumentation gave it.
    }
    try {
      return await handler(request, ...rest);
    } catch (error) {
      // Recorded here too: nodeListener answers the throw itself, so node:http's span would not see it.
      serverThrew(current, error);
      throw error;
    }
  };
  handlerLoggers.set(traced, loggerOf(tracer));
  return traced;
}

/** The logger of the tracer of each `traceHandler` handler, for `nodeListener`. */
const handlerLoggers = new WeakMap<object, Logger | undefined>();

/** Options of {@link nodeListener}. */
export interface NodeListenerOptions {
  /** Where an error thrown by the handler is written. Default the tracer's logger for a `traceHandler` handler, else `console.warn`. */
  logger?: Logger;
}

/**
 * The request {@link nodeListener} takes: `node:http`'s `IncomingMessage`,
 * declared by the members it reads so that the published `.d.ts` needs no
 * `@types/node`.
 */
export interface NodeRequest {
  /** The request method, e.g. `"GET"`. */
  readonly method?: string;
  /** The request target, e.g. `"/users?id=1"`. */
  readonly url?: string;
  /** The parsed headers; `host` makes the `Request`'s URL. */
  readonly headers: { readonly host?: string };
  /** The headers as received: name, value, name, value, … */
  readonly rawHeaders: readonly string[];
}

/** The response {@link nodeListener} takes: `node:http`'s `ServerResponse` (declared structurally, as {@link NodeRequest}). */
export interface NodeResponse {
  /** The status code sent. */
  statusCode: number;
}

/**
 * Serves a fetch-style handler from `node:http` (or `node:https`):
 * `createServer(nodeListener(handler))`. The request body streams into the
 * `Request`; the `Response` body streams back. A handler that throws gets a
 * 500 answer, and the error is logged (as `Deno.serve` prints it) through
 * `options.logger`, else the tracer's logger when the handler comes from
 * `traceHandler`, else `console.warn`. Works on Node, Bun and Deno.
 */
export function nodeListener(
  handler: FetchHandler,
  options: NodeListenerOptions = {},
): (req: NodeRequest, res: NodeResponse) => void {
  const logger = options.logger ?? handlerLoggers.get(handler) ?? consoleLogger;
  return (req, res) => void serve(handler, logger, req as IncomingMessage, res as ServerResponse);
}

async function serve(handler: FetchHandler, logger: Logger, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
  const url = `${encrypted ? "https" : "http"}://${req.headers.host ?? "localhost"}${req.url ?? "/"}`;
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const method = req.method ?? "GET";
  const controller = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) controller.abort();
  });
  const init: RequestInit & { duplex?: "half" } = { method, headers, signal: controller.signal };
  if (method !== "GET" && method !== "HEAD") {
    init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.duplex = "half";
  }
  let response: Response;
  try {
    response = await handler(new Request(url, init));
  } catch (error) {
    try {
      logger(`nodeListener: the handler threw; answered 500: ${error instanceof Error ? error.stack ?? String(error) : String(error)}`);
    } catch {
      // A failing logger must not break the server.
    }
    response = new Response("Internal Server Error", { status: 500 });
  }
  try {
    res.statusCode = response.status;
    if (response.statusText) res.statusMessage = response.statusText;
    for (const [key, value] of response.headers) if (key !== "set-cookie") res.setHeader(key, value);
    const cookies = response.headers.getSetCookie?.() ?? [];
    if (cookies.length > 0) res.setHeader("set-cookie", cookies);
    if (response.body && method !== "HEAD") {
      for await (const chunk of response.body) {
        if (!res.write(chunk)) {
          await new Promise((resolve) => {
            res.once("drain", resolve);
            res.once("close", resolve);
          });
        }
        if (res.destroyed) break;
      }
    }
    res.end();
  } catch {
    res.destroy();
  }
}
