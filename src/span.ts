/**
 * Spans as plain objects, and the hot path that turns them into a native
 * trace chunks handle (`ddog_TracerTraceChunks`), field by field through
 * the C ABI.
 *
 * @module
 */
import { layouts, MAX_VALUE_DEPTH, valueKinds } from "../ffi/abi.ts";
import type { Binding } from "./binding.ts";
import { ValidationError } from "./errors.ts";

/** A span link: a reference to a span of another trace (or of this one). */
export interface SpanLink {
  /** The linked trace id: 64- or 128-bit, as bigint. */
  traceId: bigint;
  /** The linked span id, 64-bit. */
  spanId: bigint;
  /** String attributes. */
  attributes?: Record<string, string>;
  /** W3C tracestate of the linked span. */
  tracestate?: string;
  /** W3C trace flags (u32; the v0.4 wire keeps bit 31 as is). */
  flags?: number;
}

/** A double that would otherwise be sent as an integer: `double(1)`. */
export interface Double {
  /** The number(s) to send as doubles. */
  readonly double: number | readonly number[];
}

/** Marks a number (or array of numbers) as a double span-event attribute, e.g. `{ ratio: double(1) }`. */
export function double(value: number | readonly number[]): Double {
  return { double: value };
}

/** A span event attribute: typed string, boolean, integer (i64), double, or a homogeneous array of one of them. */
export type SpanEventAttribute =
  | string
  | boolean
  | number
  | bigint
  | Double
  | readonly string[]
  | readonly boolean[]
  | readonly (number | bigint)[];

/** A span event: something that happened at one moment of a span. */
export interface SpanEvent {
  /** The event's name. */
  name: string;
  /** When it happened, in nanoseconds since the Unix epoch. */
  time: bigint | number;
  /** Typed attributes. An integer number goes as int unless wrapped in `double()`. */
  attributes?: Record<string, SpanEventAttribute>;
}

/** A value for `metaStruct`: msgpack bytes the caller encoded, or a plain JS value encoded here. */
export type MetaStructValue = Uint8Array | unknown;

/**
 * A span as the exporter takes it. Times are nanoseconds; ids are unsigned
 * integers (bigint, or a safe-integer number).
 */
export interface Span {
  /** The operation name, e.g. `"http.request"`. */
  name: string;
  /** The service, e.g. `"web"`. */
  service: string;
  /** The resource, e.g. `"GET /users/:id"`. Defaults to `name`. */
  resource?: string;
  /** The span type, e.g. `"web"`, `"db"`. Omitted on the wire when empty. */
  type?: string;
  /** The trace id: up to 128 bits; the high 64 bits also go in meta `_dd.p.tid`. */
  traceId: bigint;
  /** The span id, 64-bit, non-zero in practice. */
  spanId: bigint;
  /** The parent span's id; 0 (default) for a root span. */
  parentId?: bigint;
  /** Start, in nanoseconds since the Unix epoch. */
  start: bigint | number;
  /** Duration in nanoseconds. */
  duration: bigint | number;
  /** 1 (or true) if the span is in error. */
  error?: number | boolean;
  /** String tags. */
  meta?: Record<string, string>;
  /** Numeric tags (sent as float64). */
  metrics?: Record<string, number>;
  /** Structured tags: msgpack bytes, or plain values (objects, arrays, strings, numbers, bigint, booleans, null, Uint8Array). */
  metaStruct?: Record<string, MetaStructValue>;
  /** Span links. */
  links?: readonly SpanLink[];
  /** Span events. */
  events?: readonly SpanEvent[];
}

/** A trace chunk: spans of one trace sent together. */
export type TraceChunk = readonly Span[];

const U64_LIMIT = 1n << 64n;
const U128_LIMIT = 1n << 128n;
const I64_MIN = -(1n << 63n);
const I64_LIMIT = 1n << 63n;
const MASK64 = U64_LIMIT - 1n;
const TWO_32 = 2 ** 32;
const TWO_63 = 2 ** 63;

