/**
 * Tracer: trace sampling rules (samplingRules, DD_TRACE_SAMPLING_RULES) and
 * single span sampling rules (spanSamplingRules, DD_SPAN_SAMPLING_RULES,
 * DD_SPAN_SAMPLING_RULES_FILE), end to end through the TestAgent, and
 * against dd-trace-js's own samplers on the same trace ids and rules.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRequire } from "node:module";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { globMatch, sampledByRate, SamplingPriority, type SamplingRuleOptions, Tracer, type TracerOptions, ValidationError } from "../mod.ts";
import type { DecodedSpan } from "../testing.ts";
import { assertNoLeaks } from "./helpers.ts";
import { traceIdOf, withTracer } from "./tracer-helpers.ts";

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

const root = (chunk: DecodedSpan[]) => chunk.find((s) => s.parent_id === 0n) ?? chunk[0];

/** The chunks received, by their root's name. */
async function rootsByName(agent: { waitForTraces(n: number): Promise<DecodedSpan[][]> }, n: number): Promise<Record<string, DecodedSpan>> {
  return Object.fromEntries((await agent.waitForTraces(n)).map((c) => [root(c).name, root(c)]));
}

/** A module of dd-trace-js (a dev dependency: these tests fail without it rather than pass without comparing). */
function ddTrace<T>(path: string): T {
  return createRequire(import.meta.url)(`dd-trace/packages/dd-trace/src/${path}`);
}

test("globMatch: * and ?, whole subject, case-insensitive", () => {
  assert.ok(globMatch("web-*", "web-api"));
  assert.ok(globMatch("web-*", "web-"));
  assert.ok(globMatch("WEB-?PI", "web-api"));
  assert.not.ok(globMatch("web-?", "web-"));
  assert.not.ok(globMatch("web", "web-api"), "the whole subject");
  assert.ok(globMatch("*a*b*", "xxaxxbxx"));
  assert.not.ok(globMatch("*a*b", "xxaxxbxxc"));
  assert.ok(globMatch("a*b*c", "abbbc"));
  assert.ok(globMatch("**", ""));
  assert.not.ok(globMatch("", "a"));
  assert.ok(globMatch("GET /USERS/*", "get /users/42"));
  assert.not.ok(globMatch("a.c", "abc"), "only * and ? are special");
});

test("globMatch agrees with dd-trace-js's globMatch on random patterns", () => {
  const util = ddTrace<{ globMatch(p: string, s: string): boolean }>("util.js");
  const alphabet = ["a", "b", "A", "*", "?", ".", "é"];
  const pick = (n: number, chars: string[]) => Array.from({ length: n }, () => chars[Math.floor(Math.random() * chars.length)]).join("");
  for (let i = 0; i < 3000; i++) {
    const pattern = pick(Math.floor(Math.random() * 6), alphabet);
    const subject = pick(Math.floor(Math.random() * 7), ["a", "b", "B", ".", "é", "*"]);
    assert.is(globMatch(pattern, subject), util.globMatch(pattern, subject), `${JSON.stringify(pattern)} on ${JSON.stringify(subject)}`);
  }
});

