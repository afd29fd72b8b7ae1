/**
 * B3 headers (Zipkin's: the single `b3` header and the `x-b3-*` headers)
 * and W3C Baggage (`baggage`), read and written as dd-trace-js does
 * (`packages/dd-trace/src/opentracing/propagation/text_map.js`, v5.132:
 * `#injectB3MultipleHeaders`, `#injectB3SingleHeader`, `extractB3Context`,
 * `#injectBaggageItems`, `#extractBaggageItems`). Specs:
 * https://github.com/openzipkin/b3-propagation and
 * https://www.w3.org/TR/baggage/. Nothing here throws on bad input.
 *
 * @module
 */
import type { SpanContext } from "./context.ts";
import { type HeadersLike, readHeader, writeHeader } from "./propagation.ts";

const MASK64 = (1n << 64n) - 1n;
const B3_TRACE = /^(?:[0-9a-f]{16}){1,2}$/;
const B3_SPAN = /^[0-9a-f]{16}$/;
const B3_SINGLE = /^(?:((?:[0-9a-f]{16}){1,2})-([0-9a-f]{16})(?:-([01d])(?:-([0-9a-f]{16}))?)?|([01d]))$/;
/** A baggage key: an RFC 7230 token (W3C Baggage §3.3.1). */
const BAGGAGE_KEY = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** dd-trace-js's defaults (`DD_TRACE_BAGGAGE_MAX_ITEMS`, `DD_TRACE_BAGGAGE_MAX_BYTES`). */
export const BAGGAGE_MAX_ITEMS = 64;
export const BAGGAGE_MAX_BYTES = 8192;

/** dd-trace-js's default `DD_TRACE_BAGGAGE_TAG_KEYS`. */
const DEFAULT_BAGGAGE_TAG_KEYS = "user.id,session.id,account.id";

/**
 * The baggage keys copied to span tags `baggage.<key>` on extract
 * (`DD_TRACE_BAGGAGE_TAG_KEYS`, comma-separated; `*` every key; empty none;
 * default `user.id,session.id,account.id`, as dd-trace-js).
 */
export function baggageTagKeys(text: string | undefined): Set<string> {
  return new Set((text ?? DEFAULT_BAGGAGE_TAG_KEYS).split(",").map((k) => k.trim()).filter(Boolean));
}

/** The `baggage.<key>` trace tags for `baggage`. */
export function baggageTags(baggage: Readonly<Record<string, string>>, keys: ReadonlySet<string>): Record<string, string> {
  const tags: Record<string, string> = {};
  const all = keys.has("*");
  for (const key of Object.keys(baggage)) if (all || keys.has(key)) tags[`baggage.${key}`] = baggage[key];
  return tags;
}

/** What a B3 extractor found: ids and a sampling priority (as dd-trace-js maps them: debug 2, sampled 1, not 0). */
export interface B3Found {
  traceId: bigint;
  spanId: bigint;
  samplingPriority?: number;
  /** The trace id had 32 hex digits. */
  has128: boolean;
}

function hex(n: bigint, digits: number): string {
  return n.toString(16).padStart(digits, "0");
}

/** The B3 trace id: 32 hex digits when the id has high bits, else 16 (dd-trace-js's `toTraceIdHex`). */
function b3TraceId(traceId: bigint): string {
  return traceId >> 64n ? hex(traceId, 32) : hex(traceId & MASK64, 16);
}

function priority(sampled: string | undefined, debug: boolean): number | undefined {
  if (debug) return 2;
  if (sampled === "1") return 1;
  if (sampled === "0") return 0;
  return undefined;
}

/** `malformed` is called once for a header that is present but unusable. */
type Bad = () => void;

/** Reads `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`, `x-b3-flags`. Undefined when absent or without valid ids. */
export function extractB3Multi(carrier: HeadersLike, bad: Bad): B3Found | undefined {
  const traceHeader = readHeader(carrier, "x-b3-traceid");
  if (traceHeader === undefined) return undefined;
  const trace = traceHeader.trim().toLowerCase();
  const span = readHeader(carrier, "x-b3-spanid")?.trim().toLowerCase();
  if (!B3_TRACE.test(trace) || /^0+$/.test(trace) || span === undefined || !B3_SPAN.test(span)) {
    bad();
    return undefined;
  }
  const sampled = readHeader(carrier, "x-b3-sampled")?.trim();
  const flags = readHeader(carrier, "x-b3-flags")?.trim();
  const found: B3Found = { traceId: BigInt(`0x${trace}`), spanId: BigInt(`0x${span}`), has128: trace.length === 32 };
  const p = priority(sampled, flags === "1");
  if (p !== undefined) found.samplingPriority = p;
  return found;
}

