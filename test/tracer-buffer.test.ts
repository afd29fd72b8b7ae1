/** Tracer: the trace buffer — chunks, partial flush, interval / size / explicit flushes, the queue bound, failures, shutdown. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Tracer } from "../mod.ts";
import { TestAgent } from "../testing.ts";
import { assertNoLeaks, closedPort } from "./helpers.ts";
import { withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

/** Finishes one trace of `children` + 1 spans. */
function oneTrace(tracer: Tracer, name = "t", children = 0): void {
  tracer.trace(name, () => {
    for (let i = 0; i < children; i++) tracer.trace(`${name}.child`, () => {});
  });
}

test("a trace goes out as one chunk when its local root finishes, not before", () =>
  withTracer(async (tracer, agent) => {
    const root = tracer.startSpan("root");
    const a = tracer.startSpan("a", { childOf: root });
    const b = tracer.startSpan("b", { childOf: a });
    b.finish();
    a.finish();
    await tracer.flush();
    assert.is(tracer.counters.queuedTraces, 0, "nothing queued while the root is open");
    assert.is(agent.requests.length, 0);
    root.finish();
    assert.is(tracer.counters.queuedTraces, 1);
    await tracer.flush();
    const traces = await agent.waitForTraces(1);
    assert.is(traces.length, 1);
    assert.equal(traces[0].map((s) => s.name), ["root", "b", "a"]);
    const c = tracer.counters;
    assert.is(c.tracesSent, 1);
    assert.is(c.spansSent, 3);
    assert.is(c.payloadsSent, 1);
    assert.ok(c.bytesSent > 100);
    assert.is(c.queuedTraces, 0);
    assert.is(c.queuedBytes, 0);
  }));

test("a trace with N finished spans is flushed in part; the rest follows with the root", () =>
  withTracer(async (tracer, agent) => {
    const root = tracer.startSpan("root");
    for (let i = 0; i < 25; i++) tracer.startSpan("child", { childOf: root }).finish();
    assert.is(tracer.counters.queuedTraces, 2, "two partial chunks of 10");
    root.finish();
    await tracer.flush();
    const traces = await agent.waitForTraces(3);
    assert.equal(traces.map((t) => t.length), [10, 10, 6]);
    assert.is(traces[2][0].name, "root");
    for (const chunk of traces) {
      assert.is(chunk[0].meta["_dd.p.dm"], "-0", "trace tags on each chunk's first span");
      for (const s of chunk) {
        assert.is(s.trace_id, root.traceId & ((1n << 64n) - 1n));
        assert.is(s.metrics._sampling_priority_v1, 1);
      }
    }
  }, { partialFlushMinSpans: 10 }));

test("the partial flush threshold defaults to 1000 finished spans", () =>
  withTracer(async (tracer, agent) => {
    const root = tracer.startSpan("root");
    for (let i = 0; i < 999; i++) tracer.startSpan("child", { childOf: root }).finish();
    assert.is(tracer.counters.queuedTraces, 0);
    tracer.startSpan("child", { childOf: root }).finish();
    assert.is(tracer.counters.queuedTraces, 1);
    root.finish();
    await tracer.flush();
    const traces = await agent.waitForTraces(2);
    assert.equal(traces.map((t) => t.length), [1000, 1]);
  }));

test("a span finishing after its local root goes out in a chunk of its own", () =>
  withTracer(async (tracer, agent) => {
    let late: ReturnType<Tracer["startSpan"]> | undefined;
    tracer.trace("root", () => {
      late = tracer.startSpan("late");
    });
    late!.finish();
    await tracer.flush();
    const traces = await agent.waitForTraces(2);
    assert.equal(traces.map((t) => t.map((s) => s.name)), [["root"], ["late"]]);
    assert.is(traces[1][0].parent_id, traces[0][0].span_id);
    assert.is(traces[1][0].metrics._sampling_priority_v1, 1);
  }));

test("queued traces go out on the interval", () =>
  withTracer(async (tracer, agent) => {
    oneTrace(tracer, "interval");
    const traces = await agent.waitForTraces(1, 10_000);
    assert.is(traces[0][0].name, "interval");
  }, { flushIntervalMs: 100 }));

test("the queue goes out early when it passes flushThresholdBytes", () =>
  withTracer(async (tracer, agent) => {
    for (let i = 0; i < 20; i++) oneTrace(tracer, "sized", 3);
    const traces = await agent.waitForTraces(1, 10_000);
    assert.ok(traces.length >= 1 && traces.length < 20, `sent before the whole batch: ${traces.length}`);
  }, { flushThresholdBytes: 4000 }));

test("the queue is bounded: nothing dropped below maxQueuedTraces, new traces dropped and counted above, logged once", () =>
  withTracer(async (tracer, agent, logs) => {
    for (let i = 0; i < 50; i++) oneTrace(tracer, "kept", 1);
    assert.is(tracer.counters.tracesDropped, 0);
    assert.is(tracer.counters.queuedTraces, 50);
    for (let i = 0; i < 7; i++) oneTrace(tracer, "dropped", 1);
    const c = tracer.counters;
    assert.is(c.tracesDropped, 7);
    assert.is(c.spansDropped, 14);
    assert.is(c.queuedTraces, 50);
    assert.is(logs.filter((l) => l.includes("queue is full")).length, 1, logs.join("\n"));
    await tracer.flush();
    const traces = await agent.waitForTraces(50);
    assert.is(traces.length, 50);
    assert.ok(traces.every((t) => t[0].name === "kept"));
    oneTrace(tracer, "room again");
    assert.is(tracer.counters.tracesDropped, 7, "room once sent");
  }, { maxQueuedTraces: 50 }));

