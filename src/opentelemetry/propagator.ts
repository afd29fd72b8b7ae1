/**
 * An OpenTelemetry `TextMapPropagator` (`@opentelemetry/api`'s interface) that writes and reads the Tracer's
 * headers (Datadog and W3C, per its propagation styles).
 *
 * @module
 */
import { createContextKey, isSpanContextValid, trace, TraceFlags } from "@opentelemetry/api";
import type {
  OtelContext as Context,
  OtelSpanContext,
  OtelTextMapGetter as TextMapGetter,
  OtelTextMapSetter as TextMapSetter,
} from "./types.ts";
import type { SpanContext } from "../tracer/context.ts";
import type { HeadersLike } from "../tracer/propagation.ts";
import type { TracerSpan } from "../tracer/span.ts";
import { idFromHex, idToHex } from "./mapping.ts";

/** Where an extracted Datadog span context rides in the OTel context, next to its OTel span context. */
export const EXTRACTED_CONTEXT: symbol = createContextKey("@dd-ffi/trace extracted span context");

/** What the propagator needs of a tracer: `Tracer.inject()` and `Tracer.extract()`. */
export interface HeaderCodec {
  /** Writes the context of a span (or span context) into headers. */
  inject(span: TracerSpan | SpanContext | undefined, carrier: HeadersLike): void;
  /** Reads a span context from headers. */
  extract(carrier: HeadersLike): SpanContext | undefined;
}

/** The Datadog span context an OTel span context stands for: the extracted one when it matches, else its ids and sampled flag. */
export function datadogContextOf(ctx: Context, otel: OtelSpanContext): SpanContext | undefined {
  const traceId = idFromHex(otel.traceId, 32);
  const spanId = idFromHex(otel.spanId, 16);
  if (traceId === undefined || spanId === undefined) return undefined;
  const extracted = ctx.getValue(EXTRACTED_CONTEXT) as SpanContext | undefined;
  if (extracted && extracted.traceId === traceId && extracted.spanId === spanId) return extracted;
  return { traceId, spanId, samplingPriority: (otel.traceFlags & TraceFlags.SAMPLED) ? 1 : 0 };
}

/**
 * Propagates the trace context through the Tracer: `inject` writes the
 * headers of `tracer.inject()` (`x-datadog-*`, `traceparent`,
 * `tracestate`, per the tracer's inject styles) for the context's span;
 * `extract` reads them with `tracer.extract()` and puts the remote span
 * context in the returned context, with the Datadog details (sampling
 * priority, origin, trace tags) kept for the spans that continue it.
 */
export class TracerPropagator {
  #codec: HeaderCodec;
  #tracerSpanOf: (span: unknown) => TracerSpan | undefined;

  /** A propagator over `codec` (a `Tracer`); `tracerSpanOf` finds the tracer span behind an OTel span. */
  constructor(codec: HeaderCodec, tracerSpanOf: (span: unknown) => TracerSpan | undefined) {
    this.#codec = codec;
    this.#tracerSpanOf = tracerSpanOf;
  }

  /** Writes the headers of `context`'s span into `carrier` through `setter`. */
  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const span = trace.getSpan(context);
    if (!span) return;
    const headers: Record<string, string> = {};
    const tracerSpan = this.#tracerSpanOf(span);
    if (tracerSpan) {
      this.#codec.inject(tracerSpan, headers);
    } else {
      const otel = span.spanContext();
      if (!isSpanContextValid(otel)) return;
      const dd = datadogContextOf(context, otel);
      if (dd) this.#codec.inject(dd, headers);
    }
    for (const [key, value] of Object.entries(headers)) setter.set(carrier, key, value);
  }

  /** Reads a remote span context from `carrier` through `getter`; returns `context` unchanged when there is none. */
  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    const headers: Record<string, string | string[] | undefined> = {};
    for (const key of getter.keys(carrier)) headers[key.toLowerCase()] = getter.get(carrier, key);
    const dd = this.#codec.extract(headers);
    if (!dd) return context;
    const priority = dd.samplingPriority;
    return trace.setSpanContext(context.setValue(EXTRACTED_CONTEXT, dd), {
      traceId: idToHex(dd.traceId, 32),
      spanId: idToHex(dd.spanId, 16),
      traceFlags: priority === undefined || priority > 0 ? TraceFlags.SAMPLED : TraceFlags.NONE,
      isRemote: true,
    });
  }

  /** The headers this propagator may write, in every style the Tracer knows (its inject styles choose among them). */
  fields(): string[] {
    return [
      "x-datadog-trace-id",
      "x-datadog-parent-id",
      "x-datadog-sampling-priority",
      "x-datadog-origin",
      "x-datadog-tags",
      "traceparent",
      "tracestate",
      "b3",
      "x-b3-traceid",
      "x-b3-spanid",
      "x-b3-parentspanid",
      "x-b3-sampled",
      "x-b3-flags",
      "baggage",
    ];
  }
}