const F = layouts.TracerSpanFields;
const LINK = layouts.TracerSpanLink;
const ATTR = layouts.TracerSpanLinkAttribute;
const TOKEN = layouts.TracerValueToken;
const SLICE = layouts.Slice;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "bigint") return `bigint ${v}`;
  if (typeof v === "number") return `number ${v}`;
  if (typeof v === "string") return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  return typeof v;
}

function key(path: string, k: string): string {
  return `${path}[${JSON.stringify(k)}]`;
}

/** Writes an unsigned id (bigint or safe integer number) below `limit` at `offset`; returns its high 64 bits. */
function writeId(b: Binding, offset: number, v: unknown, limit: bigint, path: string): bigint {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new ValidationError(path, `expected a non-negative integer id (bigint), got ${describe(v)}`);
    }
    b.view.setUint32(offset, v >>> 0, true);
    b.view.setUint32(offset + 4, Math.floor(v / TWO_32), true);
    return 0n;
  }
  if (typeof v !== "bigint") throw new ValidationError(path, `expected a bigint id, got ${describe(v)}`);
  if (v < 0n || v >= limit) {
    throw new ValidationError(path, `id out of range: must be 0 ≤ id < 2^${limit === U64_LIMIT ? 64 : 128}, got ${v}`);
  }
  b.view.setBigUint64(offset, v & MASK64, true);
  return v >> 64n;
}

/** Writes a time or duration in ns (non-negative i64) at `offset`. */
function writeNanos(b: Binding, offset: number, v: unknown, path: string): void {
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0 || v >= TWO_63) {
      throw new ValidationError(path, `expected a non-negative integer of nanoseconds, got ${describe(v)}`);
    }
    const hi = Math.floor(v / TWO_32);
    b.view.setUint32(offset, v - hi * TWO_32, true);
    b.view.setUint32(offset + 4, hi, true);
    return;
  }
  if (typeof v !== "bigint") {
    throw new ValidationError(path, `expected nanoseconds as bigint or integer number, got ${describe(v)}`);
  }
  if (v < 0n || v >= I64_LIMIT) throw new ValidationError(path, `nanoseconds out of range (0 ≤ ns < 2^63), got ${v}`);
  b.view.setBigInt64(offset, v, true);
}

/** Writes a string as a `{ptr,len}` slice at `offset`, its bytes at `b.pos` (room reserved). */
function writeSlice(b: Binding, offset: number, s: string): void {
  const p = b.pos;
  const n = b.writeString(s);
  setPtr(b, offset, b.base + p);
  setPtr(b, offset + SLICE.len, n);
}

function setPtr(b: Binding, offset: number, v: number): void {
  b.view.setUint32(offset, v >>> 0, true);
  b.view.setUint32(offset + 4, Math.floor(v / TWO_32), true);
}

function requireString(v: unknown, path: string): string {
  if (typeof v !== "string") throw new ValidationError(path, `expected a string, got ${describe(v)}`);
  return v;
}

function optionalString(v: unknown, fallback: string, path: string): string {
  return v === undefined ? fallback : requireString(v, path);
}

function requireRecord(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ValidationError(path, `expected an object, got ${describe(v)}`);
  }
  return v as Record<string, unknown>;
}

/** Calls a ddog function that returns an error, naming the span field on failure. */
function check(b: Binding, error: number | null, fn: string, path: string): void {
  if (error) {
    const e = b.takeError(error, fn);
    throw new ValidationError(path, e.message, { cause: e });
  }
}

/**
 * Builds a `ddog_TracerTraceChunks` from `traces` (an array of chunks, each
 * an array of spans). Returns the handle, owned by the caller; on any error
 * everything allocated so far is freed and a `ValidationError` naming
 * `traces[chunk][span].field` is thrown.
 */
