/**
 * Checks at the Tracer's API: one rule per kind of setting, applied the same
 * way to an option (an invalid one throws a `ValidationError` naming it) and
 * to the `DD_*` variable it defaults to (an invalid one is logged, naming the
 * variable, and the default is used: `new Tracer()` never throws because of
 * the environment).
 *
 * @module
 */
import { TraceExporterError, ValidationError } from "../errors.ts";
import { TraceExporter } from "../exporter.ts";
import { getBinding } from "../binding.ts";
import { agentUrlFromEnv, dogstatsdUrlFromEnv, envAlreadyRead, type ExporterOptions } from "../options.ts";
import { type TimeInput, toNs } from "./clock.ts";
import type { OnceLogger } from "./log.ts";

/** A rule: returns the value it accepts, or throws a {@link Problem}. */
export type Rule<T> = (value: unknown) => T;

/** What a rule found wrong: the message, without the setting's name; `at` a path inside the value, e.g. `["key"]`. */
export class Problem extends Error {
  constructor(message: string, readonly at = "") {
    super(message);
  }
}

/** A short description of a value, for messages. */
export function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "bigint") return `${v}n`;
  if (v === null || typeof v !== "object") return typeof v === "symbol" || typeof v === "function" ? `a ${typeof v}` : String(v);
  return Array.isArray(v) ? "an array" : "an object";
}

export const positiveInteger: Rule<number> = (v) => {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw new Problem(`expected a positive integer, got ${describe(v)}`);
  return v;
};

export const nonNegativeInteger: Rule<number> = (v) => {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new Problem(`expected a non-negative integer, got ${describe(v)}`);
  return v;
};

/** A sample rate: a number in [0, 1]. */
export const rate: Rule<number> = (v) => {
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw new Problem(`expected a number in [0, 1], got ${describe(v)}`);
  return v;
};

/** Any number but NaN (negative: no limit). */
export const number: Rule<number> = (v) => {
  if (typeof v !== "number" || Number.isNaN(v)) throw new Problem(`expected a number, got ${describe(v)}`);
  return v;
};

export const boolean: Rule<boolean> = (v) => {
  if (typeof v !== "boolean") throw new Problem(`expected a boolean, got ${describe(v)}`);
  return v;
};

export const string: Rule<string> = (v) => {
  if (typeof v !== "string") throw new Problem(`expected a string, got ${describe(v)}`);
  return v;
};

/** A number above 0 (a duration in seconds). */
export const positiveNumber: Rule<number> = (v) => {
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) throw new Problem(`expected a positive number, got ${describe(v)}`);
  return v;
};

/** A TCP port, 1–65535. */
export const port: Rule<number> = (v) => {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) throw new Problem(`expected a port number (1–65535), got ${describe(v)}`);
  return v;
};

/** A record of strings (copied, own keys only). */
export const stringRecord: Rule<Record<string, string>> = (v) => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Problem(`expected an object of strings, got ${describe(v)}`);
  const out: Record<string, string> = {};
  for (const k of Object.keys(v)) {
    const value = (v as Record<string, unknown>)[k];
    if (typeof value !== "string") throw new Problem(`expected a string, got ${describe(value)}`, `[${JSON.stringify(k)}]`);
    out[k] = value;
  }
  return out;
};

/** An array whose elements are all among `allowed` (copied). */
export function oneOf<T extends string>(allowed: readonly T[]): Rule<T[]> {
  return (v) => {
    if (!Array.isArray(v) || !v.every((s) => allowed.includes(s))) {
      throw new Problem(`expected an array of ${allowed.map((s) => JSON.stringify(s)).join(", ")}, got ${describe(v)}`);
    }
    return [...v];
  };
}

/** Applies `rule` to an option: undefined stays undefined; an invalid value throws a `ValidationError` at `path`. */
export function option<T>(value: unknown, path: string, rule: Rule<T>): T | undefined {
  if (value === undefined) return undefined;
  try {
    return rule(value);
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    throw new ValidationError(`${path}${e.at}`, e.message);
  }
}

/**
 * The `DD_*` variables, read and checked like their options. A variable that
 * is unset or blank is undefined; an invalid one is logged once (naming the
 * variable) and is undefined too, so the option's default applies.
 */
export class EnvSettings {
  #env: (name: string) => string | undefined;
  #log: OnceLogger;

  constructor(env: (name: string) => string | undefined, log: OnceLogger) {
    this.#env = env;
    this.#log = log;
  }

  /** The raw text of a set, non-blank variable. */
  text(name: string): string | undefined {
    const text = this.#env(name);
    return text === undefined || text.trim() === "" ? undefined : text;
  }

