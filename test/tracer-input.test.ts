/** Tracer: bad input at the API never costs the other traces of a flush (issue 11, item 4). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TraceExporter, Tracer, ValidationError } from "../mod.ts";
import type { Span } from "../mod.ts";
import { TestAgent } from "../testing.ts";
import { TraceBuffer } from "../src/tracer/buffer.ts";
import { OnceLogger } from "../src/tracer/log.ts";
import { assertNoLeaks, rejects, span as plainSpan } from "./helpers.ts";
import { byName, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

/** The counters every test of this file ends with: nothing failed, nothing left, no NaN. */
function assertClean(c: Record<string, number>, sent: number): void {
  assert.is(c.tracesSent, sent, JSON.stringify(c));
  assert.is(c.tracesFailed, 0, JSON.stringify(c));
  assert.is(c.tracesInvalid, 0, JSON.stringify(c));
  assert.is(c.queuedTraces, 0);
  assert.is(c.queuedBytes, 0);
  for (const [k, v] of Object.entries(c)) assert.ok(Number.isFinite(v), `${k} is ${v}`);
}

for (
  const [what, options, path] of [
    ["resource: 42", { resource: 42 }, "options.resource"],
    ["service: {}", { service: {} }, "options.service"],
    ["type: null", { type: null }, "options.type"],
    ["startTime: Date.now() * 1e6 (ns as a number, read as ms)", { startTime: Date.now() * 1e6 }, "options.startTime"],
    ["startTime: -1", { startTime: -1 }, "options.startTime"],
    ["startTime: 2n ** 63n", { startTime: 2n ** 63n }, "options.startTime"],
    ["startTime: \"now\"", { startTime: "now" }, "options.startTime"],
    ["childOf with a span id past 64 bits", { childOf: { traceId: 1n, spanId: 1n << 64n } }, "options.childOf.spanId"],
    ["childOf with a number trace id", { childOf: { traceId: 5, spanId: 1n } }, "options.childOf.traceId"],
    ["links: a string", { links: "x" }, "options.links"],
  ] as const
) {
  test(`startSpan refuses ${what} with a ValidationError; the other traces of the flush go out`, () =>
    withTracer(async (tracer, agent) => {
      tracer.trace("before", () => {});
      const e = await rejects(() => tracer.startSpan("bad", options as never), ValidationError);
      assert.is(e.path, path);
      assert.ok(e.message.startsWith(`${path}: `), e.message);
      await rejects(() => tracer.trace("bad", options as never, () => assert.unreachable("fn must not run")), ValidationError);
      tracer.trace("after", () => {});
      await tracer.flush();
      const traces = await agent.waitForTraces(2);
      assert.equal(traces.map((t) => t[0].name), ["before", "after"]);
      assertClean(tracer.counters as unknown as Record<string, number>, 2);
    }));
}

test("startSpan(undefined) and other non-string names are refused, not sent as \"undefined\"", () =>
  withTracer(async (tracer, agent) => {
    for (const name of [undefined, 42, null, {}, Symbol("s")]) {
      const e = await rejects(() => tracer.startSpan(name as never), ValidationError);
      assert.is(e.path, "name");
      await rejects(() => tracer.trace(name as never, () => {}), ValidationError);
    }
    tracer.trace("ok", () => {});
    await tracer.flush();
    const spans = (await agent.waitForTraces(1)).flat();
    assert.equal(spans.map((s) => s.name), ["ok"]);
    assertClean(tracer.counters as unknown as Record<string, number>, 1);
  }));

