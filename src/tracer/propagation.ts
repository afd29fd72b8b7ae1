/**
 * Distributed tracing headers: Datadog's (`x-datadog-trace-id`,
 * `x-datadog-parent-id`, `x-datadog-sampling-priority`, `x-datadog-origin`,
 * `x-datadog-tags`) and W3C Trace Context (`traceparent`, `tracestate`),
 * read and written as dd-trace-js does. Malformed headers are ignored and
 * counted; nothing here throws on bad input.
 *
 * @module
 */
import type { SpanLink } from "../span.ts";
import type { SpanContext } from "./context.ts";
import {
  baggageTagKeys,
  baggageTags,
  extractB3Multi,
  extractB3Single,
  extractBaggage,
  injectB3Multi,
  injectB3Single,
  injectBaggage,
} from "./propagation-b3.ts";

/**
 * A header style, as `DD_TRACE_PROPAGATION_STYLE` names it: `"datadog"`
 * (`x-datadog-*`), `"tracecontext"` (W3C `traceparent` / `tracestate`),
 * `"b3"` (the single `b3` header; `"b3 single header"` is read as an alias),
 * `"b3multi"` (`x-b3-*`), `"baggage"` (W3C `baggage`), `"none"`.
 */
export type PropagationStyle = "datadog" | "tracecontext" | "b3" | "b3multi" | "baggage" | "none";

/**
 * Headers to read or write: a fetch `Headers`, or a plain object such as
 * `node:http`'s `IncomingHttpHeaders` (names matched case-insensitively;
 * an array value is joined with commas).
 */
export type HeadersLike = Headers | Record<string, string | readonly string[] | undefined>;

/** Options of {@link Propagator}. */
export interface PropagatorOptions {
  /** Styles written by `inject`, in order. */
  inject: readonly PropagationStyle[];
  /** Styles read by `extract`; the first one found gives the context. */
  extract: readonly PropagationStyle[];
  /** Longest `x-datadog-tags` read or written (default 512, `DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH`). */
  maxTagsLength?: number;
  /** `DD_TRACE_BAGGAGE_TAG_KEYS`: the extracted baggage keys also tagged `baggage.<key>` on the trace. */
  baggageTagKeys?: string;
}

const MASK64 = (1n << 64n) - 1n;
const U64_LIMIT = 1n << 64n;
const DECIMAL = /^\d{1,20}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const TAG_KEY = /^_dd\.p\.[\x21-\x2b\x2d-\x7e]+$/; // printable ASCII without space and comma
const TAG_VALUE = /^[\x20-\x2b\x2d-\x7e]*$/; // printable ASCII without comma
const TRACESTATE_KEY = /^[a-z0-9][_0-9a-z\-*/]{0,255}(@[a-z0-9][_0-9a-z\-*/]{0,13})?$/;
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
/** Characters a `dd` tracestate value may not hold (`,` `;` `~` and non-printables): replaced with `_`. */
const DD_VALUE_FILTER = /[^\x20-\x2b\x2d-\x3a\x3c-\x7d]/g;
const DD_KEY_FILTER = /[^\x21-\x2b\x2d-\x3c\x3e-\x7e]/g;
const MAX_TRACESTATE_MEMBERS = 32;
const MAX_DD_MEMBER = 256;

function isHeaders(carrier: HeadersLike): carrier is Headers {
  return typeof (carrier as Headers).get === "function" && typeof (carrier as Headers).set === "function";
}

/** Reads a header (name in lowercase). */
export function readHeader(carrier: HeadersLike, name: string): string | undefined {
  if (isHeaders(carrier)) return carrier.get(name) ?? undefined;
  let value = carrier[name];
  if (value === undefined) {
    // A name in another case: only names of the same length are lower-cased (most requests carry none of
    // the trace headers, so every name of every request is looked through here once per header).
    for (const key of Object.keys(carrier)) {
      if (key.length === name.length && key.toLowerCase() === name) {
        value = carrier[key];
        break;
      }
    }
  }
  if (Array.isArray(value)) return value.join(",");
  return typeof value === "string" ? value : undefined;
}

/** Writes a header (name in lowercase). */
export function writeHeader(carrier: HeadersLike, name: string, value: string): void {
  if (isHeaders(carrier)) carrier.set(name, value);
  else (carrier as Record<string, string>)[name] = value;
}

