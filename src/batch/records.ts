/**
 * The batch's records: a trace chunk's spans, each a fixed part (ids,
 * times, error, service, name, resource, type) and its meta, metrics,
 * meta_struct, span links and span events, in the format of `ffi/batch.ts`,
 * their strings through the string table (src/batch/strings.ts).
 *
 * Validation is the per-field path's (src/span.ts, src/build.ts): the same
 * `ValidationError`s naming `traces[c][i].field`. The writer reads each
 * user value once. A `FinishedSpan` (the Tracer's) is valid by
 * construction and written without checks.
 *
 * The hot path (`_span`, `_finished`, `_records` and the string table's
 * `_str`, `_slot`, `_keySlot`, and the memory's `_word`) is the methods of one
 * class hierarchy, which V8 inlines as it did in one class (bench/RESULTS.md,
 * "Why the writer is written as it is").
 *
 * @module
 */
import { MAX_VALUE_DEPTH, valueKinds } from "../../ffi/abi.ts";
import { eventAttributeKinds, metaStructKinds, records } from "../../ffi/batch.ts";
import type { Native } from "../../ffi/native.ts";
import { ValidationError } from "../errors.ts";
import { FinishedSpan } from "../finished-span.ts";
import {
  arrayKind,
  attrPath,
  type Double,
  describe,
  entryExpected,
  expected,
  eventPath,
  I64_LIMIT,
  I64_MIN,
  idError,
  isRecord,
  key,
  nanosError,
  ownCopy,
  requireRecord,
  requireString,
  type Span,
  type SpanEvent,
  type SpanLink,
  spanIdError,
  spanPath,
  type TraceChunk,
  TWO_32,
  TWO_63,
  U128_LIMIT,
  U64_LIMIT,
} from "../span.ts";
import { StringTable } from "./strings.ts";

const S = records.span;
const L = records.link;
const E = records.event;

/**
 * Positions of a span whose previous string is remembered: up to `SLOTS`
 * meta keys, meta values and metric keys.
 * A span like the last one refers to those strings with one comparison each:
 * no lookup, no encoding (src/batch/strings.ts).
 */
const SLOTS = 32;
const META_KEY_SLOT = 0;
const META_VALUE_SLOT = META_KEY_SLOT + SLOTS;
const METRIC_KEY_SLOT = META_VALUE_SLOT + SLOTS;
/** The first span link's tracestate, attribute keys and values; the first span event's name, attribute keys and string values. */
const LINK_SLOTS = 8;
const TRACESTATE_SLOT = METRIC_KEY_SLOT + SLOTS;
const LINK_KEY_SLOT = TRACESTATE_SLOT + 1;
const LINK_VALUE_SLOT = LINK_KEY_SLOT + LINK_SLOTS;
const EVENT_NAME_SLOT = LINK_VALUE_SLOT + LINK_SLOTS;
const EVENT_KEY_SLOT = EVENT_NAME_SLOT + 1;
const EVENT_VALUE_SLOT = EVENT_KEY_SLOT + LINK_SLOTS;
/** `_dd.p.tid` and its value. */
const TID_KEY_SLOT = EVENT_VALUE_SLOT + LINK_SLOTS;
const TID_VALUE_SLOT = TID_KEY_SLOT + 1;
/** A `FinishedSpan`'s service, name, resource and type (the Tracer's spans often repeat them span after span). */
const SERVICE_SLOT = TID_VALUE_SLOT + 1;
const SLOT_COUNT = SERVICE_SLOT + 4;

const NO_ATTRIBUTES: Record<string, string> = Object.freeze({});

/** The records of one batch: its chunks and their spans, written through the string table. */
export class RecordWriter extends StringTable {
  /** Spans and trace chunks in the batch so far. */
  protected _spans = 0;
  protected _chunks = 0;
  /**
   * `Object.prototype` when it had no enumerable key as this write began, else
   * null (see `_forIn`).
   */
  protected _forInPrototype: object | null = null;
  /**
   * The high 64 bits of the last 128-bit trace id (at least 2^64) of a span, those as `_dd.p.tid`'s 16 hex
   * digits, and (in `_finished`) the range of trace ids with these high bits: made again only when a trace
   * id falls out of the range (the Tracer's trace ids change high bits a second apart), not per trace (a
   * shift allocates, the digits more).
   */
  private _high = 0n;
  private _highFrom = 0n;
  private _highTo = 0n;
  /** The trace id `_high` and `_tid` were last made from by `_span` (0n when `_finished` made them). */
  private _wideTraceId = 0n;
  private _tid = "";

