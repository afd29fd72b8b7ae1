/**
 * The server span of a fetch-style request (`(request: Request) => Response`),
 * shared by `traceHandler` and the `deno-serve` and `bun-serve`
 * integrations, with dd-trace-js's http server plugin's tags
 * (`packages/datadog-plugin-http/src/server.js` through `web.js`, v5):
 * operation `web.request`, type `web`, resource the method (`"<METHOD>
 * <route>"` with a route), `span.kind: server`, `component`, `http.method`,
 * `http.url` (without query), `http.useragent`, `http.route`,
 * `http.status_code`; a 5xx answer is an error.
 *
 * The server spans the instrumentations make are marked, so that a handler
 * wrapped by hand (`traceHandler`) under them adds to the span already
 * active instead of making a second one.
 *
 * @module
 */
import { internals, type TracerSpan } from "../span.ts";
import type { Tracer } from "../tracer.ts";
import { serverError, stripQuery } from "./client.ts";

/** Options of a fetch-style server span. */
export interface ServerSpanOptions {
  /** The span's service. Default the tracer's. */
  service?: string;
  /** The operation name. Default `"web.request"`. */
  name?: string;
  /** The route template of a request, e.g. `"/users/:id"` (tagged `http.route`; the resource becomes `"<METHOD> <route>"`). */
  route?: (request: Request) => string | undefined;
  /** Extra tags on every server span. */
  tags?: Record<string, unknown>;
  /** Which statuses flag the span as an error. Default 500–599 (dd-trace-js's `DD_TRACE_HTTP_SERVER_ERROR_STATUSES`). */
  serverError?: (status: number) => boolean;
  /** URLs (without query) of requests that are not traced, e.g. a health check. Default: none. */
  ignore?: (url: string) => boolean;
}

/** Marks `span` as the server span of an instrumentation (node:http, Deno.serve, Bun.serve). */
export function markServerSpan(span: TracerSpan): void {
  internals.markServer(span);
}

/** The active span when it is the server span of an instrumentation (the request is already traced). */
export function activeServerSpan(tracer: Tracer): TracerSpan | undefined {
  const span = tracer.activeSpan();
  return span && internals.isServer(span) ? span : undefined;
}

/** The route of `request` by `options.route` (a throwing route function gives none). */
export function routeOf(request: Request, options: ServerSpanOptions): string | undefined {
  try {
    return options.route?.(request) || undefined;
  } catch {
    return undefined;
  }
}

/** Sets `http.route` and the resource `"<METHOD> <route>"` on a server span. */
export function setRoute(span: TracerSpan, method: string, route: string | undefined): void {
  if (!route) return;
  span.setTag("http.route", route);
  span.setTag("resource.name", `${method} ${route}`);
}

/** Starts the server span of `request` (continuing the trace of its headers); undefined when `options.ignore` skips it. */
export function startServerSpan(
  tracer: Tracer,
  request: Request,
  component: string,
  options: ServerSpanOptions,
  route = routeOf(request, options),
): TracerSpan | undefined {
  const method = request.method.toUpperCase();
  const url = stripQuery(request.url);
  if (options.ignore?.(url)) return undefined;
  const headers = request.headers;
  const span = tracer.startSpan(options.name ?? "web.request", {
    childOf: tracer.extract(headers) ?? null,
    service: options.service,
    type: "web",
    resource: route ? `${method} ${route}` : method,
    tags: options.tags,
  });
  // Set one by one, after the user's tags (which they override), rather than merged into one object per request.
  span.setTag("span.kind", "server");
  span.setTag("component", component);
  span.setTag("http.method", method);
  span.setTag("http.url", url);
  const userAgent = headers.get("user-agent");
  if (userAgent !== null) span.setTag("http.useragent", userAgent);
  if (route) span.setTag("http.route", route);
  return span;
}

/** Records the answer's status on a server span. */
export function serverStatus(span: TracerSpan, status: number, options: ServerSpanOptions): void {
  span.setTag("http.status_code", String(status));
  if ((options.serverError ?? serverError)(status)) span.setTag("error", true);
}

/** Records a handler's exception: the error, and `http.status_code` 500 (what Deno.serve and Bun.serve answer by default). */
export function serverThrew(span: TracerSpan, error: unknown): void {
  span.setError(error);
  span.setTag("http.status_code", "500");
}

/**
 * `response` with a body whose end (or cancellation) calls `end`, so that a
 * streamed answer's span lasts as long as its body; `end` is called at once
 * when there is no body. A body that fails passes its error to `end`.
 */
export function onBodyEnd(response: Response, end: (error?: unknown) => void): Response {
  const body = response.body;
  if (body === null) {
    end();
    return response;
  }
  let ended = false;
  const once = (error?: unknown) => {
    if (ended) return;
    ended = true;
    end(error);
  };
  const reader = body.getReader();
  const wrapped = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          once();
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        once(error);
        controller.error(error);
      }
    },
    cancel(reason) {
      once();
      return reader.cancel(reason);
    },
  });
  return new Response(wrapped, { status: response.status, statusText: response.statusText, headers: response.headers });
}

/** What a traced fetch-style call knows of its server: how to learn that the answer was delivered. */
export interface Delivery {
  /** Resolves (or rejects) once the answer is sent or the connection is gone (Deno's `info.completed`). */
  completed?: Promise<unknown>;
  /** Whether to wrap the body to see its end, when there is no `completed`. */
  wrapBody?: (response: Response) => boolean;
}

/**
 * Runs one fetch-style handler call in a server span: active for the
 * handler, its status recorded, ended when the answer is delivered (see
 * {@link Delivery}; else when the handler's `Response` is returned). A
 * throw or rejection is recorded (with status 500) and passed on. An
 * ignored request runs untouched.
 */
export function serveInSpan(
  tracer: Tracer,
  component: string,
  options: ServerSpanOptions,
  request: Request,
  route: string | undefined,
  delivery: Delivery,
  call: () => Response | Promise<Response> | undefined,
): Response | Promise<Response> | undefined {
  let span: TracerSpan | undefined;
  if (request instanceof Request) {
    try {
      span = startServerSpan(tracer, request, component, options, route ?? routeOf(request, options));
    } catch {
      // A request the span cannot be made of: served untraced.
    }
  }
  if (!span) return call();
  const s = span;
  markServerSpan(s);
  let finished = false;
  const finish = (error?: unknown) => {
    if (finished) return;
    finished = true;
    if (error !== undefined) s.setError(error);
    s.finish();
  };
  const answered = (response: Response | undefined): Response | undefined => {
    // No Response: a Bun WebSocket upgrade (`server.upgrade(request)`), which has no status to record.
    if (!(response instanceof Response)) {
      finish();
      return response;
    }
    try {
      serverStatus(s, response.status, options);
      if (delivery.completed) {
        delivery.completed.then(() => finish(), () => finish());
        return response;
      }
      if (delivery.wrapBody?.(response)) return onBodyEnd(response, finish);
    } catch {
      // A response the runtime will reject anyway: the span ends now.
    }
    finish();
    return response;
  };
  const threw = (error: unknown): never => {
    serverThrew(s, error);
    finish();
    throw error;
  };
  let result: Response | Promise<Response> | undefined;
  try {
    result = tracer.activate(s, call);
  } catch (error) {
    return threw(error);
  }
  // A sync answer stays sync (Bun answers those faster).
  if (result instanceof Response || result === undefined) return answered(result);
  return Promise.resolve(result).then(answered as (r: Response) => Response, threw);
}
