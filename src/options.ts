/**
 * `TraceExporter` options, their defaults, and the config setter each one
 * reaches.
 *
 * @module
 */
import { layouts } from "../ffi/abi.ts";
import type { RuntimeInfo, Word } from "../ffi/native.ts";
import type { Binding } from "./binding.ts";
import { TraceExporterError, ValidationError } from "./errors.ts";
import { VERSION } from "./version.ts";

/** Telemetry of the exporter itself (`ddog_TelemetryClientConfig`). */
export interface TelemetryOptions {
  /** Heartbeat interval in milliseconds (default 60000). */
  intervalMs?: number;
  /** The runtime id reported. */
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
  /** `"http/json"` (the bundled library's) or what a real libdatadog supports (`set_otlp_protocol`). */
  protocol?: string;
  /** The instrumentation scope reported (`set_otlp_instrumentation_scope`). */
  instrumentationScope?: { name: string; version?: string };
}

/**
 * Options of `new TraceExporter(options)`; each maps onto one
 * `ddog_trace_exporter_config_*` setter. Unset options take the default
 * shown, often from the environment as Datadog tracers read it.
 */
export interface ExporterOptions {
  /** Agent URL, `http://host:port` or `unix:///path.sock` (`set_url`). Default `DD_TRACE_AGENT_URL`, else `http://${DD_AGENT_HOST}:${DD_TRACE_AGENT_PORT}` when either is set, else libdatadog's `http://127.0.0.1:8126`. */
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
  /** Test session token for the Datadog test agent (`set_test_session_token`). Default `DD_TEST_SESSION_TOKEN`. */
  testSessionToken?: string;
  /** Request timeout in milliseconds (`set_connection_timeout`). libdatadog's default: 3000. */
  connectionTimeoutMs?: number;
  /** Compute trace stats in libdatadog (`set_compute_stats`). */
  computeStats?: boolean;
  /** Tell the agent the client computed stats (`set_client_computed_stats`). */
  clientComputedStats?: boolean;
  /** DogStatsD health metrics of the exporter (`enable_health_metrics`). */
  healthMetrics?: boolean;
  /** Exporter telemetry (`enable_telemetry`). */
  telemetry?: TelemetryOptions;
  /** OTLP export (`set_otlp_endpoint`, `set_otlp_protocol`, `set_otlp_instrumentation_scope`). */
  otlp?: OtlpOptions;
  /** Write traces to the log instead of sending them, in lines of at most this many bytes (`set_output_to_log`). */
  outputToLogMaxLineSize?: number;
  /**
   * How `send` reaches the library (no config setter): `"batch"` (default) writes one batch
   * buffer and crosses once (`ddffi_batch_send`, lib/batch.c, off the JS thread); `"fields"`
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

/** Runs a setter, naming the option if it fails. */
function unwrapOption(b: Binding, error: Word | null, fn: string, option: string): void {
  if (!error) return;
  const e = b.takeError(error, fn);
  throw new TraceExporterError(e.code, e.detail, fn, option);
}

/** Writes strings for one call; returns their `[ptr, len]` pairs flattened. */
function strings(b: Binding, values: string[]): number[] {
  b.reserve(values.reduce((n, v) => n + 3 * v.length, 0));
  const out: number[] = [];
  for (const v of values) {
    const p = b.pos;
    const n = b.writeString(v);
    out.push(b.base + p, n);
  }
  return out;
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

/** Resolves options and defaults into the setter calls, validating types first. */
export function resolveOptions(options: ExporterOptions, runtime: RuntimeInfo): ConfigCall[] {
  if (typeof options !== "object" || options === null) throw new ValidationError("options", "expected an object");
  const o: ExporterOptions = {
    ...options,
    url: options.url ?? agentUrlFromEnv(runtime.env),
    service: options.service ?? runtime.env("DD_SERVICE"),
    env: options.env ?? runtime.env("DD_ENV"),
    version: options.version ?? runtime.env("DD_VERSION"),
    testSessionToken: options.testSessionToken ?? runtime.env("DD_TEST_SESSION_TOKEN"),
    tracerVersion: options.tracerVersion ?? VERSION,
    language: options.language ?? "nodejs",
    languageVersion: options.languageVersion ?? runtime.version,
    languageInterpreter: options.languageInterpreter ?? runtime.name,
  };
  const calls: ConfigCall[] = [];
  for (const [option, fn] of stringSetters) {
    const v = o[option];
    if (v === undefined) continue;
    const value = str(v, `options.${option}`);
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
    const fn = "ddog_trace_exporter_config_set_connection_timeout";
    calls.push((b, config) => unwrapOption(b, b.symbols[fn](config, ms), fn, "connectionTimeoutMs"));
  }
  if (o.outputToLogMaxLineSize !== undefined) {
    const size = uint(o.outputToLogMaxLineSize, "options.outputToLogMaxLineSize");
    const fn = "ddog_trace_exporter_config_set_output_to_log";
    calls.push((b, config) => unwrapOption(b, b.symbols[fn](config, size), fn, "outputToLogMaxLineSize"));
  }
  if (o.telemetry !== undefined) calls.push(telemetryCall(o.telemetry));
  if (o.otlp !== undefined) calls.push(...otlpCalls(o.otlp));
  return calls;
}

function telemetryCall(t: TelemetryOptions): ConfigCall {
  if (typeof t !== "object" || t === null) throw new ValidationError("options.telemetry", "expected an object");
  const interval = uint(t.intervalMs ?? 60000, "options.telemetry.intervalMs");
  const texts = [
    str(t.runtimeId ?? "", "options.telemetry.runtimeId"),
    str(t.sessionId ?? "", "options.telemetry.sessionId"),
    str(t.rootSessionId ?? "", "options.telemetry.rootSessionId"),
    str(t.parentSessionId ?? "", "options.telemetry.parentSessionId"),
  ];
  const debug = t.debug ?? false;
  if (typeof debug !== "boolean") throw new ValidationError("options.telemetry.debug", "expected a boolean");
  return (b, config) => {
    const L = layouts.TelemetryClientConfig;
    const [rp, rn, sp, sn, rsp, rsn, psp, psn] = strings(b, texts);
    const at = b.align8();
    b.pos += L.size;
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

function otlpCalls(otlp: OtlpOptions): ConfigCall[] {
  if (typeof otlp !== "object" || otlp === null) throw new ValidationError("options.otlp", "expected an object");
  const endpoint = str(otlp.endpoint, "options.otlp.endpoint");
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
    const scope = otlp.instrumentationScope;
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