  constructor(native: Native, size: number) {
    super(native, size, SLOT_COUNT);
  }

  /** Sets `_high`, `_tid` and their range from the 128-bit `traceId`. */
  private _newHigh(traceId: bigint): void {
    const high = traceId >> 64n;
    this._high = high;
    this._highFrom = high << 64n;
    this._highTo = (high + 1n) << 64n;
    this._tid = high.toString(16).padStart(16, "0");
    this._wideTraceId = 0n;
  }

  /** Writes chunk `c`; counted in the header once written. @throws {ValidationError} with `chunk` c. */
  protected _chunk(chunk: TraceChunk, c: number): void {
    try {
      this._spansOf(chunk, c);
    } catch (e) {
      if (e instanceof ValidationError) e.chunk ??= c;
      throw e;
    }
  }

  private _spansOf(chunk: TraceChunk, c: number): void {
    if (!Array.isArray(chunk)) throw new ValidationError(`traces[${c}]`, `expected an array of spans, got ${describe(chunk)}`);
    this._chunks++;
    const n = chunk.length;
    this._ensure(4);
    this._put32(this._pos, n);
    this._pos += 4;
    for (let i = 0; i < n; i++) {
      const span = chunk[i];
      if (span instanceof FinishedSpan) this._finished(span, c, i);
      else this._span(span, c, i);
    }
    this._spans += n;
  }

  /**
   * Writes the low 64 bits of an id (bigint or safe integer) at `at`; false when it is not an id below `limit`.
   * A number goes through `_numberId`: out of line, so that this (the bigint path, the Tracer's) is small
   * enough for V8 to inline into `_span` each time.
   */
  private _id(at: number, v: unknown, limit: bigint): boolean {
    if (typeof v !== "bigint") return this._numberId(at, v);
    if (v < 0n || v >= limit) return false;
    this._put64(at, v); // keeps the low 64 bits
    return true;
  }

  /** `_id` for a value that is not a bigint: a non-negative safe integer, or false. */
  private _numberId(at: number, v: unknown): boolean {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return false;
    this._put32(at, v >>> 0);
    this._put32(at + 4, (v / TWO_32) >>> 0);
    return true;
  }

  /** Writes a time or duration in ns (non-negative i64) at `at`, or throws; a number through `_numberNanos` (as `_id`). */
  private _nanos(at: number, v: unknown, c: number, i: number, field: string): void {
    if (typeof v === "bigint" && v >= 0n && v < I64_LIMIT) this._put64(at, v);
    else this._numberNanos(at, v, c, i, field);
  }