export function buildTraceChunks(b: Binding, traces: readonly TraceChunk[]): number {
  if (!Array.isArray(traces)) throw new ValidationError("traces", `expected an array of trace chunks, got ${describe(traces)}`);
  const s = b.symbols;
  b.unwrap(s.ddog_tracer_trace_chunks_new(traces.length, b.out), "ddog_tracer_trace_chunks_new");
  const chunks = b.takeOut();
  try {
    for (let c = 0; c < traces.length; c++) {
      const chunk = traces[c];
      if (!Array.isArray(chunk)) {
        throw new ValidationError(`traces[${c}]`, `expected an array of spans, got ${describe(chunk)}`);
      }
      b.unwrap(s.ddog_tracer_trace_chunks_begin_chunk(chunks, chunk.length), "ddog_tracer_trace_chunks_begin_chunk");
      for (let i = 0; i < chunk.length; i++) {
        const span = buildSpan(b, chunk[i], `traces[${c}][${i}]`);
        // push_span consumes the span, also when it fails.
        b.unwrap(s.ddog_tracer_trace_chunks_push_span(chunks, span), "ddog_tracer_trace_chunks_push_span");
      }
    }
  } catch (e) {
    s.ddog_tracer_trace_chunks_free(chunks);
    throw e;
  }
  return chunks;
}

/** Builds one `ddog_TracerSpan`; returns the handle, or frees it and throws. */
function buildSpan(b: Binding, span: Span, path: string): number {
  if (typeof span !== "object" || span === null) throw new ValidationError(path, `expected a span object, got ${describe(span)}`);
  const name = requireString(span.name, `${path}.name`);
  const service = requireString(span.service, `${path}.service`);
  const resource = optionalString(span.resource, name, `${path}.resource`);
  const type = optionalString(span.type, "", `${path}.type`);
  b.reserve(F.size + 3 * (name.length + service.length + resource.length + type.length));
  const at = b.pos;
  b.pos += F.size;
  writeSlice(b, at + F.service, service);
  writeSlice(b, at + F.name, name);
  writeSlice(b, at + F.resource, resource);
  writeSlice(b, at + F.span_type, type);
  const high = writeId(b, at + F.trace_id_low, span.traceId, U128_LIMIT, `${path}.traceId`);
  b.view.setBigUint64(at + F.trace_id_high, high, true);
  writeId(b, at + F.span_id, span.spanId, U64_LIMIT, `${path}.spanId`);
  if (span.parentId === undefined) b.view.setBigUint64(at + F.parent_id, 0n, true);
  else writeId(b, at + F.parent_id, span.parentId, U64_LIMIT, `${path}.parentId`);
  writeNanos(b, at + F.start, span.start, `${path}.start`);
  writeNanos(b, at + F.duration, span.duration, `${path}.duration`);
  const error = span.error;
  let errorCode: number;
  if (error === undefined || error === false) errorCode = 0;
  else if (error === true) errorCode = 1;
  else if (typeof error === "number" && Number.isInteger(error) && error >= -(2 ** 31) && error < 2 ** 31) errorCode = error;
  else throw new ValidationError(`${path}.error`, `expected a boolean or a 32-bit integer, got ${describe(error)}`);
  b.view.setInt32(at + F.error, errorCode, true);

  const s = b.symbols;
  b.unwrap(s.ddog_tracer_span_new(b.out, b.base + at), "ddog_tracer_span_new");
  const handle = b.takeOut();
  try {
    if (span.meta !== undefined) setMeta(b, handle, span.meta, `${path}.meta`);
    if (high !== 0n) setTid(b, handle, high, path);
    if (span.metrics !== undefined) setMetrics(b, handle, span.metrics, `${path}.metrics`);
    if (span.metaStruct !== undefined) setMetaStruct(b, handle, span.metaStruct, `${path}.metaStruct`);
    if (span.links !== undefined) setLinks(b, handle, span.links, `${path}.links`);
    if (span.events !== undefined) addEvents(b, handle, span.events, `${path}.events`);
  } catch (e) {
    s.ddog_tracer_span_free(handle);
    throw e;
  }
  return handle;
}

function setMeta(b: Binding, span: number, meta: Record<string, string>, path: string): void {
  requireRecord(meta, path);
  const set = b.symbols.ddog_tracer_span_set_meta;
  for (const k in meta) {
    const v = meta[k];
    if (typeof v !== "string") throw new ValidationError(key(path, k), `expected a string, got ${describe(v)}`);
    b.reserve(3 * (k.length + v.length));
    const kp = b.pos;
    const kn = b.writeString(k);
    const vp = b.pos;
    const vn = b.writeString(v);
    check(b, set(span, b.base + kp, kn, b.base + vp, vn), "ddog_tracer_span_set_meta", key(path, k));
  }
}

