/**
 * `Tracer`: span lifecycle, context, sampling and propagation on top of a
 * `TraceExporter`, the way dd-trace-js instruments an application.
 *
 * @module
 */
import { runtime } from "../../ffi/load.ts";
import { ValidationError } from "../errors.ts";
import type { TraceExporter } from "../exporter.ts";
import type { ExporterOptions } from "../options.ts";
import type { FinishedSpan } from "../finished-span.ts";
import { TraceBuffer, type TracerCounters } from "./buffer.ts";
import { metaBytes, recordBytes, SPAN_BYTES } from "./size.ts";
import { perfNs, perfSeconds, type TimeInput } from "./clock.ts";
import { active, runWith, runWithArg, type SpanContext } from "./context.ts";
import { newSpanId, newTraceId } from "./ids.ts";
import { consoleLogger, type Logger, OnceLogger, setLoggerOf } from "./log.ts";
import { type HeadersLike, type PropagationStyle, Propagator } from "./propagation.ts";
import { PrioritySampler, SamplingMechanism } from "./sampler.ts";
import { type RuleSubject, type SamplingRuleOptions, type SpanSamplingDecision, SpanSampler } from "./sampling-rules.ts";
import { type DebugLog, debugLog, disabledBuffer, enableLibraryLogs, libraryLogLevel } from "./debug.ts";
import { scope, type Scope, wrap, type WrapOptions } from "./scope.ts";
import { type DatadogSpanContext, withContextMethods } from "./span-context.ts";
import { internals, type LinkTarget, LocalTrace, type SpanOwner, type TraceDecision, TracerSpan } from "./span.ts";
import * as rules from "./validate.ts";
import { option, spanName, timeOption, tracerExporter } from "./validate.ts";
import { resolveTracerOptions } from "./tracer-options.ts";
import { injectLog } from "./log-injection.ts";
import { type IntegrationConfig, Integrations } from "./instrument/registry.ts";
import type { IntegrationConfigs } from "./instrument/builtin-integrations.ts";
import "./instrument/builtin-integrations.ts";

/**
 * Options of `new Tracer(options)`: the `TraceExporter` options (agent
 * `url`, `service`, `env`, `version`, …) plus the tracer's own. Unset
 * options take the default shown, often from the environment as Datadog
 * tracers read it. A variable gets the checks of its option; an invalid
 * one is logged (naming the variable) and the default is used instead.
 */
