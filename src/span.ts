/**
 * Spans as plain objects (the types `send` takes), and their validation
 * vocabulary: the limits, paths and `ValidationError`s that both send paths
 * use, the batch writer (src/batch/) and the per-field builder
 * (src/build.ts), so that both name a bad value alike.
 *
 * @module
 */
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

/** Limits of the id and integer fields, shared with the batch writer (`src/batch/`). */
export const U64_LIMIT = 1n << 64n;
export const U128_LIMIT = 1n << 128n;
export const I64_MIN = -(1n << 63n);
export const I64_LIMIT = 1n << 63n;
export const TWO_32 = 2 ** 32;
export const TWO_63 = 2 ** 63;

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "bigint") return `bigint ${v}`;
  if (typeof v === "number") return `number ${v}`;
  if (typeof v === "string") return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  return typeof v;
}

/** `path["k"]`; a key over 100 UTF-16 units is cut short (…) in the path. */
export function key(path: string, k: string): string {
  return `${path}[${JSON.stringify(k.length > 100 ? k.slice(0, 100) + "…" : k)}]`;
}

/** The own enumerable string keys of a user object, asked once (a Proxy's ownKeys trap runs once): nothing inherited. */
export const ownKeys: (o: object) => string[] = Object.keys;

/**
 * A copy of `o`'s own enumerable string-keyed properties (each read once, in
 * `Object.keys` order) with no prototype: `for…in` over it visits exactly
 * those, whatever `o`'s prototype or `Object.prototype` hold.
 */
export function ownCopy<T>(o: Record<string, T>): Record<string, T> {
  const copy: Record<string, T> = Object.create(null);
  for (const k of ownKeys(o)) copy[k] = o[k];
  return copy;
}

/** Whether `o` has an enumerable string key, its own or inherited. */
export function hasEnumerableKey(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** The path of span `i` of chunk `c`; built only for an error message. */
export function spanPath(c: number, i: number): string {
  return `traces[${c}][${i}]`;
}

export function idError(v: unknown, limit: bigint, path: string): ValidationError {
  if (typeof v === "number") return new ValidationError(path, `expected a non-negative integer id (bigint), got ${describe(v)}`);
  if (typeof v !== "bigint") return new ValidationError(path, `expected a bigint id, got ${describe(v)}`);
  return new ValidationError(path, `id out of range: must be 0 ≤ id < 2^${limit === U64_LIMIT ? 64 : 128}, got ${v}`);
}

// Errors of both send paths (here and src/batch/), built out of line: see src/batch/records.ts's note on inlining.

/** A `ValidationError` for `traces[c][i].field`: expected `what`, got `v`. */
export function expected(c: number, i: number, field: string, what: string, v: unknown): ValidationError {
  return new ValidationError(`${spanPath(c, i)}.${field}`, `expected ${what}, got ${describe(v)}`);
}

/** A `ValidationError` for entry `k` of `traces[c][i].field`: expected `what`, got `v`. */
export function entryExpected(c: number, i: number, field: string, k: string, what: string, v: unknown): ValidationError {
  return new ValidationError(key(`${spanPath(c, i)}.${field}`, k), `expected ${what}, got ${describe(v)}`);
}

/** {@link idError} for `traces[c][i].field`. */
export function spanIdError(v: unknown, limit: bigint, c: number, i: number, field: string): ValidationError {
  return idError(v, limit, `${spanPath(c, i)}.${field}`);
}

/** The `ValidationError` for time or duration `v` of `traces[c][i].field`, which is not a non-negative i64. */
export function nanosError(v: unknown, c: number, i: number, field: string): ValidationError {
  const path = `${spanPath(c, i)}.${field}`;
  if (typeof v === "bigint") return new ValidationError(path, `nanoseconds out of range (0 ≤ ns < 2^63), got ${v}`);
  if (typeof v === "number") return new ValidationError(path, `expected a non-negative integer of nanoseconds, got ${describe(v)}`);
  return new ValidationError(path, `expected nanoseconds as bigint or integer number, got ${describe(v)}`);
}

export function requireString(v: unknown, path: string): string {
  if (typeof v !== "string") throw new ValidationError(path, `expected a string, got ${describe(v)}`);
  return v;
}

const isArray = Array.isArray;

/**
 * Whether `v` is an object and not an array. `isArray`, not `Array.isArray`: that keeps this small
 * enough for V8 to inline wherever it is called, whatever the caller's budget.
 */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !isArray(v);
}

export function requireRecord(v: unknown, path: string): Record<string, unknown> {
  if (!isRecord(v)) throw new ValidationError(path, `expected an object, got ${describe(v)}`);
  return v;
}

export type ArrayKind = "string" | "bool" | "int" | "double";

export function arrayKind(v: readonly unknown[], forceDouble: boolean, path: string): ArrayKind {
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


export function eventPath(c: number, i: number, j: number): string {
  return `${spanPath(c, i)}.events[${j}]`;
}

export function attrPath(c: number, i: number, j: number, k: string): string {
  return key(`${eventPath(c, i, j)}.attributes`, k);
}
