/**
 * The per-field builder: turns plain spans into a native trace chunks
 * handle (`ddog_TracerTraceChunks`), field by field through the C ABI, on
 * the calling thread (`sendPath: "fields"`).
 *
 * @module
 */
import { layouts, MAX_VALUE_DEPTH, valueKinds } from "../ffi/abi.ts";
import type { Word } from "../ffi/native.ts";
import { type Binding, byteLength, FIELDS, isBytes, ScratchOverflow } from "./binding.ts";
import { ValidationError } from "./errors.ts";
import { FinishedSpan } from "./finished-span.ts";
import {
  arrayKind,
  attrPath,
  describe,
  type Double,
  entryExpected,
  eventPath,
  expected,
  hasEnumerableKey,
  I64_LIMIT,
  I64_MIN,
  idError,
  isRecord,
  key,
  nanosError,
  ownCopy,
  ownKeys,
  requireRecord,
  requireString,
  type Span,
  type SpanEvent,
  spanIdError,
  type SpanLink,
  spanPath,
  type TraceChunk,
  TWO_32,
  TWO_63,
  U128_LIMIT,
  U64_LIMIT,
} from "./span.ts";

const F = layouts.TracerSpanFields;
const LINK = layouts.TracerSpanLink;
const ATTR = layouts.TracerSpanLinkAttribute;
const TOKEN = layouts.TracerValueToken;
const SLICE = layouts.Slice;

/**
 * Whether `for…in` over `o` may yield inherited keys: then the loop goes
 * over `ownCopy(o)` instead. Not for a plain object (or a null-prototype one)
 * while nobody has added an enumerable property to `Object.prototype`
 * (checked once per batch): the hot maps (meta, metrics, event attributes)
 * use `for…in` with one read per key, V8's fast path. Either way each key is
 * listed once and each value read once.
 */
function inheritsKeys(o: object): boolean {
  const proto = Object.getPrototypeOf(o);
  return proto !== null && (proto !== Object.prototype || !prototypeClean);
}

let prototypeClean = true;

/**
 * Writes the low 64 bits of an unsigned id (bigint or safe integer number)
 * at scratch offset `offset` (8-aligned); returns false when it is not an id
 * below `limit`. A bigint goes through the BigUint64Array (which keeps the
 * low 64 bits), a number as two 32-bit halves: no DataView, no allocation.
 */
function putId(b: Binding, offset: number, v: unknown, limit: bigint): boolean {
  if (typeof v === "bigint") {
    if (v < 0n || v >= limit) return false;
    b.big64[offset >> 3] = v;
    return true;
  }
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) return false;
    b.putAddress(offset, v);
    return true;
  }
  return false;
}

/** Writes a time or duration in ns (non-negative i64) at scratch offset `offset` (8-aligned), or throws. */
function putNanos(b: Binding, offset: number, v: unknown, c: number, i: number, field: string): void {
  if (typeof v === "bigint" && v >= 0n && v < I64_LIMIT) b.i64[offset >> 3] = v;
  else if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < TWO_63) b.putAddress(offset, v);
  else throw nanosError(v, c, i, field);
}

/** Writes a string as a `{ptr,len}` slice at `offset`; its bytes go to the cache (`cache`) or at `b.pos` (room reserved). */
function writeSlice(b: Binding, offset: number, s: string, cache = false): void {
  if (cache) {
    b.arg(s, true);
    b.putArg(offset);
    return;
  }
  const p = b.pos;
  const n = b.writeString(s);
  b.putAddress(offset, b.base + p);
  b.putAddress(offset + SLICE.len, n);
}

/**
 * A `ScratchOverflow` (a write that would pass the room reserved) as a
 * `ValidationError` naming the field; other errors as they are.
 */
function asFieldError(e: unknown, path: string): unknown {
  return e instanceof ScratchOverflow ? new ValidationError(path, e.message, { cause: e }) : e;
}

/** A library error on a span field, as a `ValidationError` naming the field. */
function fieldError(b: Binding, error: Word, fn: string, path: string): ValidationError {
  const e = b.takeError(error, fn);
  return new ValidationError(path, e.message, { cause: e });
}

/** Calls a ddog function that returns an error, naming the span field on failure. */
function check(b: Binding, error: Word | null, fn: string, path: string): void {
  if (error) throw fieldError(b, error, fn, path);
}

