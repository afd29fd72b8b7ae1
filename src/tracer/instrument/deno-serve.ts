/**
 * `instrumentDenoServe(tracer)`: a server span for every request of every
 * `Deno.serve` server started while it is on, without wrapping handlers
 * (the `deno-serve` integration of `tracer.init()`). Deno's `serve` is
 * reached through the runtime adapter (`RuntimeInfo.nativeServer`), never
 * as `Deno.serve` here.
 *
 * The span has `traceHandler`'s tags (see `server.ts`) with
 * `component: deno-serve`, is active in the handler, and ends when Deno
 * has delivered the answer, a streamed body included (`info.completed`,
 * which also settles when the client goes away). A handler that throws has
 * the error and `http.status_code` 500 recorded (Deno's default `onError`
 * answers 500); the exception is passed on. `http.route` comes from the
 * `route(request)` option (Deno.serve has no routes of its own).
 *
 * @module
 */
import { runtime } from "../../../ffi/load.ts";
import { type AnyTracer, resolveTracer } from "../any-tracer.ts";
import type { Instrumentation } from "./fetch.ts";
import { serveInSpan, type ServerSpanOptions } from "./server.ts";

type Handler = (this: unknown, request: Request, info?: { completed?: Promise<unknown> }) => Response | Promise<Response>;
type Serve = ((this: unknown, ...args: unknown[]) => unknown) & { [PATCHED]?: Serve };

const PATCHED = Symbol.for("@dd-ffi/trace.serve");

/** The runtime's `serve` holder when it is Deno's. */
function denoServer(): { serve: Serve } | undefined {
  const host = runtime.nativeServer as { serve: Serve } | undefined;
  return runtime.name === "deno" && typeof host?.serve === "function" ? host : undefined;
}

/** Whether `Deno.serve` exists here (Deno only). */
export const denoServeAvailable = (): boolean => denoServer() !== undefined;

/**
 * Patches `Deno.serve` so that the servers started from now on trace each
 * request. Calling it again replaces the previous instrumentation.
 * `uninstrument()` restores `Deno.serve`; the servers started meanwhile keep
 * running, untraced from then on.
 *
 * ```ts
 * const serveTracing = instrumentDenoServe(tracer, { route: (r) => router.match(r)?.pattern });
 * Deno.serve((request) => new Response("hi")); // a web.request span per request
 * ```
 *
 * @throws {TypeError} not running on Deno.
 */
export function instrumentDenoServe(t: AnyTracer, options: ServerSpanOptions = {}): Instrumentation {
  const host = denoServer();
  if (!host) throw new TypeError("instrumentDenoServe: Deno.serve is only on Deno");
  const original: Serve = host.serve[PATCHED] ?? host.serve;
  let live = true;
  const wrap = (handler: unknown): unknown => {
    if (typeof handler !== "function") return handler;
    const h = handler as Handler;
    return function handle(this: unknown, request: Request, info?: { completed?: Promise<unknown> }) {
      if (!live) return h.call(this, request, info);
      return serveInSpan(resolveTracer(t), "deno-serve", options, request, undefined, { completed: info?.completed }, () => h.call(this, request, info));
    };
  };
  // Deno.serve(handler), Deno.serve(options, handler), Deno.serve({ ...options, handler }).
  const serve = function serve(this: unknown, ...args: unknown[]): unknown {
    if (typeof args[0] === "function") args[0] = wrap(args[0]);
    else if (typeof args[1] === "function") args[1] = wrap(args[1]);
    else if (args[0] && typeof args[0] === "object" && typeof (args[0] as { handler?: unknown }).handler === "function") {
      args[0] = { ...args[0], handler: wrap((args[0] as { handler: unknown }).handler) };
    }
    return original.apply(this, args);
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
