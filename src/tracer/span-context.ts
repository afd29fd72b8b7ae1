/**
 * dd-trace-js's span context methods (`toTraceId()`, `toSpanId()`,
 * `toTraceparent()`, from `packages/dd-trace/src/opentracing/span_context.js`),
 * added to the plain `SpanContext` objects that `span.context()` and
 * `tracer.extract()` return, through their prototype: the methods are not
 * enumerable and the constructor is still `Object`, so the objects still
 * compare, spread and print as plain data.
 *
 * @module
 */
import type { SpanContext } from "./context.ts";

const MASK64 = (1n << 64n) - 1n;

/** A `SpanContext` with dd-trace-js's id formatting methods. */
export interface DatadogSpanContext extends SpanContext {
  /** The trace id: its low 64 bits in decimal (as `x-datadog-trace-id`), or with `get128bitId` all 128 bits as 32 hex digits. */
  toTraceId(get128bitId?: boolean): string;
  /** The span id in decimal, or with `hex` as 16 hex digits. */
  toSpanId(hex?: boolean): string;
  /** The W3C `traceparent` of this context: `00-<trace id>-<span id>-<01 sampled | 00>`. */
  toTraceparent(): string;
}

const methods: PropertyDescriptorMap = {
  toTraceId: {
    value(this: SpanContext, get128bitId?: boolean): string {
      return get128bitId ? this.traceId.toString(16).padStart(32, "0") : (this.traceId & MASK64).toString();
    },
  },
  toSpanId: {
    value(this: SpanContext, hex?: boolean): string {
      return hex ? this.spanId.toString(16).padStart(16, "0") : this.spanId.toString();
    },
  },
  toTraceparent: {
    value(this: SpanContext): string {
      const sampled = (this.samplingPriority ?? 1) > 0 ? "01" : "00";
      return `00-${this.traceId.toString(16).padStart(32, "0")}-${this.spanId.toString(16).padStart(16, "0")}-${sampled}`;
    },
  },
};

/** The prototype of contexts with the methods (itself inheriting from `Object.prototype`). */
export const contextPrototype: object = Object.create(Object.prototype, methods);

/** Gives `context` the methods (in place) and returns it. */
export function withContextMethods<T extends SpanContext>(context: T): T & DatadogSpanContext {
  return Object.setPrototypeOf(context, contextPrototype) as T & DatadogSpanContext;
}
