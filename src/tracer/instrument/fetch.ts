/**
 * `instrumentFetch(tracer)`: traces every call of the global `fetch` (Node's
 * undici, Bun's and Deno's own) with a client span (see `client.ts` for its
 * tags), and injects the trace context headers into the request, as
 * dd-trace-js's fetch plugin does (`packages/datadog-plugin-fetch`). The
 * span is a child of the active span, and ends when the response headers
 * arrive or the call rejects (the error is recorded; an `AbortError` is
 * not, as in dd-trace-js).
 *
 * @module
 */
import { type AnyTracer, resolveTracer } from "../any-tracer.ts";
import { clientStatus, type HttpInstrumentationOptions, startClientSpan, stripQuery } from "./client.ts";

/** What `instrumentFetch` returns. */
export interface Instrumentation {
  /** Puts the original back (idempotent). Calls already made finish normally. */
  uninstrument(): void;
}

type Fetch = typeof globalThis.fetch;

const PATCHED = Symbol.for("@dd-ffi/trace.fetch");

/**
 * Replaces `globalThis.fetch` with a traced one. Calling it again while it
 * is instrumented replaces the previous instrumentation (whose
 * `uninstrument()` then does nothing).
 *
 * ```ts
 * const fetchTracing = instrumentFetch(tracer);
 * await fetch("https://api.example.com/items?page=2"); // span http.request, http.url https://api.example.com/items
 * fetchTracing.uninstrument();
 * ```
 */
export function instrumentFetch(t: AnyTracer, options: HttpInstrumentationOptions = {}): Instrumentation {
  const g = globalThis as { fetch: Fetch & { [PATCHED]?: Fetch } };
  const original: Fetch = g.fetch[PATCHED] ?? g.fetch;
  if (typeof original !== "function") throw new TypeError("instrumentFetch: there is no global fetch");
  const traced = function fetch(this: unknown, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const tracer = resolveTracer(t);
    let url: string;
    let method: string;
    let parsed: URL;
    let request: Request | undefined;
    try {
      request = typeof input === "object" && "url" in input && typeof input.url === "string" ? input as Request : undefined;
      method = init?.method ?? request?.method ?? "GET";
      parsed = new URL(request ? request.url : String(input));
      url = stripQuery(parsed.href);
    } catch {
      // An input that fetch itself rejects (a bad URL, …): leave it to fetch.
      return original.call(this, input, init);
    }
    if (options.ignore?.(url)) return original.call(this, input, init);
    const span = startClientSpan(tracer, "fetch", {
      method,
      url,
      hostname: parsed.hostname,
      port: parsed.port ? Number(parsed.port) : parsed.protocol === "https:" ? 443 : parsed.protocol === "http:" ? 80 : undefined,
    }, options);
    let pending: Promise<Response>;
    try {
      const headers = new Headers(init?.headers ?? request?.headers);
      tracer.inject(span, headers);
      pending = tracer.activate(span, () => original.call(this, input, { ...init, headers }));
    } catch (error) {
      span.setError(error);
      span.finish();
      throw error;
    }
    return pending.then(
      (response) => {
        clientStatus(span, response.status, options);
        span.finish();
        return response;
      },
      (error) => {
        if (!(error instanceof Error && error.name === "AbortError")) span.setError(error);
        span.finish();
        throw error;
      },
    );
  } as Fetch & { [PATCHED]?: Fetch };
  traced[PATCHED] = original;
  g.fetch = traced;
  return {
    uninstrument() {
      if (g.fetch === traced) g.fetch = original;
    },
  };
}