test("an array passed to addEvent is copied: changing it afterwards changes nothing", () =>
  withTracer(async (tracer, agent) => {
    tracer.trace("before", () => {});
    const span = tracer.startSpan("events");
    const tags = ["a", "b"];
    const sparse = ["x", , "z"];
    span.addEvent("cache.miss", { tags, sparse, n: [1, 2] }, 1_700_000_000_000);
    tags.push(1 as never, {} as never);
    tags[0] = 5 as never;
    span.finish();
    tracer.trace("after", () => {});
    await tracer.flush();
    const s = byName((await agent.waitForTraces(3)).flat());
    const [event] = s.events.span_events as { name: string; time_unix_nano: bigint; attributes: Record<string, unknown> }[];
    assert.is(event.name, "cache.miss");
    assert.is(event.time_unix_nano, 1_700_000_000_000_000_000n);
    const attrs = event.attributes as Record<string, { type: number; array_value?: { values: { string_value?: string }[] } }>;
    assert.equal(attrs.tags.array_value!.values.map((v) => v.string_value), ["a", "b"], "as it was when added");
    assert.is(attrs.sparse, undefined, "an array with holes is left out, as other arrays of mixed types");
    assert.ok(attrs.n);
    assert.ok(s.before && s.after);
    assertClean(tracer.counters as unknown as Record<string, number>, 3);
  }));

test("finish() and addEvent() with an unusable time use now, log it once, and the trace goes out", () =>
  withTracer(async (tracer, agent, logs) => {
    const before = BigInt(Date.now() - 1000) * 1_000_000n;
    const a = tracer.startSpan("a");
    a.addEvent("e", {}, Date.now() * 1e6);
    a.finish(Date.now() * 1e6);
    const b = tracer.startSpan("b");
    b.finish(-5);
    await tracer.flush();
    const s = byName((await agent.waitForTraces(2)).flat());
    assert.ok(s.a.duration >= 0n && s.a.duration < 10_000_000_000n, `${s.a.duration}`);
    const [event] = s.a.span_events as { time_unix_nano: bigint }[];
    assert.ok(event.time_unix_nano >= before, "now, not 2^63 or more");
    assert.ok(s.b.duration >= 0n && s.b.duration < 10_000_000_000n);
    assert.is(logs.filter((l) => l.startsWith("span.finish(endTime):")).length, 1, logs.join("\n"));
    assert.is(logs.filter((l) => l.startsWith("span.addEvent(time):")).length, 1, logs.join("\n"));
    assertClean(tracer.counters as unknown as Record<string, number>, 2);
  }));

test("a childOf context from the application is copied, its fields of the wrong type left out", () =>
  withTracer(async (tracer, agent) => {
    const traceTags = { "_dd.p.ok": "1", "_dd.p.num": 5, "_dd.p.obj": {} } as unknown as Record<string, string>;
    const context = {
      traceId: 0xabcn,
      spanId: 0xdefn,
      samplingPriority: "2" as unknown as number,
      origin: 7 as unknown as string,
      lastParentId: {} as unknown as string,
      traceTags,
      links: "nope" as never,
    };
    const span = tracer.startSpan("continued", { childOf: context });
    (traceTags as Record<string, unknown>)["_dd.p.later"] = 1;
    span.finish();
    let reads = 0;
    class Context {
      get traceId() {
        return reads++ === 0 ? 0x77n : -1n;
      }
      readonly spanId = 0x88n;
    }
    tracer.startSpan("from.class", { childOf: new Context() as never }).finish();
    tracer.trace("other", () => {});
    await tracer.flush();
    const s = byName((await agent.waitForTraces(3)).flat());
    assert.is(s["from.class"].trace_id, 0x77n, "a getter on the prototype is read, once");
    assert.is(s["from.class"].parent_id, 0x88n);
    assert.is(reads, 1);
    assert.is(s.continued.trace_id, 0xabcn);
    assert.is(s.continued.parent_id, 0xdefn);
    assert.is(s.continued.meta["_dd.p.ok"], "1");
    assert.is(s.continued.meta["_dd.p.num"], undefined);
    assert.is(s.continued.meta["_dd.p.later"], undefined);
    assert.is(s.continued.meta["_dd.origin"], undefined);
    assert.is(s.continued.metrics._sampling_priority_v1, 1, "decided here: the given priority was not a number");
    assertClean(tracer.counters as unknown as Record<string, number>, 3);
  }));