test("the bound counts traces being sent, and bytes", () =>
  withTracer(async (tracer, agent) => {
    agent.fail({ delayMs: 500, times: 1 });
    for (let i = 0; i < 5; i++) oneTrace(tracer, "first");
    const flushed = tracer.flush();
    for (let i = 0; i < 10; i++) oneTrace(tracer, "second");
    const c = tracer.counters;
    assert.is(c.queuedTraces, 8);
    assert.is(c.tracesDropped, 7, "5 in flight + 3 queued fill the bound");
    await flushed;
    await tracer.flush();
    assert.is((await agent.waitForTraces(8)).length, 8);
  }, { maxQueuedTraces: 8 }));

test("maxQueuedBytes bounds the estimated size", () =>
  withTracer((tracer) => {
    for (let i = 0; i < 100; i++) tracer.startSpan("big", { tags: { payload: "x".repeat(1000) } }).finish();
    const c = tracer.counters;
    assert.ok(c.tracesDropped > 0 && c.queuedBytes <= 20_000, JSON.stringify(c));
    assert.is(c.tracesDropped + c.queuedTraces, 100);
  }, { maxQueuedBytes: 20_000 }));

test("export failures are counted and logged once per kind, never thrown", async () => {
  const logs: string[] = [];
  const tracer = new Tracer({ url: `http://127.0.0.1:${await closedPort()}`, flushIntervalMs: 600_000, logger: (m) => logs.push(m) });
  try {
    oneTrace(tracer, "a", 2);
    await tracer.flush();
    oneTrace(tracer, "b");
    oneTrace(tracer, "c");
    await tracer.flush();
    const c = tracer.counters;
    assert.is(c.payloadsFailed, 2);
    assert.is(c.tracesFailed, 3);
    assert.is(c.spansFailed, 5);
    assert.is(c.tracesSent, 0);
    assert.is(c.queuedTraces, 0);
    assert.is(logs.length, 1, logs.join("\n"));
    assert.match(logs[0], /sending traces to the agent failed \(Connection/);
  } finally {
    await tracer.shutdown();
  }
});

test("sending never blocks the event loop", () =>
  withTracer(async (tracer, agent) => {
    agent.fail({ delayMs: 1000, times: 1 });
    for (let i = 0; i < 200; i++) oneTrace(tracer, "load", 2);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    await tracer.flush();
    clearInterval(timer);
    assert.ok(ticks >= 20, `timers kept firing during the send: ${ticks} ticks`);
    assert.is((await agent.waitForTraces(200)).length, 200);
  }, { connectionTimeoutMs: 10_000 }));

test("shutdown sends what is queued and resolves once the agent has it", async () => {
  const agent = await TestAgent.start();
  const tracer = new Tracer({ url: agent.url, flushIntervalMs: 600_000, logger: () => {} });
  try {
    for (let i = 0; i < 30; i++) oneTrace(tracer, "at.shutdown", 1);
    await tracer.shutdown();
    assert.is(agent.traces().length, 30, "already there when shutdown resolves");
    assert.is(tracer.counters.tracesSent, 30);
    oneTrace(tracer, "after.shutdown");
    assert.is(tracer.counters.tracesDropped, 1, "finished after shutdown: dropped and counted");
    await tracer.shutdown();
  } finally {
    await tracer.shutdown();
    await agent.close();
  }
});

test("shutdown with a silent agent resolves at the timeout, cancelling the send", async () => {
  const agent = await TestAgent.start();
  agent.fail({ delayMs: 20_000 });
  const tracer = new Tracer({ url: agent.url, flushIntervalMs: 600_000, connectionTimeoutMs: 30_000, logger: () => {} });
  try {
    oneTrace(tracer, "stuck");
    const started = performance.now();
    await tracer.shutdown({ timeoutMs: 300 });
    const took = performance.now() - started;
    assert.ok(took < 10_000, `resolved at the timeout, not with the agent: ${took.toFixed(0)} ms`);
    assert.is(tracer.counters.tracesTimedOut, 1, "cancelled in flight: the agent may have it");
    assert.is(tracer.counters.payloadsTimedOut, 1);
    assert.is(tracer.counters.tracesFailed, 0);
    assert.is(tracer.counters.queuedTraces, 0);
  } finally {
    await agent.close();
  }
});

test("await using disposes the tracer", async () => {
  const agent = await TestAgent.start();
  try {
    {
      await using tracer = new Tracer({ url: agent.url, flushIntervalMs: 600_000 });
      oneTrace(tracer, "disposed");
    }
    assert.is(agent.traces().length, 1);
  } finally {
    await agent.close();
  }
});

test.run();