/** The v0.4 path does not add `_dd.p.tid`: the high 64 bits of a 128-bit trace id go there as 16 hex digits. */
function setTid(b: Binding, span: number, high: bigint, path: string): void {
  const k = "_dd.p.tid";
  const v = high.toString(16).padStart(16, "0");
  b.reserve(k.length + v.length);
  const kp = b.pos;
  const kn = b.writeString(k);
  const vp = b.pos;
  const vn = b.writeString(v);
  check(b, b.symbols.ddog_tracer_span_set_meta(span, b.base + kp, kn, b.base + vp, vn), "ddog_tracer_span_set_meta", `${path}.traceId`);
}

function setMetrics(b: Binding, span: number, metrics: Record<string, number>, path: string): void {
  requireRecord(metrics, path);
  const set = b.symbols.ddog_tracer_span_set_metric;
  for (const k in metrics) {
    const v = metrics[k];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ValidationError(key(path, k), `expected a finite number, got ${describe(v)}`);
    }
    b.reserve(3 * k.length);
    const kp = b.pos;
    const kn = b.writeString(k);
    check(b, set(span, b.base + kp, kn, v), "ddog_tracer_span_set_metric", key(path, k));
  }
}

function setMetaStruct(b: Binding, span: number, metaStruct: Record<string, unknown>, path: string): void {
  requireRecord(metaStruct, path);
  const s = b.symbols;
  for (const k in metaStruct) {
    const v = metaStruct[k];
    const p = key(path, k);
    if (v instanceof Uint8Array) {
      b.reserve(3 * k.length + v.length + 8);
      const kp = b.pos;
      const kn = b.writeString(k);
      const vp = b.pos;
      b.writeBytes(v);
      check(b, s.ddog_tracer_span_set_meta_struct_blob(span, b.base + kp, kn, b.base + vp, v.length), "ddog_tracer_span_set_meta_struct_blob", p);
    } else {
      const plan = planValue(v, p);
      b.reserve(3 * k.length + plan.bytes);
      const kp = b.pos;
      const kn = b.writeString(k);
      const tokens = writeTokens(b, v, plan.tokens);
      check(b, s.ddog_tracer_span_set_meta_struct(span, b.base + kp, kn, b.base + tokens, plan.tokens), "ddog_tracer_span_set_meta_struct", p);
    }
  }
}

/** How much room a structured value's tokens take; validates it on the way. */
function planValue(value: unknown, path: string): { tokens: number; bytes: number } {
  let tokens = 0;
  let bytes = 8; // alignment of the token array
  const ancestors = new Set<object>();
  const visit = (v: unknown, p: string, depth: number): void => {
    tokens++;
    switch (typeof v) {
      case "string":
        bytes += 3 * v.length;
        return;
      case "boolean":
      case "undefined":
        return;
      case "number":
        return;
      case "bigint":
        if (v < I64_MIN || v >= U64_LIMIT) throw new ValidationError(p, `bigint out of the i64/u64 range: ${v}`);
        return;
      case "object": {
        if (v === null) return;
        if (v instanceof Uint8Array) {
          bytes += v.length;
          return;
        }
        if (depth >= MAX_VALUE_DEPTH) throw new ValidationError(p, `nested deeper than ${MAX_VALUE_DEPTH} levels`);
        if (ancestors.has(v)) throw new ValidationError(p, "a cycle: the value contains itself");
        ancestors.add(v);
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) visit(v[i], `${p}[${i}]`, depth + 1);
        } else {
          const proto = Object.getPrototypeOf(v);
          if (proto !== Object.prototype && proto !== null) {
            throw new ValidationError(p, `cannot encode ${proto?.constructor?.name ?? "this object"}: only plain objects, arrays and Uint8Array`);
          }
          for (const k in v as Record<string, unknown>) {
            tokens++;
            bytes += 3 * k.length;
            visit((v as Record<string, unknown>)[k], key(p, k), depth + 1);
          }
        }
        ancestors.delete(v);
        return;
      }
      default:
        throw new ValidationError(p, `cannot encode a ${typeof v} as msgpack`);
    }
  };
  visit(value, path, 0);
  return { tokens, bytes: bytes + tokens * TOKEN.size };
}