/**
 * Builds a `ddog_TracerTraceChunks` from `traces` (an array of chunks, each
 * an array of spans). Returns the handle (a word), owned by the caller; on
 * any error everything allocated so far is freed and a `ValidationError`
 * naming `traces[chunk][span].field` is thrown.
 */
export function buildTraceChunks(b: Binding, traces: readonly TraceChunk[]): Word {
  if (!Array.isArray(traces)) throw new ValidationError("traces", `expected an array of trace chunks, got ${describe(traces)}`);
  const s = b.symbols;
  prototypeClean = !hasEnumerableKey(Object.prototype);
  const nChunks = traces.length;
  b.unwrap(s.ddog_tracer_trace_chunks_new(b.lenWord(nChunks), b.outWord), "ddog_tracer_trace_chunks_new");
  const chunks = b.takeOut();
  let c = 0;
  try {
    for (; c < nChunks; c++) {
      const chunk = traces[c];
      if (!Array.isArray(chunk)) {
        throw new ValidationError(`traces[${c}]`, `expected an array of spans, got ${describe(chunk)}`);
      }
      const nSpans = chunk.length;
      b.unwrap(s.ddog_tracer_trace_chunks_begin_chunk(chunks, b.lenWord(nSpans)), "ddog_tracer_trace_chunks_begin_chunk");
      for (let i = 0; i < nSpans; i++) {
        const given = chunk[i];
        // The Tracer's finished spans get their layers of meta and metrics merged here (the batch writer writes them as they are).
        const span = buildSpan(b, given instanceof FinishedSpan ? given.toSpan() : given, c, i);
        // push_span consumes the span, also when it fails.
        const error = s.ddog_tracer_trace_chunks_push_span(chunks, span);
        if (error) throw b.takeError(error, "ddog_tracer_trace_chunks_push_span");
      }
    }
  } catch (e) {
    s.ddog_tracer_trace_chunks_free(chunks);
    if (e instanceof ValidationError) e.chunk ??= c;
    throw e;
  }
  return chunks;
}

/**
 * Builds span `i` of chunk `c` as a `ddog_TracerSpan`; returns the handle, or
 * frees it and throws. Each field of the span is read once, here.
 */
function buildSpan(b: Binding, span: Span, c: number, i: number): Word {
  if (typeof span !== "object" || span === null) {
    throw new ValidationError(spanPath(c, i), `expected a span object, got ${describe(span)}`);
  }
  const {
    name, service, resource: givenResource, type: givenType, traceId, spanId, parentId, start, duration, error,
    meta, metrics, metaStruct, links, events,
  } = span;
  if (typeof name !== "string") throw expected(c, i, "name", "a string", name);
  if (typeof service !== "string") throw expected(c, i, "service", "a string", service);
  let resource = givenResource;
  if (resource === undefined) resource = name;
  else if (typeof resource !== "string") throw expected(c, i, "resource", "a string", resource);
  let type = givenType;
  if (type === undefined) type = "";
  else if (typeof type !== "string") throw expected(c, i, "type", "a string", type);

  b.settle();
  try {
    b.reserve(3 * (name.length + service.length + resource.length + type.length));
    writeSlice(b, FIELDS + F.service, service, true);
    writeSlice(b, FIELDS + F.name, name, true);
    writeSlice(b, FIELDS + F.resource, resource, true);
    writeSlice(b, FIELDS + F.span_type, type, true);
  } catch (e) {
    throw asFieldError(e, spanPath(c, i));
  }

  if (!putId(b, FIELDS + F.trace_id_low, traceId, U128_LIMIT)) throw spanIdError(traceId, U128_LIMIT, c, i, "traceId");
  let high = 0n;
  if (typeof traceId === "bigint" && traceId >= U64_LIMIT) {
    high = traceId >> 64n;
    b.big64[(FIELDS + F.trace_id_high) >> 3] = high;
  } else {
    b.putAddress(FIELDS + F.trace_id_high, 0);
  }
  if (!putId(b, FIELDS + F.span_id, spanId, U64_LIMIT)) throw spanIdError(spanId, U64_LIMIT, c, i, "spanId");
  if (parentId === undefined) b.putAddress(FIELDS + F.parent_id, 0);
  else if (!putId(b, FIELDS + F.parent_id, parentId, U64_LIMIT)) throw spanIdError(parentId, U64_LIMIT, c, i, "parentId");
  putNanos(b, FIELDS + F.start, start, c, i, "start");
  putNanos(b, FIELDS + F.duration, duration, c, i, "duration");
  let errorCode: number;
  if (error === undefined || error === false || error === 0) errorCode = 0;
  else if (error === true) errorCode = 1;
  else if (typeof error === "number" && Number.isInteger(error) && error >= -(2 ** 31) && error < 2 ** 31) errorCode = error;
  else throw expected(c, i, "error", "a boolean or a 32-bit integer", error);
  b.i32[(FIELDS + F.error) >> 2] = errorCode;

  const s = b.symbols;
  b.unwrap(s.ddog_tracer_span_new(b.outWord, b.fieldsWord), "ddog_tracer_span_new");
  const handle = b.takeOut();
  let field = "meta";
  try {
    if (meta !== undefined) setMeta(b, handle, meta, c, i);
    field = "traceId";
    if (high !== 0n) setTid(b, handle, high, c, i);
    field = "metrics";
    if (metrics !== undefined) setMetrics(b, handle, metrics, c, i);
    field = "metaStruct";
    if (metaStruct !== undefined) setMetaStruct(b, handle, metaStruct as Record<string, unknown>, `${spanPath(c, i)}.metaStruct`);
    field = "links";
    if (links !== undefined) setLinks(b, handle, links, c, i);
    field = "events";
    if (events !== undefined) addEvents(b, handle, events, c, i);
  } catch (e) {
    s.ddog_tracer_span_free(handle);
    throw asFieldError(e, `${spanPath(c, i)}.${field}`);
  }
  return handle;
}

