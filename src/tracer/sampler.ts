/**
 * Priority sampling as Datadog tracers do it: a decision per trace, made
 * once (deterministically from the trace id) and carried with the trace.
 * In order of precedence, as dd-trace-js's priority_sampler.js:
 *
 * - Manual keep / drop on a span: 2 or -1, decision maker `-4`.
 * - Trace sampling rules (`samplingRules`, `DD_TRACE_SAMPLING_RULES`), in
 *   order, then the global sample rate (`sampleRate`, `DD_TRACE_SAMPLE_RATE`),
 *   which is a rule matching every trace, after the others: the first rule
 *   that matches the trace's local root span decides. User keep (2) or user
 *   reject (-1), decision maker `-3`, `_dd.rule_psr`; kept traces are then
 *   limited to `rateLimit` per second (`DD_TRACE_RATE_LIMIT`, `_dd.limit_psr`).
 * - The agent's rates (`rate_by_service`, keys `service:<service>,env:<env>`,
 *   the fallback key `service:,env:`): keep (1) or reject (0), decision maker
 *   `-1`; before the agent has answered, every trace is kept with decision
 *   maker `-0`.
 *
 * @module
 */
import { findRule, type RuleSubject, SamplingRule } from "./sampling-rules.ts";

/** The `_sampling_priority_v1` values. */
export const SamplingPriority = {
  /** The user (a manual drop, a sampling rule) rejected the trace. */
  USER_REJECT: -1,
  /** The sampler (the agent's rates) rejected the trace. */
  AUTO_REJECT: 0,
  /** The sampler kept the trace. */
  AUTO_KEEP: 1,
  /** The user (a manual keep, a sampling rule) kept the trace. */
  USER_KEEP: 2,
} as const;

/** Who made a sampling decision: `_dd.p.dm` is `-<mechanism>`. */
export const SamplingMechanism = {
  /** No rates yet: the tracer's default (keep). */
  DEFAULT: 0,
  /** The agent's `rate_by_service`. */
  AGENT_RATE: 1,
  /** A trace sampling rule, or the global sample rate. */
  RULE: 3,
  /** A manual keep or drop on a span. */
  MANUAL: 4,
  /** Single span sampling: `_dd.span_sampling.mechanism` of a span kept by a span sampling rule. */
  SPAN_RULE: 8,
} as const;

/** One trace's sampling decision. */
export interface SamplingDecision {
  /** `_sampling_priority_v1`: -1, 0, 1 or 2. */
  priority: number;
  /** The mechanism; `_dd.p.dm` is `-<mechanism>` on kept traces. */
  mechanism: number;
  /** `_dd.agent_psr`: the agent rate applied. */
  agentRate?: number;
  /** `_dd.rule_psr`: the rule's sample rate applied. */
  ruleRate?: number;
  /** `_dd.limit_psr`: the rate limiter's effective rate, when it was consulted. */
  limitRate?: number;
}

const MASK64 = (1n << 64n) - 1n;
/** Knuth's multiplicative hash factor, shared by Datadog tracers. */
const KNUTH_FACTOR = 1111111111111111111n;
const MAX_TRACE_ID = 2 ** 64 - 1;
const DEFAULT_KEY = "service:,env:";
/** The decision while the agent has not answered: one object for every trace (a decision is never changed once made). */
const DEFAULT_DECISION: SamplingDecision = Object.freeze({ priority: SamplingPriority.AUTO_KEEP, mechanism: SamplingMechanism.DEFAULT, agentRate: 1 });

/**
 * Datadog's deterministic sampling: keeps the trace when the low 64 bits of
 * its id times 1111111111111111111, modulo 2^64, are ≤ `rate` × (2^64 − 1).
 * Every tracer that sees the same trace id and rate decides the same way.
 */
export function sampledByRate(traceId: bigint, rate: number): boolean {
  if (rate >= 1) return true;
  if (!(rate > 0)) return false;
  return ((traceId & MASK64) * KNUTH_FACTOR & MASK64) <= BigInt(Math.floor(rate * MAX_TRACE_ID));
}

/** At most `perSecond` allowed per one-second window; tracks the effective rate over this window and the last. */
export class RateLimiter {
  #limit: number;
  #windowStart = 0;
  #allowed = 0;
  #requested = 0;
  #previousAllowed = 0;
  #previousRequested = 0;

  /** @param perSecond Allowed per second; negative means unlimited, 0 allows none. */
  constructor(perSecond: number) {
    this.#limit = perSecond;
  }

