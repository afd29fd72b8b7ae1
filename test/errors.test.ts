/** Failures: the agent down, failing or silent; bad input. Typed errors, nothing sent, nothing leaked. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Span, TraceExporter, TraceExporterError, ValidationError } from "../mod.ts";
import { TestAgent } from "../testing.ts";
import { assertNoLeaks, closedPort, rejects, span, withExporter } from "./helpers.ts";

test.after.each(assertNoLeaks);

// libdatadog v41 maps every network error of its HTTP client, a refused
// connection included, to ConnectionReset ("client error (Connect)").
test("agent down → ConnectionReset, the message says it could not connect", async () => {
  const port = await closedPort();
  const exporter = new TraceExporter({ url: `http://127.0.0.1:${port}`, connectionTimeoutMs: 500 });
  try {
    const e = await rejects(exporter.send([[span()]]), TraceExporterError);
    assert.is(e.code, "ConnectionReset");
    assert.match(e.detail, /Connect/);
    // The batch path's decoder returns the send's error as it is.
    assert.is(e.function, exporter.sendPath === "batch" ? "ddffi_batch_send" : "ddog_trace_exporter_send_trace_chunks");
  } finally {
    await exporter.close();
  }
});

test("500 → HttpServer after the retries", () =>
  withExporter(async (exporter, agent) => {
    agent.fail({ status: 500, body: "boom" });
    const started = Date.now();
    const e = await rejects(exporter.send([[span()]]), TraceExporterError);
    assert.is(e.code, "HttpServer");
    const attempts = agent.requests.filter((r) => r.path === "/v0.4/traces").length;
    assert.is(attempts, 6, "1 try + 5 retries");
    assert.ok(Date.now() - started >= 100 + 200 + 400 + 800 + 1600 - 50, "exponential backoff from 100 ms");
  }));

test("a 503 then success: retried transparently", () =>
  withExporter(async (exporter, agent) => {
    agent.fail({ status: 503, times: 2 });
    const res = await exporter.send([[span({ name: "retried" })]]);
    assert.ok(res.rateByService);
    assert.is(agent.requests.filter((r) => r.path === "/v0.4/traces").length, 3);
    assert.is(agent.spans()[0].name, "retried");
  }));

test("400 → HttpClient (libdatadog retries 4xx too), the agent's body in the message", () =>
  withExporter(async (exporter, agent) => {
    agent.fail({ status: 400, body: "bad payload" });
    const e = await rejects(exporter.send([[span()]]), TraceExporterError);
    assert.is(e.code, "HttpClient");
    assert.match(e.detail, /400/);
    assert.match(e.detail, /bad payload/);
  }));

test("no answer → TimedOut", () =>
  withExporter(async (exporter, agent) => {
    agent.fail({ delayMs: 10_000 });
    const started = Date.now();
    const e = await rejects(exporter.send([[span()]]), TraceExporterError);
    assert.is(e.code, "TimedOut");
    assert.ok(Date.now() - started < 9000);
  }, { connectionTimeoutMs: 200 }));

test("a dropped connection fails with a network error code", () =>
  withExporter(async (exporter, agent) => {
    agent.fail({ drop: true });
    const e = await rejects(exporter.send([[span()]]), TraceExporterError);
    assert.ok(["ConnectionReset", "ConnectionAborted", "HttpParse", "NetworkUnknown", "IoError", "HttpEmptyBody"].includes(e.code), e.code);
  }));

test("an invalid url → InvalidUrl at construction", async () => {
  const e = await rejects(() => new TraceExporter({ url: "not a url" }), TraceExporterError);
  assert.is(e.code, "InvalidUrl");
});

test("wrong option types → ValidationError naming the option", async () => {
  await rejects(() => new TraceExporter({ service: 42 as never }), ValidationError, /options\.service/);
  await rejects(() => new TraceExporter({ connectionTimeoutMs: -1 }), ValidationError, /options\.connectionTimeoutMs/);
  await rejects(() => new TraceExporter({ computeStats: "yes" as never }), ValidationError, /options\.computeStats/);
});

/** Sends `bad` at index 56 of 100 spans; expects a ValidationError at `path`, nothing sent. */
async function badSpan(bad: Partial<Record<keyof Span, unknown>>, field: RegExp): Promise<void> {
  await withExporter(async (exporter, agent) => {
    const chunk = Array.from({ length: 100 }, (_, i) => span({ spanId: BigInt(i + 1) }));
    chunk[56] = { ...chunk[56], ...bad } as Span;
    const e = await rejects(exporter.send([[span()], chunk]), ValidationError);
    assert.match(e.path, /^traces\[1\]\[56\]/);
    assert.match(e.message, field);
    // nothing went out, and the exporter still works
    assert.is(agent.requests.filter((r) => r.path === "/v0.4/traces").length, 0);
    await exporter.send([[span()]]);
    assert.is(agent.spans().length, 1);
  });
}