function setMeta(b: Binding, span: Word, meta: Record<string, string>, c: number, i: number): void {
  if (!isRecord(meta)) throw expected(c, i, "meta", "an object", meta);
  const set = b.symbols.ddog_tracer_span_set_meta;
  const values = b.cacheValues;
  const own = inheritsKeys(meta) ? ownCopy(meta) : meta;
  for (const k in own) {
    const v = own[k];
    if (typeof v !== "string") throw entryExpected(c, i, "meta", k, "a string", v);
    b.reserve(3 * (k.length + v.length));
    b.arg(k, true);
    const kp = b.argPtrWord;
    const kn = b.argLenWord;
    b.arg(v, values);
    const error = set(span, kp, kn, b.argPtrWord, b.argLenWord);
    if (error) throw fieldError(b, error, "ddog_tracer_span_set_meta", key(`${spanPath(c, i)}.meta`, k));
  }
}

const TID_KEY = "_dd.p.tid";
let lastHigh = -1n;
let lastTid = "";

/** The v0.4 path does not add `_dd.p.tid`: the high 64 bits of a 128-bit trace id go there as 16 hex digits. */
function setTid(b: Binding, span: Word, high: bigint, c: number, i: number): void {
  if (high !== lastHigh) {
    lastTid = high.toString(16).padStart(16, "0");
    lastHigh = high;
  }
  b.reserve(TID_KEY.length + lastTid.length); // the key too: the string cache may be off or full
  b.arg(TID_KEY, true);
  const kp = b.argPtrWord;
  const kn = b.argLenWord;
  b.arg(lastTid, false);
  const error = b.symbols.ddog_tracer_span_set_meta(span, kp, kn, b.argPtrWord, b.argLenWord);
  if (error) throw fieldError(b, error, "ddog_tracer_span_set_meta", `${spanPath(c, i)}.traceId`);
}

function setMetrics(b: Binding, span: Word, metrics: Record<string, number>, c: number, i: number): void {
  if (!isRecord(metrics)) throw expected(c, i, "metrics", "an object", metrics);
  const set = b.symbols.ddog_tracer_span_set_metric;
  const own = inheritsKeys(metrics) ? ownCopy(metrics) : metrics;
  for (const k in own) {
    const v = own[k];
    if (typeof v !== "number" || !Number.isFinite(v)) throw entryExpected(c, i, "metrics", k, "a finite number", v);
    b.reserve(3 * k.length);
    b.arg(k, true);
    const error = set(span, b.argPtrWord, b.argLenWord, v);
    if (error) throw fieldError(b, error, "ddog_tracer_span_set_metric", key(`${spanPath(c, i)}.metrics`, k));
  }
}