test("trace rules decide on the local root (service, name, resource, tags), in order, before the agent's rates", () =>
  withTracer(async (tracer, agent) => {
    tracer.trace("fetches.rates", () => {});
    await tracer.flush();
    await agent.waitForTraces(1);
    agent.reset();
    tracer.trace("web.request", { service: "web-api", resource: "GET /users/:id" }, () => tracer.trace("db.query", { service: "pg" }, () => {}));
    tracer.trace("web.request", { service: "web-api", resource: "GET /health" }, () => {});
    tracer.trace("job", { tags: { "http.status_code": 503, queue: "EMAILS" } }, () => {});
    tracer.trace("job.ok", { tags: { "http.status_code": 200 } }, () => {});
    tracer.trace("unmatched", () => tracer.trace("child", { service: "web-api", resource: "GET /health" }, () => {}));
    await tracer.flush();
    const roots = Object.fromEntries((await agent.waitForTraces(5)).map((c) => {
      const r = root(c);
      return [r.resource === "GET /health" ? "health" : r.name, r];
    }));
    const check = (key: string, priority: number, dm: string | undefined, rulePsr: number | undefined) => {
      const s = roots[key];
      assert.is(s.metrics._sampling_priority_v1, priority, key);
      assert.is(s.meta["_dd.p.dm"], dm, key);
      assert.is(s.metrics["_dd.rule_psr"], rulePsr, key);
    };
    // The first rule that matches decides, even if a later one would keep.
    check("health", SamplingPriority.USER_REJECT, undefined, 0);
    check("web.request", SamplingPriority.USER_KEEP, "-3", 1);
    assert.is(roots["web.request"].metrics["_dd.limit_psr"], 1);
    assert.is(roots["web.request"].metrics["_dd.agent_psr"], undefined);
    check("job", SamplingPriority.USER_KEEP, "-3", 1);
    check("job.ok", SamplingPriority.USER_REJECT, undefined, 0);
    // No rule matches the root (a child's resource does not count): the agent's rate 0.
    check("unmatched", SamplingPriority.AUTO_REJECT, undefined, undefined);
    assert.is(roots.unmatched.metrics["_dd.agent_psr"], 0);
  }, {
    samplingRules: [
      { service: "web-*", resource: "GET /health*", sample_rate: 0 },
      { service: "WEB-???", name: "web.*", sample_rate: 1 },
      { tags: { "http.status_code": "5??", queue: "emails" }, sample_rate: 1 },
      { tags: { "http.status_code": "2*" }, sampleRate: 0 },
      { service: "web-api", sample_rate: 0 },
    ],
  }, { rates: { "service:,env:": 0 } }));

test("a rule's sample_rate keeps exactly the traces whose id Knuth-samples in", () =>
  withTracer(async (tracer, agent) => {
    for (let i = 0; i < 200; i++) tracer.trace("sampled", () => {});
    await tracer.flush();
    let kept = 0;
    for (const chunk of await agent.waitForTraces(200)) {
      const s = root(chunk);
      const keep = sampledByRate(traceIdOf(s), 0.4);
      assert.is(s.metrics._sampling_priority_v1, keep ? 2 : -1);
      assert.is(s.metrics["_dd.rule_psr"], 0.4);
      assert.is(s.metrics["_dd.limit_psr"], keep ? 1 : undefined, "the limiter is consulted only for kept traces");
      if (keep) kept++;
    }
    assert.ok(kept > 40 && kept < 130, `about 40% kept: ${kept}`);
  }, { samplingRules: [{ name: "sampled", sample_rate: 0.4 }], rateLimit: 1000 }));

test("rules see the root's final resource and tags when the trace is sent whole; an inject decides on the root as it is then", () =>
  withTracer(async (tracer, agent) => {
    tracer.trace("late.tags", (span) => {
      tracer.trace("child", () => {});
      span.setTag("resource.name", "POST /checkout");
      span.setTag("tenant", "acme");
    });
    tracer.trace("injected", (span) => {
      tracer.inject(span, {}); // decided now: no tenant tag yet
      span.setTag("resource.name", "POST /checkout");
      span.setTag("tenant", "acme");
    });
    await tracer.flush();
    const roots = await rootsByName(agent, 2);
    assert.is(roots["late.tags"].metrics._sampling_priority_v1, 2);
    assert.is(roots["late.tags"].metrics["_dd.rule_psr"], 1);
    assert.is(roots.injected.metrics._sampling_priority_v1, -1, "the catch-all rule (sampleRate 0) decided at the inject");
    assert.is(roots.injected.metrics["_dd.rule_psr"], 0);
  }, { samplingRules: [{ resource: "post /*", tags: { tenant: "ACME" }, sample_rate: 1 }], sampleRate: 0 }));

