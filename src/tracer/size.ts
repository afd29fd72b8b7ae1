/**
 * The trace buffer's size estimate: a rough size of a span once encoded
 * (msgpack v0.4), in bytes, enough to bound memory. A span's tags are
 * counted as they are set (`TracerSpan`), so that nothing walks them again
 * when it finishes; a tag set twice counts twice (an estimate from above).
 *
 * @module
 */
import type { SpanEvent, SpanLink } from "../span.ts";

/** A span's fixed fields, besides its four strings. */
export const SPAN_BYTES = 130;

/** A meta entry. */
export function metaBytes(key: string, value: string): number {
  return key.length + value.length + 4;
}

/** A metrics entry. */
export function metricBytes(key: string): number {
  return key.length + 11;
}

/** The entries of a meta or metrics record. */
export function recordBytes(record: Readonly<Record<string, string | number>> | undefined): number {
  let n = 0;
  for (const k in record) {
    const v = record[k];
    n += typeof v === "string" ? metaBytes(k, v) : metricBytes(k);
  }
  return n;
}

/** A span link. */
export function linkBytes(link: SpanLink): number {
  return 64 + JSON.stringify(link.attributes ?? {}).length + (link.tracestate?.length ?? 0);
}

/** A span event. */
export function eventBytes(event: SpanEvent): number {
  return 48 + event.name.length + JSON.stringify(event.attributes ?? {}, (_k, v) => typeof v === "bigint" ? 0 : v).length;
}