function parseDecimal64(text: string): bigint | undefined {
  const t = text.trim();
  if (!DECIMAL.test(t)) return undefined;
  const n = BigInt(t);
  return n < U64_LIMIT ? n : undefined;
}

function hex(n: bigint, digits: number): string {
  return n.toString(16).padStart(digits, "0");
}

/** A mutable context while it is being extracted. */
type Draft = {
  traceId: bigint;
  spanId: bigint;
  samplingPriority?: number;
  origin?: string;
  traceTags: Record<string, string>;
  tracestate?: string;
  lastParentId?: string;
  links: SpanLink[];
  /** Whether the trace id's high 64 bits were given (`_dd.p.tid`, or a W3C trace id). */
  has128: boolean;
};

/** Reads and writes trace context headers. */
export class Propagator {
  #inject: readonly PropagationStyle[];
  #extract: readonly PropagationStyle[];
  #maxTagsLength: number;
  #baggageTagKeys: ReadonlySet<string>;
  #malformed = 0;

  constructor(options: PropagatorOptions) {
    this.#inject = options.inject;
    this.#extract = options.extract;
    this.#maxTagsLength = options.maxTagsLength ?? 512;
    this.#baggageTagKeys = baggageTagKeys(options.baggageTagKeys);
  }

  /** How many malformed headers were ignored so far. */
  get malformed(): number {
    return this.#malformed;
  }

  /** Writes `context` into `carrier`, in each inject style; `parentId` is the span's parent (B3 sends it). */
  inject(context: SpanContext, carrier: HeadersLike, parentId = 0n): void {
    if (typeof carrier !== "object" || carrier === null) return;
    for (const style of this.#inject) {
      if (style === "datadog") this.#injectDatadog(context, carrier);
      else if (style === "tracecontext") this.#injectTraceContext(context, carrier);
      else if (style === "b3") injectB3Single(context, carrier, parentId);
      else if (style === "b3multi") injectB3Multi(context, carrier, parentId);
      else if (style === "baggage") injectBaggage(context.baggage, carrier);
    }
  }