  /** Whether one more is allowed now. */
  allow(): boolean {
    if (this.#limit < 0) return true;
    const now = performance.now();
    if (now - this.#windowStart >= 1000) {
      const elapsedWindows = Math.floor((now - this.#windowStart) / 1000);
      this.#previousAllowed = elapsedWindows === 1 ? this.#allowed : 0;
      this.#previousRequested = elapsedWindows === 1 ? this.#requested : 0;
      this.#windowStart = now;
      this.#allowed = 0;
      this.#requested = 0;
    }
    this.#requested++;
    if (this.#allowed >= this.#limit) return false;
    this.#allowed++;
    return true;
  }

  /** Allowed / requested over the current and the previous window (1 when nothing was requested). */
  effectiveRate(): number {
    if (this.#limit < 0) return 1;
    const requested = this.#requested + this.#previousRequested;
    return requested === 0 ? 1 : (this.#allowed + this.#previousAllowed) / requested;
  }
}

/** Options of {@link PrioritySampler}. */
export interface SamplerOptions {
  /** The tracer's `env`, for the agent's `service:…,env:…` keys. */
  env: string;
  /** Trace sampling rules, in order (see sampling-rules.ts). */
  rules?: readonly SamplingRule[];
  /** A global sample rate in [0, 1]: a rule matching every trace, after `rules`. */
  sampleRate?: number;
  /** Traces kept by the rules per second (default 100); negative: unlimited. */
  rateLimit?: number;
}

/** Decides sampling priorities for new traces. */
export class PrioritySampler {
  #env: string;
  #rules: readonly SamplingRule[];
  #limiter: RateLimiter;
  #rates: Map<string, number> | undefined;
  /** The rate key of the last service decided for, kept: the same string is hashed once, not built per trace. */
  #keyService: string | undefined;
  #key = "";
  /** The agent-rate decisions (keep, reject) of the last rate applied, shared by the traces decided at it. */
  #agentRate = NaN;
  #agentKeep: SamplingDecision = DEFAULT_DECISION;
  #agentReject: SamplingDecision = DEFAULT_DECISION;

  constructor(options: SamplerOptions) {
    this.#env = options.env;
    const rate = options.sampleRate;
    this.#rules = rate === undefined ? options.rules ?? [] : [...options.rules ?? [], SamplingRule.catchAll(Math.min(Math.max(rate, 0), 1))];
    this.#limiter = new RateLimiter(options.rateLimit ?? 100);
  }

  /** Replaces the agent's rates (`rate_by_service` of its last answer). */
  updateRates(rateByService: Record<string, number>): void {
    const rates = new Map<string, number>();
    for (const [key, rate] of Object.entries(rateByService)) {
      if (typeof rate === "number" && Number.isFinite(rate)) rates.set(key, Math.min(Math.max(rate, 0), 1));
    }
    this.#rates = rates;
  }

  /** The agent rates in use, by `service:…,env:…` key (empty before the agent answered). */
  get rates(): Record<string, number> {
    return Object.fromEntries(this.#rates ?? []);
  }

  /**
   * The decision for a new trace whose local root span is `root`: the first
   * rule matching it decides, else the agent's rates.
   *
   * A rule decides as dd-trace-js's `#getPriorityByRule`: reject (-1) when
   * the rule's rate does not keep the trace id (Knuth hash), or when the
   * rule's own `max_per_second` limiter refuses it (then with no
   * `_dd.limit_psr`); else the tracer's limiter (`rateLimit`) has the last
   * word and its effective rate is recorded in `_dd.limit_psr`.
   *
   * Unlike dd-trace-js, the global sample rate's catch-all rule has no
   * limiter of its own besides the tracer's (dd-trace-js gives it one of
   * `rateLimit` too, which then refuses first, so that its limited traces
   * carry no `_dd.limit_psr`): the same traces are kept, and a trace the
   * limit rejects still records the limiter's effective rate.
   */
  decide(traceId: bigint, root: RuleSubject): SamplingDecision {
    const rule = findRule(this.#rules, root);
    if (rule) {
      const ruleRate = rule.sampleRate;
      if (!rule.sampled(traceId) || !rule.allow()) {
        return { priority: SamplingPriority.USER_REJECT, mechanism: SamplingMechanism.RULE, ruleRate };
      }
      const allowed = this.#limiter.allow();
      return {
        priority: allowed ? SamplingPriority.USER_KEEP : SamplingPriority.USER_REJECT,
        mechanism: SamplingMechanism.RULE,
        ruleRate,
        limitRate: this.#limiter.effectiveRate(),
      };
    }
    return this.decideByAgentRate(traceId, root.service);
  }

  /** Whether there are trace sampling rules (or a global sample rate): else `decideByAgentRate` decides every trace. */
  get hasRules(): boolean {
    return this.#rules.length > 0;
  }

  /** The decision by the agent's rates for a trace whose local root span's service is `service` (`decide` with no rule matching). */
  decideByAgentRate(traceId: bigint, service: string): SamplingDecision {
    if (service !== this.#keyService) {
      this.#keyService = service;
      this.#key = `service:${service},env:${this.#env}`;
    }
    const rate = this.#rates?.get(this.#key) ?? this.#rates?.get(DEFAULT_KEY);
    if (rate === undefined) return DEFAULT_DECISION;
    if (rate !== this.#agentRate) {
      this.#agentRate = rate;
      this.#agentKeep = Object.freeze({ priority: SamplingPriority.AUTO_KEEP, mechanism: SamplingMechanism.AGENT_RATE, agentRate: rate });
      this.#agentReject = Object.freeze({ priority: SamplingPriority.AUTO_REJECT, mechanism: SamplingMechanism.AGENT_RATE, agentRate: rate });
    }
    return sampledByRate(traceId, rate) ? this.#agentKeep : this.#agentReject;
  }
}
