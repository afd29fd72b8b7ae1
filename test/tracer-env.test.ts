/**
 * Tracer: the DD_* variables get the checks of their options; an invalid one
 * is logged naming the variable and its default is used, never thrown from
 * `new Tracer()` (issue 11, item 8). Explicit invalid options still throw.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TraceExporterError, Tracer, type TracerOptions, ValidationError } from "../mod.ts";
import { TestAgent } from "../testing.ts";
import { assertNoLeaks, rejects } from "./helpers.ts";
import { withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;

/** Runs `fn` with the variables set (restored afterwards). */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, env[k]]));
  Object.assign(env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
  }
}

/** The one log line about `variable`; it names the variable, not an option. */
function logAbout(logs: string[], variable: string): string {
  const lines = logs.filter((l) => l.startsWith(`${variable}=`));
  assert.is(lines.length, 1, `one line about ${variable}: ${logs.join("\n")}`);
  assert.not.match(lines[0], /options\./);
  assert.match(lines[0], /ignored, the default is used/);
  return lines[0];
}

for (const text of ["-5", "abc", "2.5", "0"]) {
  test(`DD_TRACE_PARTIAL_FLUSH_MIN_SPANS=${text}: logged naming the variable, the default 1000 used`, () =>
    withEnv({ DD_TRACE_PARTIAL_FLUSH_MIN_SPANS: text }, () =>
      withTracer(async (tracer, agent, logs) => {
        assert.match(logAbout(logs, "DD_TRACE_PARTIAL_FLUSH_MIN_SPANS"), new RegExp(`=${JSON.stringify(text).replace(".", "\\.")}`));
        const root = tracer.startSpan("root");
        for (let i = 0; i < 999; i++) tracer.startSpan("child", { childOf: root }).finish();
        assert.is(tracer.counters.queuedTraces, 0);
        tracer.startSpan("child", { childOf: root }).finish();
        assert.is(tracer.counters.queuedTraces, 1, "partial flush at 1000");
        root.finish();
        await tracer.flush();
        assert.equal((await agent.waitForTraces(2)).map((t) => t.length), [1000, 1]);
      })));
}

test("a valid DD_TRACE_PARTIAL_FLUSH_MIN_SPANS applies; the option wins over it", () =>
  withEnv({ DD_TRACE_PARTIAL_FLUSH_MIN_SPANS: " 3 " }, async () => {
    await withTracer((tracer, _agent, logs) => {
      const root = tracer.startSpan("root");
      for (let i = 0; i < 3; i++) tracer.startSpan("child", { childOf: root }).finish();
      assert.is(tracer.counters.queuedTraces, 1);
      root.finish();
      assert.equal(logs, []);
    });
    await withTracer((tracer) => {
      const root = tracer.startSpan("root");
      for (let i = 0; i < 3; i++) tracer.startSpan("child", { childOf: root }).finish();
      assert.is(tracer.counters.queuedTraces, 0);
      root.finish();
    }, { partialFlushMinSpans: 5 });
  }));

test("DD_TRACE_SAMPLE_RATE, DD_TRACE_RATE_LIMIT, DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED invalid: logged, defaults used", () =>
  withEnv({ DD_TRACE_SAMPLE_RATE: "5", DD_TRACE_RATE_LIMIT: "lots", DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED: "yes" }, () =>
    withTracer(async (tracer, agent, logs) => {
      assert.match(logAbout(logs, "DD_TRACE_SAMPLE_RATE"), /\[0, 1\]/);
      logAbout(logs, "DD_TRACE_RATE_LIMIT");
      logAbout(logs, "DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED");
      tracer.trace("t", () => {});
      await tracer.flush();
      const [[s]] = await agent.waitForTraces(1);
      assert.is(s.metrics._sampling_priority_v1, 1, "the agent's rates, not a sample rate");
      assert.is(s.meta["_dd.p.dm"], "-0");
      assert.ok(s.meta["_dd.p.tid"], "128-bit trace ids");
    })));

test("DD_TRACE_SAMPLING_RULES and DD_SPAN_SAMPLING_RULES invalid: logged naming the variable and the rule's field, no rules used", () =>
  withEnv({ DD_TRACE_SAMPLING_RULES: '[{"name": "t"}]', DD_SPAN_SAMPLING_RULES: '[{"name": "t", "max_per_second": "9"}]' }, () =>
    withTracer(async (tracer, agent, logs) => {
      assert.match(logAbout(logs, "DD_TRACE_SAMPLING_RULES"), /\[0\]\.sample_rate: missing/);
      assert.match(logAbout(logs, "DD_SPAN_SAMPLING_RULES"), /\[0\]\.max_per_second: expected a number, got "9"/);
      tracer.trace("t", () => {});
      await tracer.flush();
      const [[s]] = await agent.waitForTraces(1);
      assert.is(s.metrics._sampling_priority_v1, 1, "the agent's rates, not a rule");
      assert.is(s.metrics["_dd.span_sampling.mechanism"], undefined);
    })));

