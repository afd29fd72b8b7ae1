/**
 * `instrumentBunServe(tracer)`: a server span for every request that a
 * `Bun.serve` server started while it is on answers from JavaScript (its
 * `fetch` handler, and each function of its `routes`), without wrapping
 * handlers by hand (the `bun-serve` integration of `tracer.init()`). Bun's
 * `serve` is reached through the runtime adapter (`RuntimeInfo.nativeServer`),
 * never as `Bun.serve` here.
 *
 * The span has `traceHandler`'s tags (see `server.ts`) with
 * `component: bun-serve`, and is active in the handler. A route handler's
 * span has the route's pattern as `http.route` (`routes: { "/users/:id": … }`
 * → `http.route: /users/:id`, resource `GET /users/:id`); the `fetch`
 * handler's comes from the `route(request)` option. Static `Response`s in
 * `routes` are answered by Bun without JavaScript, so untraced. A handler
 * that throws has the error and `http.status_code` 500 recorded (what Bun
 * answers without an `error` handler); the exception is passed on.
 *
 * When the span ends: Bun tells no one when an answer is delivered, so the
 * body is passed through a stream that ends the span when the body ends
 * (or is cancelled). Only a response with a `Content-Type` header of its
 * own is passed through: for one without, Bun infers the type from the body
 * (text for a string, a file's type, …), which a re-wrapped body would lose;
 * such a span ends when the handler returns. A passed-through body that is
 * large goes out chunked (Bun sends small ones with their length).
 * `server.reload(options)` is traced the same way.
 *
 * @module
 */
import { runtime } from "../../../ffi/load.ts";
import { type AnyTracer, resolveTracer } from "../any-tracer.ts";
import type { Instrumentation } from "./fetch.ts";
import { type Delivery, serveInSpan, type ServerSpanOptions } from "./server.ts";

type Handler = (this: unknown, request: Request, server?: unknown) => Response | Promise<Response> | undefined;
type Serve = ((this: unknown, options: unknown, ...rest: unknown[]) => unknown) & { [PATCHED]?: Serve };

const PATCHED = Symbol.for("@dd-ffi/trace.serve");
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]);
const delivery: Delivery = { wrapBody: (response) => response.headers.has("content-type") };

/** The runtime's `serve` holder when it is Bun's. */
function bunServer(): { serve: Serve } | undefined {
  const host = runtime.nativeServer as { serve: Serve } | undefined;
  return runtime.name === "bun" && typeof host?.serve === "function" ? host : undefined;
}

/** Whether `Bun.serve` exists here (Bun only). */
export const bunServeAvailable = (): boolean => bunServer() !== undefined;

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && [Object.prototype, null].includes(Object.getPrototypeOf(value));

/**
 * Patches `Bun.serve` so that the servers started from now on trace each
 * request. Calling it again replaces the previous instrumentation.
 * `uninstrument()` restores `Bun.serve`; the servers started meanwhile keep
 * running, untraced from then on.
 *
 * ```ts
 * const serveTracing = instrumentBunServe(tracer);
 * Bun.serve({ routes: { "/users/:id": (req) => Response.json({ id: req.params.id }) } }); // http.route /users/:id
 * ```
 *
 * @throws {TypeError} not running on Bun.
 */
export function instrumentBunServe(t: AnyTracer, options: ServerSpanOptions = {}): Instrumentation {
  const host = bunServer();
  if (!host) throw new TypeError("instrumentBunServe: Bun.serve is only on Bun");
  const original: Serve = host.serve[PATCHED] ?? host.serve;
  let live = true;
  const wrap = (handler: unknown, route: string | undefined): unknown => {
    if (typeof handler !== "function") return handler;
    const h = handler as Handler;
    return function handle(this: unknown, request: Request, server?: unknown) {
      if (!live) return h.call(this, request, server);
      return serveInSpan(resolveTracer(t), "bun-serve", options, request, route, delivery, () => h.call(this, request, server));
    };
  };
  /** `routes` with each handler function wrapped: `"/path": handler` and `"/path": { GET: handler, … }`. */
  const wrapRoutes = (routes: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [pattern, value] of Object.entries(routes)) {
      if (typeof value === "function") out[pattern] = wrap(value, pattern);
      else if (isPlainObject(value) && Object.keys(value).some((k) => METHODS.has(k))) {
        out[pattern] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, METHODS.has(k) ? wrap(v, pattern) : v]));
      } else out[pattern] = value;
    }
    return out;
  };
  // node:http's servers on Bun come through here too, with `onNodeHTTPRequest` and no `fetch`: left alone
  // (the http integration traces them).
  const wrapOptions = (o: unknown): unknown => {
    if (typeof o !== "object" || o === null) return o;
    const { fetch, routes } = o as { fetch?: unknown; routes?: unknown };
    if (typeof fetch !== "function" && !isPlainObject(routes)) return o;
    // An app object (`export default app`, e.g. Hono's) is not copied but inherited from, so that what Bun
    // reads of it (its fetch, port, …) still comes from it.
    const copy: Record<string, unknown> = isPlainObject(o) ? { ...o } : Object.create(o);
    if (typeof copy.fetch === "function") copy.fetch = wrap(copy.fetch, undefined);
    if (isPlainObject(copy.routes)) copy.routes = wrapRoutes(copy.routes);
    return copy;
  };
  const serve = function serve(this: unknown, o: unknown, ...rest: unknown[]): unknown {
    const server = original.call(this, wrapOptions(o), ...rest) as { reload?: (o: unknown) => unknown } | undefined;
    const reload = server?.reload;
    if (typeof reload === "function") {
      try {
        server!.reload = function (this: unknown, next: unknown) {
          return reload.call(this, live ? wrapOptions(next) : next);
        };
      } catch {
        // A server whose reload cannot be replaced: reloaded handlers go untraced.
      }
    }
    return server;
  } as Serve;
  serve[PATCHED] = original;
  host.serve = serve;
  return {
    uninstrument() {
      live = false;
      if (host.serve === serve) host.serve = original;
    },
  };
}