function setMetaStruct(b: Binding, span: Word, metaStruct: Record<string, unknown>, path: string): void {
  requireRecord(metaStruct, path);
  const s = b.symbols;
  const keys = ownKeys(metaStruct);
  for (let j = 0; j < keys.length; j++) {
    const k = keys[j];
    const v = metaStruct[k];
    if (isBytes(v)) {
      const n = byteLength(v);
      b.reserve(3 * k.length + n);
      b.arg(k, true);
      const kp = b.argPtrWord;
      const kn = b.argLenWord;
      const vp = b.pos;
      if (!b.writeBytes(v, n)) throw resized(key(path, k));
      check(b, s.ddog_tracer_span_set_meta_struct_blob(span, kp, kn, b.addrWord(vp), b.lenWord(n)), "ddog_tracer_span_set_meta_struct_blob", key(path, k));
    } else {
      const p = key(path, k);
      const plan = planValue(v, p);
      b.reserve(3 * k.length + plan.bytes);
      b.arg(k, true);
      const kp = b.argPtrWord;
      const kn = b.argLenWord;
      const tokens = writeTokens(b, plan);
      check(b, s.ddog_tracer_span_set_meta_struct(span, kp, kn, b.addrWord(tokens), b.lenWord(plan.items.length)), "ddog_tracer_span_set_meta_struct", p);
    }
  }
}

function resized(path: string): ValidationError {
  return new ValidationError(path, "the Uint8Array changed length while the span was being read (its buffer was resized or detached)");
}

/** An array or map of a planned value, with its child count. */
class Nested {
  constructor(readonly map: boolean, readonly n: number) {}
}

/** A Uint8Array of a planned value, with its length when planned. */
class Bytes {
  constructor(readonly view: Uint8Array, readonly n: number, readonly path: string) {}
}

/** One `ddog_TracerValueToken` of a planned value. */
type Item = string | number | bigint | boolean | null | undefined | Nested | Bytes;

/** A structured value read once into its tokens (depth first; a map's key before its value), and the scratch bytes they need. */
interface ValuePlan {
  items: Item[];
  bytes: number;
}

/**
 * Reads a structured value once, validating it, into the tokens that
 * `writeTokens` writes: each array length, object key and element is read
 * exactly once (own keys only), so a getter or Proxy cannot make the write
 * differ from the plan.
 */
