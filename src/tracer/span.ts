/**
 * `TracerSpan`: a live span that the application tags and finishes, and
 * `LocalTrace`, what this process knows of one trace (its sampling
 * decision, propagated tags, finished spans waiting for their chunk).
 *
 * @module
 */
import { FinishedSpan } from "../finished-span.ts";
import type { SpanEvent, SpanEventAttribute, SpanLink } from "../span.ts";
import { nowNs, nsSince, type TimeInput, toNs } from "./clock.ts";
import type { SpanContext } from "./context.ts";
import { SamplingMechanism, SamplingPriority, type SamplingDecision } from "./sampler.ts";
import { contextPrototype, type DatadogSpanContext } from "./span-context.ts";
import { eventBytes, linkBytes, metaBytes, metricBytes } from "./size.ts";

const U64_LIMIT = 1n << 64n;
const U128_LIMIT = 1n << 128n;
const I64_MIN = -(1n << 63n);
const I64_LIMIT = 1n << 63n;

/** A sampling decision as the trace holds it: an inherited one may lack its mechanism. */
export type TraceDecision = Omit<SamplingDecision, "mechanism"> & { mechanism?: number };

/** The own string-valued entries of `v` (from the application: anything else is left out). */
function stringsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v !== "object" || v === null) return out;
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === "string") out[k] = x;
  }
  return out;
}

/** `_dd.p.dm` of each sampling mechanism (made once: a decision per trace would make its string anew). */
const DECISION_MAKERS = Object.values(SamplingMechanism).reduce<string[]>((dm, m) => ((dm[m] = `-${m}`), dm), []);
/** The trace tags of a trace that had none: shared. */
const NO_TAGS: Readonly<Record<string, string>> = Object.freeze({});
/** The trace tags of a trace that had none once kept by each sampling mechanism (`_dd.p.dm` alone): shared. */
const DECISION_TAGS = DECISION_MAKERS.map((dm) => Object.freeze({ "_dd.p.dm": dm }));

/** What this process knows of one trace; shared by its spans here. Internal. */
export class LocalTrace {
  /** The trace id, up to 128 bits. */
  readonly traceId: bigint;
  /** The sampling decision, once made (locally, upstream, or manually). */
  decision: TraceDecision | undefined;
  /** `_dd.origin`. */
  origin: string | undefined;
  /**
   * Propagated trace tags `_dd.p.*` (`_dd.p.dm`, …), without `_dd.p.tid`. Replaced, never changed in place:
   * the first span of each chunk takes this very record as meta (not a copy), and shared records stand for
   * the common cases (none; `_dd.p.dm` alone).
   */
  tags: Readonly<Record<string, string>>;
  /** Other vendors' W3C tracestate members, to pass on. */
  tracestate: string | undefined;
  /** `_dd.parent_id`, from the W3C tracestate. */
  lastParentId: string | undefined;
  /** The first span of the trace in this process. */
  root: TracerSpan | undefined;
  /** Whether the local root has finished (its chunk went to the buffer). */
  rootFinished = false;
  /** Finished spans not yet handed to the buffer. */
  finished: TracerSpan[] = [];
  /** W3C baggage of the trace in this process (`span.setBaggageItem()`, or extracted); made when it has some. */
  baggage: Record<string, string> | undefined;

  /** `context`'s fields are copied; those of the wrong type are left out (it may come from the application). */
  constructor(traceId: bigint, context?: SpanContext) {
    this.traceId = traceId;
    this.tags = context?.traceTags === undefined ? NO_TAGS : stringsOf(context.traceTags);
    this.origin = stringOrUndefined(context?.origin);
    this.tracestate = stringOrUndefined(context?.tracestate);
    this.lastParentId = stringOrUndefined(context?.lastParentId);
    this.baggage = context?.baggage === undefined ? undefined : stringsOf(context.baggage);
    const priority = context?.samplingPriority;
    if (typeof priority === "number" && Number.isSafeInteger(priority)) {
      const dm = /^-(\d+)$/.exec(this.tags["_dd.p.dm"] ?? "");
      this.decision = { priority, mechanism: dm ? Number(dm[1]) : undefined };
    }
  }

