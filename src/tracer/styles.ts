/**
 * Propagation style lists, from `DD_TRACE_PROPAGATION_STYLE(_INJECT|_EXTRACT)`
 * or the tracer's options, read as Datadog tracers read them: names are
 * comma-separated and case-insensitive; `"b3"` is the single `b3` header and
 * `"b3 single header"` its alias (the cross-language Datadog meaning, and
 * dd-trace-js v6's; dd-trace-js v5 read a bare `b3` as multi-header),
 * `"b3multi"` the `x-b3-*` headers. An unknown name is left out with a
 * warning, through the tracer's logger; the rest of the list is kept, and
 * a list with no known name falls back to the next source (the option, then
 * the environment, then the default).
 *
 * @module
 */
import { ValidationError } from "../errors.ts";
import type { OnceLogger } from "./log.ts";
import type { PropagationStyle } from "./propagation.ts";

/** The default inject and extract styles (dd-trace-js's: `datadog,tracecontext,baggage`). */
export const DEFAULT_STYLES: readonly PropagationStyle[] = ["datadog", "tracecontext", "baggage"];

const KNOWN: Record<string, PropagationStyle> = {
  datadog: "datadog",
  tracecontext: "tracecontext",
  b3: "b3",
  "b3 single header": "b3",
  b3multi: "b3multi",
  baggage: "baggage",
  none: "none",
};

/**
 * Reads a style list: a string (`"datadog,b3"`) or an array of names.
 * `source` names where it came from (an environment variable or an option
 * path), for the warning. Undefined when `value` is undefined or empty.
 *
 * @throws {ValidationError} `value` is neither a string nor an array of strings (options only).
 */
export function parseStyles(value: unknown, source: string, log: OnceLogger): PropagationStyle[] | undefined {
  if (value === undefined) return undefined;
  let names: string[];
  if (typeof value === "string") names = value.split(",");
  else if (Array.isArray(value) && value.every((s) => typeof s === "string")) names = value;
  else throw new ValidationError(source, "expected an array of propagation style names, or a comma-separated string");
  const styles: PropagationStyle[] = [];
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    if (!name) continue;
    const style = KNOWN[name];
    if (style === undefined) {
      log.once(`style:${source}:${name}`, `${source}: unknown propagation style ${JSON.stringify(raw.trim())} ignored (known: datadog, tracecontext, b3, b3multi, baggage, none)`);
    } else if (!styles.includes(style)) {
      styles.push(style);
    }
  }
  if (styles.length > 0) return styles;
  // Nothing usable: an empty array means no propagation; unknown names alone fall back to the next source.
  return Array.isArray(value) && names.every((n) => !n.trim()) ? [] : undefined;
}
