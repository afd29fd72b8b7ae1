/** Tracer: priority sampling — the agent's rates, a global sample rate, manual keep/drop, one decision per trace. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRequire } from "node:module";
import { SamplingPriority, sampledByRate, Tracer } from "../mod.ts";
import type { DecodedSpan } from "../testing.ts";
import { assertNoLeaks } from "./helpers.ts";
import { traceIdOf, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const root = (chunk: DecodedSpan[]) => chunk.find((s) => s.parent_id === 0n) ?? chunk[0];

test("Knuth sampling by trace id: hand-computed vectors, only the low 64 bits count", () => {
  // 1 × 1111111111111111111 = 1.11e18: under 0.5 × 2^64, over 0.05 × 2^64.
  assert.ok(sampledByRate(1n, 0.5));
  assert.not.ok(sampledByRate(1n, 0.05));
  // (2^64 − 1) × K mod 2^64 = 2^64 − K = 17335632962598440505: over 0.9 × 2^64, under 0.95 × 2^64.
  assert.not.ok(sampledByRate(2n ** 64n - 1n, 0.9));
  assert.ok(sampledByRate(2n ** 64n - 1n, 0.95));
  assert.ok(sampledByRate((123n << 64n) | 1n, 0.5), "high bits ignored");
  assert.ok(sampledByRate(12345n, 1));
  assert.not.ok(sampledByRate(12345n, 0));
});

test("Knuth sampling agrees with dd-trace-js's Sampler", () => {
  let Sampler: new (rate: number) => { isSampled(span: unknown): boolean };
  try {
    Sampler = createRequire(import.meta.url)("dd-trace/packages/dd-trace/src/sampler.js");
  } catch {
    return; // dd-trace (a devDependency) is not installed
  }
  const ids = new BigUint64Array(500);
  crypto.getRandomValues(ids);
  for (const rate of [0.01, 0.25, 0.5, 0.9]) {
    const theirs = new Sampler(rate);
    for (const id of ids) {
      const span = { _traceId: { toBigInt: () => id } };
      assert.is(sampledByRate(id, rate), theirs.isSampled(span), `id ${id} rate ${rate}`);
    }
  }
});

test("the agent's rates decide (rate_by_service keys service:…,env:…, falling back to service:,env:)", () =>
  withTracer(async (tracer, agent) => {
    tracer.trace("before.rates", () => {});
    await tracer.flush();
    const [[first]] = await agent.waitForTraces(1);
    assert.is(first.metrics._sampling_priority_v1, SamplingPriority.AUTO_KEEP, "no rates yet: keep");
    assert.is(first.meta["_dd.p.dm"], "-0");
    assert.equal(tracer.samplingRates, { "service:svc,env:test": 0, "service:,env:": 1 });

    agent.reset();
    tracer.trace("rejected", () => tracer.trace("rejected.child", () => {}));
    tracer.trace("other.service", { service: "elsewhere" }, () => {});
    await tracer.flush();
    const traces = await agent.waitForTraces(2);
    const [rejected] = traces.find((t) => t[0].name === "rejected")!;
    assert.is(rejected.metrics._sampling_priority_v1, SamplingPriority.AUTO_REJECT);
    assert.is(rejected.metrics["_dd.agent_psr"], 0);
    assert.is(rejected.meta["_dd.p.dm"], undefined, "no decision maker on a rejected trace");
    for (const s of traces.find((t) => t[0].name === "rejected")!) assert.is(s.metrics._sampling_priority_v1, 0, "sampled-out traces are still sent, priority 0");
    const [other] = traces.find((t) => t[0].name === "other.service")!;
    assert.is(other.metrics._sampling_priority_v1, SamplingPriority.AUTO_KEEP);
    assert.is(other.meta["_dd.p.dm"], "-1", "agent rate");
    assert.is(other.metrics["_dd.agent_psr"], 1);
  }, {}, { rates: { "service:svc,env:test": 0, "service:,env:": 1 } }));

test("an agent rate of 0.5 keeps exactly the traces whose id Knuth-samples in", () =>
  withTracer(async (tracer, agent) => {
    tracer.trace("warmup", () => {});
    await tracer.flush();
    await agent.waitForTraces(1);
    agent.reset();
    for (let i = 0; i < 300; i++) tracer.trace("half", () => {});
    await tracer.flush();
    const traces = await agent.waitForTraces(300);
    let kept = 0;
    for (const [s] of traces) {
      const expected = sampledByRate(traceIdOf(s), 0.5) ? 1 : 0;
      assert.is(s.metrics._sampling_priority_v1, expected);
      assert.is(s.metrics["_dd.agent_psr"], 0.5);
      kept += expected;
    }
    assert.ok(kept > 90 && kept < 210, `about half kept: ${kept}`);
  }, {}, { rates: { "service:svc,env:test": 0.5 } }));

test("the agent's new rates apply to later traces; a decision once made stays with its trace", () =>
  withTracer(async (tracer, agent) => {
    const early = tracer.startSpan("early");
    const headers = new Headers();
    tracer.inject(early, headers); // decides now: keep (no rates yet)
    assert.is(headers.get("x-datadog-sampling-priority"), "1");
    tracer.trace("fetches.rates", () => {});
    await tracer.flush();
    await agent.waitForTraces(1);
    agent.setRates({ "service:svc,env:test": 1 });
    early.finish();
    tracer.trace("late", () => {});
    await tracer.flush();
    const spans = (await agent.waitForTraces(3)).flat();
    const byName = Object.fromEntries(spans.map((s) => [s.name, s]));
    assert.is(byName.early.metrics._sampling_priority_v1, 1, "decided before the rates came");
    assert.is(byName.early.meta["_dd.p.dm"], "-0");
    assert.is(byName.late.metrics._sampling_priority_v1, 0, "rate 0 from the first answer");
  }, {}, { rates: { "service:svc,env:test": 0 } }));

test("a global sample rate decides instead of the agent: user keep / reject, decision maker -3, _dd.rule_psr", () =>
  withTracer(async (tracer, agent) => {
    for (let i = 0; i < 200; i++) tracer.trace("ruled", () => tracer.trace("child", () => {}));
    await tracer.flush();
    const traces = await agent.waitForTraces(200);
    let kept = 0;
    for (const chunk of traces) {
      const r = root(chunk);
      const keep = sampledByRate(traceIdOf(r), 0.3);
      assert.is(r.metrics._sampling_priority_v1, keep ? SamplingPriority.USER_KEEP : SamplingPriority.USER_REJECT);
      assert.is(r.metrics["_dd.rule_psr"], 0.3);
      assert.is(r.metrics["_dd.agent_psr"], undefined);
      assert.is(r.meta["_dd.p.dm"], keep ? "-3" : undefined);
      if (keep) kept++;
    }
    assert.ok(kept > 20 && kept < 110, `about 30% kept: ${kept}`);
  }, { sampleRate: 0.3 }, { rates: { "service:svc,env:test": 1 } }));

test("DD_TRACE_SAMPLE_RATE sets the global sample rate", async () => {
  const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
  env.DD_TRACE_SAMPLE_RATE = "0";
  try {
    await withTracer(async (tracer, agent) => {
      tracer.trace("zero", () => {});
      await tracer.flush();
      const [[s]] = await agent.waitForTraces(1);
      assert.is(s.metrics._sampling_priority_v1, SamplingPriority.USER_REJECT);
      assert.is(s.metrics["_dd.rule_psr"], 0);
    });
  } finally {
    delete env.DD_TRACE_SAMPLE_RATE;
  }
});

test("the rate limit caps the traces a sample rate keeps per second (_dd.limit_psr)", () =>
  withTracer(async (tracer, agent) => {
    for (let i = 0; i < 40; i++) tracer.trace("limited", () => {});
    await tracer.flush();
    const roots = (await agent.waitForTraces(40)).map(root);
    const kept = roots.filter((s) => s.metrics._sampling_priority_v1 === 2).length;
    assert.ok(kept >= 5 && kept <= 15, `5 per second kept: ${kept}`);
    assert.ok(roots.every((s) => s.metrics._sampling_priority_v1 === 2 || s.metrics._sampling_priority_v1 === -1));
    const last = roots[roots.length - 1];
    assert.ok(last.metrics["_dd.limit_psr"] < 1, `effective rate recorded: ${last.metrics["_dd.limit_psr"]}`);
  }, { sampleRate: 1, rateLimit: 5 }));

test("manual keep and drop on any span of the trace: 2 / -1, decision maker -4", () =>
  withTracer(async (tracer, agent) => {
    tracer.trace("kept", () => tracer.trace("inner", (span) => span.keep()));
    tracer.trace("dropped", (span) => span.drop());
    tracer.trace("tag.keep", (span) => span.setTag("manual.keep", true));
    tracer.trace("tag.drop", (span) => span.setTag("manual.drop", true));
    tracer.trace("priority.tag", (span) => span.setTag("sampling.priority", 2));
    tracer.trace("drop.then.keep", (span) => span.drop().keep());
    await tracer.flush();
    const roots = Object.fromEntries((await agent.waitForTraces(6)).map((c) => [root(c).name, root(c)]));
    const check = (name: string, priority: number, dm: string | undefined) => {
      assert.is(roots[name].metrics._sampling_priority_v1, priority, name);
      assert.is(roots[name].meta["_dd.p.dm"], dm, name);
    };
    check("kept", 2, "-4");
    check("dropped", -1, undefined);
    check("tag.keep", 2, "-4");
    check("tag.drop", -1, undefined);
    check("priority.tag", 2, "-4");
    check("drop.then.keep", 2, "-4");
  }, {}, { rates: { "service:,env:": 0 } }));

test("an upstream decision travels with the trace: it is neither re-sampled nor changed by local rates", () =>
  withTracer(async (tracer, agent) => {
    const upstream = { traceId: 77n, spanId: 88n, samplingPriority: 2, traceTags: { "_dd.p.dm": "-4" } };
    tracer.trace("continued", { childOf: upstream }, () => {
      const headers: Record<string, string> = {};
      tracer.inject(undefined, headers);
      assert.is(headers["x-datadog-sampling-priority"], "2");
      assert.is(headers["x-datadog-tags"], "_dd.p.dm=-4");
      tracer.trace("child", () => {});
    });
    tracer.trace("rejected.upstream", { childOf: { traceId: 99n, spanId: 1n, samplingPriority: 0 } }, () => {});
    await tracer.flush();
    const roots = Object.fromEntries((await agent.waitForTraces(2)).map((c) => [c[0].name, c]));
    for (const s of roots.continued) assert.is(s.metrics._sampling_priority_v1, 2);
    assert.is(roots.continued[0].meta["_dd.p.dm"], "-4");
    assert.is(roots.continued[0].parent_id, 88n);
    assert.is(roots["rejected.upstream"][0].metrics._sampling_priority_v1, 0);
  }, { sampleRate: 1 }));

test("options are validated", () => {
  for (const [options, pattern] of [
    [{ sampleRate: 2 }, /options\.sampleRate/],
    [{ flushIntervalMs: 0 }, /options\.flushIntervalMs/],
    [{ maxQueuedTraces: -1 }, /options\.maxQueuedTraces/],
    [{ propagationStyleInject: 5 }, /options\.propagationStyleInject/],
  ] as const) {
    assert.throws(() => new Tracer({ ...options, flushOnExit: false } as never), pattern as RegExp);
  }
});

test.run();
