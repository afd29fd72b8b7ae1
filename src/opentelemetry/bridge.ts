/**
 * The `@opentelemetry/api` bridge: a `TracerProvider` whose tracers make
 * this library's `Tracer` spans.
 *
 * @module
 */
import { context as contextApi, propagation, SpanKind, SpanStatusCode, trace, TraceFlags } from "@opentelemetry/api";
import type {
  OtelAttributes as Attributes,
  OtelAttributeValue as AttributeValue,
  OtelContext as Context,
  OtelException as Exception,
  OtelHrTime,
  OtelLink as Link,
  OtelSpanContext,
  OtelSpanOptions as SpanOptions,
  OtelSpanStatus as SpanStatus,
  OtelTimeInput,
} from "./types.ts";
import { toNs } from "../tracer/clock.ts";
import type { SpanContext } from "../tracer/context.ts";
import type { Tracer } from "../tracer/tracer.ts";
import type { TracerSpan } from "../tracer/span.ts";
import { TracerContextManager } from "./context.ts";
import {
  asString,
  eventAttributes,
  hrTimeToNs,
  idToHex,
  mapSpanData,
  operationName,
  type OtelEvent,
  spanLink,
} from "./mapping.ts";
import { datadogContextOf, TracerPropagator } from "./propagator.ts";

/** The OTel span of each tracer span that has one. */
const views = new WeakMap<TracerSpan, BridgeSpan>();

/** The tracer span behind an OTel span, when it is a bridge span. */
function tracerSpanOf(span: unknown): TracerSpan | undefined {
  return span instanceof BridgeSpan ? span.tracerSpan : undefined;
}

/** The OTel view of a tracer span (made once, then the same object). */
function otelSpanOf(span: TracerSpan): BridgeSpan {
  let view = views.get(span);
  if (!view) views.set(span, view = new BridgeSpan(span, undefined));
  return view;
}

/** An OTel time (`HrTime`, ms since the epoch or since `performance.timeOrigin`, `Date`) in ns since the epoch. */
function timeToNs(time: OtelTimeInput | undefined): bigint | undefined {
  if (time === undefined) return undefined;
  if (Array.isArray(time)) return hrTimeToNs(time as OtelHrTime);
  if (time instanceof Date) return toNs(time);
  if (typeof time === "number") return toNs(time < performance.timeOrigin ? performance.timeOrigin + time : time);
  return undefined;
}

/** A tag value for a tracer span from an OTel attribute value (arrays as JSON, as the agent's mapping prints them). */
function tagValue(value: AttributeValue): string | number | boolean {
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? value : asString(value);
}

/** What an owned bridge span keeps to map at `end()`. */
interface OtelState {
  name: string;
  kind: number;
  attributes: Attributes;
  status: SpanStatus;
  events: OtelEvent[];
  scope: { name: string; version?: string };
}

/** `setOperationName`, where the tracer span has it. */
interface Renamable {
  setOperationName?(name: string): unknown;
}

/**
 * An OTel span backed by a `TracerSpan`. A span started through the
 * bridge's tracer keeps its OTel state (name, kind, attributes, status,
 * events) and maps it when it ends, by the agent's OTLP rules (see
 * `mapSpanData`): operation name, resource, type, `span.kind`, error
 * fields from the status and the `exception` event, attributes to tags,
 * `otel.status_code`, `otel.scope.name`. A span the `Tracer` made, seen
 * through OTel (`trace.getActiveSpan()`), passes attributes to `setTag`
 * as they come.
 */
export class BridgeSpan {
  /** The tracer span. */
  readonly tracerSpan: TracerSpan;
  #otel: OtelState | undefined;
  #ended = false;
  #ids: [traceId: string, spanId: string] | undefined;

  /** Internal: spans come from the bridge's tracers. */
  constructor(span: TracerSpan, otel: OtelState | undefined) {
    this.tracerSpan = span;
    this.#otel = otel;
  }

  /** The span's context: hex ids; sampled unless the trace's sampling priority was decided ≤ 0. */
  spanContext(): OtelSpanContext {
    const span = this.tracerSpan;
    const priority = span.samplingPriority;
    const [traceId, spanId] = this.#ids ??= [idToHex(span.traceId, 32), idToHex(span.spanId, 16)];
    return {
      traceId,
      spanId,
      traceFlags: priority === undefined || priority > 0 ? TraceFlags.SAMPLED : TraceFlags.NONE,
      isRemote: false,
    };
  }

