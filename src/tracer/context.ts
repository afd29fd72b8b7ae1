/**
 * The active span, carried through `await`, timers and callbacks by
 * `AsyncLocalStorage` (`node:async_hooks`, on Node, Bun and Deno alike),
 * and the shape of a propagated span context.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { SpanLink } from "../span.ts";

/**
 * What identifies a span across process boundaries: what `tracer.extract()`
 * reads from incoming headers and `tracer.inject()` writes; a parent given
 * as `childOf` to continue a trace.
 */
export interface SpanContext {
  /** The trace id, up to 128 bits. */
  readonly traceId: bigint;
  /** The span id, 64-bit: the parent of the spans that continue this context. */
  readonly spanId: bigint;
  /** The sampling priority decided upstream (-1, 0, 1 or 2), if any. */
  readonly samplingPriority?: number;
  /** `_dd.origin`, e.g. `"synthetics"` or `"rum"`. */
  readonly origin?: string;
  /** The propagated trace tags (`_dd.p.*`, e.g. `_dd.p.dm`), without `_dd.p.tid` (that is in `traceId`). */
  readonly traceTags?: Readonly<Record<string, string>>;
  /** The W3C `tracestate` list members of other vendors (the `dd` member excluded), comma-separated. */
  readonly tracestate?: string;
  /** The last Datadog span id upstream (W3C `tracestate` `dd` `p`, 16 hex digits), sent as `_dd.parent_id`. */
  readonly lastParentId?: string;
  /** W3C baggage: key-value pairs that travel with the trace (the `baggage` propagation style). */
  readonly baggage?: Readonly<Record<string, string>>;
  /** Contexts in other headers that belong to another trace; recorded as span links on the continuing span. */
  readonly links?: readonly SpanLink[];
}

/**
 * The context storage: one per process, shared by every tracer, so the
 * active span is the same whichever tracer made it.
 */
const storage = new AsyncLocalStorage<unknown>();

/** The active value of the current execution context. */
export function active<T>(): T | undefined {
  return storage.getStore() as T | undefined;
}

/** Runs `fn` with `value` active; the value follows `fn`'s asynchronous continuations. */
export function runWith<T>(value: unknown, fn: () => T): T {
  return storage.run(value, fn);
}

/** `runWith` calling `fn(arg)`: the argument goes through `AsyncLocalStorage.run`, so the caller needs no closure per call. */
export function runWithArg<A, T>(value: unknown, fn: (arg: A) => T, arg: A): T {
  return storage.run(value, fn, arg);
}
