/** Tracer: log injection (dd.trace_id, dd.span_id, dd.service, dd.env, dd.version) with the real pino and winston, and console. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Writable } from "node:stream";
import pino from "pino";
import winston from "winston";
import { instrumentConsole, logContext, logFields, pinoMixin, winstonFormat } from "../mod.ts";
import { assertNoLeaks } from "./helpers.ts";
import { withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

/** The dd record expected for `span` of a tracer made by withTracer (128-bit trace ids: 32 hex digits). */
function expected(span: { traceId: bigint; spanId: bigint }) {
  return {
    trace_id: span.traceId.toString(16).padStart(32, "0"),
    span_id: span.spanId.toString(),
    service: "svc",
    env: "test",
    version: "1.2.3",
  };
}

test("logContext and logFields: dd-trace-js's record (decimal for 64-bit ids), and without a span only service, env and version", () =>
  withTracer((tracer) => {
    assert.equal(logContext(tracer), { service: "svc", env: "test", version: "1.2.3" });
    tracer.trace("x", (span) => {
      assert.equal(logContext(tracer), expected(span));
      const d = expected(span);
      assert.is(logFields(tracer), `[dd.service=svc dd.env=test dd.version=1.2.3 dd.trace_id=${d.trace_id} dd.span_id=${d.span_id}]`);
    });
    const span64 = tracer.startSpan("y", { childOf: { traceId: 12345n, spanId: 6n } });
    assert.is(logContext(tracer, span64).trace_id, "12345");
    span64.finish();
  }));

test("pino: pino({ mixin: pinoMixin(tracer) }) puts dd on every line", () =>
  withTracer((tracer) => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ mixin: pinoMixin(tracer) }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    logger.info("outside");
    tracer.trace("handler", (span) => {
      logger.info({ order: 7 }, "inside");
      assert.equal(lines[1].dd, expected(span));
      assert.is(lines[1].order, 7);
      assert.is(lines[1].msg, "inside");
    });
    assert.equal(lines[0].dd, { service: "svc", env: "test", version: "1.2.3" });
  }));

test("winston: format.combine(winstonFormat(tracer), format.json()) puts dd on every record", () =>
  withTracer(async (tracer) => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const logger = winston.createLogger({
      format: winston.format.combine(winstonFormat(tracer), winston.format.json()),
      transports: [new winston.transports.Stream({ stream })],
    });
    let traced: { traceId: bigint; spanId: bigint } | undefined;
    tracer.trace("handler", (span) => {
      traced = span;
      logger.info("inside", { order: 7 });
    });
    logger.warn("outside");
    await new Promise((r) => setTimeout(r, 20));
    assert.is(lines.length, 2);
    assert.equal(lines[0].dd, expected(traced!));
    assert.is(lines[0].message, "inside");
    assert.is(lines[0].order, 7);
    assert.equal(lines[1].dd, { service: "svc", env: "test", version: "1.2.3" });
    logger.close();
  }));

test("console: instrumentConsole(tracer) appends the dd fields inside a span; uninstrument() restores console", () =>
  withTracer((tracer) => {
    const calls: unknown[][] = [];
    const target = { log: (...a: unknown[]) => void calls.push(a), info: (...a: unknown[]) => void calls.push(a) } as unknown as Console;
    const original = target.log;
    const consoleTracing = instrumentConsole(tracer, target);
    target.log("plain");
    let fields = "";
    tracer.trace("handler", (span) => {
      target.info("hello", 1);
      const d = expected(span);
      fields = `[dd.service=svc dd.env=test dd.version=1.2.3 dd.trace_id=${d.trace_id} dd.span_id=${d.span_id}]`;
    });
    consoleTracing.uninstrument();
    assert.is(target.log, original);
    tracer.trace("after", () => target.log("untouched"));
    assert.equal(calls, [["plain"], ["hello", 1, fields], ["untouched"]]);
    // The real console too.
    const real = instrumentConsole(tracer);
    try {
      assert.is.not(console.log, original);
    } finally {
      real.uninstrument();
    }
  }));

test.run();