  /** Records a decision made here: `_dd.p.dm` is set on kept traces, removed on rejected ones. */
  setDecision(decision: SamplingDecision): void {
    this.decision = decision;
    const tags = this.tags;
    const kept = decision.priority > 0;
    const dm = kept ? DECISION_MAKERS[decision.mechanism] ?? `-${decision.mechanism}` : undefined;
    if (Object.hasOwn(tags, "_dd.p.dm") ? tags["_dd.p.dm"] === dm : !kept) return;
    if (kept && tags === NO_TAGS && DECISION_TAGS[decision.mechanism] !== undefined) {
      this.tags = DECISION_TAGS[decision.mechanism];
      return;
    }
    const changed = { ...tags };
    if (kept) changed["_dd.p.dm"] = dm!;
    else delete changed["_dd.p.dm"];
    this.tags = changed;
  }
}

/** What `TracerSpan` needs from its tracer. Internal. */
export interface SpanOwner {
  /** Called once, when the span finishes. */
  finished(span: TracerSpan): void;
  /** Makes the sampling decision of a trace of this tracer, if not made yet. */
  decide(trace: LocalTrace): void;
  /** Logs a problem with the application's input, once per kind. */
  warn(kind: string, message: string): void;
}

/** The fields a `TracerSpan` starts with. Internal: spans come from `tracer.startSpan()`. */
export interface SpanInit {
  owner: SpanOwner;
  trace: LocalTrace;
  name: string;
  service: string;
  resource?: string;
  type?: string;
  spanId: bigint;
  parentId: bigint;
  /** The service of the local parent span; undefined for a local root (a service entry span). */
  parentService?: string;
  start: bigint;
  /** The `performance.now()` reading `start` was made from, when the span started now (its duration is then measured from it). */
  startPerf?: number;
}

/** Access to spans' private state for the tracer (set by `TracerSpan`'s static block). Internal: not exported from `mod.ts`. */
export let internals: {
  trace(span: TracerSpan): LocalTrace;
  owner(span: TracerSpan): SpanOwner;
  parentService(span: TracerSpan): string | undefined;
  /** The span's own meta (read only). */
  meta(span: TracerSpan): Readonly<Record<string, string>>;
  /** The estimated encoded bytes of the span's own tags, links and events (see `size.ts`). */
  bytes(span: TracerSpan): number;
  /** Marks the span as the server span of an instrumentation (`instrument/server.ts`). */
  markServer(span: TracerSpan): void;
  /** Whether the span is the server span of an instrumentation. */
  isServer(span: TracerSpan): boolean;
  /** The finished span for the exporter, with the tracer's layers of meta and metrics around its own (not copied). */
  finished(
    span: TracerSpan,
    baseMeta: Readonly<Record<string, string>>,
    extraMeta: Record<string, string> | undefined,
    baseMetrics: Readonly<Record<string, number>>,
    extraMetrics: Readonly<Record<string, number>>,
  ): FinishedSpan;
};

/** Something a span can link to: a span link, another span, or a span context. */
export type LinkTarget = SpanLink | TracerSpan | SpanContext;

/**
 * A live span. Get one from `tracer.startSpan()` or `tracer.trace()`; tag
 * it, then `finish()` it. After `finish()`, every setter is a no-op.
 *
 * Tags: `setTag(key, value)` stores strings in `meta`, numbers in `metrics`
 * (non-finite numbers are ignored), booleans as metrics 1 / 0 (as
 * dd-trace-js does), bigints as decimal strings in `meta`; a plain object is
 * flattened one level (`key.prop`). Special keys, as in dd-trace-js:
 * `service.name`, `resource.name`, `span.type` set those fields; `error`
 * takes an Error (like `setError`) or a boolean; `manual.keep` /
 * `manual.drop` keep or drop the trace; `sampling.priority` sets a user
 * priority.
 */
