/**
 * Log injection: the trace context in application logs, in the fields that
 * Datadog's log pipeline correlates with traces: `dd.trace_id`,
 * `dd.span_id`, `dd.service`, `dd.env`, `dd.version`. The record is
 * dd-trace-js's (`packages/dd-trace/src/opentracing/propagation/log.js`):
 * the trace id is 32 hex digits for a 128-bit trace id (dd-trace-js's
 * default, `DD_TRACE_128_BIT_TRACEID_LOGGING_ENABLED`), else the low 64 bits
 * in decimal; the span id is decimal. Nothing is patched in the logging
 * libraries; each helper is opted into where the logger is made:
 *
 * ```ts
 * const logger = pino({ mixin: pinoMixin(tracer) });
 * const logger = winston.createLogger({ format: winston.format.combine(winstonFormat(tracer), winston.format.json()) });
 * const undo = instrumentConsole(tracer); // console.log("hi") → hi [dd.service=… dd.env=… dd.version=… dd.trace_id=… dd.span_id=…]
 * ```
 *
 * @module
 */
import type { SpanContext } from "./context.ts";
import type { TracerSpan } from "./span.ts";
import { type AnyTracer, resolveTracer } from "./any-tracer.ts";

/** The `dd` record of a log line. Fields without a value are left out. */
export interface LogContext {
  /** The trace id: 32 hex digits for a 128-bit id, else the decimal id. */
  trace_id?: string;
  /** The span id, decimal. */
  span_id?: string;
  /** The tracer's service. */
  service?: string;
  /** The tracer's `env`. */
  env?: string;
  /** The tracer's `version`. */
  version?: string;
}

const MASK64 = (1n << 64n) - 1n;

/**
 * The `dd` record for `span` (default the active span; without one, only
 * service, env and version).
 */
export function logContext(t: AnyTracer, span?: TracerSpan | SpanContext | null): LogContext {
  const tracer = resolveTracer(t);
  const source = span ?? tracer.activeSpan();
  const dd: LogContext = {};
  if (source) {
    const { traceId, spanId } = source;
    dd.trace_id = traceId >> 64n ? traceId.toString(16).padStart(32, "0") : (traceId & MASK64).toString();
    dd.span_id = spanId.toString();
  }
  if (tracer.service) dd.service = tracer.service;
  if (tracer.env) dd.env = tracer.env;
  if (tracer.version) dd.version = tracer.version;
  return dd;
}

/** `tracer.inject(span, "log", carrier)`: sets `carrier.dd`. */
export function injectLog(tracer: AnyTracer, span: TracerSpan | SpanContext | null | undefined, carrier: unknown): void {
  if (typeof carrier !== "object" || carrier === null) return;
  const dd = logContext(tracer, span);
  if (Object.keys(dd).length > 0) (carrier as { dd?: LogContext }).dd = dd;
}

/**
 * A pino `mixin`: `pino({ mixin: pinoMixin(tracer) })` adds
 * `"dd": { trace_id, span_id, service, env, version }` to every line.
 */
export function pinoMixin(tracer: AnyTracer): () => { dd: LogContext } {
  return () => ({ dd: logContext(tracer) });
}

/** A winston format (an object with `transform`, as `winston.format(fn)()` makes). */
export interface WinstonFormat {
  /** Sets `info.dd` and returns `info`. */
  transform<T extends object>(info: T): T;
}

/**
 * A winston format that sets `info.dd`: put it before the output format,
 * `winston.format.combine(winstonFormat(tracer), winston.format.json())`.
 */
export function winstonFormat(tracer: AnyTracer): WinstonFormat {
  return {
    transform<T extends object>(info: T): T {
      (info as { dd?: LogContext }).dd = logContext(tracer);
      return info;
    },
  };
}

/**
 * The `dd` record as text, in the form Datadog's log pipeline parses from
 * plain-text lines: `[dd.service=shop dd.env=prod dd.version=1.2 dd.trace_id=… dd.span_id=…]`.
 */
export function logFields(tracer: AnyTracer, span?: TracerSpan | SpanContext | null): string {
  const dd = logContext(tracer, span);
  const parts = (["service", "env", "version", "trace_id", "span_id"] as const)
    .filter((k) => dd[k] !== undefined)
    .map((k) => `dd.${k}=${dd[k]}`);
  return `[${parts.join(" ")}]`;
}

const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug", "trace"] as const;

/** What {@link instrumentConsole} returns. */
export interface ConsoleInstrumentation {
  /** Puts the original `console` methods back. */
  uninstrument(): void;
}

/**
 * Appends {@link logFields} to every `console.log`, `info`, `warn`,
 * `error`, `debug` and `trace` call made while a span is active (calls
 * outside a span are left unchanged). Reverse it with `uninstrument()`.
 */
export function instrumentConsole(tracer: AnyTracer, target: Console = console): ConsoleInstrumentation {
  const originals = new Map<string, (...args: unknown[]) => void>();
  for (const name of CONSOLE_METHODS) {
    const original = target[name] as (...args: unknown[]) => void;
    if (typeof original !== "function") continue;
    originals.set(name, original);
    const patched = function (this: unknown, ...args: unknown[]): void {
      if (tracer.activeSpan()) args.push(logFields(tracer));
      original.apply(this, args);
    };
    (target as unknown as Record<string, unknown>)[name] = patched;
  }
  return {
    uninstrument() {
      for (const [name, original] of originals) (target as unknown as Record<string, unknown>)[name] = original;
      originals.clear();
    },
  };
}
