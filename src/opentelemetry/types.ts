/**
 * The shapes of `@opentelemetry/api`'s types that this package's OTel
 * classes take and return, declared here structurally (the same members),
 * so that the package's API documents itself without the OTel packages.
 * OTel's own objects fit them, and these classes fit OTel's interfaces
 * (the tests check both).
 *
 * @module
 */

/** An attribute value (`AttributeValue`): a string, number, boolean, or a homogeneous array of one of them (nulls allowed). */
export type OtelAttributeValue =
  | string
  | number
  | boolean
  | Array<null | undefined | string>
  | Array<null | undefined | number>
  | Array<null | undefined | boolean>;

/** Attributes (`Attributes`): keys to values. */
export interface OtelAttributes {
  /** An attribute; undefined ones are skipped. */
  [key: string]: OtelAttributeValue | undefined;
}

/** A high-resolution time (`HrTime`): `[seconds, nanoseconds]` since the Unix epoch. */
export type OtelHrTime = [number, number];

/** A time (`TimeInput`): an `HrTime`, milliseconds (since the epoch, or since `performance.timeOrigin` when smaller), or a `Date`. */
export type OtelTimeInput = OtelHrTime | number | Date;

/** A span status (`SpanStatus`): `code` 0 unset, 1 ok, 2 error. */
export interface OtelSpanStatus {
  /** 0 (`UNSET`), 1 (`OK`) or 2 (`ERROR`). */
  code: number;
  /** A description, for errors. */
  message?: string;
}

/** A W3C tracestate (`TraceState`). */
export interface OtelTraceState {
  /** Adds or replaces a member; returns the new tracestate. */
  set(key: string, value: string): OtelTraceState;
  /** Removes a member; returns the new tracestate. */
  unset(key: string): OtelTraceState;
  /** A member's value. */
  get(key: string): string | undefined;
  /** The `tracestate` header value. */
  serialize(): string;
}

/** A span context (`SpanContext`): ids in lower-case hex. */
export interface OtelSpanContext {
  /** 32 hex digits. */
  traceId: string;
  /** 16 hex digits. */
  spanId: string;
  /** Whether it came from another process. */
  isRemote?: boolean;
  /** W3C trace flags; bit 0 is "sampled". */
  traceFlags: number;
  /** The W3C tracestate. */
  traceState?: OtelTraceState;
}

/** A span link (`Link`). */
export interface OtelLink {
  /** The linked span's context. */
  context: OtelSpanContext;
  /** The link's attributes. */
  attributes?: OtelAttributes;
  /** Attributes dropped by limits. */
  droppedAttributesCount?: number;
}

/** An OTel context (`Context`): an immutable map from keys (symbols) to values. */
export interface OtelContext {
  /** The value of `key`. */
  getValue(key: symbol): unknown;
  /** A copy with `key` set to `value`. */
  setValue(key: symbol, value: unknown): OtelContext;
  /** A copy without `key`. */
  deleteValue(key: symbol): OtelContext;
}

/** Options of `tracer.startSpan()` (`SpanOptions`). */
export interface OtelSpanOptions {
  /** `SpanKind`: 0 internal (default), 1 server, 2 client, 3 producer, 4 consumer. */
  kind?: number;
  /** Attributes known at the start (they decide the operation name). */
  attributes?: OtelAttributes;
  /** Span links. */
  links?: OtelLink[];
  /** The start time. Default now. */
  startTime?: OtelTimeInput;
  /** Start a new trace, whatever the context's span. */
  root?: boolean;
}

/** An exception (`Exception`): an error-like object or a message. */
export type OtelException =
  | { code?: string | number; name?: string; message?: string; stack?: string }
  | string;

/** Writes a header into a carrier (`TextMapSetter`). */
export interface OtelTextMapSetter {
  /** Sets `key` to `value` in `carrier`. */
  // deno-lint-ignore no-explicit-any
  set(carrier: any, key: string, value: string): void;
}

/** Reads headers from a carrier (`TextMapGetter`). */
export interface OtelTextMapGetter {
  /** The keys present in `carrier`. */
  // deno-lint-ignore no-explicit-any
  keys(carrier: any): string[];
  /** The value(s) of `key` in `carrier`. */
  // deno-lint-ignore no-explicit-any
  get(carrier: any, key: string): undefined | string | string[];
}