export class TracerSpan {
  /** The trace id, up to 128 bits (the high 64 bits are sent in `_dd.p.tid`). */
  readonly traceId: bigint;
  /** The span id, 64-bit. */
  readonly spanId: bigint;
  /** The parent span's id; 0n for a root span. */
  readonly parentId: bigint;
  /** The start, in nanoseconds since the Unix epoch. */
  readonly startTime: bigint;

  #owner: SpanOwner;
  #trace: LocalTrace;
  #name: string;
  #service: string;
  #resource: string;
  #type: string;
  #parentService: string | undefined;
  #duration: bigint | undefined;
  /** `SpanInit.startPerf`, else -1. */
  #startPerf: number;
  #error = 0;
  #meta: Record<string, string> = {};
  #metrics: Record<string, number> = {};
  /**
   * Whether a tag was ever set in `#meta` / `#metrics`: only then can a key set in the other be there to
   * remove. It is looked for with a load, not `in` (about 2× slower on V8, where the stores make it megamorphic).
   */
  #hasMeta = false;
  #hasMetrics = false;
  /** Made when the first link or event is added. */
  #links: SpanLink[] | undefined;
  #events: SpanEvent[] | undefined;
  /** The estimated encoded bytes of the tags, links and events so far. */
  #bytes = 0;
  /** Made by an instrumentation as a request's server span: a field, not a `WeakSet`, which would hash every server span into its table. */
  #server = false;

  static {
    internals = {
      trace: (span) => span.#trace,
      owner: (span) => span.#owner,
      parentService: (span) => span.#parentService,
      meta: (span) => span.#meta,
      bytes: (span) => span.#bytes,
      markServer: (span) => {
        span.#server = true;
      },
      isServer: (span) => span.#server,
      finished: (span, baseMeta, extraMeta, baseMetrics, extraMetrics) =>
        new FinishedSpan(
          span.#name,
          span.#service,
          span.#resource,
          span.#type,
          span.traceId,
          span.spanId,
          span.parentId,
          span.startTime,
          span.#duration ?? 0n,
          span.#error,
          baseMeta,
          span.#meta,
          extraMeta,
          baseMetrics,
          span.#metrics,
          extraMetrics,
          span.#links,
          span.#events,
        ),
    };
  }

  /** Internal: spans come from `tracer.startSpan()`. */
  constructor(init: SpanInit) {
    this.#owner = init.owner;
    this.#trace = init.trace;
    this.#name = init.name;
    this.#service = init.service;
    this.#resource = init.resource ?? init.name;
    this.#type = init.type ?? "";
    this.traceId = init.trace.traceId;
    this.spanId = init.spanId;
    this.parentId = init.parentId;
    this.#parentService = init.parentService;
    this.startTime = init.start;
    this.#startPerf = init.startPerf ?? -1;
  }

  /** The operation name, e.g. `"web.request"`. */
  get name(): string {
    return this.#name;
  }

  /** The service. */
  get service(): string {
    return this.#service;
  }

  /** The resource, e.g. `"GET /users/:id"`; defaults to the name. */
  get resource(): string {
    return this.#resource;
  }

  /** The span type, e.g. `"web"`, `"sql"`; `""` when unset. */
  get type(): string {
    return this.#type;
  }

  /** Whether `finish()` was called. */
  get finished(): boolean {
    return this.#duration !== undefined;
  }

  /** The duration in nanoseconds, once finished. */
  get duration(): bigint | undefined {
    return this.#duration;
  }

  /** Whether the span is flagged as an error. */
  get error(): boolean {
    return this.#error !== 0;
  }

  /** The trace's sampling priority (-1, 0, 1, 2), once decided (at the first inject, or when the trace is flushed). */
  get samplingPriority(): number | undefined {
    return this.#trace.decision?.priority;
  }