  /** The styles in use: `[inject, extract]`. */
  get styles(): [readonly PropagationStyle[], readonly PropagationStyle[]] {
    return [this.#inject, this.#extract];
  }

  /**
   * Reads a span context from `carrier`: the first extract style present
   * gives it; W3C headers of the same trace add their `tracestate` (and, if
   * their parent differs, their parent id, as dd-trace-js does); headers of
   * another trace become span links. With the `baggage` style, the W3C
   * `baggage` items come in `baggage` (and those of `DD_TRACE_BAGGAGE_TAG_KEYS`
   * in `traceTags` as `baggage.<key>`, sent on the trace's spans as dd-trace-js
   * does); baggage without any trace context gives a context with trace and
   * span id 0n (a new trace carrying the baggage). Undefined when no valid
   * context is found.
   */
  extract(carrier: HeadersLike): SpanContext | undefined {
    if (typeof carrier !== "object" || carrier === null) return undefined;
    let context: Draft | undefined;
    let baggage: Record<string, string> | undefined;
    const bad = this.#countMalformed;
    for (const style of this.#extract) {
      if (style === "baggage") {
        baggage = extractBaggage(carrier, bad);
        continue;
      }
      let found: Draft | undefined;
      if (style === "datadog") found = this.#extractDatadog(carrier);
      else if (style === "tracecontext") found = this.#extractTraceContext(carrier);
      else if (style === "b3" || style === "b3multi") {
        const b3 = style === "b3" ? extractB3Single(carrier, bad) : extractB3Multi(carrier, bad);
        if (b3) found = { ...b3, traceTags: {}, links: [] };
      }
      if (!found) continue;
      if (!context) {
        context = found;
        continue;
      }
      const sameTrace = (found.traceId & MASK64) === (context.traceId & MASK64) &&
        (!found.has128 || !context.has128 || found.traceId === context.traceId);
      if (sameTrace && style === "tracecontext") {
        if (!context.has128) context.traceId = found.traceId;
        context.tracestate = found.tracestate;
        context.samplingPriority ??= found.samplingPriority;
        if (found.spanId !== context.spanId) {
          context.lastParentId = found.lastParentId ?? hex(context.spanId, 16);
          context.spanId = found.spanId;
        }
      } else if (!sameTrace) {
        const link: SpanLink = {
          traceId: found.traceId,
          spanId: found.spanId,
          attributes: { reason: "terminated_context", context_headers: style },
        };
        if (found.samplingPriority !== undefined) link.flags = ((found.samplingPriority > 0 ? 1 : 0) | 0x80000000) >>> 0;
        if (found.tracestate) link.tracestate = found.tracestate;
        context.links.push(link);
      }
    }
    if (!context && baggage) {
      const tags = baggageTags(baggage, this.#baggageTagKeys);
      return Object.keys(tags).length > 0 ? { traceId: 0n, spanId: 0n, baggage, traceTags: tags } : { traceId: 0n, spanId: 0n, baggage };
    }
    if (!context) return undefined;
    const { has128: _, links, traceTags, ...rest } = context;
    const result: { -readonly [K in keyof SpanContext]: SpanContext[K] } = { ...rest };
    if (baggage) {
      result.baggage = baggage;
      Object.assign(traceTags, baggageTags(baggage, this.#baggageTagKeys));
    }
    if (Object.keys(traceTags).length > 0) result.traceTags = traceTags;
    if (links.length > 0) result.links = links;
    for (const k of Object.keys(result) as (keyof SpanContext)[]) if (result[k] === undefined) delete result[k];
    return result;
  }

  /** Counts a malformed header (one function for every `extract`). */
  #countMalformed = (): void => void this.#malformed++;

  #bad(): undefined {
    this.#malformed++;
    return undefined;
  }

  #extractDatadog(carrier: HeadersLike): Draft | undefined {
    const traceHeader = readHeader(carrier, "x-datadog-trace-id");
    if (traceHeader === undefined) return undefined;
    const low = parseDecimal64(traceHeader);
    if (low === undefined || low === 0n) return this.#bad();
    const parentHeader = readHeader(carrier, "x-datadog-parent-id");
    const parent = parentHeader === undefined ? undefined : parseDecimal64(parentHeader);
    if (parent === undefined) return this.#bad();
    const draft: Draft = { traceId: low, spanId: parent, traceTags: {}, links: [], has128: false };
    const priority = readHeader(carrier, "x-datadog-sampling-priority");
    if (priority !== undefined) {
      if (/^\s*-?\d+\s*$/.test(priority)) draft.samplingPriority = Number(priority);
      else this.#bad();
    }
    const origin = readHeader(carrier, "x-datadog-origin");
    if (origin) draft.origin = origin;
    const tags = readHeader(carrier, "x-datadog-tags");
    if (tags) {
      const parsed = this.#parseTags(tags);
      if (parsed) {
        const tid = parsed["_dd.p.tid"];
        delete parsed["_dd.p.tid"];
        if (tid !== undefined) {
          if (HEX16.test(tid)) {
            draft.traceId |= BigInt(`0x${tid}`) << 64n;
            draft.has128 = true;
          } else {
            this.#bad();
          }
        }
        draft.traceTags = parsed;
      }
    }
    return draft;
  }

  /** Parses `x-datadog-tags` (`_dd.p.key=value,…`); undefined (and counted) when malformed or too long. */
  #parseTags(header: string): Record<string, string> | undefined {
    if (header.length > this.#maxTagsLength) return this.#bad();
    const tags: Record<string, string> = {};
    for (const pair of header.split(",")) {
      const eq = pair.indexOf("=");
      if (eq <= 0) return this.#bad();
      const key = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (!TAG_KEY.test(key) || !TAG_VALUE.test(value)) return this.#bad();
      tags[key] = value;
    }
    return tags;
  }

  #extractTraceContext(carrier: HeadersLike): Draft | undefined {
    const header = readHeader(carrier, "traceparent");
    if (header === undefined) return undefined;
    const m = TRACEPARENT.exec(header.trim().toLowerCase());
    if (!m) return this.#bad();
    const [, version, traceHex, spanHex, flagsHex, tail] = m;
    if (version === "ff" || (version === "00" && tail) || /^0+$/.test(traceHex) || /^0+$/.test(spanHex)) return this.#bad();
    const draft: Draft = {
      traceId: BigInt(`0x${traceHex}`),
      spanId: BigInt(`0x${spanHex}`),
      samplingPriority: parseInt(flagsHex, 16) & 1 ? 1 : 0,
      traceTags: {},
      links: [],
      has128: true,
    };
    const others: string[] = [];
    const tracestate = readHeader(carrier, "tracestate");
    for (const member of (tracestate ?? "").split(",")) {
      const m = member.trim();
      if (!m) continue;
      const eq = m.indexOf("=");
      const key = m.slice(0, eq);
      const value = m.slice(eq + 1);
      if (eq <= 0 || !TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(value)) {
        this.#bad();
        continue;
      }
      if (key === "dd") this.#readDatadogMember(value, draft);
      else if (others.length < MAX_TRACESTATE_MEMBERS - 1) others.push(m);
    }
    if (others.length > 0) draft.tracestate = others.join(",");
    return draft;
  }

  /** Reads the `dd` tracestate member: `s:<priority>;o:<origin>;p:<parent>;t.<tag>:<value>`. */
  #readDatadogMember(value: string, draft: Draft): void {
    for (const field of value.split(";")) {
      const colon = field.indexOf(":");
      if (colon <= 0) continue;
      const key = field.slice(0, colon);
      const v = field.slice(colon + 1);
      if (key === "s") {
        if (!/^-?\d+$/.test(v)) continue;
        const p = Number(v);
        // The flag wins when the two disagree on keep vs. reject.
        if ((draft.samplingPriority === 1 && p > 0) || (draft.samplingPriority === 0 && p <= 0)) draft.samplingPriority = p;
      } else if (key === "o") {
        draft.origin = v.replaceAll("~", "=");
      } else if (key === "p") {
        if (HEX16.test(v)) draft.lastParentId = v;
      } else if (key.startsWith("t.") && key !== "t.tid") {
        draft.traceTags[`_dd.p.${key.slice(2)}`] = v.replaceAll("~", "=");
      }
    }
  }

