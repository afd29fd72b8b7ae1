/**
 * `TraceExporter` options, their defaults, and the config setter each one
 * reaches.
 *
 * @module
 */
import { layouts } from "../ffi/abi.ts";
import type { RuntimeInfo, Word } from "../ffi/native.ts";
import { PLATFORM } from "../ffi/paths.ts";
import { type Binding, getBinding } from "./binding.ts";
import { runtimeHandle, SharedRuntime } from "./runtime.ts";
import { TraceExporterError, ValidationError } from "./errors.ts";
import { VERSION } from "./version.ts";

/**
 * Telemetry (`ddog_TelemetryClientConfig`), to the agent's `/telemetry/proxy/api/v2/apmtelemetry`, with
 * `language`, `tracerVersion`, service, env and the runtime id: `app-started`, `app-heartbeat` each
 * interval and `app-closing` at close, from the bundled library's lifecycle worker (libdd-telemetry's
 * `Full` flavor, lib/src/exporter.rs), and libdatadog's exporter metrics (`trace_api.requests`,
 * `trace_api.responses`, `trace_chunks_sent`, …), from its own worker in the `MetricsLogs` flavor
 * (libdd-data-pipeline telemetry/mod.rs), each interval and at close. A libdatadog release build sends
 * the metrics only. None in agentless or output-to-log mode.
 */
export interface TelemetryOptions {
  /** Heartbeat interval in milliseconds (heartbeats, and how often the metrics are sent). Default `DD_TELEMETRY_HEARTBEAT_INTERVAL` (seconds, as dd-trace-js reads it), else 60000. */
  intervalMs?: number;
  /** The runtime id reported. Default the exporter's `runtimeId` option, else a random UUID (libdatadog would send `""` as an empty runtime id). */
  runtimeId?: string;
  /** Sends telemetry in debug mode. */
  debug?: boolean;
  /** The telemetry session id. */
  sessionId?: string;
  /** The id of the root session (the process tree's first). */
  rootSessionId?: string;
  /** The id of the parent process's session. */
  parentSessionId?: string;
}

/** Export to an OTLP endpoint instead of the Datadog agent. */
export interface OtlpOptions {
  /** The OTLP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces` (`set_otlp_endpoint`). */
  endpoint: string;
  /** `"http/json"` (default), `"http/protobuf"` or `"grpc"`: libdatadog's `OtlpProtocol` (`set_otlp_protocol`). */
  protocol?: string;
  /** The instrumentation scope reported (`set_otlp_instrumentation_scope`). */
  instrumentationScope?: { name: string; version?: string };
}

/**
 * Cardinality limits of libdatadog's stats computation
 * (`ddog_CardinalityLimitConfig`): past a limit, further distinct values
 * are aggregated into one sentinel group.
 */
export interface StatsCardinalityLimit {
  /** Distinct aggregation keys per time bucket (libdatadog's default 7000). */
  wholeKey: number;
  /** Distinct resources (default 1024). */
  resource: number;
  /** Distinct HTTP endpoints (default 512). */
  httpEndpoint: number;
  /** Distinct peer tags (default 512). */
  peerTags: number;
  /** Distinct additional tags (default 100). */
  additionalTags: number;
}

/**
 * Agentless export: traces go straight to Datadog's trace intake, with the API key, instead of to an agent
 * (`ddffi_trace_exporter_config_set_agentless`, libdatadog's `TraceExporterBuilder::set_agentless_endpoint`:
 * JSON spans in a `POST`, the key in the `dd-api-key` header; no `/info`, no telemetry, no client stats).
 * Cannot be combined with `url` or `otlp`.
 */
export interface AgentlessOptions {
  /** The API key. Default `DD_API_KEY`; empty or unset is a `ValidationError`. */
  apiKey?: string;
  /** The Datadog site. Default `DD_SITE`, else `"datadoghq.com"`. */
  site?: string;
  /**
   * The intake URL. Default `https://public-trace-http-intake.logs.<site>/v1/input` (libdatadog's
   * documented default, `libdd-data-pipeline` agentless/mod.rs); set it for a proxy, or a local stand-in in tests.
   */
  url?: string;
}

/** The agentless intake URL of a Datadog site (libdd-data-pipeline agentless/mod.rs). */
export function agentlessUrl(site: string): string {
  return `https://public-trace-http-intake.logs.${site}/v1/input`;
}

