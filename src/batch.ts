/**
 * The batch writer: turns a `send`'s trace chunks into one batch buffer (the
 * format of `ffi/batch.ts`) in native memory, on the calling thread, for
 * `ddffi_batch_send` to decode and build off it. One FFI crossing per send.
 *
 * Validation is the per-field path's (src/span.ts): the same
 * `ValidationError`s naming `traces[c][i].field`, and nothing is sent. The
 * writer reads each user value once, and checks room before every write
 * (`#ensure`): the buffer grows (a new block, the bytes copied), never
 * overflows.
 *
 * @module
 */
import { MAX_VALUE_DEPTH, valueKinds } from "../ffi/abi.ts";
import {
  BATCH_MAGIC,
  BATCH_VERSION,
  eventAttributeKinds,
  MAX_STRING_BYTES,
  metaStructKinds,
  records,
  STRING_TAG_BITS,
  stringTags,
} from "../ffi/batch.ts";
import type { Native, NativeMemory } from "../ffi/native.ts";
import { type Binding, encodeUtf8 } from "./binding.ts";
import { ValidationError } from "./errors.ts";
import {
  arrayKind,
  attrPath,
  type Double,
  describe,
  eventPath,
  idError,
  isRecord,
  key,
  requireRecord,
  requireString,
  type Span,
  type SpanEvent,
  type SpanLink,
  spanPath,
  type TraceChunk,
} from "./span.ts";

const H = records.header;
const S = records.span;
const L = records.link;
const E = records.event;
const TAG = 2 ** STRING_TAG_BITS;
const REF = stringTags.ref;
const DEFINE = stringTags.define;
const LITERAL = stringTags.literal;
/** Strings longer than this (UTF-16 units) are never kept in the string table. */
const KEEP_MAX_CHARS = 256;

const U64_LIMIT = 1n << 64n;
const U128_LIMIT = 1n << 128n;
const I64_MIN = -(1n << 63n);
const I64_LIMIT = 1n << 63n;
const TWO_32 = 2 ** 32;
const TWO_63 = 2 ** 63;
const NO_ATTRIBUTES: Record<string, string> = Object.freeze({});

/** Whether the loaded library (or its shim) has a bound batch decoder; checked once per binding. */
const ready = new WeakMap<Binding, boolean>();

/**
 * Whether `ddffi_batch_send` can be used: present in the library or the
 * shim, and `ddffi_batch_bind` resolved every ddog_* function it calls from
 * the loaded library.
 */
export function batchAvailable(b: Binding): boolean {
  let ok = ready.get(b);
  if (ok === undefined) {
    const bind = b.symbols.ddffi_batch_bind;
    ok = false;
    if (bind && b.native.async.ddffi_batch_send) {
      const path = b.native.path;
      b.reserve(3 * path.length);
      b.arg(path, false);
      ok = bind(b.argPtrWord, b.argLenWord) === 0;
    }
    ready.set(b, ok);
  }
  return ok;
}

/**
 * One batch buffer and its string table. Reused send after send (a pool in
 * the exporter); the memory lives until the send that reads it completes.
 */
export class BatchWriter {
  readonly #native: Native;
  #memory: NativeMemory;
  /** Where the send's response pointer goes (`response_out`). */
  readonly slot: NativeMemory;
  #u8!: Uint8Array;
  #view!: DataView;
  #pos: number = H.size;
  #strings = new Map<string, number>();
  #spans = 0;

  constructor(native: Native, size = 1 << 16) {
    this.#native = native;
    this.#memory = native.alloc(size);
    this.#map();
    this.slot = native.alloc(8);
  }