test("span 57 of 100 with a non-string meta value", () => badSpan({ meta: { ok: "x", "http.status_code": 200 } }, /meta\["http\.status_code"\]: expected a string, got number 200/));
test("non-number metric", () => badSpan({ metrics: { ok: 1, bad: "12" } }, /metrics\["bad"\]: expected a finite number/));
test("NaN metric", () => badSpan({ metrics: { bad: NaN } }, /metrics\["bad"\]: expected a finite number/));
test("negative id", () => badSpan({ spanId: -1n }, /spanId: id out of range/));
test("too-large span id", () => badSpan({ spanId: 2n ** 64n }, /spanId: id out of range/));
test("too-large trace id", () => badSpan({ traceId: 2n ** 128n }, /traceId: id out of range/));
test("unsafe number id", () => badSpan({ spanId: 2 ** 60 }, /spanId: expected a non-negative integer id/));
test("non-integer start", () => badSpan({ start: 1.5 }, /start: expected a non-negative integer of nanoseconds/));
test("string duration", () => badSpan({ duration: "10" }, /duration: expected nanoseconds/));
test("negative duration", () => badSpan({ duration: -5n }, /duration: nanoseconds out of range/));
test("missing name", () => badSpan({ name: undefined }, /\.name: expected a string, got undefined/));
test("missing service", () => badSpan({ service: undefined }, /\.service: expected a string/));
test("missing trace id", () => badSpan({ traceId: undefined }, /\.traceId: expected a bigint id/));
test("missing start", () => badSpan({ start: undefined }, /\.start: expected nanoseconds/));
test("bad error flag", () => badSpan({ error: "yes" }, /\.error: expected a boolean or a 32-bit integer/));
test("meta not an object", () => badSpan({ meta: "a=b" }, /\.meta: expected an object/));

test("not an array of chunks / a chunk not an array / a span not an object", () =>
  withExporter(async (exporter) => {
    await rejects(exporter.send({} as never), ValidationError, /^traces: expected an array/);
    await rejects(exporter.send([span()] as never), ValidationError, /^traces\[0\]: expected an array of spans/);
    await rejects(exporter.send([[null]] as never), ValidationError, /^traces\[0\]\[0\]: expected a span object/);
  }));

test("an already-aborted signal sends nothing", () =>
  withExporter(async (exporter, agent) => {
    const e = await rejects(exporter.send([[span()]], { signal: AbortSignal.abort() }), Error);
    assert.is(e.name, "AbortError");
    assert.is(agent.requests.length, 0);
  }));

test("sending to an agent that went away: a typed error, the exporter stays usable", async () => {
  const agent = await TestAgent.start();
  const exporter = new TraceExporter({ url: agent.url, connectionTimeoutMs: 500 });
  try {
    await exporter.send([[span()]]);
    await agent.close();
    const e = await rejects(exporter.send([[span()]]), TraceExporterError);
    assert.is(e.code, "ConnectionReset");
    const again = await TestAgent.start();
    try {
      const other = new TraceExporter({ url: again.url });
      await other.send([[span()]]);
      await other.close();
    } finally {
      await again.close();
    }
  } finally {
    await exporter.close();
  }
});

test.run();