function planValue(value: unknown, path: string): ValuePlan {
  const items: Item[] = [];
  let bytes = 8; // alignment of the token array
  const ancestors = new Set<object>();
  const visit = (v: unknown, p: string, depth: number): void => {
    switch (typeof v) {
      case "string":
        items.push(v);
        bytes += 3 * v.length;
        return;
      case "boolean":
      case "undefined":
      case "number":
        items.push(v);
        return;
      case "bigint":
        if (v < I64_MIN || v >= U64_LIMIT) throw new ValidationError(p, `bigint out of the i64/u64 range: ${v}`);
        items.push(v);
        return;
      case "object": {
        if (v === null) {
          items.push(null);
          return;
        }
        if (isBytes(v)) {
          const n = byteLength(v);
          items.push(new Bytes(v, n, p));
          bytes += n;
          return;
        }
        if (depth >= MAX_VALUE_DEPTH) throw new ValidationError(p, `nested deeper than ${MAX_VALUE_DEPTH} levels`);
        if (ancestors.has(v)) throw new ValidationError(p, "a cycle: the value contains itself");
        ancestors.add(v);
        if (Array.isArray(v)) {
          const n = v.length;
          items.push(new Nested(false, n));
          for (let i = 0; i < n; i++) visit(v[i], `${p}[${i}]`, depth + 1);
        } else {
          const proto = Object.getPrototypeOf(v);
          if (proto !== Object.prototype && proto !== null) {
            throw new ValidationError(p, `cannot encode ${proto?.constructor?.name ?? "this object"}: only plain objects, arrays and Uint8Array`);
          }
          const o = v as Record<string, unknown>;
          const keys = ownKeys(o);
          items.push(new Nested(true, keys.length));
          for (let i = 0; i < keys.length; i++) {
            const k = keys[i];
            items.push(k);
            bytes += 3 * k.length;
            visit(o[k], key(p, k), depth + 1);
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
  return { items, bytes: bytes + items.length * TOKEN.size };
}

/** Writes the `ddog_TracerValueToken` list of a planned value (room reserved); returns the list's offset. */
function writeTokens(b: Binding, plan: ValuePlan): number {
  const items = plan.items;
  const start = b.align8();
  b.claim(items.length * TOKEN.size);
  b.u8.fill(0, start, b.pos);
  const view = b.view;
  let t = start;
  for (let i = 0; i < items.length; i++, t += TOKEN.size) {
    const v = items[i];
    switch (typeof v) {
      case "string": {
        view.setUint8(t + TOKEN.kind, valueKinds.string);
        const p = b.pos;
        const n = b.writeString(v);
        b.putAddress(t + TOKEN.bytes, b.base + p);
        b.putAddress(t + TOKEN.bytes + SLICE.len, n);
        continue;
      }
      case "boolean":
        view.setUint8(t + TOKEN.kind, valueKinds.bool);
        view.setUint8(t + TOKEN.bool_value, v ? 1 : 0);
        continue;
      case "number":
        if (Number.isSafeInteger(v)) {
          view.setUint8(t + TOKEN.kind, valueKinds.i64);
          view.setBigInt64(t + TOKEN.i64_value, BigInt(v), true);
        } else {
          view.setUint8(t + TOKEN.kind, valueKinds.f64);
          view.setFloat64(t + TOKEN.f64_value, v, true);
        }
        continue;
      case "bigint":
        if (v < 0n) {
          view.setUint8(t + TOKEN.kind, valueKinds.i64);
          view.setBigInt64(t + TOKEN.i64_value, v, true);
        } else {
          view.setUint8(t + TOKEN.kind, valueKinds.u64);
          view.setBigUint64(t + TOKEN.u64_value, v, true);
        }
        continue;
      case "undefined":
        view.setUint8(t + TOKEN.kind, valueKinds.nil);
        continue;
    }
    if (v === null) {
      view.setUint8(t + TOKEN.kind, valueKinds.nil);
    } else if (v instanceof Nested) {
      view.setUint8(t + TOKEN.kind, v.map ? valueKinds.map : valueKinds.array);
      view.setUint32(t + TOKEN.child_count, v.n, true);
    } else {
      view.setUint8(t + TOKEN.kind, valueKinds.binary);
      const p = b.pos;
      if (!b.writeBytes(v.view, v.n)) throw resized(v.path);
      b.putAddress(t + TOKEN.bytes, b.base + p);
      b.putAddress(t + TOKEN.bytes + SLICE.len, v.n);
    }
  }
  return start;
}

/** A span link read once: its fields, and its attributes as parallel key and value lists. */
interface LinkPlan {
  traceId: unknown;
  spanId: unknown;
  flags: number;
  tracestate: string;
  keys: string[];
  values: string[];
}

/** Reads and validates the links of span `i` of chunk `c`, once; returns them and the scratch bytes they need. */
function planLinks(links: readonly SpanLink[], c: number, i: number): { plans: LinkPlan[]; bytes: number } {
  if (!Array.isArray(links)) throw new ValidationError(`${spanPath(c, i)}.links`, `expected an array of span links, got ${describe(links)}`);
  const n = links.length;
  const plans: LinkPlan[] = new Array(n);
  let bytes = 8 + n * LINK.size;
  for (let j = 0; j < n; j++) {
    const l = links[j];
    if (!isRecord(l)) requireRecord(l, `${spanPath(c, i)}.links[${j}]`);
    const { traceId, spanId, attributes, tracestate, flags } = l;
    if (attributes !== undefined && !isRecord(attributes)) requireRecord(attributes, `${spanPath(c, i)}.links[${j}].attributes`);
    if (tracestate !== undefined && typeof tracestate !== "string") requireString(tracestate, `${spanPath(c, i)}.links[${j}].tracestate`);
    const keys = attributes === undefined ? [] : ownKeys(attributes);
    const values: string[] = new Array(keys.length);
    for (let a = 0; a < keys.length; a++) {
      const k = keys[a];
      const v = attributes![k];
      if (typeof v !== "string") requireString(v, key(`${spanPath(c, i)}.links[${j}].attributes`, k));
      values[a] = v;
      bytes += ATTR.size + 3 * (k.length + v.length);
    }
    const state = tracestate ?? "";
    bytes += 8 + 3 * state.length;
    if (flags !== undefined && !(Number.isInteger(flags) && flags >= 0 && flags < TWO_32)) {
      throw new ValidationError(`${spanPath(c, i)}.links[${j}].flags`, `expected a u32 integer, got ${describe(flags)}`);
    }
    plans[j] = { traceId, spanId, flags: flags ?? 0, tracestate: state, keys, values };
  }
  return { plans, bytes };
}

function setLinks(b: Binding, span: Word, links: readonly SpanLink[], c: number, i: number): void {
  const { plans, bytes } = planLinks(links, c, i);
  b.reserve(bytes);
  const start = b.align8();
  b.claim(plans.length * LINK.size);
  b.u8.fill(0, start, b.pos);
  for (let j = 0; j < plans.length; j++) {
    const l = plans[j];
    const at = start + j * LINK.size;
    const traceId = l.traceId;
    if (!putId(b, at + LINK.trace_id_low, traceId, U128_LIMIT)) throw idError(traceId, U128_LIMIT, `${spanPath(c, i)}.links[${j}].traceId`);
    if (typeof traceId === "bigint" && traceId >= U64_LIMIT) b.big64[(at + LINK.trace_id_high) >> 3] = traceId >> 64n;
    if (!putId(b, at + LINK.span_id, l.spanId, U64_LIMIT)) throw idError(l.spanId, U64_LIMIT, `${spanPath(c, i)}.links[${j}].spanId`);
    b.u32[(at + LINK.flags) >> 2] = l.flags;
    writeSlice(b, at + LINK.tracestate, l.tracestate);
    const { keys, values } = l;
    const attrStart = b.align8();
    b.claim(keys.length * ATTR.size);
    for (let a = 0, o = attrStart; a < keys.length; a++, o += ATTR.size) {
      writeSlice(b, o + ATTR.key, keys[a], true);
      writeSlice(b, o + ATTR.value, values[a]);
    }
    b.putAddress(at + LINK.attributes, b.base + attrStart);
    b.putAddress(at + LINK.attributes + SLICE.len, keys.length);
  }
  const error = b.symbols.ddog_tracer_span_set_links(span, b.addrWord(start), b.lenWord(plans.length));
  if (error) throw fieldError(b, error, "ddog_tracer_span_set_links", `${spanPath(c, i)}.links`);
}

function addEvents(b: Binding, span: Word, events: readonly SpanEvent[], c: number, i: number): void {
  if (!Array.isArray(events)) throw new ValidationError(`${spanPath(c, i)}.events`, `expected an array of span events, got ${describe(events)}`);
  const s = b.symbols;
  const big = b.bigWords;
  const n = events.length;
  for (let j = 0; j < n; j++) {
    const e = events[j];
    if (!isRecord(e)) requireRecord(e, eventPath(c, i, j));
    const { name, time, attributes: attrs } = e;
    if (typeof name !== "string") requireString(name, `${eventPath(c, i, j)}.name`);
    if (!(typeof time === "bigint" ? time >= 0n && time < U64_LIMIT : Number.isInteger(time) && time >= 0 && time < TWO_63)) {
      throw new ValidationError(`${eventPath(c, i, j)}.time`, `expected nanoseconds since the epoch as bigint, got ${describe(time)}`);
    }
    if (attrs !== undefined && !isRecord(attrs)) requireRecord(attrs, `${eventPath(c, i, j)}.attributes`);
    b.reserve(3 * name.length);
    b.arg(name, true);
    const error = s.ddog_tracer_span_event_new(b.outWord, b.argPtrWord, b.argLenWord, typeof time === "bigint" ? time : big ? BigInt(time) : time);
    if (error) throw fieldError(b, error, "ddog_tracer_span_event_new", eventPath(c, i, j));
    const event = b.takeOut();
    try {
      if (attrs !== undefined) {
        const own = inheritsKeys(attrs) ? ownCopy(attrs) : attrs;
        for (const k in own) setEventAttribute(b, event, k, own[k], big, c, i, j);
      }
    } catch (err) {
      s.ddog_tracer_span_event_free(event);
      throw err;
    }
    // add_event consumes the event, also when it fails.
    const added = s.ddog_tracer_span_add_event(span, event);
    if (added) throw fieldError(b, added, "ddog_tracer_span_add_event", eventPath(c, i, j));
  }
}

function setEventAttribute(b: Binding, event: Word, k: string, v: unknown, big: boolean, c: number, i: number, j: number): void {
  const s = b.symbols;
  let forceDouble = false;
  if (typeof v === "object" && v !== null && !Array.isArray(v) && "double" in v) {
    v = (v as Double).double;
    forceDouble = true;
  }
  if (Array.isArray(v)) {
    // Read the array once: its length, then each element.
    const given = v as readonly unknown[];
    const len = given.length;
    const items: unknown[] = new Array(len);
    let chars = 0;
    for (let x = 0; x < len; x++) {
      const item = given[x];
      items[x] = item;
      if (typeof item === "string") chars += item.length;
    }
    const kind = arrayKind(items, forceDouble, attrPath(c, i, j, k));
    const width = kind === "string" ? SLICE.size : kind === "bool" ? 1 : 8;
    b.reserve(3 * k.length + 8 + len * width + (kind === "string" ? 3 * chars : 0));
    b.arg(k, true);
    const kp = b.argPtrWord;
    const kn = b.argLenWord;
    const at = b.align8();
    b.claim(len * width);
    const view = b.view;
    for (let i = 0; i < len; i++) {
      const x = items[i];
      const o = at + i * width;
      if (kind === "string") writeSlice(b, o, x as string);
      else if (kind === "bool") view.setUint8(o, x ? 1 : 0);
      else if (kind === "int") view.setBigInt64(o, BigInt(x as number | bigint), true);
      else view.setFloat64(o, x as number, true);
    }
    const fn = `ddog_tracer_span_event_set_${kind}_array` as const;
    check(b, s[fn](event, kp, kn, b.addrWord(at), b.lenWord(len)), fn, attrPath(c, i, j, k));
    return;
  }
  b.reserve(3 * k.length + (typeof v === "string" ? 3 * v.length : 0));
  b.arg(k, true);
  const kp = b.argPtrWord;
  const kn = b.argLenWord;
  let error: Word | null;
  let fn: string;
  if (typeof v === "string") {
    b.arg(v, false);
    fn = "ddog_tracer_span_event_set_string";
    error = s.ddog_tracer_span_event_set_string(event, kp, kn, b.argPtrWord, b.argLenWord);
  } else if (typeof v === "boolean") {
    fn = "ddog_tracer_span_event_set_bool";
    error = s.ddog_tracer_span_event_set_bool(event, kp, kn, v);
  } else if (typeof v === "bigint") {
    if (v < I64_MIN || v >= I64_LIMIT) throw new ValidationError(attrPath(c, i, j, k), `bigint out of the i64 range: ${v}`);
    fn = "ddog_tracer_span_event_set_int";
    error = s.ddog_tracer_span_event_set_int(event, kp, kn, v);
  } else if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new ValidationError(attrPath(c, i, j, k), `expected a finite number, got ${describe(v)}`);
    if (Number.isSafeInteger(v) && !forceDouble) {
      fn = "ddog_tracer_span_event_set_int";
      error = s.ddog_tracer_span_event_set_int(event, kp, kn, big ? BigInt(v) : v);
    } else {
      fn = "ddog_tracer_span_event_set_double";
      error = s.ddog_tracer_span_event_set_double(event, kp, kn, v);
    }
  } else {
    throw new ValidationError(attrPath(c, i, j, k), `span event attributes must be strings, booleans, numbers, bigints or arrays of one of them, got ${describe(v)}`);
  }
  if (error) throw fieldError(b, error, fn, attrPath(c, i, j, k));
}

/**
 * Encodes a plain JS value as msgpack through libdatadog
 * (`ddog_tracer_encode_value`): the bytes `metaStruct` would carry for it.
 * Accepts what `metaStruct` accepts; throws `ValidationError` otherwise.
 */
export function encodeValue(b: Binding, value: unknown): Uint8Array {
  const plan = planValue(value, "value");
  let tokens: number;
  try {
    b.reserve(plan.bytes);
    tokens = writeTokens(b, plan);
  } catch (e) {
    throw asFieldError(e, "value");
  }
  const s = b.symbols;
  check(b, s.ddog_tracer_encode_value(b.base + tokens, plan.items.length, b.out), "ddog_tracer_encode_value", "value");
  const encoded = b.takeOut();
  try {
    const [ptr, len] = s.ddog_tracer_encoded_value_as_slice(encoded);
    return b.native.read(ptr, len);
  } finally {
    s.ddog_tracer_encoded_value_free(encoded);
  }
}