  #map(): void {
    this.#u8 = new Uint8Array(this.#memory.buffer);
    this.#view = new DataView(this.#memory.buffer);
  }

  /** The batch's native address. */
  get address(): number {
    return this.#memory.address;
  }

  /** The buffer's size in bytes. */
  get capacity(): number {
    return this.#u8.length;
  }

  /** Frees the memory (the writer is not used again). */
  free(): void {
    this.#native.free(this.#memory);
    this.#native.free(this.slot);
  }

  /** Makes room for `n` more bytes at `#pos`: a bigger block, the bytes so far copied over. */
  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#u8.length) return;
    let size = this.#u8.length * 2;
    while (size < need) size *= 2;
    const old = this.#memory;
    const oldU8 = this.#u8;
    this.#memory = this.#native.alloc(size);
    this.#map();
    this.#u8.set(oldU8.subarray(0, this.#pos));
    this.#native.free(old);
  }

  /**
   * Writes the whole batch for `traces`; returns its length in bytes.
   * @throws {ValidationError} naming `traces[c][i].field`; the batch is then unusable until the next `write`.
   */
  write(traces: readonly TraceChunk[]): number {
    if (!Array.isArray(traces)) throw new ValidationError("traces", `expected an array of trace chunks, got ${describe(traces)}`);
    this.#pos = H.size;
    this.#spans = 0;
    if (this.#strings.size > 0) this.#strings = new Map();
    const chunks = traces.length;
    for (let c = 0; c < chunks; c++) {
      const chunk = traces[c];
      if (!Array.isArray(chunk)) throw new ValidationError(`traces[${c}]`, `expected an array of spans, got ${describe(chunk)}`);
      const n = chunk.length;
      this.#ensure(4);
      this.#view.setUint32(this.#pos, n, true);
      this.#pos += 4;
      for (let i = 0; i < n; i++) this.#span(chunk[i], c, i);
      this.#spans += n;
    }
    const v = this.#view;
    v.setUint32(H.magic, BATCH_MAGIC, true);
    v.setUint16(H.version, BATCH_VERSION, true);
    v.setUint16(H.flags, 0, true);
    v.setUint32(H.chunk_count, chunks, true);
    v.setUint32(H.span_count, this.#spans, true);
    v.setUint32(H.string_count, this.#strings.size, true);
    v.setUint32(H.reserved, 0, true);
    return this.#pos;
  }

  /** Writes a `str`: a reference when `keep` and seen before, else the UTF-8 (kept in the table when `keep`). */
  #str(s: string, keep: boolean): void {
    if (keep && s.length <= KEEP_MAX_CHARS) {
      const index = this.#strings.get(s);
      if (index !== undefined) {
        this.#ensure(4);
        this.#view.setUint32(this.#pos, index * TAG + REF, true);
        this.#pos += 4;
        return;
      }
      this.#bytes(s, DEFINE);
      this.#strings.set(s, this.#strings.size);
      return;
    }
    this.#bytes(s, LITERAL);
  }

  #bytes(s: string, tag: number): void {
    this.#ensure(4 + 3 * s.length);
    const at = this.#pos;
    const n = encodeUtf8(this.#u8, at + 4, s);
    if (n > MAX_STRING_BYTES) throw new ValidationError("traces", `a string of ${n} bytes: at most ${MAX_STRING_BYTES}`);
    this.#view.setUint32(at, n * TAG + tag, true);
    this.#pos = at + 4 + n;
  }

  #u32(n: number): void {
    this.#ensure(4);
    this.#view.setUint32(this.#pos, n, true);
    this.#pos += 4;
  }

  #u8v(n: number): void {
    this.#ensure(1);
    this.#u8[this.#pos++] = n;
  }

  #f64(n: number): void {
    this.#ensure(8);
    this.#view.setFloat64(this.#pos, n, true);
    this.#pos += 8;
  }

  #i64(n: bigint): void {
    this.#ensure(8);
    this.#view.setBigInt64(this.#pos, n, true);
    this.#pos += 8;
  }

  #u64(n: bigint): void {
    this.#ensure(8);
    this.#view.setBigUint64(this.#pos, n, true);
    this.#pos += 8;
  }

  #blob(b: Uint8Array): void {
    this.#ensure(4 + b.length);
    this.#view.setUint32(this.#pos, b.length, true);
    this.#u8.set(b, this.#pos + 4);
    this.#pos += 4 + b.length;
  }

  /** Writes the low 64 bits of an id (bigint or safe integer) at `at`; false when it is not an id below `limit`. */
  #id(at: number, v: unknown, limit: bigint): boolean {
    if (typeof v === "bigint") {
      if (v < 0n || v >= limit) return false;
      this.#view.setBigUint64(at, v, true); // keeps the low 64 bits
      return true;
    }
    if (typeof v === "number") {
      if (!Number.isSafeInteger(v) || v < 0) return false;
      this.#view.setUint32(at, v >>> 0, true);
      this.#view.setUint32(at + 4, (v / TWO_32) >>> 0, true);
      return true;
    }
    return false;
  }

  /** Writes a time or duration in ns (non-negative i64) at `at`, or throws. */
  #nanos(at: number, v: unknown, c: number, i: number, field: string): void {
    if (typeof v === "bigint") {
      if (v < 0n || v >= I64_LIMIT) throw new ValidationError(`${spanPath(c, i)}.${field}`, `nanoseconds out of range (0 ≤ ns < 2^63), got ${v}`);
      this.#view.setBigInt64(at, v, true);
      return;
    }
    if (typeof v === "number") {
      if (!Number.isInteger(v) || v < 0 || v >= TWO_63) {
        throw new ValidationError(`${spanPath(c, i)}.${field}`, `expected a non-negative integer of nanoseconds, got ${describe(v)}`);
      }
      this.#view.setUint32(at, v >>> 0, true);
      this.#view.setUint32(at + 4, (v / TWO_32) >>> 0, true);
      return;
    }
    throw new ValidationError(`${spanPath(c, i)}.${field}`, `expected nanoseconds as bigint or integer number, got ${describe(v)}`);
  }

  #span(span: Span, c: number, i: number): void {
    if (typeof span !== "object" || span === null) {
      throw new ValidationError(spanPath(c, i), `expected a span object, got ${describe(span)}`);
    }
    const name = span.name;
    if (typeof name !== "string") throw new ValidationError(`${spanPath(c, i)}.name`, `expected a string, got ${describe(name)}`);
    const service = span.service;
    if (typeof service !== "string") throw new ValidationError(`${spanPath(c, i)}.service`, `expected a string, got ${describe(service)}`);
    let resource = span.resource;
    if (resource === undefined) resource = name;
    else if (typeof resource !== "string") throw new ValidationError(`${spanPath(c, i)}.resource`, `expected a string, got ${describe(resource)}`);
    let type = span.type;
    if (type === undefined) type = "";
    else if (typeof type !== "string") throw new ValidationError(`${spanPath(c, i)}.type`, `expected a string, got ${describe(type)}`);

    this.#ensure(S.size);
    const at = this.#pos;
    this.#pos += S.size;
    const v = this.#view;
    const traceId = span.traceId;
    if (!this.#id(at + S.trace_id_low, traceId, U128_LIMIT)) throw idError(traceId, U128_LIMIT, `${spanPath(c, i)}.traceId`);
    let high = 0n;
    if (typeof traceId === "bigint" && traceId >= U64_LIMIT) {
      high = traceId >> 64n;
      v.setBigUint64(at + S.trace_id_high, high, true);
    } else {
      v.setUint32(at + S.trace_id_high, 0, true);
      v.setUint32(at + S.trace_id_high + 4, 0, true);
    }
    const spanId = span.spanId;
    if (!this.#id(at + S.span_id, spanId, U64_LIMIT)) throw idError(spanId, U64_LIMIT, `${spanPath(c, i)}.spanId`);
    const parentId = span.parentId;
    if (parentId === undefined) {
      v.setUint32(at + S.parent_id, 0, true);
      v.setUint32(at + S.parent_id + 4, 0, true);
    } else if (!this.#id(at + S.parent_id, parentId, U64_LIMIT)) throw idError(parentId, U64_LIMIT, `${spanPath(c, i)}.parentId`);
    this.#nanos(at + S.start, span.start, c, i, "start");
    this.#nanos(at + S.duration, span.duration, c, i, "duration");
    const error = span.error;
    let errorCode: number;
    if (error === undefined || error === false || error === 0) errorCode = 0;
    else if (error === true) errorCode = 1;
    else if (typeof error === "number" && Number.isInteger(error) && error >= -(2 ** 31) && error < 2 ** 31) errorCode = error;
    else throw new ValidationError(`${spanPath(c, i)}.error`, `expected a boolean or a 32-bit integer, got ${describe(error)}`);
    v.setInt32(at + S.error, errorCode, true);

    this.#str(service, true);
    this.#str(name, true);
    this.#str(resource, true);
    this.#str(type, true);

    const meta = span.meta;
    let metaCount = 0;
    if (meta !== undefined) metaCount = this.#meta(meta, c, i);
    if (high !== 0n) {
      // The v0.4 path does not add `_dd.p.tid`: the high 64 bits of a 128-bit trace id go there as 16 hex digits.
      this.#str("_dd.p.tid", true);
      this.#str(tid(high), false);
      metaCount++;
    }
    const metrics = span.metrics;
    const metricCount = metrics === undefined ? 0 : this.#metrics(metrics, c, i);
    const metaStruct = span.metaStruct;
    const metaStructCount = metaStruct === undefined ? 0 : this.#metaStruct(metaStruct, `${spanPath(c, i)}.metaStruct`);
    const links = span.links;
    const linkCount = links === undefined ? 0 : this.#links(links, c, i);
    const events = span.events;
    const eventCount = events === undefined ? 0 : this.#events(events, c, i);
    // The view again: a write above may have grown the buffer.
    const w = this.#view;
    w.setUint32(at + S.meta_count, metaCount, true);
    w.setUint32(at + S.metric_count, metricCount, true);
    w.setUint32(at + S.meta_struct_count, metaStructCount, true);
    w.setUint32(at + S.link_count, linkCount, true);
    w.setUint32(at + S.event_count, eventCount, true);
  }

  #meta(meta: Record<string, string>, c: number, i: number): number {
    if (!isRecord(meta)) throw new ValidationError(`${spanPath(c, i)}.meta`, `expected an object, got ${describe(meta)}`);
    let n = 0;
    for (const k in meta) {
      const v = meta[k];
      if (typeof v !== "string") throw new ValidationError(key(`${spanPath(c, i)}.meta`, k), `expected a string, got ${describe(v)}`);
      this.#str(k, true);
      this.#str(v, false);
      n++;
    }
    return n;
  }

  #metrics(metrics: Record<string, number>, c: number, i: number): number {
    if (!isRecord(metrics)) throw new ValidationError(`${spanPath(c, i)}.metrics`, `expected an object, got ${describe(metrics)}`);
    let n = 0;
    for (const k in metrics) {
      const v = metrics[k];
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new ValidationError(key(`${spanPath(c, i)}.metrics`, k), `expected a finite number, got ${describe(v)}`);
      }
      this.#str(k, true);
      this.#f64(v);
      n++;
    }
    return n;
  }

  #metaStruct(metaStruct: Record<string, unknown>, path: string): number {
    requireRecord(metaStruct, path);
    let n = 0;
    for (const k in metaStruct) {
      const v = metaStruct[k];
      this.#str(k, true);
      if (v instanceof Uint8Array) {
        this.#u8v(metaStructKinds.blob);
        this.#blob(v);
      } else {
        this.#u8v(metaStructKinds.tokens);
        this.#ensure(4);
        const countAt = this.#pos;
        this.#pos += 4;
        const tokens = this.#value(v, key(path, k), 0, new Set());
        this.#view.setUint32(countAt, tokens, true);
      }
      n++;
    }
    return n;
  }

  /** Writes a structured value's tokens (validating it on the way, as `planValue` does); returns how many. */
  #value(v: unknown, p: string, depth: number, ancestors: Set<object>): number {
    switch (typeof v) {
      case "string":
        this.#u8v(valueKinds.string);
        this.#str(v, false);
        return 1;
      case "boolean":
        this.#u8v(valueKinds.bool);
        this.#u8v(v ? 1 : 0);
        return 1;
      case "undefined":
        this.#u8v(valueKinds.nil);
        return 1;
      case "number":
        if (Number.isSafeInteger(v)) {
          this.#u8v(valueKinds.i64);
          this.#i64(BigInt(v));
        } else {
          this.#u8v(valueKinds.f64);
          this.#f64(v);
        }
        return 1;
      case "bigint":
        if (v < I64_MIN || v >= U64_LIMIT) throw new ValidationError(p, `bigint out of the i64/u64 range: ${v}`);
        if (v < 0n) {
          this.#u8v(valueKinds.i64);
          this.#i64(v);
        } else {
          this.#u8v(valueKinds.u64);
          this.#u64(v);
        }
        return 1;
      case "object": {
        if (v === null) {
          this.#u8v(valueKinds.nil);
          return 1;
        }
        if (v instanceof Uint8Array) {
          this.#u8v(valueKinds.binary);
          this.#blob(v);
          return 1;
        }
        if (depth >= MAX_VALUE_DEPTH) throw new ValidationError(p, `nested deeper than ${MAX_VALUE_DEPTH} levels`);
        if (ancestors.has(v)) throw new ValidationError(p, "a cycle: the value contains itself");
        ancestors.add(v);
        let tokens = 1;
        if (Array.isArray(v)) {
          const n = v.length;
          this.#u8v(valueKinds.array);
          this.#u32(n);
          for (let i = 0; i < n; i++) tokens += this.#value(v[i], `${p}[${i}]`, depth + 1, ancestors);
        } else {
          const proto = Object.getPrototypeOf(v);
          if (proto !== Object.prototype && proto !== null) {
            throw new ValidationError(p, `cannot encode ${proto?.constructor?.name ?? "this object"}: only plain objects, arrays and Uint8Array`);
          }
          this.#u8v(valueKinds.map);
          this.#ensure(4);
          const countAt = this.#pos;
          this.#pos += 4;
          let n = 0;
          const o = v as Record<string, unknown>;
          for (const k in o) {
            n++;
            this.#u8v(valueKinds.string);
            this.#str(k, true);
            tokens += 1 + this.#value(o[k], key(p, k), depth + 1, ancestors);
          }
          this.#view.setUint32(countAt, n, true);
        }
        ancestors.delete(v);
        return tokens;
      }
      default:
        throw new ValidationError(p, `cannot encode a ${typeof v} as msgpack`);
    }
  }

  #links(links: readonly SpanLink[], c: number, i: number): number {
    if (!Array.isArray(links)) throw new ValidationError(`${spanPath(c, i)}.links`, `expected an array of span links, got ${describe(links)}`);
    const count = links.length;
    for (let j = 0; j < count; j++) {
      const l = links[j];
      const p = `${spanPath(c, i)}.links[${j}]`;
      if (!isRecord(l)) requireRecord(l, p);
      const attrs = l.attributes ?? NO_ATTRIBUTES;
      if (!isRecord(attrs)) requireRecord(attrs, `${p}.attributes`);
      const tracestate = l.tracestate ?? "";
      if (typeof tracestate !== "string") requireString(tracestate, `${p}.tracestate`);
      const flags = l.flags ?? 0;
      if (!(Number.isInteger(flags) && flags >= 0 && flags < TWO_32)) {
        throw new ValidationError(`${p}.flags`, `expected a u32 integer, got ${describe(flags)}`);
      }
      this.#ensure(L.size);
      const at = this.#pos;
      this.#pos += L.size;
      const traceId = l.traceId;
      if (!this.#id(at + L.trace_id_low, traceId, U128_LIMIT)) throw idError(traceId, U128_LIMIT, `${p}.traceId`);
      if (typeof traceId === "bigint" && traceId >= U64_LIMIT) this.#view.setBigUint64(at + L.trace_id_high, traceId >> 64n, true);
      else this.#view.setBigUint64(at + L.trace_id_high, 0n, true);
      if (!this.#id(at + L.span_id, l.spanId, U64_LIMIT)) throw idError(l.spanId, U64_LIMIT, `${p}.spanId`);
      this.#view.setUint32(at + L.flags, flags, true);
      this.#str(tracestate, false);
      let n = 0;
      for (const k in attrs) {
        const v = attrs[k];
        if (typeof v !== "string") requireString(v, key(`${p}.attributes`, k));
        this.#str(k, true);
        this.#str(v, false);
        n++;
      }
      this.#view.setUint32(at + L.attribute_count, n, true);
    }
    return count;
  }

  #events(events: readonly SpanEvent[], c: number, i: number): number {
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
      this.#ensure(E.size);
      const at = this.#pos;
      this.#pos += E.size;
      if (typeof time === "bigint") this.#view.setBigUint64(at + E.time, time, true);
      else {
        this.#view.setUint32(at + E.time, time >>> 0, true);
        this.#view.setUint32(at + E.time + 4, (time / TWO_32) >>> 0, true);
      }
      this.#str(name, true);
      let n = 0;
      if (attrs !== undefined) {
        for (const k in attrs) {
          this.#attribute(k, attrs[k], c, i, j);
          n++;
        }
      }
      this.#view.setUint32(at + E.attribute_count, n, true);
    }
    return count;
  }

  #attribute(k: string, v: unknown, c: number, i: number, j: number): void {
    let forceDouble = false;
    if (typeof v === "object" && v !== null && !Array.isArray(v) && "double" in v) {
      v = (v as Double).double;
      forceDouble = true;
    }
    if (Array.isArray(v)) {
      // Read each element once, into a copy that is checked and then written.
      const xs: unknown[] = [];
      for (let x = 0; x < v.length; x++) xs.push(v[x]);
      const kind = arrayKind(xs, forceDouble, attrPath(c, i, j, k));
      this.#str(k, true);
      this.#u8v(eventAttributeKinds[`${kind}_array`]);
      this.#u32(xs.length);
      for (let x = 0; x < xs.length; x++) {
        const e = xs[x];
        if (kind === "string") this.#str(e as string, false);
        else if (kind === "bool") this.#u8v(e ? 1 : 0);
        else if (kind === "int") this.#i64(BigInt(e as number | bigint));
        else this.#f64(e as number);
      }
      return;
    }
    if (typeof v === "string") {
      this.#str(k, true);
      this.#u8v(eventAttributeKinds.string);
      this.#str(v, false);
    } else if (typeof v === "boolean") {
      this.#str(k, true);
      this.#u8v(eventAttributeKinds.bool);
      this.#u8v(v ? 1 : 0);
    } else if (typeof v === "bigint") {
      if (v < I64_MIN || v >= I64_LIMIT) throw new ValidationError(attrPath(c, i, j, k), `bigint out of the i64 range: ${v}`);
      this.#str(k, true);
      this.#u8v(eventAttributeKinds.int);
      this.#i64(v);
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new ValidationError(attrPath(c, i, j, k), `expected a finite number, got ${describe(v)}`);
      this.#str(k, true);
      if (Number.isSafeInteger(v) && !forceDouble) {
        this.#u8v(eventAttributeKinds.int);
        this.#i64(BigInt(v));
      } else {
        this.#u8v(eventAttributeKinds.double);
        this.#f64(v);
      }
    } else {
      throw new ValidationError(
        attrPath(c, i, j, k),
        `span event attributes must be strings, booleans, numbers, bigints or arrays of one of them, got ${describe(v)}`,
      );
    }
  }
}

let lastHigh = -1n;
let lastTid = "";

/** The high 64 bits of a trace id as 16 lowercase hex digits (`_dd.p.tid`). */
function tid(high: bigint): string {
  if (high !== lastHigh) {
    lastTid = high.toString(16).padStart(16, "0");
    lastHigh = high;
  }
  return lastTid;
}