  /** Sets an attribute (ignored once ended, or when the value is null or undefined). */
  setAttribute(key: string, value: AttributeValue | undefined): this {
    if (this.#ended || value === undefined || value === null) return this;
    if (this.#otel) {
      this.#otel.attributes[key] = value;
      if (key === "service.name" && typeof value === "string") this.tracerSpan.setTag(key, value);
    } else {
      this.tracerSpan.setTag(key, tagValue(value));
    }
    return this;
  }

  /** Sets several attributes. */
  setAttributes(attributes: Attributes): this {
    for (const [key, value] of Object.entries(attributes ?? {})) this.setAttribute(key, value);
    return this;
  }

  /** Adds a span event (`ddog_tracer_span_event_*` when sent). */
  addEvent(name: string, attributesOrTime?: Attributes | OtelTimeInput, time?: OtelTimeInput): this {
    if (this.#ended) return this;
    let attributes: Attributes | undefined;
    if (attributesOrTime instanceof Date || Array.isArray(attributesOrTime) || typeof attributesOrTime === "number") {
      time = attributesOrTime;
    } else {
      attributes = attributesOrTime;
    }
    const at = timeToNs(time);
    this.#otel?.events.push({ name, time: at === undefined ? [0, 0] : [Number(at / 1_000_000_000n), Number(at % 1_000_000_000n)], attributes });
    this.tracerSpan.addEvent(name, eventAttributes(attributes), at);
    return this;
  }

  /** Adds a span link. */
  addLink(link: Link): this {
    const target = spanLink(link);
    if (!this.#ended && target) this.tracerSpan.addLink(target);
    return this;
  }

  /** Adds span links. */
  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  /** Sets the status: `OK` is final, `UNSET` is ignored (as the OTel SDK does). */
  setStatus(status: SpanStatus): this {
    if (this.#ended || status.code === SpanStatusCode.UNSET) return this;
    if (this.#otel) {
      if (this.#otel.status.code !== SpanStatusCode.OK) this.#otel.status = { ...status };
    } else if (status.code === SpanStatusCode.ERROR) {
      this.tracerSpan.setTag("error", true);
      if (status.message) this.tracerSpan.setTag("error.message", status.message);
    }
    return this;
  }

  /** Renames the span: its OTel name is the resource's fallback (the tracer's own spans: the resource). */
  updateName(name: string): this {
    if (this.#ended) return this;
    if (this.#otel) this.#otel.name = name;
    else this.tracerSpan.setTag("resource.name", name);
    return this;
  }

  /** Records an exception as an `exception` event (`exception.type`, `.message`, `.stacktrace`), as the OTel SDK does. */
  recordException(exception: Exception, time?: OtelTimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === "string") {
      attributes["exception.message"] = exception;
    } else if (exception) {
      const type = exception.code ? String(exception.code) : exception.name;
      if (type) attributes["exception.type"] = type;
      if (exception.message) attributes["exception.message"] = exception.message;
      if (exception.stack) attributes["exception.stacktrace"] = exception.stack;
    }
    this.addEvent("exception", attributes, time);
  }

  /** Ends the span: maps its OTel state onto the tracer span, then `finish(endTime)`. A second call is a no-op. */
  end(endTime?: OtelTimeInput): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#otel) this.#apply(this.#otel);
    this.tracerSpan.finish(timeToNs(endTime));
  }

  /** Whether the span still takes data (until `end()`). */
  isRecording(): boolean {
    return !this.#ended && !this.tracerSpan.finished;
  }

  #apply(otel: OtelState): void {
    const span = this.tracerSpan;
    const m = mapSpanData({ ...otel, resourceAttributes: {} });
    if (m.name !== span.name) (span as Renamable).setOperationName?.(m.name);
    span.setTag("resource.name", m.resource);
    span.setTag("span.type", m.type);
    for (const [key, value] of Object.entries(m.meta)) span.setTag(key, value);
    for (const [key, value] of Object.entries(m.metrics)) {
      span.setTag(key === "_sampling_priority_v1" ? "sampling.priority" : key, value);
    }
    if (m.error) span.setTag("error", true);
  }
}

/**
 * An OTel `Tracer` that starts `Tracer` spans. Parents follow OTel: the
 * span of the given (or active) context, a bridge span or a remote span
 * context (from the propagator: the Datadog details extracted with it are
 * kept); `root: true` starts a new trace.
 */
export class BridgeTracer {
  #tracer: Tracer;
  #scope: { name: string; version?: string };

  /** Internal: tracers come from `TracerProvider.getTracer()`. */
  constructor(tracer: Tracer, scope: { name: string; version?: string }) {
    this.#tracer = tracer;
    this.#scope = scope;
  }

  /** Starts a span (not made active). Its operation name follows its kind and the attributes given here. */
  startSpan(name: string, options: SpanOptions = {}, context: Context = contextApi.active()): BridgeSpan {
    let childOf: TracerSpan | SpanContext | null = null;
    const parent = options.root ? undefined : trace.getSpan(context);
    if (parent) childOf = tracerSpanOf(parent) ?? datadogContextOf(context, parent.spanContext()) ?? null;
    const kind = options.kind ?? SpanKind.INTERNAL;
    const attributes: Attributes = {};
    for (const [k, v] of Object.entries(options.attributes ?? {})) if (v !== undefined && v !== null) attributes[k] = v;
    const span = this.#tracer.startSpan(operationName(kind, attributes, {}), {
      childOf,
      startTime: timeToNs(options.startTime),
      links: (options.links ?? []).map(spanLink).filter((l) => l !== undefined),
    });
    const service = attributes["service.name"];
    if (typeof service === "string") span.setTag("service.name", service);
    const view = new BridgeSpan(span, {
      name,
      kind,
      attributes,
      status: { code: SpanStatusCode.UNSET },
      events: [],
      scope: this.#scope,
    });
    views.set(span, view);
    return view;
  }

  /** Starts a span and runs `fn(span)` with it active; returns what `fn` returns (the span is not ended for you). */
  startActiveSpan<F extends (span: BridgeSpan) => unknown>(name: string, fn: F): ReturnType<F>;
  /** Same, with span options. */
  startActiveSpan<F extends (span: BridgeSpan) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  /** Same, with span options and a parent context. */
  startActiveSpan<F extends (span: BridgeSpan) => unknown>(
    name: string,
    options: SpanOptions,
    context: Context,
    fn: F,
  ): ReturnType<F>;
  startActiveSpan<F extends (span: BridgeSpan) => unknown>(
    name: string,
    a?: SpanOptions | F,
    b?: Context | F,
    c?: F,
  ): ReturnType<F> {
    const fn = (typeof a === "function" ? a : typeof b === "function" ? b : c) as F;
    const options = typeof a === "object" ? a : {};
    const parent = typeof b === "object" ? b : contextApi.active();
    const span = this.startSpan(name, options, parent);
    return contextApi.with(trace.setSpan(parent, span), () => fn(span)) as ReturnType<F>;
  }
}

/**
 * Makes `@opentelemetry/api` create this library's spans:
 *
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { Tracer } from "@dd-ffi/trace";
 * import { TracerProvider } from "@dd-ffi/trace/opentelemetry";
 *
 * const tracer = new Tracer({ service: "shop" });
 * new TracerProvider(tracer).register();
 * trace.getTracer("checkout").startActiveSpan("charge", (span) => { … span.end(); });
 * ```
 *
 * `register()` installs the provider, a context manager over the tracer's
 * context (`TracerContextManager`: OTel's active span is the Tracer's
 * active span, so OTel-instrumented code and Tracer-instrumented code nest
 * in one trace either way), and a propagator that uses the tracer's
 * headers (`TracerPropagator`). Spans are sent by the tracer, as its own.
 */
export class TracerProvider {
  #tracer: Tracer;
  #tracers = new Map<string, BridgeTracer>();
  #contextManager: TracerContextManager;
  #propagator: TracerPropagator;

  /** A provider over `tracer`, which makes, samples and sends the spans. */
  constructor(tracer: Tracer) {
    this.#tracer = tracer;
    this.#contextManager = new TracerContextManager(tracer, { tracerSpanOf, otelSpanOf });
    this.#propagator = new TracerPropagator(tracer, tracerSpanOf);
  }

  /** The context manager over the tracer's context. */
  get contextManager(): TracerContextManager {
    return this.#contextManager;
  }

  /** The propagator over the tracer's headers. */
  get propagator(): TracerPropagator {
    return this.#propagator;
  }

  /** An OTel tracer for an instrumentation scope (`otel.scope.name` / `otel.scope.version` on its spans). */
  getTracer(name: string, version?: string, _options?: { schemaUrl?: string }): BridgeTracer {
    const key = `${name}@${version ?? ""}`;
    let tracer = this.#tracers.get(key);
    if (!tracer) this.#tracers.set(key, tracer = new BridgeTracer(this.#tracer, { name, version }));
    return tracer;
  }

  /**
   * Registers the provider, the context manager and the propagator as
   * `@opentelemetry/api`'s globals.
   *
   * @throws {Error} another provider, context manager or propagator is registered (call `unregister()`, or the API's `disable()`, first); nothing is registered then.
   */
  register(): this {
    const done: (() => void)[] = [];
    const steps: [string, () => boolean, () => void][] = [
      ["tracer provider", () => trace.setGlobalTracerProvider(this), () => trace.disable()],
      ["context manager", () => contextApi.setGlobalContextManager(this.#contextManager), () => contextApi.disable()],
      ["propagator", () => propagation.setGlobalPropagator(this.#propagator), () => propagation.disable()],
    ];
    for (const [what, register, undo] of steps) {
      if (!register()) {
        for (const u of done.reverse()) u();
        throw new Error(`@opentelemetry/api already has a global ${what}: unregister it first`);
      }
      done.push(undo);
    }
    return this;
  }

  /** Removes `@opentelemetry/api`'s global tracer provider, context manager and propagator. */
  unregister(): void {
    trace.disable();
    contextApi.disable();
    propagation.disable();
  }

  /** Sends the tracer's finished traces now (`tracer.flush()`). */
  forceFlush(): Promise<void> {
    return this.#tracer.flush();
  }

  /** Unregisters, then flushes the tracer. The tracer stays usable; shut it down yourself. */
  async shutdown(): Promise<void> {
    this.unregister();
    await this.#tracer.flush();
  }
}
