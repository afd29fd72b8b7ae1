/** Sends run off the JS thread: the event loop keeps turning while the agent is slow; cancellation; close waits. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AbortError, TraceExporter } from "../mod.ts";
import { TestAgent } from "../testing.ts";
import { assertNoLeaks, rejects, span, withExporter } from "./helpers.ts";

test.after.each(assertNoLeaks);

test("a send to an agent that answers after 2 s does not block the event loop", () =>
  withExporter(async (exporter, agent) => {
    agent.fail({ delayMs: 2000, times: 1 });
    let last = performance.now();
    let worstGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
    }, 10);
    const started = performance.now();
    await exporter.send([[span()]]);
    clearInterval(timer);
    const took = performance.now() - started;
    assert.ok(took >= 1900, `the send waited for the agent (${took} ms)`);
    assert.ok(worstGap < 50, `the timer kept firing: worst gap ${worstGap.toFixed(1)} ms`);
    assert.ok(ticks > 100, `ticks: ${ticks}`);
  }, { connectionTimeoutMs: 5000 }));

test("several sends in flight at once", () =>
  withExporter(async (exporter, agent) => {
    agent.fail({ delayMs: 300 });
    const started = performance.now();
    const all = await Promise.all([1, 2, 3, 4].map((i) => exporter.send([[span({ spanId: BigInt(i) })]])));
    const took = performance.now() - started;
    assert.is(all.length, 4);
    assert.is(agent.spans().length, 4);
    assert.ok(took < 1100, `concurrent, not one after another: ${took.toFixed(0)} ms`);
  }));

test("close() waits for sends in flight", async () => {
  await using agent = await TestAgent.start();
  agent.fail({ delayMs: 300 });
  const exporter = new TraceExporter({ url: agent.url });
  const sent = exporter.send([[span({ name: "in.flight" })]]);
  assert.is(exporter.pending, 1);
  await exporter.close();
  assert.is(exporter.pending, 0);
  await sent;
  assert.is(agent.spans()[0].name, "in.flight");
});

test("aborting cancels the in-flight request through the cancel token", () =>
  withExporter(async (exporter, agent) => {
    agent.fail({ delayMs: 5000 });
    const controller = new AbortController();
    const started = performance.now();
    const sent = exporter.send([[span()]], { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user gave up")), 100);
    const e = await rejects(sent, AbortError);
    assert.ok(performance.now() - started < 2000, "cancelled promptly");
    assert.is((e.cause as Error).message, "user gave up");
  }, { connectionTimeoutMs: 10_000 }));

test("a signal that never aborts changes nothing", () =>
  withExporter(async (exporter, agent) => {
    const controller = new AbortController();
    await exporter.send([[span()]], { signal: controller.signal });
    controller.abort();
    assert.is(agent.spans().length, 1);
  }));

test("an already-aborted signal: AbortError, nothing built or sent", () =>
  withExporter(async (exporter, agent) => {
    await rejects(exporter.send([[span()]], { signal: AbortSignal.abort() }), AbortError);
    assert.is(agent.requests.length, 0);
  }));

test("dispose with a send in flight frees the exporter after it settles", async () => {
  await using agent = await TestAgent.start();
  agent.fail({ delayMs: 200 });
  const exporter = new TraceExporter({ url: agent.url });
  const sent = exporter.send([[span()]]);
  exporter[Symbol.dispose]();
  await sent;
  await new Promise((r) => setTimeout(r, 10));
  assertNoLeaks();
});

test.run();