/** Writes the `ddog_TracerValueToken` list of a planned value; returns the list's offset. */
function writeTokens(b: Binding, value: unknown, count: number): number {
  const start = b.align8();
  let t = start;
  b.pos = start + count * TOKEN.size;
  b.u8.fill(0, start, b.pos);
  const view = b.view;
  const bytes = (offset: number, n: number, p: number) => {
    setPtr(b, offset + TOKEN.bytes, b.base + p);
    setPtr(b, offset + TOKEN.bytes + SLICE.len, n);
  };
  const str = (s: string) => {
    view.setUint8(t + TOKEN.kind, valueKinds.string);
    const p = b.pos;
    bytes(t, b.writeString(s), p);
    t += TOKEN.size;
  };
  const put = (v: unknown): void => {
    const at = t;
    t += TOKEN.size;
    switch (typeof v) {
      case "string":
        t = at;
        str(v);
        return;
      case "boolean":
        view.setUint8(at + TOKEN.kind, valueKinds.bool);
        view.setUint8(at + TOKEN.bool_value, v ? 1 : 0);
        return;
      case "number":
        if (Number.isSafeInteger(v)) {
          view.setUint8(at + TOKEN.kind, valueKinds.i64);
          view.setBigInt64(at + TOKEN.i64_value, BigInt(v), true);
        } else {
          view.setUint8(at + TOKEN.kind, valueKinds.f64);
          view.setFloat64(at + TOKEN.f64_value, v, true);
        }
        return;
      case "bigint":
        if (v < 0n) {
          view.setUint8(at + TOKEN.kind, valueKinds.i64);
          view.setBigInt64(at + TOKEN.i64_value, v, true);
        } else {
          view.setUint8(at + TOKEN.kind, valueKinds.u64);
          view.setBigUint64(at + TOKEN.u64_value, v, true);
        }
        return;
      case "undefined":
        view.setUint8(at + TOKEN.kind, valueKinds.nil);
        return;
    }
    if (v === null) {
      view.setUint8(at + TOKEN.kind, valueKinds.nil);
    } else if (v instanceof Uint8Array) {
      view.setUint8(at + TOKEN.kind, valueKinds.binary);
      const p = b.pos;
      bytes(at, b.writeBytes(v), p);
    } else if (Array.isArray(v)) {
      view.setUint8(at + TOKEN.kind, valueKinds.array);
      view.setUint32(at + TOKEN.child_count, v.length, true);
      for (let i = 0; i < v.length; i++) put(v[i]);
    } else {
      const o = v as Record<string, unknown>;
      view.setUint8(at + TOKEN.kind, valueKinds.map);
      let n = 0;
      for (const k in o) {
        n++;
        str(k);
        put(o[k]);
      }
      view.setUint32(at + TOKEN.child_count, n, true);
    }
  };
  put(value);
  return start;
}