test("tags of the wrong type in the tracer options and non-string tag keys are refused or ignored, never queued", async () => {
  const e = await rejects(() => new Tracer({ tags: { team: "a", n: 1 as unknown as string } }), ValidationError);
  assert.is(e.path, 'options.tags["n"]');
  await rejects(() => new Tracer({ runtimeId: 5 as unknown as string }), ValidationError);
  await withTracer(async (tracer, agent) => {
    tracer.trace("tags", { tags: { ok: "v", n: 2, bad: Symbol("x"), f: () => 1, nested: { a: "b", deep: { no: 1 } } } }, (span) => {
      span.setTag(Symbol("k") as never, "v");
      span.setError({ name: Symbol("n"), message: { toString: () => { throw new Error("no"); } } });
    });
    await tracer.flush();
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.meta.ok, "v");
    assert.is(s.metrics.n, 2);
    assert.is(s.meta["nested.a"], "b");
    assert.is(s.meta.bad, undefined);
    assert.is(s.error, 1);
    assert.is(s.meta.team, "a");
    assertClean(tracer.counters as unknown as Record<string, number>, 1);
  }, { tags: { team: "a" } });
});

/** A TraceBuffer over a real exporter, the way the Tracer uses it. */
async function withBuffer(fn: (buffer: TraceBuffer, agent: TestAgent, logs: string[]) => Promise<void>): Promise<void> {
  const agent = await TestAgent.start();
  const exporter = new TraceExporter({ url: agent.url });
  const logs: string[] = [];
  const buffer = new TraceBuffer({
    exporter,
    flushIntervalMs: 600_000,
    flushThresholdBytes: 1 << 20,
    maxQueuedTraces: 100,
    maxQueuedBytes: 1 << 20,
    flushTimeoutMs: 10_000,
    log: new OnceLogger((m) => logs.push(m)),
    onResponse: () => {},
  });
  try {
    await fn(buffer, agent, logs);
  } finally {
    await buffer.close(5000);
    await exporter.close();
    await agent.close();
  }
}

test("a chunk that still fails to build is dropped alone and counted (tracesInvalid), with one log line naming the field", () =>
  withBuffer(async (buffer, agent, logs) => {
    const good = (name: string): Span[] => [plainSpan({ name, spanId: 1n }), plainSpan({ name: `${name}.child`, spanId: 2n, parentId: 1n })];
    buffer.push(good("first"), 400);
    buffer.push([plainSpan({ name: "bad", resource: 42 as never })], 200);
    buffer.push(good("second"), 400);
    buffer.push([plainSpan({ name: "bad2" }), plainSpan({ name: "bad2.child", resource: 43 as never })], 300);
    buffer.push(good("third"), NaN);
    await buffer.flush();
    const traces = await agent.waitForTraces(3);
    assert.equal(traces.map((t) => t[0].name), ["first", "second", "third"]);
    assert.is(agent.requests.filter((r) => r.path.startsWith("/v0.4/traces")).length, 1, "one payload");
    const c = buffer.counters();
    assert.is(c.tracesInvalid, 2);
    assert.is(c.spansInvalid, 3);
    assert.is(c.tracesSent, 3);
    assert.is(c.spansSent, 6);
    assert.is(c.bytesSent, 800, "the invalid chunks' bytes are not counted sent; a NaN estimate counts 0");
    assert.is(c.payloadsSent, 1);
    assert.is(c.tracesFailed, 0);
    assert.is(c.queuedTraces, 0);
    assert.is(c.queuedBytes, 0);
    assert.is(logs.length, 1, logs.join("\n"));
    assert.match(logs[0], /tracesInvalid.*traces\[1\]\[0\]\.resource: expected a string/);
  }));

test("a flush of invalid chunks only sends nothing and counts them", () =>
  withBuffer(async (buffer, agent) => {
    buffer.push([plainSpan({ traceId: -1n })], 100);
    await buffer.flush();
    const c = buffer.counters();
    assert.is(c.tracesInvalid, 1);
    assert.is(c.payloadsSent + c.payloadsFailed, 0);
    assert.is(agent.requests.filter((r) => r.path.startsWith("/v0.4/traces")).length, 0);
    assert.is(c.queuedBytes, 0);
  }));

test.run();