export interface TracerOptions extends ExporterOptions {
  /** The default service of spans. Default `DD_SERVICE`, else `"unnamed-service"`. */
  service?: string;
  /** Milliseconds between sends of the queued traces. Default 2000. */
  flushIntervalMs?: number;
  /**
   * Most milliseconds one send of queued traces may take, libdatadog's
   * retries included; past it the send is cancelled and its traces are
   * counted as timed out (the agent may have received them). Default 5000,
   * or `connectionTimeoutMs` + 1000 when that is longer.
   */
  flushTimeoutMs?: number;
  /** The queue is sent early once its estimated encoded size passes this many bytes. Default 1 MiB. */
  flushThresholdBytes?: number;
  /** Most trace chunks queued or being sent; past it new traces are dropped and counted. Default 10,000. */
  maxQueuedTraces?: number;
  /** Most estimated bytes queued or being sent; past it new traces are dropped and counted. Default 64 MiB. */
  maxQueuedBytes?: number;
  /** A trace with this many finished spans is sent in part before its local root finishes. Default `DD_TRACE_PARTIAL_FLUSH_MIN_SPANS`, else 1000. */
  partialFlushMinSpans?: number;
  /**
   * A global sample rate in [0, 1], instead of the agent's rates: a trace
   * sampling rule that matches every trace, after `samplingRules`.
   * Default `DD_TRACE_SAMPLE_RATE`.
   */
  sampleRate?: number;
  /** Traces kept per second by sampling rules and `sampleRate` (negative: no limit). Default `DD_TRACE_RATE_LIMIT`, else 100. */
  rateLimit?: number;
  /**
   * Trace sampling rules, in order: the first that matches a trace's local
   * root span (service, name, resource, tags; case-insensitive globs with `*`
   * and `?`) decides, at its `sample_rate`, instead of the agent's rates (see
   * README "Sampling"). Default `DD_TRACE_SAMPLING_RULES` (a JSON array).
   * A rule of the wrong shape, or a `sample_rate` missing or outside [0, 1],
   * throws a `ValidationError` naming it (`options.samplingRules[1].sample_rate`).
   */
  samplingRules?: SamplingRuleOptions[];
  /**
   * Single span sampling rules: in a trace that is not kept, a span matched
   * by the first rule that matches it is kept on its own at the rule's
   * `sample_rate` (default 1), at most `max_per_second` per second (default no
   * limit). Default `DD_SPAN_SAMPLING_RULES`, else the JSON file named by
   * `DD_SPAN_SAMPLING_RULES_FILE`. Checked as `samplingRules`.
   */
  spanSamplingRules?: SamplingRuleOptions[];
  /** The `runtime-id` tag. Default a random UUID per tracer. */
  runtimeId?: string;
  /** Tags on every span. Default `DD_TAGS` (`key:value,key:value`). */
  tags?: Record<string, string>;
  /**
   * Header styles written by `inject` (see {@link PropagationStyle}), an array
   * or a comma-separated string; unknown names are ignored with a warning.
   * Default `DD_TRACE_PROPAGATION_STYLE_INJECT` or `DD_TRACE_PROPAGATION_STYLE`,
   * else `["datadog", "tracecontext", "baggage"]`.
   */
  propagationStyleInject?: PropagationStyle[] | string;
  /** Header styles read by `extract`, first found wins; as `propagationStyleInject`, from `DD_TRACE_PROPAGATION_STYLE_EXTRACT` or `DD_TRACE_PROPAGATION_STYLE`. */
  propagationStyleExtract?: PropagationStyle[] | string;
  /** New trace ids are 128-bit. Default `DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED`, else true. */
  traceId128BitGeneration?: boolean;
  /** Send the queued traces when the process is about to exit (Node/Bun `beforeExit`, Deno `beforeunload`). Default true. */
  flushOnExit?: boolean;
  /** Where diagnostics go, once per kind of problem. Default `console.warn`. */
  logger?: Logger;
  /**
   * False makes a no-op tracer: spans are made (and contexts extracted) but
   * never sent, `inject` writes nothing, and no native library is loaded.
   * Default `DD_TRACE_ENABLED`, else true.
   */
  enabled?: boolean;
  /**
   * Debug logs through `logger` (configuration, queued trace chunks, agent
   * answers, injected and extracted headers), and libdatadog's own logs on
   * stderr where the library has its logger (`ddog_logger_configure_std`).
   * Default `DD_TRACE_DEBUG`, else false.
   */
  debug?: boolean;
  /**
   * Automatic instrumentation (see `Tracer.use` and the README's
   * "Automatic instrumentation" table): `true` turns on every registered
   * integration (`fetch`, `http`, `deno-serve`, `bun-serve`, and `pg`,
   * `postgres`, `ioredis`, `redis` where the application has them installed)
   * that applies to the runtime; an object turns them all on too, each entry configuring
   * one (`{ http: { client: false }, fetch: false }`); `false` turns none on
   * (`tracer.use(name)` still turns one on). Integrations patch globals, so
   * one tracer at a time should have them; `shutdown()` undoes the patches.
   * A disabled tracer (`enabled: false`) instruments nothing.
   * Default false for `new Tracer()`, true for `tracer.init()`.
   */
  instrument?: InstrumentOptions;
}

/** The `instrument` option: all on or off, or per integration (the others on). */
export type InstrumentOptions = boolean | ({ [N in keyof IntegrationConfigs]?: boolean | IntegrationConfigs[N] } & Record<string, boolean | IntegrationConfig | undefined>);

/** Options of `tracer.startSpan()` and `tracer.trace()`. */
export interface StartSpanOptions {
  /** The span's service. Default the parent's, else the tracer's. */
  service?: string;
  /** The resource, e.g. `"GET /users/:id"`. Default the name. */
  resource?: string;
  /** The span type, e.g. `"web"`, `"sql"`, `"http"`. */
  type?: string;
  /**
   * The parent: a span, or a span context (e.g. from `tracer.extract()`).
   * Default the active span; `null` starts a new trace.
   */
  childOf?: TracerSpan | SpanContext | null;
  /** Tags, as `span.setTags()`. */
  tags?: Record<string, unknown>;
  /** The start: a bigint is nanoseconds since the epoch, a number or Date milliseconds. Default now. */
  startTime?: TimeInput;
  /** Span links. */
  links?: readonly LinkTarget[];
}

/** Options of `tracer.shutdown()`. */
export interface ShutdownOptions {
  /**
   * How long to wait for the agent to take the queued traces, in milliseconds, and as long again for
   * the exporter's shutdown (libdatadog's last stats and telemetry flushes; past it the exporter is freed
   * in the background). Default 5000.
   */
  timeoutMs?: number;
}

const U64_LIMIT = 1n << 64n;
const U128_LIMIT = 1n << 128n;

/** The ids of a `childOf` span context, in range (else a `ValidationError` naming the field), and a copy of its other fields. */
function checkContext(given: SpanContext): { traceId: bigint; spanId: bigint; context: SpanContext } {
  // Each field read once (also a getter of a class instance).
  const { traceId, spanId, samplingPriority, origin, traceTags, tracestate, lastParentId, links, baggage } = given;
  const context: SpanContext = { traceId, spanId, samplingPriority, origin, traceTags, tracestate, lastParentId, links, baggage };
  // Trace id 0: baggage extracted with no trace context.
  if (typeof traceId !== "bigint" || traceId < 0n || traceId >= U128_LIMIT) {
    throw new ValidationError("options.childOf.traceId", `expected a bigint id, 0 ≤ id < 2^128, got ${rules.describe(traceId)}`);
  }
  if (typeof spanId !== "bigint" || spanId < 0n || spanId >= U64_LIMIT) {
    throw new ValidationError("options.childOf.spanId", `expected a bigint id, 0 ≤ id < 2^64, got ${rules.describe(spanId)}`);
  }
  return { traceId, spanId, context };
}

