/**
 * `FinishedSpan`: a span the Tracer finished, as it hands it to the
 * exporter. Its fields are valid by construction (the Tracer checks
 * every value at its API), so the batch writer writes it without checking
 * it again; and its meta and metrics come in three layers that are never
 * merged into a copy: the tracer's (shared by its spans), the span's own
 * (its tags, not copied), and the Tracer's additions for this span.
 *
 * A layer overrides the ones before it: the writer writes them in order,
 * and libdatadog keeps the last write of a key (its `VecMap` dedup, as
 * test/golden.test.ts shows), exactly as merging them in that order would.
 *
 * Internal: not exported from `mod.ts`.
 *
 * @module
 */
import type { Span, SpanEvent, SpanLink } from "./span.ts";

/**
 * A finished span of the Tracer (see the module documentation). Its meta and
 * metrics layers are plain objects (`Object.prototype` their prototype, own
 * string-keyed entries only), which the batch writer walks with `for…in`.
 */
export class FinishedSpan {
  constructor(
    readonly name: string,
    readonly service: string,
    readonly resource: string,
    readonly type: string,
    /** Up to 128 bits. */
    readonly traceId: bigint,
    readonly spanId: bigint,
    readonly parentId: bigint,
    /** ns since the epoch, below 2^63. */
    readonly start: bigint,
    /** ns, below 2^63. */
    readonly duration: bigint,
    /** 0 or 1. */
    readonly error: number,
    /** The tracer's meta, shared by its spans (read only). */
    readonly baseMeta: Readonly<Record<string, string>>,
    /** The span's own tags (read only: the span has finished). */
    readonly meta: Readonly<Record<string, string>>,
    /** The Tracer's meta for this span; overrides the span's own. */
    readonly extraMeta: Readonly<Record<string, string>> | undefined,
    readonly baseMetrics: Readonly<Record<string, number>>,
    readonly metrics: Readonly<Record<string, number>>,
    readonly extraMetrics: Readonly<Record<string, number>>,
    readonly links: readonly SpanLink[] | undefined,
    readonly events: readonly SpanEvent[] | undefined,
  ) {}

  /** The same span as the exporter's plain `Span` (its layers merged into new objects): for the per-field path. */
  toSpan(): Span {
    const span: Span = {
      name: this.name,
      service: this.service,
      resource: this.resource,
      type: this.type,
      traceId: this.traceId,
      spanId: this.spanId,
      parentId: this.parentId,
      start: this.start,
      duration: this.duration,
      error: this.error,
      meta: { ...this.baseMeta, ...this.meta, ...this.extraMeta },
      metrics: { ...this.baseMetrics, ...this.metrics, ...this.extraMetrics },
    };
    if (this.links) span.links = this.links;
    if (this.events) span.events = this.events;
    return span;
  }
}