/** Each limit and its `ddog_CardinalityLimitConfig` field. */
const LIMIT_FIELDS = {
  wholeKey: "whole_key_limit",
  resource: "resource_limit",
  httpEndpoint: "http_endpoint_limit",
  peerTags: "peer_tags_limit",
  additionalTags: "additional_tags_limit",
} as const satisfies Record<keyof StatsCardinalityLimit, keyof typeof layouts.CardinalityLimitConfig>;

/** A setter the loaded library lacks (an optional symbol of abi.ts), named for the option. */
function missing(b: Binding, fn: string, option: string): TraceExporterError {
  return new TraceExporterError("InvalidArgument", `not in the loaded library (${b.native.path})`, fn, option);
}

/**
 * libdatadog's default stats cardinality limits
 * (`ddog_trace_exporter_config_default_stats_cardinality_limit`).
 * @throws {TraceExporterError} when the loaded library lacks the function.
 */
export function defaultStatsCardinalityLimit(): StatsCardinalityLimit {
  const b = getBinding();
  const fn = "ddog_trace_exporter_config_default_stats_cardinality_limit";
  const f = b.symbols[fn];
  if (!f) throw missing(b, fn, "statsCardinalityLimit");
  const bytes = f();
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const L = layouts.CardinalityLimitConfig;
  const out = {} as StatsCardinalityLimit;
  for (const [k, field] of Object.entries(LIMIT_FIELDS) as [keyof StatsCardinalityLimit, keyof typeof L][]) {
    out[k] = Number(v.getBigUint64(L[field], true));
  }
  return out;
}

/**
 * Options of `new TraceExporter(options)`; each maps onto one
 * `ddog_trace_exporter_config_*` setter, or one of our `ddffi_trace_exporter_config_*`
 * setters for what libdatadog's builder has and its FFI lacks. Unset options take the
 * default shown, often from the environment as Datadog tracers read it; a variable of
 * the wrong form throws a `ValidationError` naming it (a `Tracer` logs it and uses the default).
 */