/**
 * The metrics Datadog tracers add to a span (dd-trace-js's format.js and span sampling): its trace's
 * sampling priority; `_dd.top_level` on a service entry span; `_dd.measured` when it has a span kind other
 * than internal; the sampling rates on the local root; single span sampling's marks.
 */
function extraMetricsOf(decision: TraceDecision, topLevel: boolean, measured: boolean, root: boolean, single: SpanSamplingDecision | undefined): Record<string, number> {
  const metrics: Record<string, number> = { _sampling_priority_v1: decision.priority };
  if (topLevel) metrics["_dd.top_level"] = 1;
  if (measured) metrics["_dd.measured"] = 1;
  if (root) {
    if (decision.agentRate !== undefined) metrics["_dd.agent_psr"] = decision.agentRate;
    if (decision.ruleRate !== undefined) metrics["_dd.rule_psr"] = decision.ruleRate;
    if (decision.limitRate !== undefined) metrics["_dd.limit_psr"] = decision.limitRate;
  }
  if (single) {
    metrics["_dd.span_sampling.mechanism"] = SamplingMechanism.SPAN_RULE;
    metrics["_dd.span_sampling.rule_rate"] = single.ruleRate;
    if (single.maxPerSecond !== undefined) metrics["_dd.span_sampling.max_per_second"] = single.maxPerSecond;
  }
  return metrics;
}

/** What sampling rules match on a span: its fields, and its tags then the tags every span of its tracer gets. */
class SpanSubject implements RuleSubject {
  constructor(readonly span: TracerSpan, readonly tracerTag: (key: string) => string | undefined) {}
  get name(): string {
    return this.span.name;
  }
  get service(): string {
    return this.span.service;
  }
  get resource(): string {
    return this.span.resource;
  }
  tag(key: string): unknown {
    return this.span.getTag(key) ?? this.tracerTag(key);
  }
}

/** The meta and metrics every span of a tracer gets (see `Tracer.#tracerLayers`), with their estimated bytes. */
interface TracerLayers {
  meta: Record<string, string>;
  otherServiceMeta: Record<string, string>;
  metrics: Record<string, number>;
  bytes: number;
  otherServiceBytes: number;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function";
}

/**
 * A tracer: makes spans, keeps the active one in context, decides sampling,
 * propagates context in headers, and ships finished traces to the agent
 * through its own `TraceExporter`.
 *
 * ```ts
 * const tracer = new Tracer({ service: "shop", env: "prod" });
 * await tracer.trace("checkout", { resource: "POST /checkout" }, async (span) => {
 *   span.setTag("cart.items", 3);
 *   await tracer.trace("db.query", { service: "shop-db", type: "sql" }, () => db.query(sql));
 * });
 * await tracer.shutdown();
 * ```
 *
 * Finished traces are sent in the background (see {@link TracerOptions});
 * failures are counted ({@link Tracer.counters}) and logged once per kind,
 * never thrown into the application.
 */