  /** A tag's value: a `meta` string or a `metrics` number. */
  getTag(key: string): string | number | undefined {
    return this.#meta[key] ?? this.#metrics[key];
  }

  /**
   * This span as a propagated context (the trace's sampling priority, as
   * decided so far), with dd-trace-js's `toTraceId()`, `toSpanId()` and
   * `toTraceparent()`.
   */
  context(): DatadogSpanContext {
    const t = this.#trace;
    // The methods come from the prototype, set in the literal (no setPrototypeOf cost).
    const context = {
      __proto__: contextPrototype,
      traceId: this.traceId,
      spanId: this.spanId,
      samplingPriority: t.decision?.priority,
      origin: t.origin,
      traceTags: { ...t.tags },
      tracestate: t.tracestate,
      lastParentId: t.lastParentId,
    } as unknown as { -readonly [K in keyof SpanContext]: SpanContext[K] };
    if (t.baggage !== undefined && Object.keys(t.baggage).length > 0) context.baggage = { ...t.baggage };
    return context as DatadogSpanContext;
  }

  /** Renames the span (dd-trace-js's `setOperationName`). Ignored after `finish()`. */
  setOperationName(name: string): this {
    if (!this.finished && typeof name === "string" && name) this.#name = name;
    return this;
  }

  /** Same as `setTags` (dd-trace-js's name). */
  addTags(tags: Record<string, unknown>): this {
    return this.setTags(tags);
  }

  /**
   * Sets a W3C baggage item: it travels with the trace (the `baggage`
   * propagation style) and is seen by every span of the trace in this
   * process. Not a span tag. Ignored after `finish()`.
   */
  setBaggageItem(key: string, value: string): this {
    if (!this.finished && typeof key === "string" && key) (this.#trace.baggage ??= {})[key] = String(value);
    return this;
  }

  /** A baggage item of the trace, if set or extracted. */
  getBaggageItem(key: string): string | undefined {
    const baggage = this.#trace.baggage;
    return baggage !== undefined && Object.hasOwn(baggage, key) ? baggage[key] : undefined;
  }

  /** Sets a tag (see the class documentation for types and special keys). Ignored after `finish()`. */
  setTag(key: string, value: unknown): this {
    if (this.finished || typeof key !== "string") return this;
    switch (key) {
      case "service.name":
        if (typeof value === "string" && value) this.#service = value;
        return this;
      case "resource.name":
        if (typeof value === "string") this.#resource = value;
        return this;
      case "span.type":
        if (typeof value === "string") this.#type = value;
        return this;
      case "error":
        if (typeof value === "boolean" || typeof value === "number") this.#error = value ? 1 : 0;
        else if (value !== undefined && value !== null) this.setError(value);
        return this;
      case "manual.keep":
        if (value !== false) this.keep();
        return this;
      case "manual.drop":
        if (value !== false) this.drop();
        return this;
      case "sampling.priority": {
        const p = Number(value);
        if (p >= 1) this.keep();
        else if (p === 0 || p === -1) this.drop();
        return this;
      }
      case "http.status_code":
        if (value !== undefined && value !== null) this.#put(key, String(value), false);
        return this;
    }
    this.#put(key, value, false);
    return this;
  }

  /** Sets several tags, as `setTag` each. */
  setTags(tags: Record<string, unknown>): this {
    if (tags && typeof tags === "object") for (const key of Object.keys(tags)) this.setTag(key, tags[key]);
    return this;
  }

  #put(key: string, value: unknown, nested: boolean): void {
    switch (typeof value) {
      case "string":
        this.#setMeta(key, value);
        return;
      case "number":
        if (!Number.isFinite(value)) return;
        this.#setMetric(key, value);
        return;
      case "boolean":
        this.#setMetric(key, value ? 1 : 0);
        return;
      case "bigint":
        this.#setMeta(key, value.toString());
        return;
      case "object":
        if (value === null || nested || Array.isArray(value)) return;
        for (const k of Object.keys(value)) this.#put(`${key}.${k}`, (value as Record<string, unknown>)[k], true);
    }
  }