/** Reads the single `b3` header (`{trace}-{span}[-{sampled}[-{parent}]]`). Undefined when absent or without ids. */
export function extractB3Single(carrier: HeadersLike, bad: Bad): B3Found | undefined {
  const header = readHeader(carrier, "b3");
  if (header === undefined) return undefined;
  const m = B3_SINGLE.exec(header.trim().toLowerCase());
  if (!m || m[5] !== undefined || /^0+$/.test(m[1])) {
    // A lone sampling flag (`0`, `1`, `d`) carries no ids to continue.
    if (!m) bad();
    return undefined;
  }
  const found: B3Found = { traceId: BigInt(`0x${m[1]}`), spanId: BigInt(`0x${m[2]}`), has128: m[1].length === 32 };
  if (m[3] !== undefined) found.samplingPriority = m[3] === "d" ? 2 : m[3] === "0" ? 0 : 1;
  return found;
}

/** Writes the `x-b3-*` headers; `parentId` (the span's parent, 0n for none) goes in `x-b3-parentspanid`. */
export function injectB3Multi(context: SpanContext, carrier: HeadersLike, parentId: bigint): void {
  writeHeader(carrier, "x-b3-traceid", b3TraceId(context.traceId));
  writeHeader(carrier, "x-b3-spanid", hex(context.spanId, 16));
  const p = context.samplingPriority;
  if (p !== undefined) {
    writeHeader(carrier, "x-b3-sampled", p >= 1 ? "1" : "0");
    if (p > 1) writeHeader(carrier, "x-b3-flags", "1");
  }
  if (parentId) writeHeader(carrier, "x-b3-parentspanid", hex(parentId, 16));
}

/** Writes the single `b3` header. */
export function injectB3Single(context: SpanContext, carrier: HeadersLike, parentId: bigint): void {
  let header = `${b3TraceId(context.traceId)}-${hex(context.spanId, 16)}`;
  const p = context.samplingPriority;
  if (p !== undefined) {
    header += p >= 1 ? "-1" : "-0";
    if (parentId) header += `-${hex(parentId, 16)}`;
  }
  writeHeader(carrier, "b3", header);
}

/**
 * Writes the W3C `baggage` header: `key=value` members, values
 * percent-encoded, keys that are not tokens left out, at most
 * {@link BAGGAGE_MAX_ITEMS} members and {@link BAGGAGE_MAX_BYTES} bytes.
 */
export function injectBaggage(baggage: Readonly<Record<string, string>> | undefined, carrier: HeadersLike): void {
  if (!baggage) return;
  let header = "";
  let items = 0;
  for (const key of Object.keys(baggage)) {
    const k = key.trim();
    if (!BAGGAGE_KEY.test(k)) continue;
    const member = `${k}=${encodeURIComponent(String(baggage[key]))}`;
    if (++items > BAGGAGE_MAX_ITEMS || header.length + member.length + 1 > BAGGAGE_MAX_BYTES) break;
    header += header ? `,${member}` : member;
  }
  if (header) writeHeader(carrier, "baggage", header);
}

/**
 * Reads the W3C `baggage` header. Member properties (after `;`) are
 * ignored; values are percent-decoded. A malformed member drops the whole
 * header (counted), as dd-trace-js does; past the item and byte limits the
 * rest is cut off.
 */
export function extractBaggage(carrier: HeadersLike, bad: Bad): Record<string, string> | undefined {
  const header = readHeader(carrier, "baggage");
  if (!header) return undefined;
  const items: Record<string, string> = {};
  let count = 0;
  let bytes = 0;
  for (const member of header.split(",")) {
    bytes += member.length + 1;
    if (count >= BAGGAGE_MAX_ITEMS || bytes > BAGGAGE_MAX_BYTES + 1) break;
    const body = member.split(";")[0];
    if (!body.trim()) continue;
    const eq = body.indexOf("=");
    const key = eq < 0 ? "" : body.slice(0, eq).trim();
    let value = eq < 0 ? "" : body.slice(eq + 1).trim();
    if (!BAGGAGE_KEY.test(key) || !value) {
      bad();
      return undefined;
    }
    if (value.includes("%")) {
      try {
        value = decodeURIComponent(value);
      } catch {
        bad();
        return undefined;
      }
    }
    items[key] = value;
    count++;
  }
  return count > 0 ? items : undefined;
}