export class Tracer implements AsyncDisposable {
  #exporter: TraceExporter | undefined;
  #buffer: Pick<TraceBuffer, "push" | "flush" | "close" | "counters" | "queued" | "busy">;
  #enabled: boolean;
  #debug: DebugLog | undefined;
  #sampler: PrioritySampler;
  #spanSampler: SpanSampler | undefined;
  #propagator: Propagator;
  #log: OnceLogger;
  #service: string;
  #env: string;
  #version: string;
  #runtimeId: string;
  #pid: number;
  #tags: Record<string, string>;
  #partialFlushMinSpans: number;
  #traceId128: boolean;
  #removeExitHook: (() => void) | undefined;
  #shutdown: Promise<void> | undefined;
  #integrations: Integrations | undefined;
  #owner: SpanOwner = {
    finished: (span) => this.#finished(span),
    decide: (trace) => this.#decide(trace),
    warn: (kind, message) => this.#log.once(kind, message),
  };

  /**
   * Creates the tracer and its exporter.
   *
   * @throws {ValidationError} an option has the wrong type or is out of range (never a `DD_*` variable: those are logged and ignored).
   * @throws {TraceExporterError} libdatadog rejected an exporter option (e.g. `InvalidUrl`).
   * @throws {Error} no native library was found.
   */
  constructor(options: TracerOptions = {}) {
    if (typeof options !== "object" || options === null) throw new ValidationError("options", "expected an object");
    if (options.logger !== undefined && typeof options.logger !== "function") {
      throw new ValidationError("options.logger", "expected a function (message: string) => void");
    }
    this.#log = new OnceLogger(options.logger ?? consoleLogger);
    setLoggerOf(this, options.logger ?? consoleLogger);
    // Options are checked first (they throw); variables are checked by the same rules (they are logged and ignored).
    const o = resolveTracerOptions(options, this.#log);
    this.#runtimeId = o.runtimeId;
    this.#pid = runtime.pid;
    this.#tags = o.tags;
    this.#partialFlushMinSpans = o.partialFlushMinSpans;
    this.#traceId128 = o.traceId128BitGeneration;
    this.#spanSampler = o.spanSamplingRules?.length ? new SpanSampler(o.spanSamplingRules) : undefined;
    this.#enabled = o.enabled;
    this.#debug = debugLog(o.debug, options.logger ?? consoleLogger);
    this.#propagator = new Propagator(o.propagation);
    const sampling = { rules: o.samplingRules, sampleRate: o.sampleRate, rateLimit: o.rateLimit };
    if (o.disabled) {
      this.#service = o.disabled.service;
      this.#env = o.disabled.env;
      this.#version = o.disabled.version;
      this.#sampler = new PrioritySampler({ env: this.#env, ...sampling });
      this.#debug?.(`configuration: ${JSON.stringify({ enabled: false, service: this.#service })}`);
      this.#buffer = disabledBuffer();
      return;
    }
    if (this.#debug) this.#debug(enableLibraryLogs(libraryLogLevel(this.#log)));
    const made = tracerExporter(o.exporter, o.env);
    this.#exporter = made.exporter;
    this.#service = made.options.service!;
    this.#env = made.options.env ?? "";
    this.#version = made.options.version ?? "";
    this.#sampler = new PrioritySampler({ env: this.#env, ...sampling });
    this.#debug?.(`configuration: ${JSON.stringify({ enabled: true, service: this.#service, env: this.#env, version: this.#version, url: made.options.url, propagation: this.#propagator.styles })}`);
    this.#buffer = new TraceBuffer({
      exporter: this.#exporter,
      ...o.buffer,
      log: this.#log,
      onResponse: (response) => {
        this.#debug?.(`agent answered: ${JSON.stringify(response, (_, v) => typeof v === "bigint" ? String(v) : v)}`);
        if (response.changed && response.rateByService) this.#sampler.updateRates(response.rateByService);
      },
    });
    if (o.flushOnExit) this.#removeExitHook = runtime.onBeforeExit(() => this.#beforeExit());
    this.#integrations = new Integrations(this, o.instrument, o.env, (kind, message) => this.#log.once(kind, message));
    this.#debug?.(`integrations on: ${JSON.stringify(this.#integrations.enabled)}`);
  }

  /** The default service of spans. */
  get service(): string {
    return this.#service;
  }

  /** The `env` tag ("" when unset). */
  get env(): string {
    return this.#env;
  }

  /** The `version` tag ("" when unset). */
  get version(): string {
    return this.#version;
  }

  /** The `runtime-id` tag. */
  get runtimeId(): string {
    return this.#runtimeId;
  }

  /** The agent's sampling rates in use, by `service:…,env:…` key (empty until the agent answers). */
  get samplingRates(): Record<string, number> {
    return this.#sampler.rates;
  }

  /** What was sent, dropped and failed so far, and what is queued now. */
  get counters(): TracerCounters {
    return { ...this.#buffer.counters(), malformedHeaders: this.#propagator.malformed };
  }

  /**
   * Starts a span. Its parent is `options.childOf`, else the active span;
   * without one it starts a new trace (ids from a cryptographic random
   * source: a 64-bit span id, a 128-bit trace id). The span is not made
   * active: use `tracer.trace()` or `tracer.activate()` for that.
   *
   * A parent that is a span of another `Tracer` is continued like an
   * incoming context: the new span is a service entry of this tracer (its
   * service, sent by its exporter), in the same trace, with the other
   * tracer's sampling decision.
   *
   * @throws {ValidationError} `name` is not a string, or an option has the
   *   wrong type: `service`, `resource`, `type` not strings, `startTime` not
   *   a time below 2^63 ns (e.g. ns passed as a number, which means ms),
   *   `childOf` ids out of range, `links` not an array.
   */
  startSpan(name: string, options: StartSpanOptions = {}): TracerSpan {
    spanName(name, "name");
    if (typeof options !== "object" || options === null) throw new ValidationError("options", "expected an object");
    const service = option(options.service, "options.service", rules.string);
    const resource = option(options.resource, "options.resource", rules.string);
    const type = option(options.type, "options.type", rules.string);
    const startPerf = options.startTime === undefined ? performance.now() : undefined;
    const start = startPerf !== undefined ? perfNs(startPerf) : timeOption(options.startTime!, "options.startTime");
    // A new trace's id takes its seconds from the start read here (no second clock read); a given start time keeps now's.
    const seconds = startPerf !== undefined ? perfSeconds(startPerf) : undefined;
    const { links, tags, childOf } = options; // each read once
    if (links !== undefined && !Array.isArray(links)) throw new ValidationError("options.links", "expected an array of span links, spans or span contexts");
    const parent = childOf === undefined ? this.activeSpan() : childOf;
    let inherited: unknown;
    let trace: LocalTrace;
    let parentId = 0n;
    let parentService: string | undefined;
    const spanId = newSpanId();
    if (parent instanceof TracerSpan && internals.owner(parent) === this.#owner) {
      trace = internals.trace(parent);
      parentId = parent.spanId;
      parentService = parent.service;
    } else if (parent instanceof TracerSpan) {
      // A span of another tracer: this one continues its trace as a service entry of its own (its
      // service, its exporter), as if the context had come in headers, with that tracer's decision.
      internals.owner(parent).decide(internals.trace(parent));
      trace = new LocalTrace(parent.traceId, parent.context());
      parentId = parent.spanId;
    } else if (parent && typeof parent === "object") {
      const { traceId, spanId, context } = checkContext(parent);
      if (traceId === 0n) {
        // Baggage alone: a new trace that carries it.
        trace = new LocalTrace(newTraceId(this.#traceId128, seconds, spanId), { traceId: 0n, spanId: 0n, baggage: context.baggage, traceTags: context.traceTags });
      } else {
        trace = new LocalTrace(traceId, context);
        parentId = spanId;
        inherited = context.links;
      }
    } else {
      // A new trace's low 64 bits are its root span's id, as in dd-trace-js (span.js `_createContext`): one draw.
      trace = new LocalTrace(newTraceId(this.#traceId128, seconds, spanId));
    }
    const span = new TracerSpan({
      owner: this.#owner,
      trace,
      name,
      service: service ?? parentService ?? this.#service,
      resource,
      type,
      spanId,
      parentId,
      parentService,
      start,
      startPerf,
    });
    trace.root ??= span;
    if (tags) span.setTags(tags);
    if (Array.isArray(inherited)) for (const link of inherited) span.addLink(link);
    for (const link of links ?? []) span.addLink(link);
    return span;
  }

  /**
   * Runs `fn` in a new span, active for `fn`'s whole execution (its awaits,
   * timers and callbacks included), and finishes the span when `fn` returns
   * or, for a promise, settles. A thrown error or a rejection is recorded on
   * the span (`setError`) and passed on unchanged.
   *
   * @returns what `fn` returns (for a promise, a promise of the same value).
   */
  trace<T>(name: string, fn: (span: TracerSpan) => T): T;
  /** The same, with span options (`service`, `resource`, `type`, `childOf`, `tags`, `startTime`). */
  trace<T>(name: string, options: StartSpanOptions, fn: (span: TracerSpan) => T): T;
  trace<T>(name: string, a: StartSpanOptions | ((span: TracerSpan) => T), b?: (span: TracerSpan) => T): T {
    const fn = typeof a === "function" ? a : b!;
    const span = this.startSpan(name, typeof a === "function" ? {} : a);
    let result: T;
    try {
      result = runWithArg(span, fn, span);
    } catch (error) {
      span.setError(error);
      span.finish();
      throw error;
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (value) => {
          span.finish();
          return value;
        },
        (error) => {
          span.setError(error);
          span.finish();
          throw error;
        },
      ) as T;
    }
    span.finish();
    return result;
  }

  /** The active span of the current execution context, if any. */
  activeSpan(): TracerSpan | undefined {
    const span = active<unknown>();
    return span instanceof TracerSpan ? span : undefined;
  }

  /** Runs `fn` with `span` active (undefined: with no active span); returns what `fn` returns. */
  activate<T>(span: TracerSpan | undefined, fn: () => T): T {
    return runWith(span, fn);
  }

  /**
   * Writes the trace context of `span` (default the active span) into
   * `carrier`, in each inject style (see {@link PropagationStyle}). Makes the
   * trace's sampling decision if it is not made yet, so that it travels with
   * the trace. A no-op on a disabled tracer.
   */
  inject(span: TracerSpan | SpanContext | undefined | null, carrier: HeadersLike): void;
  /**
   * dd-trace-js's form: `format` is `"http_headers"` or `"text_map"` (both
   * write the headers as above), or `"log"` (writes `{ dd: { trace_id,
   * span_id, service, env, version } }` into `carrier`, see `logContext`).
   * Another format is logged once and ignored.
   */
  inject(span: TracerSpan | SpanContext | undefined | null, format: string, carrier: object): void;
  inject(span: TracerSpan | SpanContext | undefined | null, a: HeadersLike | string, b?: object): void {
    let carrier = a as HeadersLike;
    if (typeof a === "string") {
      carrier = b as HeadersLike;
      if (a === "log") return void injectLog(this, span ?? this.activeSpan(), carrier);
      if (a !== "http_headers" && a !== "text_map") return this.#log.once(`inject-format:${a}`, `inject: unsupported format ${JSON.stringify(a)} ignored (use "http_headers", "text_map" or "log")`);
    }
    if (!this.#enabled || typeof carrier !== "object" || carrier === null) return;
    const source = span ?? this.activeSpan();
    if (!source) return;
    if (source instanceof TracerSpan) {
      internals.owner(source).decide(internals.trace(source));
      this.#propagator.inject(source.context(), carrier, source.parentId);
    } else {
      this.#propagator.inject(source, carrier);
    }
    this.#debug?.(`inject: ${JSON.stringify(carrier instanceof Headers ? Object.fromEntries(carrier) : carrier)}`);
  }

  /**
   * Reads a span context from incoming headers (per the extract styles), to
   * pass as `childOf`, with dd-trace-js's `toTraceId()`, `toSpanId()` and
   * `toTraceparent()`. Malformed headers are ignored and counted
   * (`counters.malformedHeaders`); never throws.
   */
  extract(carrier: HeadersLike): DatadogSpanContext | undefined;
  /** dd-trace-js's form: `format` is `"http_headers"` or `"text_map"`; another format gives undefined (logged once). */
  extract(format: string, carrier: HeadersLike): DatadogSpanContext | undefined;
  extract(a: HeadersLike | string, b?: HeadersLike): DatadogSpanContext | undefined {
    let carrier = a as HeadersLike;
    if (typeof a === "string") {
      carrier = b as HeadersLike;
      if (a !== "http_headers" && a !== "text_map") {
        this.#log.once(`extract-format:${a}`, `extract: unsupported format ${JSON.stringify(a)} ignored (use "http_headers" or "text_map")`);
        return undefined;
      }
    }
    const context = this.#propagator.extract(carrier);
    if (this.#debug && context) this.#debug(`extract: trace ${context.traceId} span ${context.spanId}`);
    return context && withContextMethods(context);
  }

  /** dd-trace-js's scope manager: `active()`, `activate(span, fn)`, `bind(fn, span?)`. */
  scope(): Scope {
    return scope;
  }

  /**
   * dd-trace-js's `tracer.wrap(name, options, fn)`: returns a function that
   * runs `fn` in a new span named `name` on every call (see `wrap` in
   * `scope.ts`: a trailing callback finishes the span; else the return or
   * the promise does). `options` may be a function of the call's arguments.
   */
  wrap<F extends (...args: never[]) => unknown>(name: string, options: WrapOptions, fn: F): F;
  /** The same, without options. */
  wrap<F extends (...args: never[]) => unknown>(name: string, fn: F): F;
  wrap<F extends (...args: never[]) => unknown>(name: string, a: WrapOptions | F, b?: F): F {
    return b === undefined ? wrap(this, name, {}, a as F) : wrap(this, name, a as WrapOptions, b);
  }

  /**
   * dd-trace-js's `tracer.use(name, config)`: configures the integration
   * `name` and applies it now. `config.enabled: false` (or `false`) turns it
   * off (its patches undone); anything else turns it on with that config,
   * even when the `instrument` option is off. A later call replaces the
   * config. `DD_TRACE_<NAME>_ENABLED=false` (e.g. `DD_TRACE_DENO_SERVE_ENABLED`)
   * or the name in `DD_TRACE_DISABLED_PLUGINS` keeps it off whatever the
   * code says (as in dd-trace-js). An unknown name is logged and its config
   * kept for an integration registered later. Does nothing on a disabled or
   * shut down tracer.
   *
   * ```ts
   * tracer.use("http", { client: false }).use("fetch", { service: "shop-outbound" }).use("bun-serve", false);
   * ```
   *
   * @throws {ValidationError} `name` is not a non-empty string, or `config` not a boolean or an object.
   */
  use<N extends keyof IntegrationConfigs>(name: N, config?: boolean | IntegrationConfigs[N]): this;
  /** An integration registered by another module (see `registerIntegration`). */
  use(name: string, config?: boolean | IntegrationConfig): this;
  use(name: string, config?: boolean | IntegrationConfig): this {
    if (typeof name !== "string" || !name) throw new ValidationError("name", `expected an integration name, e.g. "fetch", got ${rules.describe(name)}`);
    if (config !== undefined && typeof config !== "boolean" && (typeof config !== "object" || config === null)) {
      throw new ValidationError("config", `expected a boolean or an object, got ${rules.describe(config)}`);
    }
    this.#integrations?.use(name, config);
    return this;
  }

  /** The integrations on now (see `use`), e.g. `["fetch", "http", "deno-serve"]`. */
  get integrations(): string[] {
    return this.#integrations?.enabled ?? [];
  }

  /** Whether the tracer sends anything (`enabled`, `DD_TRACE_ENABLED`). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /**
   * Sends the queued traces now; resolves when the agent has them, the
   * sends failed, or they were cancelled at `flushTimeoutMs` (never
   * rejects). Traces whose local root has not finished are not included.
   */
  flush(): Promise<void> {
    return this.#buffer.flush();
  }

  /**
   * Sends what is queued and resolves when the agent has it or `timeoutMs`
   * ends (the send in flight is then cancelled), then closes the exporter
   * (`close({ timeoutMs })`: libdatadog flushes its last stats buckets and
   * telemetry).
   * Spans finishing later are dropped (and counted). Calling it again
   * returns the same promise.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    this.#integrations?.close();
    this.#integrations = undefined;
    this.#shutdown ??= (async () => {
      this.#removeExitHook?.();
      this.#removeExitHook = undefined;
      const timeoutMs = options.timeoutMs ?? 5000;
      await this.#buffer.close(timeoutMs);
      // libdatadog's shutdown flushes the last stats buckets and telemetry, with no bound of its own.
      await this.#exporter?.close({ timeoutMs });
    })();
    return this.#shutdown;
  }

  /** Same as `shutdown()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /** The exit hook: flush what is queued; true keeps the process alive while sends are pending. */
  #beforeExit(): boolean {
    if (this.#buffer.queued) void this.#buffer.flush();
    return this.#buffer.busy;
  }

  /**
   * Makes the trace's sampling decision, once: when the trace is first
   * injected (or continued by another tracer), else when its first chunk is
   * sent, as dd-trace-js does (its `PrioritySampler.sample` runs in
   * `tracer.inject` and in span_processor.js when a chunk is flushed). Rules
   * see the local root span as it is then: its final name, service, resource
   * and tags when the trace is sent whole after its root finished; as they
   * are so far at an inject or at a partial flush before the root finished.
   */
  #decide(trace: LocalTrace): void {
    if (trace.decision) return;
    const root = trace.root;
    // No rules: the agent's rates need only the service (no subject made per trace).
    if (!this.#sampler.hasRules) return trace.setDecision(this.#sampler.decideByAgentRate(trace.traceId, root ? root.service : this.#service));
    const subject: RuleSubject = root ? this.#ruleSubject(root) : { name: "", service: this.#service, resource: "", tag: this.#tracerTagOf };
    trace.setDecision(this.#sampler.decide(trace.traceId, subject));
  }

  /** What sampling rules match on a span: its fields, and its tags then the tags every span gets (as dd-trace-js's span context holds them). */
  #ruleSubject(span: TracerSpan): RuleSubject {
    return new SpanSubject(span, this.#tracerTagOf);
  }

  /** `#tracerTag`, made once: deciding a trace makes no closure. */
  #tracerTagOf = (key: string): string | undefined => this.#tracerTag(key);

  /** A tag every span of this tracer gets (`tags`, `DD_TAGS`, `env`, `version`). */
  #tracerTag(key: string): string | undefined {
    if (Object.hasOwn(this.#tags, key)) return this.#tags[key];
    if (key === "env") return this.#env || undefined;
    if (key === "version") return this.#version || undefined;
    return undefined;
  }

  /** A span finished: hand its trace's finished spans to the buffer when a chunk is due. */
  #finished(span: TracerSpan): void {
    if (!this.#enabled) return;
    const trace = internals.trace(span);
    if (span === trace.root) {
      trace.rootFinished = true;
      // The local root alone (a trace of one span, or its children already sent): no list to grow.
      if (trace.finished.length === 0) return this.#queueChunk(trace, [span]);
    }
    trace.finished.push(span);
    if (trace.rootFinished || trace.finished.length >= this.#partialFlushMinSpans) this.#flushTrace(trace);
  }

  /** Formats the trace's finished spans as one chunk (the local root first) and queues it. */
  #flushTrace(trace: LocalTrace): void {
    const spans = trace.finished;
    trace.finished = [];
    const rootAt = spans.indexOf(trace.root!);
    if (rootAt > 0) {
      // The root moved to the front in place (it usually finishes last): no array made for it.
      const root = spans[rootAt];
      spans.copyWithin(1, 0, rootAt);
      spans[0] = root;
    }
    this.#queueChunk(trace, spans);
  }

  /**
   * Formats `spans`, finished spans of `trace` (its local root first, if there), as one chunk and queues it.
   * The list becomes the chunk: each span is replaced by its `FinishedSpan` (no second list made).
   */
  #queueChunk(trace: LocalTrace, spans: (TracerSpan | FinishedSpan)[]): void {
    this.#decide(trace);
    let bytes = 0;
    const p = trace.decision!.priority;
    // Single span sampling: only in a trace that is not kept (dd-trace-js span_sampler.js), each span as it finished.
    const spanSampler = p === 1 || p === 2 ? undefined : this.#spanSampler;
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i] as TracerSpan;
      const single = spanSampler?.sample(trace.traceId, this.#ruleSubject(span));
      const formatted = this.#format(span, trace, i === 0, single);
      bytes += this.#estimate(span, formatted, this.#extraBytes);
      spans[i] = formatted;
    }
    const chunk = spans as FinishedSpan[];
    this.#debug?.(`trace chunk queued: ${chunk.length} spans, ~${bytes} bytes, trace ${trace.traceId.toString(16)}`);
    try {
      this.#buffer.push(chunk, bytes);
    } catch (error) {
      this.#log.once("push", `queueing a trace failed: ${String(error)}`);
    }
  }

  /**
   * The meta every span of this tracer gets, in two versions (`version` goes
   * only on spans of the tracer's own service), and its metrics; made once,
   * shared by the finished spans (read only), with their estimated bytes.
   */
  #layers: TracerLayers | undefined;

  #tracerLayers(): TracerLayers {
    if (this.#layers) return this.#layers;
    const otherServiceMeta: Record<string, string> = { ...this.#tags, language: "javascript", "runtime-id": this.#runtimeId };
    if (this.#env) otherServiceMeta.env = this.#env;
    const meta = { ...otherServiceMeta };
    if (this.#version) meta.version = this.#version;
    const metrics = { process_id: this.#pid };
    const numbers = recordBytes(metrics);
    this.#layers = { meta, otherServiceMeta, metrics, bytes: recordBytes(meta) + numbers, otherServiceBytes: recordBytes(otherServiceMeta) + numbers };
    return this.#layers;
  }

  /**
   * The exporter's span with the data Datadog tracers always send: the
   * tracer's meta and metrics, the span's own tags over them, and this
   * span's sampling, service and trace data over those (see `FinishedSpan`).
   * Nothing is copied.
   */
  #format(span: TracerSpan, trace: LocalTrace, firstInChunk: boolean, single: SpanSamplingDecision | undefined): FinishedSpan {
    const layers = this.#tracerLayers();
    const service = span.service;
    const own = internals.meta(span);
    const baseMeta = service === this.#service ? layers.meta : layers.otherServiceMeta;
    let extraMeta: Record<string, string> | undefined;
    const decision = trace.decision!;
    const topLevel = internals.parentService(span) !== service;
    const kind = Object.hasOwn(own, "span.kind") ? own["span.kind"] : baseMeta["span.kind"];
    const measured = !!kind && kind !== "internal";
    const root = span === trace.root;
    let extraMetrics: Readonly<Record<string, number>>;
    // The estimated bytes of the extra metrics, then meta as they are added (as tags are).
    let bytes: number;
    if (single === undefined) {
      // Shared by the spans of the same decision and the same three facts (frozen): none made per span.
      const at = (topLevel ? 1 : 0) | (measured ? 2 : 0) | (root ? 4 : 0);
      if (decision !== this.#metricsDecision) {
        this.#metricsDecision = decision;
        this.#metricsTable.fill(undefined);
      }
      let shared = this.#metricsTable[at];
      if (shared === undefined) {
        shared = this.#metricsTable[at] = Object.freeze(extraMetricsOf(decision, topLevel, measured, root, undefined));
        this.#metricsBytes[at] = recordBytes(shared);
      }
      extraMetrics = shared;
      bytes = this.#metricsBytes[at];
    } else {
      extraMetrics = extraMetricsOf(decision, topLevel, measured, root, single);
      bytes = recordBytes(extraMetrics);
    }
    if (service !== this.#service) {
      (extraMeta ??= {})["_dd.base_service"] = this.#service;
      bytes += metaBytes("_dd.base_service", this.#service);
    }
    if (trace.origin) {
      (extraMeta ??= {})["_dd.origin"] = trace.origin;
      bytes += metaBytes("_dd.origin", trace.origin);
    }
    if (root && trace.lastParentId) {
      (extraMeta ??= {})["_dd.parent_id"] = trace.lastParentId;
      bytes += metaBytes("_dd.parent_id", trace.lastParentId);
    }
    if (firstInChunk) {
      // The trace's tags record itself when nothing else is added (it is replaced, never changed: see `LocalTrace.tags`).
      const tags = trace.tags;
      const shared = extraMeta === undefined;
      let n = 0;
      for (const k in tags) {
        if (!Object.hasOwn(tags, k)) continue;
        if (!shared) extraMeta![k] = tags[k];
        bytes += metaBytes(k, tags[k]);
        n++;
      }
      if (shared && n > 0) extraMeta = tags;
    }
    this.#extraBytes = bytes;
    return internals.finished(span, baseMeta, extraMeta, layers.metrics, extraMetrics);
  }

  /** The estimated bytes of the extra meta and metrics of the span `#format` made last (counted as they were added, as tags are). */
  #extraBytes = 0;
  /** The decision the shared extra metrics of `#format` are for, those (by their three facts), and their estimated bytes. */
  #metricsDecision: TraceDecision | undefined;
  #metricsTable: (Readonly<Record<string, number>> | undefined)[] = new Array(8).fill(undefined);
  #metricsBytes: number[] = new Array(8).fill(0);

  /** The estimated encoded bytes of a finished span: its tags were counted as they were set. */
  #estimate(span: TracerSpan, f: FinishedSpan, extraBytes: number): number {
    const layers = this.#layers!;
    return SPAN_BYTES + f.name.length + f.service.length + f.resource.length + f.type.length + internals.bytes(span) +
      (f.baseMeta === layers.meta ? layers.bytes : layers.otherServiceBytes) + extraBytes;
  }
}