test("DD_TRACE_PROPAGATION_STYLE and DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH invalid: logged, defaults used", () =>
  withEnv({ DD_TRACE_PROPAGATION_STYLE: "zipkin", DD_TRACE_PROPAGATION_STYLE_EXTRACT: ",", DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH: "-1" }, () =>
    withTracer((tracer, _agent, logs) => {
      const styleLines = logs.filter((l) => l.startsWith("DD_TRACE_PROPAGATION_STYLE"));
      assert.is(styleLines.length, 1, `one line about DD_TRACE_PROPAGATION_STYLE: ${logs.join("\n")}`);
      assert.match(styleLines[0], /"zipkin" ignored/);
      logAbout(logs, "DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH");
      const headers: Record<string, string> = {};
      tracer.trace("t", (span) => tracer.inject(span, headers));
      assert.ok(headers["x-datadog-trace-id"] && headers.traceparent, JSON.stringify(headers));
      assert.ok(headers["x-datadog-tags"], "the default 512-character limit");
    })));

test("DD_TRACE_AGENT_URL without a scheme: logged naming the variable, never thrown; the option still throws", async () => {
  await withEnv({ DD_TRACE_AGENT_URL: "localhost:8126" }, async () => {
    const logs: string[] = [];
    const tracer = new Tracer({ logger: (m) => logs.push(m), flushOnExit: false });
    await tracer.shutdown();
    assert.match(logAbout(logs, "DD_TRACE_AGENT_URL"), /"localhost:8126"/);
  });
  const e = await rejects(() => new Tracer({ url: "localhost:8126", logger: () => {} }), Error);
  assert.ok(e instanceof ValidationError || e instanceof TraceExporterError, String(e));
});

test("DD_AGENT_HOST with an invalid DD_TRACE_AGENT_PORT: the port is logged and 8126 used; a valid one is used", async () => {
  await using agent = await TestAgent.start();
  const port = new URL(agent.url).port;
  await withEnv({ DD_AGENT_HOST: "127.0.0.1", DD_TRACE_AGENT_PORT: "http" }, async () => {
    const logs: string[] = [];
    const tracer = new Tracer({ logger: (m) => logs.push(m), flushOnExit: false });
    await tracer.shutdown();
    logAbout(logs, "DD_TRACE_AGENT_PORT");
  });
  await withEnv({ DD_AGENT_HOST: "127.0.0.1", DD_TRACE_AGENT_PORT: port }, async () => {
    const tracer = new Tracer({ logger: () => {}, flushOnExit: false, flushIntervalMs: 600_000 });
    tracer.trace("via.host.port", () => {});
    await tracer.shutdown();
    assert.is((await agent.waitForTraces(1))[0][0].name, "via.host.port");
  });
});

test("DD_SERVICE, DD_ENV, DD_VERSION, DD_TAGS, DD_TEST_SESSION_TOKEN are used; a token the exporter refuses is logged, not thrown", async () => {
  await using agent = await TestAgent.start();
  await withEnv({ DD_SERVICE: "env-svc", DD_ENV: "env-env", DD_VERSION: "9.9", DD_TAGS: "team:a,tier:b", DD_TEST_SESSION_TOKEN: "tok" }, async () => {
    const tracer = new Tracer({ url: agent.url, logger: () => {}, flushOnExit: false, flushIntervalMs: 600_000 });
    assert.is(tracer.service, "env-svc");
    tracer.trace("t", () => {});
    await tracer.shutdown();
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.service, "env-svc");
    assert.is(s.meta.env, "env-env");
    assert.is(s.meta.version, "9.9");
    assert.is(s.meta.team, "a");
    assert.is(s.meta.tier, "b");
    assert.is(agent.requests.find((r) => r.path.startsWith("/v0.4/traces"))!.headers["x-datadog-test-session-token"], "tok");
  });
  agent.reset();
  await withEnv({ DD_TEST_SESSION_TOKEN: "a\r\nX-Evil: 1", DD_SERVICE: " " }, async () => {
    const logs: string[] = [];
    const tracer = new Tracer({ url: agent.url, logger: (m) => logs.push(m), flushOnExit: false, flushIntervalMs: 600_000 });
    assert.is(tracer.service, "unnamed-service", "a blank variable is unset");
    tracer.trace("t", () => {});
    await tracer.shutdown();
    assert.ok(logs.every((l) => !/options\./.test(l)), logs.join("\n"));
    const request = agent.requests.find((r) => r.path.startsWith("/v0.4/traces"));
    if (request) assert.is(request.headers["x-evil"], undefined, "no header injected");
  });
});

for (
  const [options, path] of [
    [{ partialFlushMinSpans: -5 }, "options.partialFlushMinSpans"],
    [{ sampleRate: 5 }, "options.sampleRate"],
    [{ rateLimit: NaN }, "options.rateLimit"],
    [{ samplingRules: [{ name: "a" }] }, "options.samplingRules[0].sample_rate"],
    [{ spanSamplingRules: [{ sample_rate: 2 }] }, "options.spanSamplingRules[0].sample_rate"],
    [{ traceId128BitGeneration: "yes" }, "options.traceId128BitGeneration"],
    [{ propagationStyleInject: 5 } as unknown as TracerOptions, "options.propagationStyleInject"],
    [{ flushIntervalMs: 0 }, "options.flushIntervalMs"],
    [{ flushOnExit: 1 }, "options.flushOnExit"],
    [{ logger: "console" }, "options.logger"],
    [{ service: 5 }, "options.service"],
  ] as [TracerOptions, string][]
) {
  test(`an explicit invalid option still throws a ValidationError: ${path}`, async () => {
    await withEnv({ DD_TRACE_PARTIAL_FLUSH_MIN_SPANS: "7" }, async () => {
      const e = await rejects(() => new Tracer({ logger: () => {}, ...options }), ValidationError);
      assert.is(e.path, path);
    });
  });
}

test.run();