  /** Logs that `name`'s value is invalid and ignored. */
  invalid(name: string, text: string, problem: string): undefined {
    this.#log.once(`env:${name}`, `${name}=${describe(text)} is invalid (${problem}): ignored, the default is used`);
    return undefined;
  }

  /** A number checked by `rule`. */
  number<T>(name: string, rule: Rule<T>): T | undefined {
    const text = this.text(name);
    if (text === undefined) return undefined;
    const n = Number(text.trim());
    if (Number.isNaN(n)) return this.invalid(name, text, "not a number");
    return this.#check(name, text, n, rule);
  }

  /** `true`/`1` or `false`/`0` (any case). */
  boolean(name: string): boolean | undefined {
    const text = this.text(name);
    if (text === undefined) return undefined;
    const t = text.trim().toLowerCase();
    if (t === "true" || t === "1") return true;
    if (t === "false" || t === "0") return false;
    return this.invalid(name, text, "expected true, false, 1 or 0");
  }

  /** A comma-separated list (lowercased, blanks left out) checked by `rule`. */
  list<T>(name: string, rule: Rule<T>): T | undefined {
    const text = this.text(name);
    if (text === undefined) return undefined;
    const items = text.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
    return this.#check(name, text, items, rule);
  }

  /**
   * JSON checked by `rule`: the variable's text, or `content` when given
   * (what was read from the file the variable names). Invalid JSON or a
   * value `rule` refuses is logged, naming the variable and the field.
   */
  json<T>(name: string, rule: Rule<T>, content?: string): T | undefined {
    const text = this.text(name);
    if (text === undefined) return undefined;
    const of = content === undefined ? "" : "the file's content: ";
    let value: unknown;
    try {
      value = JSON.parse(content ?? text);
    } catch (e) {
      return this.invalid(name, text, `${of}not JSON: ${(e as Error).message}`);
    }
    return this.#check(name, text, value, rule, of);
  }

  /** Logs that `name` is set but not used, and why. */
  unused(name: string, why: string): void {
    this.#log.once(`env:${name}`, `${name} is ignored: ${why}`);
  }

  #check<T>(name: string, text: string, value: unknown, rule: Rule<T>, of = ""): T | undefined {
    try {
      return rule(value);
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      return this.invalid(name, text, `${of}${e.at ? `${e.at}: ` : ""}${e.message}`);
    }
  }
}

/** An option if set (checked: throws when invalid), else the variable (checked: logged and ignored when invalid). */
export function setting<T>(value: unknown, path: string, fromEnv: () => T | undefined, rule: Rule<T>): T | undefined {
  return value !== undefined ? option(value, path, rule) : fromEnv();
}

/** A span name: a string, else a `ValidationError` at `path`. */
export function spanName(v: unknown, path: string): string {
  if (typeof v !== "string") throw new ValidationError(path, `expected a string, got ${describe(v)}`);
  return v;
}

/** A time option: ns since the epoch (see {@link toNs}), else a `ValidationError` at `path`. */
export function timeOption(v: unknown, path: string): bigint {
  const ns = toNs(v as TimeInput);
  if (ns === undefined) {
    throw new ValidationError(path, `expected a time: a bigint of ns, or a number or Date of ms since the epoch, below 2^63 ns (year 2262), got ${describe(v)}`);
  }
  return ns;
}

/** An exporter option taken from the environment: the variable(s) it came from, and their text. */
interface EnvOrigin {
  variable: string;
  text: string;
}

/** The variables the exporter options default to; the tracer reads them (see {@link tracerExporter}). */
const EXPORTER_VARIABLES = [
  "DD_TRACE_AGENT_URL",
  "DD_AGENT_HOST",
  "DD_TRACE_AGENT_PORT",
  "DD_SERVICE",
  "DD_ENV",
  "DD_VERSION",
  "DD_TEST_SESSION_TOKEN",
  "DD_TRACE_STATS_COMPUTATION_ENABLED",
  "DD_TRACE_HEALTH_METRICS_ENABLED",
  "DD_INSTRUMENTATION_TELEMETRY_ENABLED",
  "DD_TELEMETRY_HEARTBEAT_INTERVAL",
  "DD_DOGSTATSD_URL",
  "DD_DOGSTATSD_HOST",
  "DD_DOGSTATSD_PORT",
] as const;

/**
 * Creates the tracer's exporter. The variables of the exporter options are
 * read here rather than by the exporter, so that one it refuses, with the
 * same checks as the option (a `ValidationError`, or libdatadog's
 * `TraceExporterError`), is logged as invalid and the option's default used
 * instead. Explicit options that are refused throw as usual. The service
 * defaults to `DD_SERVICE`, else `"unnamed-service"`.
 *
 * @returns the exporter and the options it was made with.
 */
