/**
 * The Tracer's options resolved, as `resolveOptions` (src/options.ts) does
 * for the exporter's: each option checked (an invalid one throws a
 * `ValidationError` naming it), else its `DD_*` variable read and checked by
 * the same rule (an invalid one is logged, naming it, and ignored), else
 * the default. The options the Tracer does not take itself go on to its
 * `TraceExporter`.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { runtime } from "../../ffi/load.ts";
import type { ExporterOptions } from "../options.ts";
import { newRuntimeId } from "./ids.ts";
import type { OnceLogger } from "./log.ts";
import type { PropagatorOptions } from "./propagation.ts";
import { type SamplingRule, spanRules, traceRules } from "./sampling-rules.ts";
import { DEFAULT_STYLES, parseStyles } from "./styles.ts";
import type { InstrumentOptions, TracerOptions } from "./tracer.ts";
import { ValidationError } from "../errors.ts";
import * as rules from "./validate.ts";
import { EnvSettings, option, setting } from "./validate.ts";

/** The options of `new Tracer()`, resolved. */
export interface ResolvedTracerOptions {
  /** The `DD_*` variables, for what is read later (the exporter's options: see `tracerExporter`). */
  env: EnvSettings;
  runtimeId: string;
  /** `DD_TAGS`, then `tags` over them. */
  tags: Record<string, string>;
  partialFlushMinSpans: number;
  traceId128BitGeneration: boolean;
  sampleRate: number | undefined;
  rateLimit: number;
  samplingRules: SamplingRule[] | undefined;
  spanSamplingRules: SamplingRule[] | undefined;
  propagation: PropagatorOptions;
  buffer: { flushIntervalMs: number; flushThresholdBytes: number; maxQueuedTraces: number; maxQueuedBytes: number; flushTimeoutMs: number };
  flushOnExit: boolean;
  enabled: boolean;
  debug: boolean;
  /** Which integrations to instrument (`instrument`; false: none). */
  instrument: InstrumentOptions | false;
  /** The options for the exporter: those the Tracer does not take itself, and `runtimeId`. */
  exporter: ExporterOptions;
  /** A disabled tracer's service, env and version (an enabled one takes them from its exporter's options). */
  disabled?: { service: string; env: string; version: string };
}

/**
 * The options the Tracer takes itself (not passed on to its exporter): every
 * one, or this does not compile. (`runtimeId` is also an exporter option: it
 * goes on as resolved here.)
 */
const TRACER_ONLY: Record<Exclude<keyof TracerOptions, keyof ExporterOptions>, true> = {
  flushIntervalMs: true,
  flushTimeoutMs: true,
  flushThresholdBytes: true,
  maxQueuedTraces: true,
  maxQueuedBytes: true,
  partialFlushMinSpans: true,
  sampleRate: true,
  rateLimit: true,
  samplingRules: true,
  spanSamplingRules: true,
  tags: true,
  propagationStyleInject: true,
  propagationStyleExtract: true,
  traceId128BitGeneration: true,
  flushOnExit: true,
  logger: true,
  enabled: true,
  debug: true,
  instrument: true,
};

/**
 * Resolves `options` (an object; `logger` already checked) and the
 * environment, in the order the checks have always run.
 *
 * @throws {ValidationError} an option has the wrong type or is out of range (never a `DD_*` variable: those are logged to `log` and ignored).
 */