test("a partial flush before the root finished decides on the root as it is then; a renamed root is matched by its final name", () =>
  withTracer(async (tracer, agent) => {
    const partial = tracer.startSpan("partial");
    tracer.startSpan("a", { childOf: partial }).finish();
    tracer.startSpan("b", { childOf: partial }).finish(); // 2 finished spans: a chunk is sent, the trace decided
    partial.setTag("tenant", "acme");
    partial.finish();
    const renamed = tracer.startSpan("before");
    renamed.setOperationName("renamed.root");
    renamed.finish();
    await tracer.flush();
    const spans = (await agent.waitForTraces(3)).flat();
    const byName = Object.fromEntries(spans.map((s) => [s.name, s]));
    for (const name of ["a", "b", "partial"]) assert.is(byName[name].metrics._sampling_priority_v1, -1, `${name}: the catch-all rule decided at the partial flush`);
    assert.is(byName["renamed.root"].metrics._sampling_priority_v1, 2);
  }, { partialFlushMinSpans: 2, samplingRules: [{ tags: { tenant: "acme" }, sample_rate: 1 }, { name: "renamed.*", sample_rate: 1 }], sampleRate: 0 }));

test("sampleRate is a catch-all rule after the rules; tag rules see numbers, tracer tags, and '*' matches a missing tag", () =>
  withTracer(async (tracer, agent) => {
    tracer.trace("integer", { tags: { retries: 3 } }, () => {});
    tracer.trace("float", { tags: { ratio: 0.5 } }, () => {});
    tracer.trace("zero", { tags: { retries: 0 } }, () => {});
    tracer.trace("team", () => {});
    tracer.trace("other", () => {});
    await tracer.flush();
    const roots = await rootsByName(agent, 5);
    assert.is(roots.integer.metrics._sampling_priority_v1, -1, "3 matched as \"3\"");
    assert.is(roots.float.metrics._sampling_priority_v1, -1, "a non-integer matches only a pattern of stars");
    assert.is(roots.zero.metrics._sampling_priority_v1, 2, "0 never matches (dd-trace-js: a falsy value), the catch-all keeps");
    assert.is(roots.team.metrics._sampling_priority_v1, -1, "DD_TAGS / tags option and env are the span's tags too");
    assert.is(roots.other.metrics._sampling_priority_v1, 2);
    assert.is(roots.other.metrics["_dd.rule_psr"], 1);
    assert.is(roots.other.meta["_dd.p.dm"], "-3");
  }, {
    tags: { team: "payments" },
    samplingRules: [
      { name: "integer", tags: { retries: "?" }, sample_rate: 0 },
      { name: "float", tags: { ratio: "****", missing: "*" }, sample_rate: 0 },
      { name: "zero", tags: { retries: "*?*" }, sample_rate: 0 },
      { name: "team", tags: { team: "pay*", env: "test" }, sample_rate: 0 },
    ],
    sampleRate: 1,
  }));

test("the rate limit caps what rules keep (_dd.limit_psr); a rule's max_per_second limits it alone, without _dd.limit_psr", () =>
  withTracer(async (tracer, agent) => {
    for (let i = 0; i < 10; i++) tracer.trace("global", () => {});
    for (let i = 0; i < 10; i++) tracer.trace("own", () => {});
    await tracer.flush();
    const chunks = (await agent.waitForTraces(20)).map(root);
    const global = chunks.filter((s) => s.name === "global");
    const own = chunks.filter((s) => s.name === "own");
    // Within one second (the window starts at the first decision), the first 4 pass the global limit.
    assert.equal(global.map((s) => s.metrics._sampling_priority_v1), [2, 2, 2, 2, -1, -1, -1, -1, -1, -1]);
    assert.equal(global.map((s) => s.metrics["_dd.limit_psr"]), [1, 1, 1, 1, 4 / 5, 4 / 6, 4 / 7, 4 / 8, 4 / 9, 4 / 10]);
    assert.ok(global.every((s) => s.metrics["_dd.rule_psr"] === 1));
    // The rule's own limit (2 per second) refuses before the global one (none left anyway).
    assert.equal(own.map((s) => s.metrics._sampling_priority_v1), [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1]);
    assert.equal(own.slice(0, 2).map((s) => s.metrics["_dd.limit_psr"]), [4 / 11, 4 / 12], "allowed by the rule, refused by the global limit");
    assert.ok(own.slice(2).every((s) => s.metrics["_dd.limit_psr"] === undefined), "refused by the rule's own limit");
  }, { rateLimit: 4, samplingRules: [{ name: "own", sample_rate: 1, max_per_second: 2 }, { sample_rate: 1 }] }));