export interface ExporterOptions {
  /**
   * Agent URL, `http://host:port` or `unix:///path.sock` (`set_url`). Default `DD_TRACE_AGENT_URL`, else
   * `http://${DD_AGENT_HOST}:${DD_TRACE_AGENT_PORT}` when either is set, else libdatadog's `http://127.0.0.1:8126`.
   * A URL without a scheme (`localhost:8126`, on which libdatadog panics), with a NUL, or a unix socket path
   * longer than the OS allows (107 bytes on Linux, 103 on macOS) throws a `TraceExporterError` `InvalidUrl`
   * naming `options.url`. A non-ASCII path is percent-encoded on the wire.
   */
  url?: string;
  /** Service name (`set_service`). Default `DD_SERVICE`. */
  service?: string;
  /** Environment (`set_env`). Default `DD_ENV`. */
  env?: string;
  /** Application version (`set_version`). Default `DD_VERSION`. */
  version?: string;
  /** Host name (`set_hostname`). */
  hostname?: string;
  /** Tracer version (`set_tracer_version`). Default this package's version. */
  tracerVersion?: string;
  /** Language (`set_language`). Default `"nodejs"`. */
  language?: string;
  /** Language version (`set_lang_version`). Default the running runtime's version. */
  languageVersion?: string;
  /** Language interpreter (`set_lang_interpreter`). Default the running runtime: `"nodejs"`, `"bun"` or `"deno"`. */
  languageInterpreter?: string;
  /** Process tags, `key:value,…` (`set_process_tags`). */
  processTags?: string;
  /** Test session token for the Datadog test agent (`set_test_session_token`, the `X-Datadog-Test-Session-Token` header). Default `DD_TEST_SESSION_TOKEN`. */
  testSessionToken?: string;
  /**
   * Timeout of each attempt of a send, in milliseconds, over the whole exchange: resolving, connecting,
   * writing the request and reading the answer (`set_connection_timeout`). libdatadog's default: 3000. A send
   * makes up to 6 attempts (libdatadog's retries, 100 ms · 2ⁿ apart), so a send to an agent that never
   * answers fails after about 6 × this + 3.1 s. A positive integer: libdatadog stores 0 as 0, which times
   * out every attempt, so 0 throws a `ValidationError`.
   */
  connectionTimeoutMs?: number;
  /**
   * Client-side stats (`set_compute_stats`: libdatadog's `enable_stats` with 10 s buckets, as its FFI).
   * libdatadog turns them on only once the agent's `/info` lists `/v0.6/stats` and `client_drop_p0s`
   * (trace_exporter/stats.rs); then it aggregates every top-level (`_dd.top_level` or `_top_level`, which
   * it computes itself from the chunk) and measured (`_dd.measured`) span, posts the buckets to
   * `/v0.6/stats`, sends traces with `Datadog-Client-Computed-Stats` and `Datadog-Client-Computed-Top-Level`,
   * and drops the chunks the agent would drop: priority ≤ 0 and no span with an error (single-span
   * sampled spans are kept). The last buckets go at `close()` (libdatadog's shutdown flushes them).
   * Default `DD_TRACE_STATS_COMPUTATION_ENABLED`, else false (dd-trace-js).
   */
  computeStats?: boolean;
  /** Tell the agent the client computed stats (`set_client_computed_stats`). */
  clientComputedStats?: boolean;
  /**
   * The spans carry their own top-level marks, `_dd.top_level` on each service-entry span, and the stats
   * take them as they are (`ddffi_trace_exporter_config_set_client_computed_top_level`, libdatadog's
   * `set_client_computed_top_level`). Otherwise libdatadog marks `_top_level` itself, from each chunk
   * alone: every span whose parent is not in the chunk counts as top level, so a partial flush inflates
   * the top-level hits. Default false; a `Tracer` with `computeStats` sets it (it marks `_dd.top_level`
   * as dd-trace-js does) when the loaded library has the setter.
   * @throws {TraceExporterError} at construction, naming `clientComputedTopLevel`, when the loaded library lacks the setter.
   */
  clientComputedTopLevel?: boolean;
  /**
   * libdatadog's health metrics of the exporter (`enable_health_metrics`): DogStatsD counters such as
   * `datadog.tracer.exporter.transport.traces.successful` (libdd-data-pipeline health_metrics.rs), sent
   * to `dogstatsdUrl`. Default `DD_TRACE_HEALTH_METRICS_ENABLED`, else false. With a libdatadog release
   * build (its FFI has no DogStatsD URL setter, `ddffi_trace_exporter_config_set_dogstatsd_url`) and no
   * explicit `dogstatsdUrl`, they are enabled there and go nowhere (its FFI makes no DogStatsD client).
   */
  healthMetrics?: boolean;
  /**
   * Where health metrics go (`ddffi_trace_exporter_config_set_dogstatsd_url`, libdatadog's
   * `set_dogstatsd_url`): `udp://host:port` or `unix:///path.sock`. Default `DD_DOGSTATSD_URL`, else
   * `udp://<DD_DOGSTATSD_HOST or DD_AGENT_HOST or 127.0.0.1>:<DD_DOGSTATSD_PORT or 8125>` (dd-trace-js's
   * defaults). Used only with `healthMetrics`.
   */
  dogstatsdUrl?: string;
  /** Agentless export to Datadog's intake instead of an agent (see {@link AgentlessOptions}). Default off. */
  agentless?: AgentlessOptions;
  /**
   * The runtime id this exporter reports in its telemetry (`telemetry.runtimeId` when that is unset).
   * A `Tracer` passes its own; default a random UUID.
   */
  runtimeId?: string;
  /**
   * Exporter telemetry (`enable_telemetry`): an object (its fields default as {@link TelemetryOptions}), `true`
   * (all defaults) or `false`. Default `DD_INSTRUMENTATION_TELEMETRY_ENABLED`, else off for a bare
   * `TraceExporter`; a `Tracer` turns it on unless that variable says false (dd-trace-js's default).
   * libdatadog sends none in agentless or output-to-log mode.
   */
  telemetry?: TelemetryOptions | boolean;
  /** OTLP export (`set_otlp_endpoint`, `set_otlp_protocol`, `set_otlp_instrumentation_scope`). */
  otlp?: OtlpOptions;
  /** Write traces to the log instead of sending them, in lines of at most this many bytes (`set_output_to_log`). */
  outputToLogMaxLineSize?: number;
  /**
   * Cardinality limits of the stats computation (`set_stats_cardinality_limit`,
   * a struct by value); a limit left out keeps libdatadog's default
   * (`defaultStatsCardinalityLimit()`). No effect without `computeStats`.
   * Needs a library that has the setter.
   */
  statsCardinalityLimit?: Partial<StatsCardinalityLimit>;
  /**
   * The runtime the exporter's background work runs on (`set_shared_runtime`):
   * one `SharedRuntime` for all the exporters of a process. Default: the
   * exporter builds its own.
   */
  sharedRuntime?: SharedRuntime;
  /**
   * How `send` reaches the library (no config setter): `"batch"` (default) writes one batch
   * buffer and crosses once (`ddffi_batch_send`, lib/src/batch.rs, off the JS thread); `"fields"`
   * builds each span field by field on the calling thread (the reference path, and the
   * fallback when neither the library nor its shim has the batch decoder).
   */
  sendPath?: "batch" | "fields";
}