  /** A meta entry (the key leaves metrics); counted in the size estimate. */
  #setMeta(key: string, value: string): void {
    this.#meta[key] = value;
    this.#hasMeta = true;
    if (this.#hasMetrics && this.#metrics[key] !== undefined) delete this.#metrics[key];
    this.#bytes += metaBytes(key, value);
  }

  /** A metrics entry (the key leaves meta); counted in the size estimate. */
  #setMetric(key: string, value: number): void {
    this.#metrics[key] = value;
    this.#hasMetrics = true;
    if (this.#hasMeta && this.#meta[key] !== undefined) delete this.#meta[key];
    this.#bytes += metricBytes(key);
  }

  /**
   * Flags the span as an error and records `error.type` (the error's
   * name), `error.message` and `error.stack`. A non-Error value is recorded
   * as the message. Ignored after `finish()`.
   */
  setError(error: unknown): this {
    if (this.finished) return this;
    this.#error = 1;
    if (typeof error === "object" && error !== null) {
      const e = error as { name?: unknown; message?: unknown; stack?: unknown; constructor?: { name?: unknown } };
      const type = safeString(e.name) ?? safeString(e.constructor?.name);
      if (type !== undefined) this.#setErrorTag("error.type", type);
      const message = safeString(e.message);
      if (message !== undefined) this.#setErrorTag("error.message", message);
      const stack = e.stack;
      if (typeof stack === "string") this.#setErrorTag("error.stack", stack);
    } else {
      const message = safeString(error);
      if (message !== undefined) this.#setErrorTag("error.message", message);
    }
    return this;
  }