test("single span sampling: spans of a rejected trace matched by a span rule get mechanism 8, rule rate, max per second", () =>
  withTracer(async (tracer, agent) => {
    for (let i = 0; i < 6; i++) {
      tracer.trace("dropped", () => {
        tracer.trace("db.query", { service: "pg" }, () => {});
        tracer.trace("cache.get", () => {});
        tracer.trace("other", () => {});
      });
    }
    tracer.trace("kept", { tags: { keep: "yes" } }, () => tracer.trace("db.query", { service: "pg" }, () => {}));
    await tracer.flush();
    const chunks = await agent.waitForTraces(7);
    let db = 0;
    for (const chunk of chunks) {
      const r = root(chunk);
      if (r.name === "kept") {
        assert.is(r.metrics._sampling_priority_v1, 2);
        for (const s of chunk) assert.is(s.metrics["_dd.span_sampling.mechanism"], undefined, "a kept trace gets no span sampling");
        continue;
      }
      const id = traceIdOf(r);
      for (const s of chunk) {
        assert.is(s.metrics._sampling_priority_v1, -1, "the trace's priority is unchanged");
        const m = s.metrics;
        if (s.name === "db.query" && m["_dd.span_sampling.mechanism"] !== undefined) {
          db++;
          assert.is(m["_dd.span_sampling.mechanism"], 8);
          assert.is(m["_dd.span_sampling.rule_rate"], 1);
          assert.is(m["_dd.span_sampling.max_per_second"], 3);
        } else if (s.name === "cache.get") {
          const keep = sampledByRate(id, 0.5);
          assert.is(m["_dd.span_sampling.mechanism"], keep ? 8 : undefined, "the Knuth hash of the trace id, as dd-trace-js");
          assert.is(m["_dd.span_sampling.rule_rate"], keep ? 0.5 : undefined);
          assert.is(m["_dd.span_sampling.max_per_second"], undefined, "no limit, no tag");
        } else if (s.name !== "db.query") {
          assert.is(m["_dd.span_sampling.mechanism"], undefined, s.name);
        }
      }
    }
    assert.is(db, 3, "max_per_second: 3 of the 6 db.query spans");
  }, {
    samplingRules: [{ tags: { keep: "yes" }, sample_rate: 1 }, { sample_rate: 0 }],
    spanSamplingRules: [{ service: "p?", name: "DB.*", max_per_second: 3 }, { name: "cache.*", sample_rate: 0.5 }],
  }));

test("single span sampling applies to traces the agent's rates reject (priority 0) too", () =>
  withTracer(async (tracer, agent) => {
    tracer.trace("warmup", () => {});
    await tracer.flush();
    await agent.waitForTraces(1);
    agent.reset();
    tracer.trace("rejected", () => tracer.trace("interesting", () => {}));
    await tracer.flush();
    const [chunk] = await agent.waitForTraces(1);
    const byName = Object.fromEntries(chunk.map((s) => [s.name, s]));
    assert.is(byName.rejected.metrics._sampling_priority_v1, 0);
    assert.is(byName.interesting.metrics["_dd.span_sampling.mechanism"], 8);
    assert.is(byName.rejected.metrics["_dd.span_sampling.mechanism"], undefined);
  }, { spanSamplingRules: [{ name: "interesting" }] }, { rates: { "service:,env:": 0 } }));