export function tracerExporter(options: ExporterOptions, env: EnvSettings): { exporter: TraceExporter; options: ExporterOptions } {
  const o: ExporterOptions = { ...options };
  const origins: Partial<Record<keyof ExporterOptions, EnvOrigin>> = {};
  const fromVariable = (name: keyof ExporterOptions, variable: string, text: string | undefined) => {
    if (o[name] !== undefined || text === undefined) return;
    (o as Record<string, unknown>)[name] = text;
    origins[name] = { variable, text };
  };
  const agentPort = env.number("DD_TRACE_AGENT_PORT", port);
  const url = agentUrlFromEnv((name) => name === "DD_TRACE_AGENT_PORT" ? agentPort?.toString() : env.text(name));
  fromVariable("url", env.text("DD_TRACE_AGENT_URL") ? "DD_TRACE_AGENT_URL" : "DD_AGENT_HOST/DD_TRACE_AGENT_PORT", url);
  fromVariable("service", "DD_SERVICE", env.text("DD_SERVICE"));
  fromVariable("env", "DD_ENV", env.text("DD_ENV"));
  fromVariable("version", "DD_VERSION", env.text("DD_VERSION"));
  fromVariable("testSessionToken", "DD_TEST_SESSION_TOKEN", env.text("DD_TEST_SESSION_TOKEN"));
  for (const [name, variable] of [["computeStats", "DD_TRACE_STATS_COMPUTATION_ENABLED"], ["healthMetrics", "DD_TRACE_HEALTH_METRICS_ENABLED"]] as const) {
    const on = o[name] === undefined ? env.boolean(variable) : undefined;
    if (on === undefined) continue;
    o[name] = on;
    origins[name] = { variable, text: env.text(variable)! };
  }
  if (o.healthMetrics === true && o.dogstatsdUrl === undefined) {
    const variable = env.text("DD_DOGSTATSD_URL") ? "DD_DOGSTATSD_URL" : "DD_DOGSTATSD_HOST/DD_DOGSTATSD_PORT";
    const dogstatsdPort = env.number("DD_DOGSTATSD_PORT", port);
    fromVariable("dogstatsdUrl", variable, dogstatsdUrlFromEnv((name) => name === "DD_DOGSTATSD_PORT" ? dogstatsdPort?.toString() : env.text(name)));
  }
  // The Tracer marks _dd.top_level on service-entry spans (dd-trace-js's rule): the stats take those.
  if (o.computeStats === true && o.clientComputedTopLevel === undefined && getBinding().symbols.ddffi_trace_exporter_config_set_client_computed_top_level) {
    o.clientComputedTopLevel = true;
  }
  // Telemetry is on unless turned off, as in dd-trace-js (DD_INSTRUMENTATION_TELEMETRY_ENABLED, default true).
  o.telemetry ??= env.boolean("DD_INSTRUMENTATION_TELEMETRY_ENABLED") ?? true;
  const heartbeat = env.number("DD_TELEMETRY_HEARTBEAT_INTERVAL", positiveNumber);
  if (heartbeat !== undefined && o.telemetry === true) o.telemetry = { intervalMs: Math.max(1, Math.round(heartbeat * 1000)) };
  else if (heartbeat !== undefined && typeof o.telemetry === "object" && o.telemetry !== null && o.telemetry.intervalMs === undefined) {
    o.telemetry = { ...o.telemetry, intervalMs: Math.max(1, Math.round(heartbeat * 1000)) };
  }
  o.service ??= "unnamed-service";
  envAlreadyRead.set(o, EXPORTER_VARIABLES);
  for (;;) {
    try {
      return { exporter: new TraceExporter(o), options: o };
    } catch (e) {
      const name = refusedOption(e, o);
      const origin = name && origins[name];
      if (!name || !origin) throw e;
      delete origins[name];
      env.invalid(origin.variable, origin.text, problemOf(e));
      if (name === "service") o.service = "unnamed-service";
      else delete o[name];
    }
  }
}

/** The exporter option an error of `new TraceExporter` is about, if it says. */
function refusedOption(e: unknown, o: ExporterOptions): keyof ExporterOptions | undefined {
  let name: string | undefined;
  if (e instanceof ValidationError) name = /^options\.(\w+)/.exec(e.path)?.[1];
  else if (e instanceof TraceExporterError) {
    // libdatadog parses the URL in ddog_trace_exporter_new, naming no option.
    name = e.option ?? (o.url !== undefined && (e.code === "InvalidUrl" || e.function === "ddog_trace_exporter_new") ? "url" : undefined);
  }
  return name as keyof ExporterOptions | undefined;
}

/** An error's message without the option name it starts with (the variable is named instead). */
function problemOf(e: unknown): string {
  if (e instanceof ValidationError) return e.message.slice(e.path.length + 2);
  if (e instanceof TraceExporterError) return `${e.code}: ${e.detail}`;
  return String(e);
}