export function resolveTracerOptions(options: TracerOptions, log: OnceLogger): ResolvedTracerOptions {
  const env = new EnvSettings((name) => runtime.env(name), log);
  option(options.service, "options.service", rules.string); // checked before any native object is made
  const runtimeId = option(options.runtimeId, "options.runtimeId", rules.string) ?? newRuntimeId();
  const tags = { ...parseTags(env.text("DD_TAGS")), ...option(options.tags, "options.tags", rules.stringRecord) };
  const partialFlushMinSpans = setting(
    options.partialFlushMinSpans,
    "options.partialFlushMinSpans",
    () => env.number("DD_TRACE_PARTIAL_FLUSH_MIN_SPANS", rules.positiveInteger),
    rules.positiveInteger,
  ) ?? 1000;
  const traceId128BitGeneration = setting(
    options.traceId128BitGeneration,
    "options.traceId128BitGeneration",
    () => env.boolean("DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED"),
    rules.boolean,
  ) ?? true;
  const sampleRate = setting(options.sampleRate, "options.sampleRate", () => env.number("DD_TRACE_SAMPLE_RATE", rules.rate), rules.rate);
  const rateLimit = setting(options.rateLimit, "options.rateLimit", () => env.number("DD_TRACE_RATE_LIMIT", rules.number), rules.number) ?? 100;
  const samplingRules = setting(options.samplingRules, "options.samplingRules", () => env.json("DD_TRACE_SAMPLING_RULES", traceRules), traceRules);
  const spanSamplingRules = setting(options.spanSamplingRules, "options.spanSamplingRules", () => spanRulesFromEnv(env), spanRules);
  const style = (name: string) => parseStyles(env.text(name), name, log);
  const both = style("DD_TRACE_PROPAGATION_STYLE");
  const inject = parseStyles(options.propagationStyleInject, "options.propagationStyleInject", log) ??
    style("DD_TRACE_PROPAGATION_STYLE_INJECT") ?? both ?? DEFAULT_STYLES;
  const extract = parseStyles(options.propagationStyleExtract, "options.propagationStyleExtract", log) ??
    style("DD_TRACE_PROPAGATION_STYLE_EXTRACT") ?? both ?? DEFAULT_STYLES;
  const maxTagsLength = env.number("DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH", rules.nonNegativeInteger);
  const flushIntervalMs = option(options.flushIntervalMs, "options.flushIntervalMs", rules.positiveInteger) ?? 2000;
  const flushThresholdBytes = option(options.flushThresholdBytes, "options.flushThresholdBytes", rules.positiveInteger) ?? 1 << 20;
  const maxQueuedTraces = option(options.maxQueuedTraces, "options.maxQueuedTraces", rules.positiveInteger) ?? 10_000;
  const maxQueuedBytes = option(options.maxQueuedBytes, "options.maxQueuedBytes", rules.positiveInteger) ?? 64 << 20;
  const attemptMs = typeof options.connectionTimeoutMs === "number" ? options.connectionTimeoutMs : 3000;
  const flushTimeoutMs = option(options.flushTimeoutMs, "options.flushTimeoutMs", rules.positiveInteger) ??
    Math.max(5000, attemptMs + 1000);
  const flushOnExit = option(options.flushOnExit, "options.flushOnExit", rules.boolean) ?? true;
  const enabled = setting(options.enabled, "options.enabled", () => env.boolean("DD_TRACE_ENABLED"), rules.boolean) ?? true;
  const debug = setting(options.debug, "options.debug", () => env.boolean("DD_TRACE_DEBUG"), rules.boolean) ?? false;
  const instrument = instrumentOption(options.instrument) ?? false;
  const exporter: ExporterOptions = {};
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(TRACER_ONLY, key)) (exporter as Record<string, unknown>)[key] = (options as Record<string, unknown>)[key];
  }
  exporter.runtimeId = runtimeId;
  const resolved: ResolvedTracerOptions = {
    env,
    runtimeId,
    tags,
    partialFlushMinSpans,
    traceId128BitGeneration,
    sampleRate,
    rateLimit,
    samplingRules,
    spanSamplingRules,
    propagation: { inject, extract, maxTagsLength, baggageTagKeys: runtime.env("DD_TRACE_BAGGAGE_TAG_KEYS") },
    buffer: { flushIntervalMs, flushThresholdBytes, maxQueuedTraces, maxQueuedBytes, flushTimeoutMs },
    flushOnExit,
    enabled,
    debug,
    instrument,
    exporter,
  };
  if (!enabled) {
    resolved.disabled = {
      service: option(options.service, "options.service", rules.string) ?? env.text("DD_SERVICE") ?? "unnamed-service",
      env: option(options.env, "options.env", rules.string) ?? env.text("DD_ENV") ?? "",
      version: option(options.version, "options.version", rules.string) ?? env.text("DD_VERSION") ?? "",
    };
  }
  return resolved;
}

/** The `instrument` option, checked: a boolean, or an object of booleans and objects. */
function instrumentOption(value: unknown): InstrumentOptions | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [name, config] of Object.entries(value)) {
      if (config !== undefined && typeof config !== "boolean" && (typeof config !== "object" || config === null)) {
        throw new ValidationError(`options.instrument.${name}`, `expected a boolean or an object, got ${rules.describe(config)}`);
      }
    }
    return value as InstrumentOptions;
  }
  throw new ValidationError("options.instrument", `expected a boolean or an object of integration configs, got ${rules.describe(value)}`);
}

/** `DD_TAGS`: `key:value` pairs separated by commas (or spaces). */
function parseTags(text: string | undefined): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of (text ?? "").split(/[,\s]+/)) {
    const colon = pair.indexOf(":");
    if (colon > 0) tags[pair.slice(0, colon)] = pair.slice(colon + 1);
  }
  return tags;
}

/**
 * The single span sampling rules of the environment: `DD_SPAN_SAMPLING_RULES`,
 * else the JSON file named by `DD_SPAN_SAMPLING_RULES_FILE`. When both are
 * set the file is ignored (logged), as the Datadog documentation and other
 * Datadog tracers have it; dd-trace-js 5.x lets the file win (config/index.js,
 * with a TODO). An unreadable file is logged and ignored.
 */
function spanRulesFromEnv(env: EnvSettings): SamplingRule[] | undefined {
  const file = env.text("DD_SPAN_SAMPLING_RULES_FILE");
  if (env.text("DD_SPAN_SAMPLING_RULES") !== undefined) {
    if (file !== undefined) env.unused("DD_SPAN_SAMPLING_RULES_FILE", "DD_SPAN_SAMPLING_RULES is set and takes precedence");
    return env.json("DD_SPAN_SAMPLING_RULES", spanRules);
  }
  if (file === undefined) return undefined;
  let content: string;
  try {
    content = readFileSync(file.trim(), "utf8");
  } catch (e) {
    return env.invalid("DD_SPAN_SAMPLING_RULES_FILE", file, `the file cannot be read: ${(e as Error).message}`);
  }
  return env.json("DD_SPAN_SAMPLING_RULES_FILE", spanRules, content);
}
