/**
 * Sampling rules, as dd-trace-js applies them: trace sampling rules
 * (`DD_TRACE_SAMPLING_RULES`, `samplingRules`), matched against a trace's
 * local root span, and single span sampling rules (`DD_SPAN_SAMPLING_RULES`,
 * `DD_SPAN_SAMPLING_RULES_FILE`, `spanSamplingRules`), matched against each
 * span of a rejected trace.
 *
 * The semantics follow dd-trace-js 5.x (`packages/dd-trace/src/sampling_rule.js`,
 * `priority_sampler.js`, `span_sampler.js`, `util.js` `globMatch`); where this
 * module differs, its docstrings say so.
 *
 * @module
 */
import { Problem, describe, type Rule } from "./validate.ts";
import { RateLimiter, sampledByRate } from "./sampler.ts";

/**
 * A sampling rule as configured: each pattern given must match (a rule with
 * none matches every span). Patterns are globs (see {@link globMatch}).
 * JSON rules (the variables) use `sample_rate` and `max_per_second`; the
 * camel-case spellings `sampleRate` and `maxPerSecond` of dd-trace-js's
 * options are accepted too.
 */
export interface SamplingRuleOptions {
  /** A glob on the span's service. */
  service?: string;
  /** A glob on the span's operation name. */
  name?: string;
  /** A glob on the span's resource. */
  resource?: string;
  /** Globs on tag values, by tag key. */
  tags?: Record<string, string>;
  /** The rate in [0, 1]. Required in a trace sampling rule; default 1 in a span sampling rule. */
  sample_rate?: number;
  /** Same as `sample_rate`. */
  sampleRate?: number;
  /** Most spans (or traces) kept by this rule per second; default no limit. */
  max_per_second?: number;
  /** Same as `max_per_second`. */
  maxPerSecond?: number;
}

/**
 * What a rule is matched against: a span's name, service, resource and tags.
 *
 * As dd-trace-js's locators (sampling_rule.js), tags are the span's own
 * then the tracer's (`tags` / `DD_TAGS`, `env`, `version`), which its span
 * context holds too. Where this differs from dd-trace-js:
 * - `service` is the span's service. dd-trace-js's service locator reads
 *   the span context's `service` tag first, which every span gets from its
 *   config's tags (the tracer's service), so that (dd-trace 5.132) a rule on
 *   `service` never sees a span's own service set with the `service` option
 *   or the `service.name` tag: `{ service: "pg" }` does not match a root
 *   span of service `pg` in a tracer of service `web`.
 * - `resource` is the resource as sent, the name when none was set;
 *   dd-trace-js matches only a `resource.name` that was set, so its rule on
 *   `resource` never matches a span without one.
 * - A boolean tag is a metric 1 or 0 here (as it is sent), so it matches
 *   `"1"`; dd-trace-js keeps `true` in the span context, which only a
 *   pattern of stars matches.
 * - `service.name`, `resource.name` and `span.type` are fields here, not
 *   tags: match them with `service` and `resource`.
 */
export interface RuleSubject {
  readonly name: string;
  readonly service: string;
  readonly resource: string;
  /** A tag's value: a `meta` string or a `metrics` number (anything else counts as absent). */
  tag(key: string): unknown;
}

/**
 * Whether `subject` matches the glob `pattern`, ignoring case: `*` matches
 * any run of characters (none included), `?` exactly one (one UTF-16 code
 * unit, as in dd-trace-js's `globMatch`, util.js); every other character
 * matches itself. The whole subject must match.
 */