function setLinks(b: Binding, span: number, links: readonly SpanLink[], path: string): void {
  if (!Array.isArray(links)) throw new ValidationError(path, `expected an array of span links, got ${describe(links)}`);
  let bytes = 8 + links.length * LINK.size;
  for (let i = 0; i < links.length; i++) {
    const l = links[i];
    const p = `${path}[${i}]`;
    requireRecord(l, p);
    const attrs = l.attributes === undefined ? {} : requireRecord(l.attributes, `${p}.attributes`);
    bytes += 8 + 3 * optionalString(l.tracestate, "", `${p}.tracestate`).length;
    for (const k in attrs) {
      bytes += ATTR.size + 3 * (k.length + requireString(attrs[k], key(`${p}.attributes`, k)).length);
    }
    if (l.flags !== undefined && !(Number.isInteger(l.flags) && l.flags >= 0 && l.flags < TWO_32)) {
      throw new ValidationError(`${p}.flags`, `expected a u32 integer, got ${describe(l.flags)}`);
    }
  }
  b.reserve(bytes);
  const start = b.align8();
  b.pos += links.length * LINK.size;
  b.u8.fill(0, start, b.pos);
  for (let i = 0; i < links.length; i++) {
    const l = links[i];
    const at = start + i * LINK.size;
    const p = `${path}[${i}]`;
    const high = writeId(b, at + LINK.trace_id_low, l.traceId, U128_LIMIT, `${p}.traceId`);
    b.view.setBigUint64(at + LINK.trace_id_high, high, true);
    writeId(b, at + LINK.span_id, l.spanId, U64_LIMIT, `${p}.spanId`);
    b.view.setUint32(at + LINK.flags, l.flags ?? 0, true);
    writeSlice(b, at + LINK.tracestate, l.tracestate ?? "");
    const attrs = l.attributes ?? {};
    const keys = Object.keys(attrs);
    const attrStart = b.align8();
    b.pos += keys.length * ATTR.size;
    for (let j = 0; j < keys.length; j++) {
      writeSlice(b, attrStart + j * ATTR.size + ATTR.key, keys[j]);
      writeSlice(b, attrStart + j * ATTR.size + ATTR.value, attrs[keys[j]]);
    }
    setPtr(b, at + LINK.attributes, b.base + attrStart);
    setPtr(b, at + LINK.attributes + SLICE.len, keys.length);
  }
  check(b, b.symbols.ddog_tracer_span_set_links(span, b.base + start, links.length), "ddog_tracer_span_set_links", path);
}

function addEvents(b: Binding, span: number, events: readonly SpanEvent[], path: string): void {
  if (!Array.isArray(events)) throw new ValidationError(path, `expected an array of span events, got ${describe(events)}`);
  const s = b.symbols;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    const p = `${path}[${i}]`;
    requireRecord(e, p);
    const name = requireString(e.name, `${p}.name`);
    const time = e.time;
    if (!(typeof time === "bigint" ? time >= 0n && time < U64_LIMIT : Number.isInteger(time) && time >= 0 && time < TWO_63)) {
      throw new ValidationError(`${p}.time`, `expected nanoseconds since the epoch as bigint, got ${describe(time)}`);
    }
    const attrs = e.attributes === undefined ? {} : requireRecord(e.attributes, `${p}.attributes`);
    b.reserve(3 * name.length);
    const np = b.pos;
    const nn = b.writeString(name);
    check(b, s.ddog_tracer_span_event_new(b.out, b.base + np, nn, BigInt(time)), "ddog_tracer_span_event_new", p);
    const event = b.takeOut();
    try {
      for (const k in attrs) setEventAttribute(b, event, k, attrs[k], key(`${p}.attributes`, k));
    } catch (err) {
      s.ddog_tracer_span_event_free(event);
      throw err;
    }
    // add_event consumes the event, also when it fails.
    check(b, s.ddog_tracer_span_add_event(span, event), "ddog_tracer_span_add_event", p);
  }
}

type ArrayKind = "string" | "bool" | "int" | "double";

function arrayKind(v: readonly unknown[], forceDouble: boolean, path: string): ArrayKind {
  if (v.length === 0) return forceDouble ? "double" : "string";
  const first = typeof v[0];
  let kind: ArrayKind;
  if (first === "string") kind = "string";
  else if (first === "boolean") kind = "bool";
  else if (first === "number" || first === "bigint") kind = forceDouble ? "double" : "int";
  else throw new ValidationError(`${path}[0]`, `span event array elements must be strings, booleans or numbers, got ${describe(v[0])}`);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    const t = typeof x;
    const ok = kind === "string" ? t === "string" : kind === "bool" ? t === "boolean" : t === "number" || t === "bigint";
    if (!ok) throw new ValidationError(`${path}[${i}]`, `a mixed array: expected ${first} like element 0, got ${describe(x)}`);
    if (t === "number" && !Number.isFinite(x)) throw new ValidationError(`${path}[${i}]`, `expected a finite number, got ${describe(x)}`);
    if (kind === "int" && t === "number" && !Number.isSafeInteger(x)) kind = "double";
    if (t === "bigint" && ((x as bigint) < I64_MIN || (x as bigint) >= I64_LIMIT)) {
      throw new ValidationError(`${path}[${i}]`, `bigint out of the i64 range: ${x}`);
    }
  }
  if (kind === "double" && v.some((x) => typeof x === "bigint")) {
    throw new ValidationError(path, "a mixed array: bigint and non-integer numbers");
  }
  return kind;
}

