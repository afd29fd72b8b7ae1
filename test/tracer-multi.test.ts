/**
 * Tracer: two tracers in one process, each sending its own spans; and
 * nodeListener logging a handler's error through a logger (issue 11, item 9).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { nodeListener, traceHandler, type Tracer } from "../mod.ts";
import type { TestAgent } from "../testing.ts";
import { assertNoLeaks } from "./helpers.ts";
import { listen, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

/** Two tracers, each with its own agent. */
async function withTwo(fn: (a: Tracer, b: Tracer, agentA: TestAgent, agentB: TestAgent) => Promise<void>): Promise<void> {
  await withTracer(async (a, agentA) => {
    await withTracer(async (b, agentB) => {
      await fn(a, b, agentA, agentB);
    }, { service: "svc-b", env: "test-b" });
  }, { service: "svc-a" });
}

test("a span of tracer B started inside a span of tracer A: B's span, B's service, sent by B, in A's trace", () =>
  withTwo(async (a, b, agentA, agentB) => {
    let outer: ReturnType<Tracer["startSpan"]> | undefined;
    a.trace("a.request", (span) => {
      outer = span;
      span.keep();
      b.trace("b.work", () => {
        a.trace("a.inner", () => {});
      });
    });
    await a.flush();
    await b.flush();
    // a.inner, inside B's span, is a service entry of A again: a chunk of its own.
    const chunksA = await agentA.waitForTraces(2);
    const chunkA = chunksA.flat();
    const [chunkB] = await agentB.waitForTraces(1);
    assert.equal(chunksA.map((c) => c.map((s) => s.name)), [["a.inner"], ["a.request"]], "A sends only A's spans");
    assert.equal(chunkB.map((s) => s.name), ["b.work"], "B sends B's span");
    const [bSpan] = chunkB;
    const aRoot = chunkA.find((s) => s.name === "a.request")!;
    const aInner = chunkA.find((s) => s.name === "a.inner")!;
    assert.is(bSpan.service, "svc-b");
    assert.is(bSpan.meta.env, "test-b");
    assert.is(bSpan.trace_id, aRoot.trace_id, "the same trace");
    assert.is(bSpan.meta["_dd.p.tid"], aRoot.meta["_dd.p.tid"]);
    assert.is(bSpan.parent_id, outer!.spanId & ((1n << 64n) - 1n), "child of A's span");
    assert.is(bSpan.metrics["_dd.top_level"], 1, "a service entry of B");
    assert.is(bSpan.metrics._sampling_priority_v1, 2, "A's decision (keep) travels to B");
    assert.is(bSpan.meta["_dd.p.dm"], "-4");
    assert.is(aInner.parent_id, bSpan.span_id, "a span of A inside B's span keeps the active span as parent");
    assert.is(aInner.service, "svc-a");
    assert.is(aInner.trace_id, aRoot.trace_id);
    assert.is(aInner.metrics._sampling_priority_v1, 2);
    assert.is(a.counters.tracesSent, 2);
    assert.is(b.counters.tracesSent, 1);
  }));

test("two tracers' traces never mix: each tracer's activeSpan is the process's active span, its spans go to its agent", () =>
  withTwo(async (a, b, agentA, agentB) => {
    await Promise.all([
      a.trace("a.only", async () => {
        await new Promise((r) => setTimeout(r, 5));
        a.trace("a.child", () => {});
      }),
      b.trace("b.only", async () => {
        await new Promise((r) => setTimeout(r, 5));
        b.trace("b.child", () => {});
      }),
    ]);
    await a.flush();
    await b.flush();
    const spansA = (await agentA.waitForTraces(1)).flat();
    const spansB = (await agentB.waitForTraces(1)).flat();
    assert.equal(spansA.map((s) => s.service), ["svc-a", "svc-a"]);
    assert.equal(spansB.map((s) => s.service), ["svc-b", "svc-b"]);
  }));


/** Counts console.error / console.warn calls during `fn`. */
async function consoleCalls(fn: () => Promise<void>): Promise<number> {
  const { error, warn } = console;
  let calls = 0;
  console.error = console.warn = () => void calls++;
  try {
    await fn();
  } finally {
    console.error = error;
    console.warn = warn;
  }
  return calls;
}

test("nodeListener: a thrown error goes to the tracer's logger (traceHandler), or to options.logger, never to the console", () =>
  withTracer(async (tracer, agent, logs) => {
    const boom = () => {
      throw new Error("handler failed");
    };
    const own: string[] = [];
    const calls = await consoleCalls(async () => {
      const traced = await listen(nodeListener(traceHandler(tracer, boom)));
      const plain = await listen(nodeListener(boom, { logger: (m) => own.push(m) }));
      try {
        assert.is((await fetch(`${traced.url}/x`)).status, 500);
        assert.is((await fetch(`${traced.url}/y`)).status, 500);
        assert.is((await fetch(`${plain.url}/z`)).status, 500);
      } finally {
        await traced.close();
        await plain.close();
      }
    });
    assert.is(calls, 0, "nothing printed to the console");
    const lines = logs.filter((l) => l.startsWith("nodeListener:"));
    assert.is(lines.length, 2, "each error logged");
    assert.match(lines[0], /handler failed/);
    assert.is(own.length, 1);
    assert.match(own[0], /handler failed/);
    await tracer.flush();
    const spans = (await agent.waitForTraces(2)).flat();
    assert.ok(spans.every((s) => s.error === 1 && s.meta["error.message"] === "handler failed"));
  }));

test("nodeListener without a tracer or logger writes through the default logger (console.warn, prefixed)", async () => {
  const seen: unknown[][] = [];
  const { warn } = console;
  console.warn = (...args: unknown[]) => void seen.push(args);
  const server = await listen(nodeListener(() => Promise.reject("not an Error")));
  try {
    assert.is((await fetch(server.url)).status, 500);
  } finally {
    console.warn = warn;
    await server.close();
  }
  assert.is(seen.length, 1);
  assert.match(String(seen[0][0]), /^\[@dd-ffi\/trace\] nodeListener: the handler threw; answered 500: not an Error/);
});

test.run();