test("DD_TRACE_SAMPLING_RULES and DD_SPAN_SAMPLING_RULES are read; the options win over them", () =>
  withEnv({
    DD_TRACE_SAMPLING_RULES: JSON.stringify([{ name: "from.env", sample_rate: 0 }]),
    DD_SPAN_SAMPLING_RULES: JSON.stringify([{ name: "child", sample_rate: 1, max_per_second: 50 }]),
  }, async () => {
    await withTracer(async (tracer, agent, logs) => {
      tracer.trace("from.env", () => tracer.trace("child", () => {}));
      await tracer.flush();
      const [chunk] = await agent.waitForTraces(1);
      const byName = Object.fromEntries(chunk.map((s) => [s.name, s]));
      assert.is(byName["from.env"].metrics._sampling_priority_v1, -1);
      assert.is(byName.child.metrics["_dd.span_sampling.max_per_second"], 50);
      assert.equal(logs, []);
    });
    await withTracer(async (tracer, agent) => {
      tracer.trace("from.env", () => tracer.trace("child", () => {}));
      await tracer.flush();
      const [chunk] = await agent.waitForTraces(1);
      assert.is(root(chunk).metrics._sampling_priority_v1, 2, "the option's rules");
      assert.ok(chunk.every((s) => s.metrics["_dd.span_sampling.mechanism"] === undefined), "an empty option: no span rules");
    }, { samplingRules: [{ sample_rate: 1 }], spanSamplingRules: [] });
  }));