function setEventAttribute(b: Binding, event: number, k: string, v: unknown, path: string): void {
  const s = b.symbols;
  let forceDouble = false;
  if (typeof v === "object" && v !== null && !Array.isArray(v) && "double" in v) {
    v = (v as Double).double;
    forceDouble = true;
  }
  if (Array.isArray(v)) {
    const kind = arrayKind(v, forceDouble, path);
    b.reserve(3 * k.length + 8 + v.length * (kind === "string" ? SLICE.size : 8) +
      (kind === "string" ? 3 * (v as string[]).reduce((n, x) => n + x.length, 0) : 0));
    const kp = b.pos;
    const kn = b.writeString(k);
    const at = b.align8();
    const width = kind === "string" ? SLICE.size : kind === "bool" ? 1 : 8;
    b.pos += v.length * width;
    const view = b.view;
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      const o = at + i * width;
      if (kind === "string") writeSlice(b, o, x as string);
      else if (kind === "bool") view.setUint8(o, x ? 1 : 0);
      else if (kind === "int") view.setBigInt64(o, BigInt(x as number | bigint), true);
      else view.setFloat64(o, x as number, true);
    }
    const fn = `ddog_tracer_span_event_set_${kind}_array` as const;
    check(b, s[fn](event, b.base + kp, kn, b.base + at, v.length), fn, path);
    return;
  }
  b.reserve(3 * k.length + (typeof v === "string" ? 3 * v.length : 0));
  const kp = b.pos;
  const kn = b.writeString(k);
  const kAddr = b.base + kp;
  if (typeof v === "string") {
    const vp = b.pos;
    const vn = b.writeString(v);
    check(b, s.ddog_tracer_span_event_set_string(event, kAddr, kn, b.base + vp, vn), "ddog_tracer_span_event_set_string", path);
  } else if (typeof v === "boolean") {
    check(b, s.ddog_tracer_span_event_set_bool(event, kAddr, kn, v), "ddog_tracer_span_event_set_bool", path);
  } else if (typeof v === "bigint") {
    if (v < I64_MIN || v >= I64_LIMIT) throw new ValidationError(path, `bigint out of the i64 range: ${v}`);
    check(b, s.ddog_tracer_span_event_set_int(event, kAddr, kn, v), "ddog_tracer_span_event_set_int", path);
  } else if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new ValidationError(path, `expected a finite number, got ${describe(v)}`);
    if (Number.isSafeInteger(v) && !forceDouble) {
      check(b, s.ddog_tracer_span_event_set_int(event, kAddr, kn, v), "ddog_tracer_span_event_set_int", path);
    } else {
      check(b, s.ddog_tracer_span_event_set_double(event, kAddr, kn, v), "ddog_tracer_span_event_set_double", path);
    }
  } else {
    throw new ValidationError(path, `span event attributes must be strings, booleans, numbers, bigints or arrays of one of them, got ${describe(v)}`);
  }
}

/**
 * Encodes a plain JS value as msgpack through libdatadog
 * (`ddog_tracer_encode_value`): the bytes `metaStruct` would carry for it.
 * Accepts what `metaStruct` accepts; throws `ValidationError` otherwise.
 */
export function encodeValue(b: Binding, value: unknown): Uint8Array {
  const plan = planValue(value, "value");
  b.reserve(plan.bytes);
  const tokens = writeTokens(b, value, plan.tokens);
  const s = b.symbols;
  check(b, s.ddog_tracer_encode_value(b.base + tokens, plan.tokens, b.out), "ddog_tracer_encode_value", "value");
  const encoded = b.takeOut();
  try {
    const [ptr, len] = s.ddog_tracer_encoded_value_as_slice(encoded);
    return b.native.read(ptr, len);
  } finally {
    s.ddog_tracer_encoded_value_free(encoded);
  }
}
