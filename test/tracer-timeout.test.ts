/** Tracer: a flush has a deadline (flushTimeoutMs); a send cancelled at it is counted as timed out, not failed (issue 11, item 7). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Tracer, ValidationError } from "../mod.ts";
import { assertNoLeaks, rejects } from "./helpers.ts";
import { sleep, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const traceRequests = (agent: { requests: { path: string }[] }) => agent.requests.filter((r) => r.path.startsWith("/v0.4/traces")).length;

test("an agent that answers after the per-attempt timeout: the flush ends at flushTimeoutMs, counted timed out, a few copies at most", () =>
  withTracer(async (tracer, agent, logs) => {
    agent.fail({ delayMs: 1500 });
    tracer.trace("slow", () => {});
    const started = performance.now();
    await tracer.flush();
    const took = performance.now() - started;
    assert.ok(took >= 1000 && took < 3500, `the flush ended at the deadline: ${took.toFixed(0)} ms`);
    const c = tracer.counters;
    assert.is(c.tracesTimedOut, 1, JSON.stringify(c));
    assert.is(c.spansTimedOut, 1);
    assert.is(c.payloadsTimedOut, 1);
    assert.is(c.tracesFailed, 0, "not counted failed: the agent may have it");
    assert.is(c.queuedTraces, 0);
    assert.is(c.queuedBytes, 0);
    const copies = traceRequests(agent);
    assert.ok(copies >= 1 && copies <= 3, `libdatadog retried within the deadline only: ${copies} attempts, not 6`);
    assert.is(logs.filter((l) => l.includes("flushTimeoutMs")).length, 1, logs.join("\n"));
    // At least once: the agent got it (it processes a request whose client gave up).
    await sleep(1700);
    assert.ok(agent.traces().length >= 1, "the agent received the trace");
    // Sends go on afterwards.
    agent.fail(null);
    agent.reset();
    tracer.trace("next", () => {});
    await tracer.flush();
    assert.equal((await agent.waitForTraces(1)).map((t) => t[0].name), ["next"]);
    assert.is(tracer.counters.tracesSent, 1);
  }, { connectionTimeoutMs: 500, flushTimeoutMs: 1200 }));

test("a hung agent: the flush ends at flushTimeoutMs, not after libdatadog's retries", () =>
  withTracer(async (tracer, agent) => {
    agent.fail({ delayMs: 60_000 });
    for (let i = 0; i < 3; i++) tracer.trace("hung", () => {});
    const started = performance.now();
    await tracer.flush();
    const took = performance.now() - started;
    assert.ok(took >= 500 && took < 3000, `${took.toFixed(0)} ms`);
    const c = tracer.counters;
    assert.is(c.tracesTimedOut, 3);
    assert.is(c.payloadsTimedOut, 1);
    assert.is(c.tracesFailed + c.tracesSent, 0);
    assert.is(traceRequests(agent), 1, "one attempt, cancelled");
    // A second flush behind it gets its own deadline.
    tracer.trace("again", () => {});
    await tracer.flush();
    assert.is(tracer.counters.tracesTimedOut, 4);
  }, { connectionTimeoutMs: 30_000, flushTimeoutMs: 600 }));

test("an agent that fails fast is still retried by libdatadog within the deadline, and counted failed", () =>
  withTracer(async (tracer, agent) => {
    agent.fail({ status: 503 });
    tracer.trace("rejected", () => {});
    await tracer.flush();
    const c = tracer.counters;
    assert.is(traceRequests(agent), 6, "libdatadog's policy: 1 attempt + 5 retries");
    assert.is(c.tracesFailed, 1);
    assert.is(c.tracesTimedOut, 0);
  }, { flushTimeoutMs: 10_000 }));

test("flushTimeoutMs must be a positive integer", async () => {
  for (const v of [0, -1, 1.5, "1000", NaN]) {
    const e = await rejects(() => new Tracer({ flushTimeoutMs: v as number }), ValidationError);
    assert.is(e.path, "options.flushTimeoutMs");
  }
});

test.run();