test("DD_SPAN_SAMPLING_RULES_FILE is read; DD_SPAN_SAMPLING_RULES wins over it (logged); an unreadable file is logged", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dd-span-rules-"));
  try {
    const file = join(dir, "rules.json");
    writeFileSync(file, JSON.stringify([{ name: "from.file", sample_rate: 1 }]));
    await withEnv({ DD_SPAN_SAMPLING_RULES_FILE: file }, () =>
      withTracer(async (tracer, agent, logs) => {
        tracer.trace("from.file", () => {});
        await tracer.flush();
        const [[s]] = await agent.waitForTraces(1);
        assert.is(s.metrics._sampling_priority_v1, -1);
        assert.is(s.metrics["_dd.span_sampling.mechanism"], 8);
        assert.equal(logs, []);
      }, { sampleRate: 0 }));
    await withEnv({ DD_SPAN_SAMPLING_RULES_FILE: file, DD_SPAN_SAMPLING_RULES: "[]" }, () =>
      withTracer(async (tracer, agent, logs) => {
        assert.ok(logs.some((l) => l.startsWith("DD_SPAN_SAMPLING_RULES_FILE is ignored: DD_SPAN_SAMPLING_RULES is set")), logs.join("\n"));
        tracer.trace("from.file", () => {});
        await tracer.flush();
        const [[s]] = await agent.waitForTraces(1);
        assert.is(s.metrics["_dd.span_sampling.mechanism"], undefined);
      }, { sampleRate: 0 }));
    writeFileSync(file, JSON.stringify([{ name: "from.file", sample_rate: "1" }]));
    await withEnv({ DD_SPAN_SAMPLING_RULES_FILE: file }, () =>
      withTracer((_tracer, _agent, logs) => {
        assert.is(logs.length, 1, logs.join("\n"));
        assert.match(logs[0], /^DD_SPAN_SAMPLING_RULES_FILE=".*rules\.json" is invalid \(the file's content: \[0\]\.sample_rate: expected a number in \[0, 1\], got "1"\): ignored/);
      }));
    await withEnv({ DD_SPAN_SAMPLING_RULES_FILE: join(dir, "absent.json") }, () =>
      withTracer((_tracer, _agent, logs) => {
        assert.is(logs.length, 1, logs.join("\n"));
        assert.match(logs[0], /^DD_SPAN_SAMPLING_RULES_FILE=".*absent\.json" is invalid \(the file cannot be read: /);
      }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (
  const [text, problem] of [
    ["[{\"sample_rate\": 0.5", /not JSON/],
    ["{\"sample_rate\": 0.5}", /expected an array of rules, got an object/],
    ["[{\"service\": \"a\"}]", /\[0\]\.sample_rate: missing: a trace sampling rule needs a sample rate in \[0, 1\]/],
    ["[{\"sample_rate\": 1}, {\"sample_rate\": 1.5}]", /\[1\]\.sample_rate: expected a number in \[0, 1\], got 1\.5/],
    ["[{\"service\": 5, \"sample_rate\": 1}]", /\[0\]\.service: expected a glob string, got 5/],
    ["[{\"tags\": {\"a\": 1}, \"sample_rate\": 1}]", /\[0\]\.tags\["a"\]: expected a glob string, got 1/],
    ["[{\"sevice\": \"a\", \"sample_rate\": 1}]", /\[0\]\.sevice: unknown field/],
    ["[{\"sample_rate\": 1, \"max_per_second\": \"5\"}]", /\[0\]\.max_per_second: expected a number, got "5"/],
  ] as const
) {
  test(`DD_TRACE_SAMPLING_RULES=${text}: logged naming the variable and the field; no rules used`, () =>
    withEnv({ DD_TRACE_SAMPLING_RULES: text }, () =>
      withTracer(async (tracer, agent, logs) => {
        assert.is(logs.length, 1, logs.join("\n"));
        assert.match(logs[0], /^DD_TRACE_SAMPLING_RULES=.* is invalid \(/);
        assert.match(logs[0], problem);
        assert.match(logs[0], /ignored, the default is used$/);
        tracer.trace("t", { service: "a" }, () => {});
        await tracer.flush();
        const [[s]] = await agent.waitForTraces(1);
        assert.is(s.metrics._sampling_priority_v1, 1, "the agent's rates decide");
        assert.is(s.meta["_dd.p.dm"], "-0");
      })));
}

for (
  const [options, path] of [
    [{ samplingRules: { sample_rate: 1 } }, "options.samplingRules"],
    [{ samplingRules: [null] }, "options.samplingRules[0]"],
    [{ samplingRules: [{ name: "a" }] }, "options.samplingRules[0].sample_rate"],
    [{ samplingRules: [{ sample_rate: 1 }, { sampleRate: -0.1 }] }, "options.samplingRules[1].sampleRate"],
    [{ samplingRules: [{ sample_rate: NaN }] }, "options.samplingRules[0].sample_rate"],
    [{ samplingRules: [{ resource: /x/, sample_rate: 1 }] }, "options.samplingRules[0].resource"],
    [{ samplingRules: [{ tags: ["a"], sample_rate: 1 }] }, "options.samplingRules[0].tags"],
    [{ spanSamplingRules: [{ name: "a", sample_rate: 2 }] }, "options.spanSamplingRules[0].sample_rate"],
    [{ spanSamplingRules: [{ maxPerSecond: "5" }] }, "options.spanSamplingRules[0].maxPerSecond"],
    [{ spanSamplingRules: [{ provenance: "customer" }] }, "options.spanSamplingRules[0].provenance"],
  ] as unknown as [TracerOptions, string][]
) {
  test(`an invalid rule option throws a ValidationError naming the field: ${path}`, async () => {
    let error: unknown;
    try {
      const tracer = new Tracer({ logger: () => {}, flushOnExit: false, enabled: false, ...options });
      await tracer.shutdown();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ValidationError, String(error));
    assert.is((error as ValidationError).path, path);
  });
}

// ——— The same decisions as dd-trace-js's own samplers ———

interface DdSpan {
  context(): DdContext;
  tracer(): { _service: string };
}
interface DdContext {
  _name: string;
  _tags: Record<string, unknown>;
  _traceId: { toBigInt(): bigint };
  _sampling: { priority?: number; mechanism?: number };
  _trace: { started: DdSpan[]; tags: Record<string, string>; [key: string]: unknown };
  _spanSampling?: { sampleRate: number; maxPerSecond?: number };
  getTag(key: string): unknown;
  getTags(): Record<string, unknown>;
}
type DdPrioritySampler = new (env: string, config: object) => { sample(span: DdSpan): void };
type DdSpanSampler = new (config: object) => { sample(context: DdContext): void };

/**
 * A dd-trace-js span of a trace, with what its span context holds: name,
 * tags (service.name, resource.name and the tracer's tags among them), trace
 * id. Not the `service` tag that dd-trace-js's tracer adds to every span
 * from its config (the tracer's service), which its service locator reads
 * before `service.name`: with it, its rules on `service` see the tracer's
 * service on every span, where ours see the span's (a documented
 * difference, see `RuleSubject` in src/tracer/sampling-rules.ts).
 */
function ddSpan(s: DecodedSpan, traceId: bigint, trace: DdContext["_trace"], tracerTags: Record<string, string>): DdSpan {
  const tags: Record<string, unknown> = { ...tracerTags, "service.name": s.service, "resource.name": s.resource };
  for (const [k, v] of Object.entries(s.meta)) if (!k.startsWith("_dd.") && k !== "language" && k !== "runtime-id") tags[k] = v;
  for (const [k, v] of Object.entries(s.metrics)) if (!k.startsWith("_")) tags[k] = v;
  const context: DdContext = {
    _name: s.name,
    _tags: tags,
    _traceId: { toBigInt: () => traceId & ((1n << 64n) - 1n) },
    _sampling: {},
    _trace: trace,
    getTag: (key) => tags[key],
    getTags: () => tags,
  };
  const span = { context: () => context, tracer: () => ({ _service: "svc" }) };
  trace.started.push(span);
  return span;
}

const NAMES = ["web.request", "db.query", "cache.get", "Web.Request"];
const SERVICES = ["web-api", "web-admin", "pg", "svc"];
const RESOURCES = ["GET /users/:id", "GET /health", "POST /checkout", "get /USERS/7"];

/** Random spans from a small vocabulary, so that every rule matches some. */
function randomSpanOptions() {
  const pick = <T>(a: readonly T[]) => a[Math.floor(Math.random() * a.length)];
  const tags: Record<string, unknown> = { tier: pick(["gold", "silver", "Gold"]) };
  if (Math.random() < 0.5) tags["http.status_code"] = pick([200, 404, 503]);
  if (Math.random() < 0.3) tags.retries = pick([0, 1, 12, 2.5]);
  return { name: pick(NAMES), options: { service: pick(SERVICES), resource: pick(RESOURCES), tags } };
}

const TRACE_RULES: SamplingRuleOptions[] = [
  { service: "web-*", resource: "GET /health", sample_rate: 0 },
  { name: "WEB.REQUEST", tags: { tier: "gold" }, sample_rate: 0.7 },
  { tags: { "http.status_code": "5??" }, sample_rate: 1 },
  { tags: { retries: "*?" }, sample_rate: 0.2 },
  { tags: { retries: "****" }, sample_rate: 0.9 },
  { service: "p?", name: "db.*", resource: "*", sample_rate: 0.3 },
  { resource: "get /users/*", sample_rate: 0.5 },
];
const SPAN_RULES: SamplingRuleOptions[] = [
  { service: "pg", name: "db.query", sample_rate: 0.6 },
  { name: "cache.*", tags: { tier: "SILVER" }, sample_rate: 1, max_per_second: 1000 },
  { resource: "*checkout", sample_rate: 0.25 },
];

test("the same trace and span decisions as dd-trace-js's PrioritySampler and SpanSampler, on the same trace ids and rules", () =>
  withTracer(async (tracer, agent) => {
    const PrioritySampler = ddTrace<DdPrioritySampler>("priority_sampler.js");
    const SpanSampler = ddTrace<DdSpanSampler>("span_sampler.js");
    const N = 400;
    for (let i = 0; i < N; i++) {
      const r = randomSpanOptions();
      tracer.trace(r.name, r.options, () => {
        for (let j = 0; j < 2; j++) {
          const c = randomSpanOptions();
          tracer.trace(c.name, c.options, () => {});
        }
      });
    }
    await tracer.flush();
    const chunks = await agent.waitForTraces(N);
    const toRules = (rules: object[]) => JSON.parse(JSON.stringify(rules).replaceAll("sample_rate", "sampleRate").replaceAll("max_per_second", "maxPerSecond"));
    const theirs = new PrioritySampler("test", { rules: toRules(TRACE_RULES), rateLimit: -1 });
    const theirSpans = new SpanSampler({ spanSamplingRules: toRules(SPAN_RULES) });
    const tracerTags = { env: "test", version: "1.2.3" };
    const seen = { rule: 0, agent: 0, kept: 0, spanKept: 0 };
    for (const chunk of chunks) {
      const ours = root(chunk);
      const id = traceIdOf(ours);
      const trace: DdContext["_trace"] = { started: [], tags: {} };
      const rootSpan = ddSpan(ours, id, trace, tracerTags);
      const children = chunk.filter((s) => s !== ours).map((s) => [s, ddSpan(s, id, trace, tracerTags)] as const);
      theirs.sample(rootSpan);
      const context = rootSpan.context();
      const where = `${ours.name} ${ours.service} ${ours.resource} ${JSON.stringify(ours.metrics)} ${JSON.stringify(ours.meta)}`;
      assert.is(ours.metrics._sampling_priority_v1, context._sampling.priority, where);
      assert.is(ours.meta["_dd.p.dm"], trace.tags["_dd.p.dm"], where);
      assert.is(ours.metrics["_dd.rule_psr"], trace["_dd.rule_psr"], where);
      assert.is(ours.metrics["_dd.limit_psr"], trace["_dd.limit_psr"], where);
      assert.is(ours.metrics["_dd.agent_psr"], trace["_dd.agent_psr"], where);
      theirSpans.sample(context);
      for (const [s, span] of [[ours, rootSpan] as const, ...children]) {
        const expected = span.context()._spanSampling;
        assert.is(s.metrics["_dd.span_sampling.mechanism"], expected ? 8 : undefined, `${s.name} ${s.service} ${s.resource} ${s.meta.tier}`);
        assert.is(s.metrics["_dd.span_sampling.rule_rate"], expected?.sampleRate);
        assert.is(s.metrics["_dd.span_sampling.max_per_second"], expected?.maxPerSecond);
        if (expected) seen.spanKept++;
      }
      if (ours.metrics["_dd.rule_psr"] !== undefined) seen.rule++;
      else seen.agent++;
      if (ours.metrics._sampling_priority_v1 > 0) seen.kept++;
    }
    assert.ok(seen.rule > 0 && seen.agent > 0 && seen.kept > 0 && seen.kept < N && seen.spanKept > 0, JSON.stringify(seen));
  }, { samplingRules: TRACE_RULES, spanSamplingRules: SPAN_RULES, rateLimit: -1, flushThresholdBytes: 32 << 20 }));

test("the rate limiter keeps the same traces as dd-trace-js's within a second; with sampleRate, dd-trace-js's own limit on the catch-all rule refuses first (no _dd.limit_psr)", () =>
  withTracer(async (tracer, agent) => {
    const PrioritySampler = ddTrace<DdPrioritySampler>("priority_sampler.js");
    for (let i = 0; i < 12; i++) tracer.trace(i < 6 ? "ruled" : "global", () => {});
    await tracer.flush();
    const roots = (await agent.waitForTraces(12)).map(root);
    // Built right before deciding, so that both limiters' windows start together.
    const theirs = new PrioritySampler("test", { rules: [{ name: "ruled", sampleRate: 1 }], sampleRate: 1, rateLimit: 5 });
    for (const ours of roots) {
      const trace: DdContext["_trace"] = { started: [], tags: {} };
      const span = ddSpan(ours, traceIdOf(ours), trace, {});
      theirs.sample(span);
      assert.is(ours.metrics._sampling_priority_v1, span.context()._sampling.priority, ours.name);
      assert.is(ours.metrics["_dd.rule_psr"], trace["_dd.rule_psr"]);
      if (trace["_dd.limit_psr"] !== undefined) assert.is(ours.metrics["_dd.limit_psr"], trace["_dd.limit_psr"]);
    }
    assert.equal(roots.map((s) => s.metrics._sampling_priority_v1), [2, 2, 2, 2, 2, -1, -1, -1, -1, -1, -1, -1]);
    // dd-trace-js's catch-all rule has its own limit of 5, used up by the 6th "global" trace: refused before the tracer's limiter.
    assert.is(roots[11].metrics["_dd.limit_psr"], 5 / 12, "ours records the limiter's effective rate on every trace it refused");
  }, { samplingRules: [{ name: "ruled", sample_rate: 1 }], sampleRate: 1, rateLimit: 5 }));

test.run();
