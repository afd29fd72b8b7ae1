/**
 * The client span of an outgoing HTTP request, shared by the fetch and
 * node:http instrumentations, with dd-trace-js's http client plugin's tags
 * (`packages/datadog-plugin-http/src/client.js`, v5): operation
 * `http.request`, type `http`, resource the method, `span.kind: client`,
 * `component`, `http.method`, `http.url` (without query or fragment),
 * `out.host`, `network.destination.port`, `http.status_code`; and
 * `peer.service` from `out.host` (`_dd.peer.service.source: out.host`, as
 * dd-trace-js does with `DD_TRACE_PEER_SERVICE_DEFAULTS_ENABLED`).
 *
 * @module
 */
import type { TracerSpan } from "../span.ts";
import type { Tracer } from "../tracer.ts";

/** Options shared by the HTTP instrumentations. */
export interface HttpInstrumentationOptions {
  /** The span's service. Default the parent's, else the tracer's. */
  service?: string;
  /**
   * Which response statuses flag a client span as an error. Default
   * 400–499 (dd-trace-js's `DD_TRACE_HTTP_CLIENT_ERROR_STATUSES`).
   */
  clientError?: (status: number) => boolean;
  /**
   * Which statuses flag a server span as an error. Default 500–599
   * (dd-trace-js's `DD_TRACE_HTTP_SERVER_ERROR_STATUSES`).
   */
  serverError?: (status: number) => boolean;
  /** URLs (without query) of requests that are not traced, e.g. a health check. Default: none. */
  ignore?: (url: string) => boolean;
}

/** The default client error statuses. */
export const clientError = (status: number): boolean => status >= 400 && status < 500;
/** The default server error statuses. */
export const serverError = (status: number): boolean => status >= 500 && status < 600;

/**
 * Results of {@link stripQuery} by the URL's text up to and including its
 * first `?` or `#` (the whole URL when it has neither): what follows that
 * character cannot change the result, so a server's requests for the same
 * path share one parse (`new URL` costs more than the rest of a server
 * span's tags). Emptied when full, so many distinct paths only bound it.
 */
const stripped = new Map<string, string>();
const STRIPPED_MAX = 1000;

/** A URL without its query and fragment; the input unchanged when it does not parse. */
export function stripQuery(url: string): string {
  const query = url.indexOf("?");
  const fragment = url.indexOf("#");
  const cut = query < 0 || (fragment >= 0 && fragment < query) ? fragment : query;
  const key = cut < 0 ? url : url.slice(0, cut + 1);
  let result = stripped.get(key);
  if (result === undefined) {
    try {
      const u = new URL(key);
      result = `${u.protocol}//${u.host}${u.pathname}`;
    } catch {
      result = cut < 0 ? url : url.slice(0, cut);
    }
    if (stripped.size >= STRIPPED_MAX) stripped.clear();
    stripped.set(key, result);
  }
  return result;
}

/** What a client request is, for its span. */
export interface ClientRequestInfo {
  method: string;
  /** Without query. */
  url: string;
  hostname: string;
  port?: number;
}

/** Starts the client span of a request (a child of the active span). */
export function startClientSpan(tracer: Tracer, component: string, info: ClientRequestInfo, options: HttpInstrumentationOptions): TracerSpan {
  const method = info.method.toUpperCase();
  const tags: Record<string, unknown> = {
    "span.kind": "client",
    component,
    "http.method": method,
    "http.url": info.url,
    "out.host": info.hostname,
    "peer.service": info.hostname,
    "_dd.peer.service.source": "out.host",
  };
  if (info.port !== undefined && Number.isFinite(info.port)) tags["network.destination.port"] = info.port;
  return tracer.startSpan("http.request", { service: options.service, type: "http", resource: method, tags });
}

/** Records the response status on a client span. */
export function clientStatus(span: TracerSpan, status: number, options: HttpInstrumentationOptions): void {
  span.setTag("http.status_code", String(status));
  if ((options.clientError ?? clientError)(status)) span.setTag("error", true);
}