  /** An error tag in meta, counted in the size estimate (a metric of the same key stays, as it always did). */
  #setErrorTag(key: string, value: string): void {
    this.#meta[key] = value;
    this.#hasMeta = true;
    this.#bytes += metaBytes(key, value);
  }

  /**
   * Links this span to another span: a `SpanLink`, a `TracerSpan`, or a
   * `SpanContext` (e.g. from `tracer.extract()`), with string attributes.
   * An invalid target (ids out of range) is ignored. Ignored after `finish()`.
   */
  addLink(target: LinkTarget, attributes?: Record<string, unknown>): this {
    if (this.finished || typeof target !== "object" || target === null) return this;
    const { traceId, spanId } = target;
    if (typeof traceId !== "bigint" || traceId <= 0n || traceId >= U128_LIMIT) return this;
    if (typeof spanId !== "bigint" || spanId < 0n || spanId >= U64_LIMIT) return this;
    const link: SpanLink = { traceId, spanId };
    const attrs: Record<string, string> = {};
    const given = "attributes" in target && target.attributes ? { ...target.attributes, ...attributes } : attributes;
    for (const [k, v] of Object.entries(given ?? {})) {
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") attrs[k] = String(v);
    }
    if (Object.keys(attrs).length > 0) link.attributes = attrs;
    const t = target as { samplingPriority?: unknown; flags?: unknown; tracestate?: unknown };
    if (typeof t.samplingPriority === "number") {
      // W3C sampled flag; bit 31 says the flags are set (Datadog's span link convention).
      link.flags = ((t.samplingPriority > 0 ? 1 : 0) | 0x80000000) >>> 0;
    } else if (typeof t.flags === "number" && Number.isInteger(t.flags) && t.flags >= 0 && t.flags < 2 ** 32) {
      link.flags = t.flags;
    }
    if (typeof t.tracestate === "string" && t.tracestate) link.tracestate = t.tracestate;
    (this.#links ??= []).push(link);
    this.#bytes += linkBytes(link);
    return this;
  }

  /**
   * Records a span event: something that happened at `time` (default now;
   * a bigint is ns since the epoch, a number or Date is ms). Attributes are
   * strings, booleans, finite numbers, i64 bigints, or homogeneous arrays of
   * one of them; other values are left out. Ignored after `finish()`.
   */
  addEvent(name: string, attributes?: Record<string, unknown>, time?: TimeInput): this {
    if (this.finished || typeof name !== "string") return this;
    const at = this.#time(time, "span.addEvent(time)");
    const event: SpanEvent = { name, time: at };
    const attrs: Record<string, SpanEventAttribute> = {};
    for (const [k, v] of Object.entries(attributes ?? {})) {
      const clean = eventAttribute(v);
      if (clean !== undefined) attrs[k] = clean;
    }
    if (Object.keys(attrs).length > 0) event.attributes = attrs;
    (this.#events ??= []).push(event);
    this.#bytes += eventBytes(event);
    return this;
  }

  /** Keeps the trace: sampling priority 2 (user keep), decision maker `-4`. */
  keep(): this {
    this.#trace.setDecision({ priority: SamplingPriority.USER_KEEP, mechanism: SamplingMechanism.MANUAL });
    return this;
  }

  /** Drops the trace: sampling priority -1 (user reject). It is still sent, for the agent's stats. */
  drop(): this {
    this.#trace.setDecision({ priority: SamplingPriority.USER_REJECT, mechanism: SamplingMechanism.MANUAL });
    return this;
  }

  /**
   * Finishes the span: its duration is `endTime` (default now; a bigint is
   * ns since the epoch, a number or Date is ms) minus its start, at least 0.
   * An unusable `endTime` (see `toNs`) is replaced by now, and logged.
   * Calling it again is a no-op.
   */
  finish(endTime?: TimeInput): void {
    if (this.finished) return;
    if (endTime === undefined && this.#startPerf >= 0) {
      // From the two monotonic readings: one bigint made, not an end time and a difference of two.
      this.#duration = nsSince(this.#startPerf);
    } else {
      const end = this.#time(endTime, "span.finish(endTime)");
      this.#duration = end > this.startTime ? end - this.startTime : 0n;
    }
    this.#owner.finished(this);
  }

  /** A time given to a span method, in ns: now when undefined, or (logged) when unusable. */
  #time(time: TimeInput | undefined, what: string): bigint {
    if (time === undefined) return nowNs();
    const ns = toNs(time);
    if (ns !== undefined) return ns;
    this.#owner.warn(`time:${what}`, `${what}: ${describeTime(time)} is not a time (a bigint of ns, or a number or Date of ms since the epoch, below 2^63 ns): now was used`);
    return nowNs();
  }
}

/** A span event attribute the exporter accepts, or undefined. */
function eventAttribute(v: unknown): SpanEventAttribute | undefined {
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      return Number.isFinite(v) ? v : undefined;
    case "bigint":
      return v >= I64_MIN && v < I64_LIMIT ? v : undefined;
  }
  if (!Array.isArray(v)) return undefined;
  // A copy, read once (holes become undefined): later changes to the caller's array do not reach the span.
  const a: unknown[] = Array.from(v);
  if (a.every((x) => typeof x === "string")) return a as string[];
  if (a.every((x) => typeof x === "boolean")) return a as boolean[];
  if (a.every((x) => typeof x === "number" && Number.isFinite(x))) return a as number[];
  if (a.every((x) => typeof x === "bigint" && x >= I64_MIN && x < I64_LIMIT)) return a as bigint[];
  return undefined;
}

function stringOrUndefined(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** `String(v)` for a value that has one (not undefined or null), undefined when it throws (a Symbol, a hostile `toString`). */
function safeString(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  try {
    return String(v);
  } catch {
    return undefined;
  }
}

function describeTime(v: unknown): string {
  return typeof v === "bigint" ? `${v}n` : v instanceof Date ? `Date(${v.getTime()})` : safeString(v) ?? typeof v;
}