  #injectDatadog(context: SpanContext, carrier: HeadersLike): void {
    writeHeader(carrier, "x-datadog-trace-id", (context.traceId & MASK64).toString());
    writeHeader(carrier, "x-datadog-parent-id", context.spanId.toString());
    if (context.samplingPriority !== undefined) writeHeader(carrier, "x-datadog-sampling-priority", String(context.samplingPriority));
    if (context.origin) writeHeader(carrier, "x-datadog-origin", context.origin);
    const pairs: string[] = [];
    for (const [key, value] of Object.entries(context.traceTags ?? {})) {
      if (key !== "_dd.p.tid" && TAG_KEY.test(key) && TAG_VALUE.test(value) && value) pairs.push(`${key}=${value}`);
    }
    const high = context.traceId >> 64n;
    if (high !== 0n) pairs.push(`_dd.p.tid=${hex(high, 16)}`);
    const tags = pairs.join(",");
    if (tags && tags.length <= this.#maxTagsLength) writeHeader(carrier, "x-datadog-tags", tags);
  }

  #injectTraceContext(context: SpanContext, carrier: HeadersLike): void {
    const sampled = (context.samplingPriority ?? 1) > 0;
    writeHeader(carrier, "traceparent", `00-${hex(context.traceId, 32)}-${hex(context.spanId, 16)}-${sampled ? "01" : "00"}`);
    const fields = [`p:${hex(context.spanId, 16)}`];
    if (context.samplingPriority !== undefined) fields.unshift(`s:${context.samplingPriority}`);
    if (context.origin) fields.push(`o:${context.origin.replace(DD_VALUE_FILTER, "_").replaceAll("=", "~")}`);
    let member = `dd=${fields.join(";")}`;
    for (const [key, value] of Object.entries(context.traceTags ?? {})) {
      if (!key.startsWith("_dd.p.") || key === "_dd.p.tid" || !value) continue;
      const field = `;t.${key.slice(6).replace(DD_KEY_FILTER, "_")}:${value.replace(DD_VALUE_FILTER, "_").replaceAll("=", "~")}`;
      if (member.length + field.length <= MAX_DD_MEMBER) member += field;
    }
    const members = [member];
    for (const m of (context.tracestate ?? "").split(",")) {
      const t = m.trim();
      if (t && !t.startsWith("dd=") && members.length < MAX_TRACESTATE_MEMBERS) members.push(t);
    }
    writeHeader(carrier, "tracestate", members.join(","));
  }
}