/** One config setter call. */
export type ConfigCall = (b: Binding, config: Word) => void;

type StringSetter =
  | "ddog_trace_exporter_config_set_url"
  | "ddog_trace_exporter_config_set_service"
  | "ddog_trace_exporter_config_set_env"
  | "ddog_trace_exporter_config_set_version"
  | "ddog_trace_exporter_config_set_hostname"
  | "ddog_trace_exporter_config_set_tracer_version"
  | "ddog_trace_exporter_config_set_language"
  | "ddog_trace_exporter_config_set_lang_version"
  | "ddog_trace_exporter_config_set_lang_interpreter"
  | "ddog_trace_exporter_config_set_process_tags"
  | "ddog_trace_exporter_config_set_test_session_token"
  | "ddog_trace_exporter_config_set_otlp_endpoint"
  | "ddog_trace_exporter_config_set_otlp_protocol";

type BoolSetter =
  | "ddog_trace_exporter_config_set_compute_stats"
  | "ddog_trace_exporter_config_set_client_computed_stats"
  | "ddog_trace_exporter_config_enable_health_metrics";

/** The string options and their setters. */
const stringSetters: [keyof ExporterOptions, StringSetter][] = [
  ["url", "ddog_trace_exporter_config_set_url"],
  ["service", "ddog_trace_exporter_config_set_service"],
  ["env", "ddog_trace_exporter_config_set_env"],
  ["version", "ddog_trace_exporter_config_set_version"],
  ["hostname", "ddog_trace_exporter_config_set_hostname"],
  ["tracerVersion", "ddog_trace_exporter_config_set_tracer_version"],
  ["language", "ddog_trace_exporter_config_set_language"],
  ["languageVersion", "ddog_trace_exporter_config_set_lang_version"],
  ["languageInterpreter", "ddog_trace_exporter_config_set_lang_interpreter"],
  ["processTags", "ddog_trace_exporter_config_set_process_tags"],
  ["testSessionToken", "ddog_trace_exporter_config_set_test_session_token"],
];

const boolSetters: [keyof ExporterOptions, BoolSetter][] = [
  ["computeStats", "ddog_trace_exporter_config_set_compute_stats"],
  ["clientComputedStats", "ddog_trace_exporter_config_set_client_computed_stats"],
  ["healthMetrics", "ddog_trace_exporter_config_enable_health_metrics"],
];

/** The options libdatadog sends as HTTP header values (`X-Datadog-Test-Session-Token`, `Datadog-Meta-*`). */
const headerOptions = new Set<keyof ExporterOptions>(["testSessionToken", "language", "languageVersion", "languageInterpreter", "tracerVersion"]);

/**
 * A character that http::HeaderValue refuses (controls but tab, and DEL). libdatadog refuses the token at
 * every send (`IoError`) and leaves out a `Datadog-Meta-*` header, and a NUL would cut the value short here.
 */
// deno-lint-ignore no-control-regex
const HEADER_FORBIDDEN = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Where the unix socket path must fit, its NUL included: `sockaddr_un.sun_path`. */
const SUN_PATH_BYTES = PLATFORM.startsWith("linux") ? 108 : 104;

const utf8 = new TextEncoder();

/** The checks libdatadog's URL handling leaves to a panic, a silent cut or a bare "Connect". */
function checkUrl(url: string, option: string, fn: string): void {
  const fail = (why: string) => new TraceExporterError("InvalidUrl", `Invalid builder input: Invalid URI: ${why}`, fn, option);
  if (url.includes("\0")) throw fail("the URL contains a NUL character");
  if (url.startsWith("unix://")) {
    const bytes = utf8.encode(url.slice("unix://".length)).length;
    if (bytes >= SUN_PATH_BYTES) {
      throw fail(`the unix socket path is ${bytes} bytes; this OS allows at most ${SUN_PATH_BYTES - 1} (sockaddr_un.sun_path)`);
    }
    return;
  }
  if (url.startsWith("windows:") || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url)) return;
  throw fail(`${JSON.stringify(url)} has no scheme: use http://host:port or unix:///path/to.sock`);
}

/**
 * The URL with each non-ASCII character of its path and query percent-encoded (as UTF-8): libdatadog
 * v41's http::Uri refuses them ("invalid uri character"), and on the wire a request line is ASCII.
 */