  private _numberNanos(at: number, v: unknown, c: number, i: number, field: string): void {
    if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < TWO_63) {
      this._put32(at, v >>> 0);
      this._put32(at + 4, (v / TWO_32) >>> 0);
    } else throw nanosError(v, c, i, field);
  }

  private _span(span: Span, c: number, i: number): void {
    if (typeof span !== "object" || span === null) {
      throw new ValidationError(spanPath(c, i), `expected a span object, got ${describe(span)}`);
    }
    const name = span.name;
    if (typeof name !== "string") throw expected(c, i, "name", "a string", name);
    const service = span.service;
    if (typeof service !== "string") throw expected(c, i, "service", "a string", service);
    let resource = span.resource;
    if (resource === undefined) resource = name;
    else if (typeof resource !== "string") throw expected(c, i, "resource", "a string", resource);
    let type = span.type;
    if (type === undefined) type = "";
    else if (typeof type !== "string") throw expected(c, i, "type", "a string", type);

    this._ensure(S.size);
    const at = this._pos;
    this._pos += S.size;
    const traceId = span.traceId;
    if (!this._id(at + S.trace_id_low, traceId, U128_LIMIT)) throw spanIdError(traceId, U128_LIMIT, c, i, "traceId");
    const wide = typeof traceId === "bigint" && traceId >= U64_LIMIT;
    if (wide) {
      // The spans of a trace share its id: the shift (a bigint allocation) and the hex digits once per trace
      // (others' 128-bit ids, e.g. OpenTelemetry's, have random high bits: no range of `_finished`'s to keep).
      if (traceId !== this._wideTraceId) {
        this._wideTraceId = traceId;
        this._high = traceId >> 64n;
        this._tid = this._high.toString(16).padStart(16, "0");
        this._highTo = 0n;
      }
      this._put64(at + S.trace_id_high, this._high);
    } else {
      this._put32(at + S.trace_id_high, 0);
      this._put32(at + S.trace_id_high + 4, 0);
    }
    const spanId = span.spanId;
    if (!this._id(at + S.span_id, spanId, U64_LIMIT)) throw spanIdError(spanId, U64_LIMIT, c, i, "spanId");
    const parentId = span.parentId;
    if (parentId === undefined) {
      this._put32(at + S.parent_id, 0);
      this._put32(at + S.parent_id + 4, 0);
    } else if (!this._id(at + S.parent_id, parentId, U64_LIMIT)) throw spanIdError(parentId, U64_LIMIT, c, i, "parentId");
    this._nanos(at + S.start, span.start, c, i, "start");
    this._nanos(at + S.duration, span.duration, c, i, "duration");
    const error = span.error;
    let errorCode: number;
    if (error === undefined || error === false || error === 0) errorCode = 0;
    else if (error === true) errorCode = 1;
    else if (typeof error === "number" && Number.isInteger(error) && error >= -(2 ** 31) && error < 2 ** 31) errorCode = error;
    else throw expected(c, i, "error", "a boolean or a 32-bit integer", error);
    this._put32(at + S.error, errorCode);

    // Through the string table's lookup: cheaper than remembering the last spans' (bench/RESULTS.md).
    this._str(service, true);
    this._str(name, true);
    this._str(resource, true);
    this._str(type, true);

    this._records(span, at, wide, c, i);
  }

  /**
   * Writes a span the Tracer finished. Its fields are valid by construction
   * (src/finished-span.ts): nothing is checked again but the length of its
   * strings (`_bytes`). Its meta and metrics go out layer after layer, each
   * over the one before (libdatadog keeps a key's last write).
   */
  private _finished(span: FinishedSpan, c: number, i: number): void {
    this._ensure(S.size);
    const at = this._pos;
    this._pos += S.size;
    const traceId = span.traceId;
    this._put64(at + S.trace_id_low, traceId); // keeps the low 64 bits
    const wide = traceId >= U64_LIMIT;
    if (wide) {
      if (traceId < this._highFrom || traceId >= this._highTo) this._newHigh(traceId);
      this._put64(at + S.trace_id_high, this._high);
    } else {
      this._put32(at + S.trace_id_high, 0);
      this._put32(at + S.trace_id_high + 4, 0);
    }
    this._put64(at + S.span_id, span.spanId);
    this._put64(at + S.parent_id, span.parentId);
    this._put64(at + S.start, span.start);
    this._put64(at + S.duration, span.duration);
    this._put32(at + S.error, span.error);
    this._slot(SERVICE_SLOT, span.service, true);
    this._slot(SERVICE_SLOT + 1, span.name, true);
    this._slot(SERVICE_SLOT + 2, span.resource, true);
    this._slot(SERVICE_SLOT + 3, span.type, true);

    let metaCount = this._metaLayer(span.baseMeta, 0);
    metaCount = this._metaLayer(span.meta, metaCount);
    const extraMeta = span.extraMeta;
    if (extraMeta !== undefined) metaCount = this._metaLayer(extraMeta, metaCount);
    if (wide) {
      this._keySlot(TID_KEY_SLOT, "_dd.p.tid");
      this._slot(TID_VALUE_SLOT, this._tid, false);
      metaCount++;
    }
    let metricCount = this._metricLayer(span.baseMetrics, 0);
    metricCount = this._metricLayer(span.metrics, metricCount);
    metricCount = this._metricLayer(span.extraMetrics, metricCount);
    const links = span.links;
    const linkCount = links === undefined ? 0 : this._links(links, c, i);
    const events = span.events;
    const eventCount = events === undefined ? 0 : this._events(events, c, i);
    this._put32(at + S.meta_count, metaCount);
    this._put32(at + S.metric_count, metricCount);
    this._put32(at + S.meta_struct_count, 0);
    this._put32(at + S.link_count, linkCount);
    this._put32(at + S.event_count, eventCount);
  }

  /** Writes the entries of a meta layer of a `FinishedSpan`, the first at position `n` of the span's meta; returns the position after them. */
  private _metaLayer(meta: Readonly<Record<string, string>>, n: number): number {
    // A FinishedSpan's layers are plain objects of the Tracer's (src/finished-span.ts): `for…in` over them is exact
    // unless Object.prototype has enumerable keys, which `_forInPrototype` says once per chunk (no prototype read per layer).
    const o = this._forInPrototype !== null ? meta : ownCopy(meta);
    for (const k in o) {
      const v = o[k];
      if (n < SLOTS) {
        this._keySlot(META_KEY_SLOT + n, k);
        this._slot(META_VALUE_SLOT + n, v, false);
      } else {
        this._str(k, true);
        this._str(v, false);
      }
      n++;
    }
    return n;
  }

  /** `_metaLayer` for a metrics layer. */
  private _metricLayer(metrics: Readonly<Record<string, number>>, n: number): number {
    const o = this._forInPrototype !== null ? metrics : ownCopy(metrics);
    for (const k in o) {
      if (n < SLOTS) this._keySlot(METRIC_KEY_SLOT + n, k);
      else this._str(k, true);
      this._f64(o[k]);
      n++;
    }
    return n;
  }

  /**
   * Writes the counts (in the span's fixed part, at `at`) and the records of
   * span `traces[c][i]`: meta (and `_dd.p.tid` when its trace id is `wide`),
   * metrics, meta_struct, links, events.
   *
   * The meta and metrics loops are written out here, not in a method each:
   * V8 inlines callees up to a bytecode size, within a budget per optimized
   * function, and `_span` took those methods in whole and then had no
   * budget left for the loops' own writes, which stayed calls. Too big to
   * be inlined itself, this method spends its own budget on the loops.
   */
  private _records(span: Span, at: number, wide: boolean, c: number, i: number): void {
    let metaCount = 0;
    const meta = span.meta;
    if (meta !== undefined) {
      if (!isRecord(meta)) throw expected(c, i, "meta", "an object", meta);
      const o = this._forIn(meta) ? meta : ownCopy(meta);
      for (const k in o) {
        const v = o[k];
        if (typeof v !== "string") throw entryExpected(c, i, "meta", k, "a string", v);
        if (metaCount < SLOTS) {
          this._keySlot(META_KEY_SLOT + metaCount, k);
          this._slot(META_VALUE_SLOT + metaCount, v, false);
        } else {
          this._str(k, true);
          this._str(v, false);
        }
        metaCount++;
      }
    }
    if (wide) {
      // The v0.4 path does not add `_dd.p.tid`: the high 64 bits of a 128-bit trace id go there as 16 hex digits.
      this._keySlot(TID_KEY_SLOT, "_dd.p.tid");
      this._slot(TID_VALUE_SLOT, this._tid, false);
      metaCount++;
    }
    let metricCount = 0;
    const metrics = span.metrics;
    if (metrics !== undefined) {
      if (!isRecord(metrics)) throw expected(c, i, "metrics", "an object", metrics);
      const o = this._forIn(metrics) ? metrics : ownCopy(metrics);
      for (const k in o) {
        const v = o[k];
        if (typeof v !== "number" || !Number.isFinite(v)) throw entryExpected(c, i, "metrics", k, "a finite number", v);
        if (metricCount < SLOTS) this._keySlot(METRIC_KEY_SLOT + metricCount, k);
        else this._str(k, true);
        this._f64(v);
        metricCount++;
      }
    }
    const metaStruct = span.metaStruct;
    const metaStructCount = metaStruct === undefined ? 0 : this._metaStruct(metaStruct, `${spanPath(c, i)}.metaStruct`);
    const links = span.links;
    const linkCount = links === undefined ? 0 : this._links(links, c, i);
    const events = span.events;
    const eventCount = events === undefined ? 0 : this._events(events, c, i);
    this._put32(at + S.meta_count, metaCount);
    this._put32(at + S.metric_count, metricCount);
    this._put32(at + S.meta_struct_count, metaStructCount);
    this._put32(at + S.link_count, linkCount);
    this._put32(at + S.event_count, eventCount);
  }

  /**
   * Whether `for…in` over `o` visits exactly its own enumerable keys (it is
   * about twice as fast as `Object.keys` on V8): `o` has no prototype, or
   * its prototype is `Object.prototype` and that had no enumerable key when
   * this write began (`write` checks that it still has none at its end).
   * Else the loops go over `ownCopy(o)`. Written small enough for V8 to
   * inline wherever it is called, whatever the caller's budget.
   */
  private _forIn(o: object): boolean {
    const p = getPrototypeOf(o);
    return p === this._forInPrototype || p === null;
  }

  private _metaStruct(metaStruct: Record<string, unknown>, path: string): number {
    requireRecord(metaStruct, path);
    let n = 0;
    for (const k of Object.keys(metaStruct)) {
      const v = metaStruct[k];
      this._str(k, true);
      if (v instanceof Uint8Array) {
        this._word(metaStructKinds.blob);
        this._blob(v);
      } else {
        this._word(metaStructKinds.tokens);
        this._ensure(4);
        const countAt = this._pos;
        this._pos += 4;
        const tokens = this._value(v, key(path, k), 0, new Set());
        this._put32(countAt, tokens);
      }
      n++;
    }
    return n;
  }

  /** Writes a structured value's tokens (validating it on the way, as `planValue` does); returns how many. */
  private _value(v: unknown, p: string, depth: number, ancestors: Set<object>): number {
    switch (typeof v) {
      case "string":
        this._word(valueKinds.string);
        this._str(v, false);
        return 1;
      case "boolean":
        this._word(valueKinds.bool);
        this._word(v ? 1 : 0);
        return 1;
      case "undefined":
        this._word(valueKinds.nil);
        return 1;
      case "number":
        if (Number.isSafeInteger(v)) {
          this._word(valueKinds.i64);
          this._int(v);
        } else {
          this._word(valueKinds.f64);
          this._f64(v);
        }
        return 1;
      case "bigint":
        if (v < I64_MIN || v >= U64_LIMIT) throw new ValidationError(p, `bigint out of the i64/u64 range: ${v}`);
        if (v < 0n) {
          this._word(valueKinds.i64);
          this._big64(v);
        } else {
          this._word(valueKinds.u64);
          this._big64(v);
        }
        return 1;
      case "object": {
        if (v === null) {
          this._word(valueKinds.nil);
          return 1;
        }
        if (v instanceof Uint8Array) {
          this._word(valueKinds.binary);
          this._blob(v);
          return 1;
        }
        if (depth >= MAX_VALUE_DEPTH) throw new ValidationError(p, `nested deeper than ${MAX_VALUE_DEPTH} levels`);
        if (ancestors.has(v)) throw new ValidationError(p, "a cycle: the value contains itself");
        ancestors.add(v);
        let tokens = 1;
        if (Array.isArray(v)) {
          const n = v.length;
          this._word(valueKinds.array);
          this._word(n);
          for (let i = 0; i < n; i++) tokens += this._value(v[i], `${p}[${i}]`, depth + 1, ancestors);
        } else {
          const proto = Object.getPrototypeOf(v);
          if (proto !== Object.prototype && proto !== null) {
            throw new ValidationError(p, `cannot encode ${proto?.constructor?.name ?? "this object"}: only plain objects, arrays and Uint8Array`);
          }
          this._word(valueKinds.map);
          this._ensure(4);
          const countAt = this._pos;
          this._pos += 4;
          let n = 0;
          const o = v as Record<string, unknown>;
          for (const k of Object.keys(o)) {
            n++;
            this._word(valueKinds.string);
            this._str(k, true);
            tokens += 1 + this._value(o[k], key(p, k), depth + 1, ancestors);
          }
          this._put32(countAt, n);
        }
        ancestors.delete(v);
        return tokens;
      }
      default:
        throw new ValidationError(p, `cannot encode a ${typeof v} as msgpack`);
    }
  }

  private _links(links: readonly SpanLink[], c: number, i: number): number {
    if (!Array.isArray(links)) throw new ValidationError(`${spanPath(c, i)}.links`, `expected an array of span links, got ${describe(links)}`);
    const count = links.length;
    for (let j = 0; j < count; j++) {
      const l = links[j];
      if (!isRecord(l)) requireRecord(l, linkPath(c, i, j));
      const attrs = l.attributes ?? NO_ATTRIBUTES;
      if (!isRecord(attrs)) requireRecord(attrs, `${linkPath(c, i, j)}.attributes`);
      const tracestate = l.tracestate ?? "";
      if (typeof tracestate !== "string") requireString(tracestate, `${linkPath(c, i, j)}.tracestate`);
      const flags = l.flags ?? 0;
      if (!(Number.isInteger(flags) && flags >= 0 && flags < TWO_32)) {
        throw new ValidationError(`${linkPath(c, i, j)}.flags`, `expected a u32 integer, got ${describe(flags)}`);
      }
      this._ensure(L.size);
      const at = this._pos;
      this._pos += L.size;
      const traceId = l.traceId;
      if (!this._id(at + L.trace_id_low, traceId, U128_LIMIT)) throw idError(traceId, U128_LIMIT, `${linkPath(c, i, j)}.traceId`);
      if (typeof traceId === "bigint" && traceId >= U64_LIMIT) this._put64(at + L.trace_id_high, traceId >> 64n);
      else this._put64(at + L.trace_id_high, 0n);
      const spanId = l.spanId;
      if (!this._id(at + L.span_id, spanId, U64_LIMIT)) throw idError(spanId, U64_LIMIT, `${linkPath(c, i, j)}.spanId`);
      this._put32(at + L.flags, flags);
      const slots = j === 0;
      if (slots) this._slot(TRACESTATE_SLOT, tracestate, false);
      else this._str(tracestate, false);
      let n = 0;
      const o = this._forIn(attrs) ? attrs : ownCopy(attrs);
      for (const k in o) this._linkAttribute(k, o[k], slots, n++, c, i, j);
      this._put32(at + L.attribute_count, n);
    }
    return count;
  }

  /** Writes attribute `n` of link `j` of span `traces[c][i]`; `slots`: the span's first link. */
  private _linkAttribute(k: string, v: unknown, slots: boolean, n: number, c: number, i: number, j: number): void {
    if (typeof v !== "string") requireString(v, key(`${linkPath(c, i, j)}.attributes`, k));
    if (slots && n < LINK_SLOTS) {
      this._keySlot(LINK_KEY_SLOT + n, k);
      this._slot(LINK_VALUE_SLOT + n, v as string, false);
    } else {
      this._str(k, true);
      this._str(v as string, false);
    }
  }

  private _events(events: readonly SpanEvent[], c: number, i: number): number {
    if (!Array.isArray(events)) throw new ValidationError(`${spanPath(c, i)}.events`, `expected an array of span events, got ${describe(events)}`);
    const count = events.length;
    for (let j = 0; j < count; j++) {
      const e = events[j];
      if (!isRecord(e)) requireRecord(e, eventPath(c, i, j));
      const name = e.name;
      if (typeof name !== "string") requireString(name, `${eventPath(c, i, j)}.name`);
      const time = e.time;
      if (!(typeof time === "bigint" ? time >= 0n && time < U64_LIMIT : Number.isInteger(time) && time >= 0 && time < TWO_63)) {
        throw new ValidationError(`${eventPath(c, i, j)}.time`, `expected nanoseconds since the epoch as bigint, got ${describe(time)}`);
      }
      const attrs = e.attributes;
      if (attrs !== undefined && !isRecord(attrs)) requireRecord(attrs, `${eventPath(c, i, j)}.attributes`);
      this._ensure(E.size);
      const at = this._pos;
      this._pos += E.size;
      if (typeof time === "bigint") this._put64(at + E.time, time);
      else {
        this._put32(at + E.time, time >>> 0);
        this._put32(at + E.time + 4, (time / TWO_32) >>> 0);
      }
      const slots = j === 0;
      if (slots) this._slot(EVENT_NAME_SLOT, name, true);
      else this._str(name, true);
      let n = 0;
      if (attrs !== undefined) {
        const o = this._forIn(attrs) ? attrs : ownCopy(attrs);
        for (const k in o) this._attribute(k, o[k], slots, n++, c, i, j);
      }
      this._put32(at + E.attribute_count, n);
    }
    return count;
  }

  /** Writes a key, through slot `slot` when it is not -1. */
  private _key(slot: number, k: string): void {
    if (slot >= 0) this._keySlot(slot, k);
    else this._str(k, true);
  }

  /** Writes attribute `n` of event `j` of span `traces[c][i]`; `slots`: the span's first event. */
  private _attribute(k: string, v: unknown, slots: boolean, n: number, c: number, i: number, j: number): void {
    const slotted = slots && n < LINK_SLOTS;
    const slot = slotted ? EVENT_KEY_SLOT + n : -1;
    let forceDouble = false;
    if (typeof v === "object" && v !== null && !Array.isArray(v) && "double" in v) {
      v = (v as Double).double;
      forceDouble = true;
    }
    if (Array.isArray(v)) {
      // Read each element once, into a copy that is checked and then written.
      const xs: unknown[] = [];
      const length = v.length;
      for (let x = 0; x < length; x++) xs.push(v[x]);
      const kind = arrayKind(xs, forceDouble, attrPath(c, i, j, k));
      this._key(slot, k);
      this._word(eventAttributeKinds[`${kind}_array`]);
      this._word(xs.length);
      for (let x = 0; x < xs.length; x++) {
        const e = xs[x];
        if (kind === "string") this._str(e as string, false);
        else if (kind === "bool") this._word(e ? 1 : 0);
        else if (kind === "int") typeof e === "bigint" ? this._big64(e) : this._int(e as number);
        else this._f64(e as number);
      }
      return;
    }
    if (typeof v === "string") {
      this._key(slot, k);
      this._word(eventAttributeKinds.string);
      if (slotted) this._slot(EVENT_VALUE_SLOT + n, v, false);
      else this._str(v, false);
    } else if (typeof v === "boolean") {
      this._key(slot, k);
      this._word(eventAttributeKinds.bool);
      this._word(v ? 1 : 0);
    } else if (typeof v === "bigint") {
      if (v < I64_MIN || v >= I64_LIMIT) throw new ValidationError(attrPath(c, i, j, k), `bigint out of the i64 range: ${v}`);
      this._key(slot, k);
      this._word(eventAttributeKinds.int);
      this._big64(v);
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new ValidationError(attrPath(c, i, j, k), `expected a finite number, got ${describe(v)}`);
      this._key(slot, k);
      if (Number.isSafeInteger(v) && !forceDouble) {
        this._word(eventAttributeKinds.int);
        this._int(v);
      } else {
        this._word(eventAttributeKinds.double);
        this._f64(v);
      }
    } else {
      throw new ValidationError(
        attrPath(c, i, j, k),
        `span event attributes must be strings, booleans, numbers, bigints or arrays of one of them, got ${describe(v)}`,
      );
    }
  }
}

// The errors are built out of line (here, in strings.ts and writer.ts, and src/span.ts's `expected`, `entryExpected`, `spanIdError`,
// `nanosError`). A `throw` that builds its path and message in place adds bytecode to a hot function,
// and V8 inlines by bytecode size: with them out of line, more of the writer is inlined.

/** Read once, so that `_forIn` is short enough for V8 to inline wherever it is called. */
const getPrototypeOf = Object.getPrototypeOf;

/** The path of link `j` of span `traces[c][i]`, for errors. */
function linkPath(c: number, i: number, j: number): string {
  return `${spanPath(c, i)}.links[${j}]`;
}