export function globMatch(pattern: string, subject: string): boolean {
  const p = pattern.toLowerCase();
  const s = subject.toLowerCase();
  let pi = 0;
  let si = 0;
  // Where the last `*` was, and the subject position it resumes from when the rest fails.
  let star = -1;
  let resume = 0;
  while (si < s.length) {
    if (pi < p.length && p[pi] === "*") {
      star = pi++;
      resume = si;
    } else if (pi < p.length && (p[pi] === "?" || p[pi] === s[si])) {
      pi++;
      si++;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++resume;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === "*") pi++;
  return pi === p.length;
}

type Matcher = (subject: RuleSubject) => boolean;

/** `*`, `**` and `***` match anything, even an absent tag (dd-trace-js's `AlwaysMatcher`, sampling_rule.js). */
const MATCH_ALL = /^\*{1,3}$/;

/**
 * A pattern on one field. As dd-trace-js's `GlobMatcher`: an absent or
 * falsy value (`""`, `0`) never matches; an integer is matched as its
 * decimal text; another number only by a pattern of stars.
 */
function matcher(pattern: string, value: (subject: RuleSubject) => unknown): Matcher {
  if (MATCH_ALL.test(pattern)) return () => true;
  const onlyStars = /^\*+$/.test(pattern);
  return (subject) => {
    const v = value(subject);
    if (typeof v === "string") return v !== "" && globMatch(pattern, v);
    if (typeof v === "number" && v !== 0 && Number.isFinite(v)) return Number.isInteger(v) ? globMatch(pattern, String(v)) : onlyStars;
    return false;
  };
}

/** A parsed sampling rule: its matchers, its rate and its own limiter, if any. */
export class SamplingRule {
  /** The rule's sample rate, in [0, 1]. */
  readonly sampleRate: number;
  /** The rule's `max_per_second`, when it has a limiter (dd-trace-js: a finite one, truncated). */
  readonly maxPerSecond: number | undefined;
  #matchers: Matcher[];
  #limiter: RateLimiter | undefined;

  constructor(matchers: Matcher[], sampleRate: number, maxPerSecond: number | undefined) {
    this.#matchers = matchers;
    this.sampleRate = sampleRate;
    this.maxPerSecond = maxPerSecond === undefined || !Number.isFinite(maxPerSecond) ? undefined : Math.trunc(maxPerSecond);
    this.#limiter = this.maxPerSecond === undefined ? undefined : new RateLimiter(this.maxPerSecond);
  }

  /** A rule matching every span, at `sampleRate` (the global sample rate: dd-trace-js appends one to the rules). */
  static catchAll(sampleRate: number): SamplingRule {
    return new SamplingRule([], sampleRate, undefined);
  }

  /** Whether every pattern of the rule matches `subject`. */
  matches(subject: RuleSubject): boolean {
    for (const m of this.#matchers) if (!m(subject)) return false;
    return true;
  }

  /** Whether the rule's rate keeps the trace (Knuth hash of `traceId`). */
  sampled(traceId: bigint): boolean {
    return sampledByRate(traceId, this.sampleRate);
  }

  /** Whether the rule's own limiter lets one more through (true without one). */
  allow(): boolean {
    return this.#limiter === undefined || this.#limiter.allow();
  }
}

/** The first rule that matches `subject`, if any: rules apply in order, and only the first that matches counts. */
export function findRule(rules: readonly SamplingRule[], subject: RuleSubject): SamplingRule | undefined {
  for (const rule of rules) if (rule.matches(subject)) return rule;
  return undefined;
}

/** The single span sampling of one span: the `_dd.span_sampling.*` metrics. */
export interface SpanSamplingDecision {
  /** `_dd.span_sampling.rule_rate`. */
  ruleRate: number;
  /** `_dd.span_sampling.max_per_second`, when the rule has a limit. */
  maxPerSecond?: number;
}

/**
 * Single span sampling (dd-trace-js span_sampler.js): for a trace that is
 * not kept (priority other than 1 and 2), each span is matched against the
 * rules; the first rule that matches keeps the span when its rate keeps the
 * trace id and its `max_per_second` limiter allows it.
 *
 * The hash is dd-trace-js's: its `SpanSampler` passes the trace's span
 * context to the rule's `Sampler`, so the Knuth hash is of the trace id (low
 * 64 bits), not of the span id as the single span sampling RFC and other
 * Datadog tracers do; every span of a trace gets the same verdict for the
 * same rate.
 *
 * Each span is sampled once, when the chunk it is in is sent (it has
 * finished: the rules see its final fields and tags). dd-trace-js goes over
 * every span the trace has started at each chunk it sends, so that with
 * partial flushes a span still open may be sampled (and use up its rule's
 * limit) more than once.
 */
export class SpanSampler {
  #rules: readonly SamplingRule[];

  constructor(rules: readonly SamplingRule[]) {
    this.#rules = rules;
  }

  /** The decision for one span of a rejected trace; undefined when no rule keeps it. */
  sample(traceId: bigint, span: RuleSubject): SpanSamplingDecision | undefined {
    const rule = findRule(this.#rules, span);
    if (!rule || !rule.sampled(traceId) || !rule.allow()) return undefined;
    return rule.maxPerSecond === undefined ? { ruleRate: rule.sampleRate } : { ruleRate: rule.sampleRate, maxPerSecond: rule.maxPerSecond };
  }
}

const PATTERN_FIELDS = ["service", "name", "resource"] as const;
const KNOWN_FIELDS = new Set<string>([...PATTERN_FIELDS, "tags", "sample_rate", "sampleRate", "max_per_second", "maxPerSecond"]);

/** One of two spellings of a field (snake case wins when both are given, as the JSON form is the documented one). */
function either(o: Record<string, unknown>, snake: string, camel: string): [unknown, string] {
  return o[snake] !== undefined ? [o[snake], snake] : [o[camel], camel];
}

/** One rule, checked; `sampleRateRequired` for trace rules (dd-trace-js ignores a trace rule without a numeric one). */
function parseRule(v: unknown, at: string, sampleRateRequired: boolean): SamplingRule {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Problem(`expected a rule object, got ${describe(v)}`, at);
  const o = v as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN_FIELDS.has(key)) throw new Problem(`unknown field (expected service, name, resource, tags, sample_rate, max_per_second)`, `${at}.${key}`);
  }
  const matchers: Matcher[] = [];
  const fields: Record<(typeof PATTERN_FIELDS)[number], (s: RuleSubject) => unknown> = {
    service: (s) => s.service,
    name: (s) => s.name,
    resource: (s) => s.resource,
  };
  for (const field of PATTERN_FIELDS) {
    const pattern = o[field];
    if (pattern === undefined) continue;
    if (typeof pattern !== "string") throw new Problem(`expected a glob string, got ${describe(pattern)}`, `${at}.${field}`);
    matchers.push(matcher(pattern, fields[field]));
  }
  if (o.tags !== undefined) {
    const tags = o.tags;
    if (typeof tags !== "object" || tags === null || Array.isArray(tags)) throw new Problem(`expected an object of glob strings, got ${describe(tags)}`, `${at}.tags`);
    for (const key of Object.keys(tags)) {
      const pattern = (tags as Record<string, unknown>)[key];
      if (typeof pattern !== "string") throw new Problem(`expected a glob string, got ${describe(pattern)}`, `${at}.tags[${JSON.stringify(key)}]`);
      matchers.push(matcher(pattern, (s) => s.tag(key)));
    }
  }
  const [rate, rateField] = either(o, "sample_rate", "sampleRate");
  if (rate === undefined && sampleRateRequired) throw new Problem("missing: a trace sampling rule needs a sample rate in [0, 1]", `${at}.sample_rate`);
  if (rate !== undefined && (typeof rate !== "number" || !(rate >= 0 && rate <= 1))) {
    throw new Problem(`expected a number in [0, 1], got ${describe(rate)}`, `${at}.${rateField}`);
  }
  const [limit, limitField] = either(o, "max_per_second", "maxPerSecond");
  if (limit !== undefined && (typeof limit !== "number" || Number.isNaN(limit))) {
    throw new Problem(`expected a number, got ${describe(limit)}`, `${at}.${limitField}`);
  }
  return new SamplingRule(matchers, (rate as number | undefined) ?? 1, limit as number | undefined);
}

function rulesOf(sampleRateRequired: boolean): Rule<SamplingRule[]> {
  return (v) => {
    if (!Array.isArray(v)) throw new Problem(`expected an array of rules, got ${describe(v)}`);
    return v.map((rule, i) => parseRule(rule, `[${i}]`, sampleRateRequired));
  };
}

/**
 * Trace sampling rules: an array of {@link SamplingRuleOptions}, each with a
 * `sample_rate`. Checked strictly, where dd-trace-js is lenient: it ignores
 * a trace rule whose `sample_rate` does not parse as a number
 * (priority_sampler.js `#normalizeRules`), clamps one outside [0, 1]
 * (sampler.js), takes `"0.5"` as 0.5, and ignores unknown fields. Here each
 * of those is a {@link Problem} at the field (`[1].sample_rate`): an option
 * throws a `ValidationError` naming it, a variable is logged naming it and
 * ignored as a whole (the rule for every `DD_*` variable; see validate.ts).
 */
export const traceRules: Rule<SamplingRule[]> = rulesOf(true);

/** Single span sampling rules: an array of {@link SamplingRuleOptions}; `sample_rate` defaults to 1 (as dd-trace-js's `SamplingRule`); checked as {@link traceRules}. */
export const spanRules: Rule<SamplingRule[]> = rulesOf(false);