export function encodeUrlPath(url: string): string {
  const m = /^(https?:\/\/[^/?#]*)(.*)$/is.exec(url);
  if (!m) return url;
  return m[1] + m[2].replace(/[\u0080-\uffff]+/g, (s) => Array.from(utf8.encode(s), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""));
}

/** Runs a setter, naming the option if it fails. */
function unwrapOption(b: Binding, error: Word | null, fn: string, option: string): void {
  if (!error) return;
  const e = b.takeError(error, fn);
  throw new TraceExporterError(e.code, e.detail, fn, option);
}

/** Writes strings for one call (reserving `extra` bytes more for the call's structs); returns their `[ptr, len]` pairs flattened. */
function strings(b: Binding, values: string[], extra = 0): number[] {
  b.reserve(values.reduce((n, v) => n + 3 * v.length, extra));
  const out: number[] = [];
  for (const v of values) {
    const p = b.pos;
    const n = b.writeString(v);
    out.push(b.base + p, n);
  }
  return out;
}

/**
 * The own enumerable properties of a user's options object, read once into
 * a null-prototype copy: nothing inherited (a property added to
 * `Object.prototype` is not an option).
 */
function own<T extends object>(v: T): T {
  return Object.assign(Object.create(null), v);
}

function str(v: unknown, path: string): string {
  if (typeof v !== "string") throw new ValidationError(path, `expected a string, got ${v === null ? "null" : typeof v}`);
  return v;
}

function uint(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new ValidationError(path, `expected a non-negative integer, got ${typeof v === "number" ? v : typeof v}`);
  }
  return v;
}

/** A random UUID v4 (the default runtime id). */
export function randomUuid(): string {
  return (globalThis as unknown as { crypto: { randomUUID(): string } }).crypto.randomUUID();
}

/** The default agent URL from the environment, as Datadog tracers read it. */
export function agentUrlFromEnv(env: (name: string) => string | undefined): string | undefined {
  const url = env("DD_TRACE_AGENT_URL");
  if (url) return url;
  const host = env("DD_AGENT_HOST");
  const port = env("DD_TRACE_AGENT_PORT");
  if (!host && !port) return undefined;
  const h = host || "127.0.0.1";
  return `http://${h.includes(":") && !h.startsWith("[") ? `[${h}]` : h}:${port || "8126"}`;
}

/**
 * Variables already read (and checked) by whoever made an options object
 * (the Tracer): `resolveOptions` takes no default from them. Internal.
 */
export const envAlreadyRead: WeakMap<ExporterOptions, readonly string[]> = new WeakMap();

/** A boolean variable (`true`/`1`, `false`/`0`, any case; blank is unset), as Datadog tracers read them. */
export function envBoolean(env: (name: string) => string | undefined, name: string): boolean | undefined {
  const text = env(name)?.trim().toLowerCase();
  if (!text) return undefined;
  if (text === "true" || text === "1") return true;
  if (text === "false" || text === "0") return false;
  throw new ValidationError(name, `expected true, false, 1 or 0, got ${JSON.stringify(env(name))}`);
}

/** `DD_TELEMETRY_HEARTBEAT_INTERVAL`: seconds (a positive number, as dd-trace-js reads it), in milliseconds. */
export function heartbeatFromEnv(env: (name: string) => string | undefined): number | undefined {
  const text = env("DD_TELEMETRY_HEARTBEAT_INTERVAL")?.trim();
  if (!text) return undefined;
  const seconds = Number(text);
  if (!(seconds > 0) || !Number.isFinite(seconds)) {
    throw new ValidationError("DD_TELEMETRY_HEARTBEAT_INTERVAL", `expected a positive number of seconds, got ${JSON.stringify(text)}`);
  }
  return Math.max(1, Math.round(seconds * 1000));
}

/** The DogStatsD URL of the environment, as dd-trace-js reads it. */
export function dogstatsdUrlFromEnv(env: (name: string) => string | undefined): string {
  const url = env("DD_DOGSTATSD_URL")?.trim();
  if (url) return url;
  const h = env("DD_DOGSTATSD_HOST")?.trim() || env("DD_AGENT_HOST")?.trim() || "127.0.0.1";
  return `udp://${h.includes(":") && !h.startsWith("[") ? `[${h}]` : h}:${env("DD_DOGSTATSD_PORT")?.trim() || "8125"}`;
}

/** Resolves options and defaults into the setter calls, validating types first. */
export function resolveOptions(options: ExporterOptions, runtime: RuntimeInfo): ConfigCall[] {
  if (typeof options !== "object" || options === null) throw new ValidationError("options", "expected an object");
  const given = own(options);
  const read = envAlreadyRead.get(options);
  const env = runtime.env;
  if (read) runtime = { ...runtime, env: (name) => read.includes(name) ? undefined : env(name) };
  if (given.agentless !== undefined) {
    // libdatadog refuses an agent URL or OTLP with agentless (InvalidConfiguration): say which option.
    if (given.url !== undefined) throw new ValidationError("options.agentless", "cannot be combined with options.url (agentless sends to the intake, not to an agent)");
    if (given.otlp !== undefined) throw new ValidationError("options.agentless", "cannot be combined with options.otlp");
  }
  const telemetryOn = given.telemetry === undefined ? envBoolean(runtime.env, "DD_INSTRUMENTATION_TELEMETRY_ENABLED") : undefined;
  const o: ExporterOptions = Object.assign(given, {
    url: given.url ?? (given.agentless === undefined ? agentUrlFromEnv(runtime.env) : undefined),
    computeStats: given.computeStats ?? envBoolean(runtime.env, "DD_TRACE_STATS_COMPUTATION_ENABLED"),
    healthMetrics: given.healthMetrics ?? envBoolean(runtime.env, "DD_TRACE_HEALTH_METRICS_ENABLED"),
    telemetry: given.telemetry ?? telemetryOn,
    service: given.service ?? runtime.env("DD_SERVICE"),
    env: given.env ?? runtime.env("DD_ENV"),
    version: given.version ?? runtime.env("DD_VERSION"),
    testSessionToken: given.testSessionToken ?? runtime.env("DD_TEST_SESSION_TOKEN"),
    tracerVersion: given.tracerVersion ?? VERSION,
    language: given.language ?? "nodejs",
    languageVersion: given.languageVersion ?? runtime.version,
    languageInterpreter: given.languageInterpreter ?? runtime.name,
  });
  const calls: ConfigCall[] = [];
  for (const [option, fn] of stringSetters) {
    const v = o[option];
    if (v === undefined) continue;
    const value = option === "url" ? encodeUrlPath(str(v, "options.url")) : str(v, `options.${option}`);
    if (headerOptions.has(option) && HEADER_FORBIDDEN.test(value)) {
      throw new ValidationError(`options.${option}`, "contains a control character (CR, LF, NUL, …), which cannot go in an HTTP header");
    }
    calls.push((b, config) => {
      const [p, n] = strings(b, [value]);
      unwrapOption(b, b.symbols[fn](config, p, n), fn, option);
    });
  }
  for (const [option, fn] of boolSetters) {
    const v = o[option];
    if (v === undefined) continue;
    if (typeof v !== "boolean") throw new ValidationError(`options.${option}`, `expected a boolean, got ${typeof v}`);
    calls.push((b, config) => unwrapOption(b, b.symbols[fn](config, v), fn, option));
  }
  if (o.connectionTimeoutMs !== undefined) {
    const ms = uint(o.connectionTimeoutMs, "options.connectionTimeoutMs");
    if (ms === 0) throw new ValidationError("options.connectionTimeoutMs", "expected a positive number of milliseconds: 0 would time out every attempt");
    const fn = "ddog_trace_exporter_config_set_connection_timeout";
    calls.push((b, config) => unwrapOption(b, b.symbols[fn](config, ms), fn, "connectionTimeoutMs"));
  }
  if (o.outputToLogMaxLineSize !== undefined) {
    const size = uint(o.outputToLogMaxLineSize, "options.outputToLogMaxLineSize");
    const fn = "ddog_trace_exporter_config_set_output_to_log";
    calls.push((b, config) => unwrapOption(b, b.symbols[fn](config, size), fn, "outputToLogMaxLineSize"));
  }
  if (o.statsCardinalityLimit !== undefined) calls.push(limitsCall(o.statsCardinalityLimit));
  if (o.sharedRuntime !== undefined) {
    const rt = o.sharedRuntime;
    if (!(rt instanceof SharedRuntime)) throw new ValidationError("options.sharedRuntime", "expected a SharedRuntime");
    const fn = "ddog_trace_exporter_config_set_shared_runtime";
    calls.push((b, config) => {
      const f = b.symbols[fn];
      if (!f) throw missing(b, fn, "sharedRuntime");
      unwrapOption(b, f(config, runtimeHandle(rt)), fn, "sharedRuntime");
    });
  }
  const runtimeId = o.runtimeId === undefined ? undefined : str(o.runtimeId, "options.runtimeId");
  if (o.telemetry !== undefined && o.telemetry !== false) {
    const t = o.telemetry === true ? {} : o.telemetry;
    calls.push(telemetryCall(t, runtimeId, heartbeatFromEnv(runtime.env)));
  }
  if (o.healthMetrics === true || o.dogstatsdUrl !== undefined) {
    const explicit = o.dogstatsdUrl !== undefined;
    const url = explicit ? str(o.dogstatsdUrl, "options.dogstatsdUrl") : dogstatsdUrlFromEnv(runtime.env);
    const option = explicit ? "dogstatsdUrl" : "healthMetrics";
    // libdatadog drops a DogStatsD URL it cannot parse without a word (builder.rs: `.ok()`).
    if (!/^(udp:\/\/[^/]+:\d+|unix:\/\/\/.+)$/.test(url)) {
      throw new ValidationError(explicit ? "options.dogstatsdUrl" : "DD_DOGSTATSD_URL", `expected udp://host:port or unix:///path, got ${JSON.stringify(url)}`);
    }
    if (o.healthMetrics === true) {
      const call = optionalStringCall("ddffi_trace_exporter_config_set_dogstatsd_url", [url], option);
      // A URL from the environment (or the default) goes where the library can take it: a libdatadog release
      // build has no setter, and its health metrics then go nowhere (its FFI makes no DogStatsD client).
      calls.push(explicit ? call : (b, config) => b.symbols.ddffi_trace_exporter_config_set_dogstatsd_url && call(b, config));
    }
  }
  if (o.agentless !== undefined) calls.push(agentlessCall(o.agentless, runtime.env));
  if (o.clientComputedTopLevel !== undefined) {
    const on = o.clientComputedTopLevel;
    if (typeof on !== "boolean") throw new ValidationError("options.clientComputedTopLevel", `expected a boolean, got ${typeof on}`);
    const fn = "ddffi_trace_exporter_config_set_client_computed_top_level";
    calls.push((b, config) => {
      const f = b.symbols[fn];
      if (!f) throw missing(b, fn, "clientComputedTopLevel");
      unwrapOption(b, f(config, on), fn, "clientComputedTopLevel");
    });
  }
  if (o.otlp !== undefined) calls.push(...otlpCalls(o.otlp));
  // Once every type is known good: the URLs.
  if (o.url !== undefined) checkUrl(o.url, "url", "ddog_trace_exporter_new");
  if (o.otlp !== undefined) checkUrl(o.otlp.endpoint, "otlp.endpoint", "ddog_trace_exporter_config_set_otlp_endpoint");
  return calls;
}

function limitsCall(given: Partial<StatsCardinalityLimit>): ConfigCall {
  if (typeof given !== "object" || given === null) throw new ValidationError("options.statsCardinalityLimit", "expected an object");
  const limits = own(given);
  const set: [keyof StatsCardinalityLimit, number][] = [];
  for (const k of Object.keys(LIMIT_FIELDS) as (keyof StatsCardinalityLimit)[]) {
    const v = limits[k];
    if (v !== undefined) set.push([k, uint(v, `options.statsCardinalityLimit.${k}`)]);
  }
  return (b, config) => {
    const fn = "ddog_trace_exporter_config_set_stats_cardinality_limit";
    const f = b.symbols[fn];
    if (!f) throw missing(b, fn, "statsCardinalityLimit");
    const L = layouts.CardinalityLimitConfig;
    const all = { ...defaultStatsCardinalityLimit(), ...Object.fromEntries(set) };
    const bytes = new Uint8Array(L.size);
    const v = new DataView(bytes.buffer);
    for (const [k, field] of Object.entries(LIMIT_FIELDS) as [keyof StatsCardinalityLimit, keyof typeof L][]) {
      v.setBigUint64(L[field], BigInt(all[k]), true);
    }
    unwrapOption(b, f(config, bytes), fn, "statsCardinalityLimit");
  };
}

/** A call of an optional ddffi_* setter taking strings: a library without it fails naming `option`. */
function optionalStringCall(
  fn: "ddffi_trace_exporter_config_set_dogstatsd_url" | "ddffi_trace_exporter_config_set_agentless",
  values: string[],
  option: string,
): ConfigCall {
  return (b, config) => {
    const f = b.symbols[fn] as ((config: Word, ...args: number[]) => Word | null) | undefined;
    if (!f) throw missing(b, fn, option);
    unwrapOption(b, f(config, ...strings(b, values)), fn, option);
  };
}

function agentlessCall(given: AgentlessOptions, env: (name: string) => string | undefined): ConfigCall {
  if (typeof given !== "object" || given === null) throw new ValidationError("options.agentless", "expected an object");
  const a = own(given);
  const apiKey = str(a.apiKey ?? env("DD_API_KEY")?.trim() ?? "", "options.agentless.apiKey");
  if (apiKey === "") throw new ValidationError("options.agentless.apiKey", "an API key is needed: set it, or DD_API_KEY");
  if (HEADER_FORBIDDEN.test(apiKey)) throw new ValidationError("options.agentless.apiKey", "contains a control character, which cannot go in an HTTP header");
  const site = str(a.site ?? (env("DD_SITE")?.trim() || "datadoghq.com"), "options.agentless.site");
  const url = encodeUrlPath(str(a.url ?? agentlessUrl(site), "options.agentless.url"));
  checkUrl(url, "agentless.url", "ddffi_trace_exporter_config_set_agentless");
  return optionalStringCall("ddffi_trace_exporter_config_set_agentless", [url, apiKey], "agentless");
}

function telemetryCall(telemetry: TelemetryOptions, runtimeId: string | undefined, envIntervalMs: number | undefined): ConfigCall {
  if (typeof telemetry !== "object" || telemetry === null) throw new ValidationError("options.telemetry", "expected an object or a boolean");
  const t = own(telemetry);
  const interval = uint(t.intervalMs ?? envIntervalMs ?? 60000, "options.telemetry.intervalMs");
  const texts = [
    str(t.runtimeId ?? runtimeId ?? randomUuid(), "options.telemetry.runtimeId"),
    str(t.sessionId ?? "", "options.telemetry.sessionId"),
    str(t.rootSessionId ?? "", "options.telemetry.rootSessionId"),
    str(t.parentSessionId ?? "", "options.telemetry.parentSessionId"),
  ];
  const debug = t.debug ?? false;
  if (typeof debug !== "boolean") throw new ValidationError("options.telemetry.debug", "expected a boolean");
  return (b, config) => {
    const L = layouts.TelemetryClientConfig;
    const [rp, rn, sp, sn, rsp, rsn, psp, psn] = strings(b, texts, 8 + L.size);
    const at = b.align8();
    b.claim(L.size);
    b.u8.fill(0, at, at + L.size);
    const v = b.view;
    const slice = (off: number, p: number, n: number) => {
      v.setBigUint64(at + off, BigInt(p), true);
      v.setBigUint64(at + off + layouts.Slice.len, BigInt(n), true);
    };
    v.setBigUint64(at + L.interval, BigInt(interval), true);
    slice(L.runtime_id, rp, rn);
    v.setUint8(at + L.debug_enabled, debug ? 1 : 0);
    slice(L.session_id, sp, sn);
    slice(L.root_session_id, rsp, rsn);
    slice(L.parent_session_id, psp, psn);
    const fn = "ddog_trace_exporter_config_enable_telemetry";
    unwrapOption(b, b.symbols[fn](config, b.base + at), fn, "telemetry");
  };
}

function otlpCalls(given: OtlpOptions): ConfigCall[] {
  if (typeof given !== "object" || given === null) throw new ValidationError("options.otlp", "expected an object");
  const otlp = own(given);
  const endpoint = encodeUrlPath(str(otlp.endpoint, "options.otlp.endpoint"));
  const calls: ConfigCall[] = [(b, config) => {
    const fn = "ddog_trace_exporter_config_set_otlp_endpoint";
    const [p, n] = strings(b, [endpoint]);
    unwrapOption(b, b.symbols[fn](config, p, n), fn, "otlp.endpoint");
  }];
  if (otlp.protocol !== undefined) {
    const protocol = str(otlp.protocol, "options.otlp.protocol");
    calls.push((b, config) => {
      const fn = "ddog_trace_exporter_config_set_otlp_protocol";
      const [p, n] = strings(b, [protocol]);
      unwrapOption(b, b.symbols[fn](config, p, n), fn, "otlp.protocol");
    });
  }
  if (otlp.instrumentationScope !== undefined) {
    const givenScope = otlp.instrumentationScope;
    const scope = typeof givenScope === "object" && givenScope !== null ? own(givenScope) : givenScope;
    const name = str(scope?.name, "options.otlp.instrumentationScope.name");
    const version = str(scope.version ?? "", "options.otlp.instrumentationScope.version");
    calls.push((b, config) => {
      const fn = "ddog_trace_exporter_config_set_otlp_instrumentation_scope";
      const [np, nn, vp, vn] = strings(b, [name, version]);
      unwrapOption(b, b.symbols[fn](config, np, nn, vp, vn), fn, "otlp.instrumentationScope");
    });
  }
  return calls;
}
