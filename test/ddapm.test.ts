/**
 * Conformance with Datadog's own test agent (ddapm-test-agent, see
 * test/ddapm.ts): every span field, 128-bit ids, links, events, meta_struct,
 * many chunks, the Tracer's traces with their sampling tags, and the demo go
 * through it. For each, its trace checks report no failure
 * (`/test/trace_check/failures` answers 200), and the traces it decoded for
 * the test's session (`/test/session/traces`) are exactly the ones sent.
 *
 * The expected wire form of a span is written out here from libdatadog's
 * v0.4 encoder rules (libdd-trace-utils msgpack_encoder/v04/span_v04.rs):
 * trace_id is the low 64 bits, the high 64 bits go in meta `_dd.p.tid`;
 * parent_id, error, type and empty maps/lists are omitted; a link always has
 * trace_id_high, and omits empty attributes and tracestate and a zero flags;
 * event attributes are `{type, <kind>_value}`; meta_struct values are
 * msgpack, which the agent decodes.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decode, encode } from "@msgpack/msgpack";
import { double, type Span, type SpanEventAttribute, TraceExporter, Tracer } from "../mod.ts";
import { type AgentSpan, DdapmAgent } from "./ddapm.ts";
import { EXPORT_MARKER } from "../testing.ts";
import { assertNoLeaks, bundled } from "./helpers.ts";
import { runtimeName } from "./tracer-helpers.ts";

// One agent for the file; uvu does not show a hook's error, so each test throws it.
let agent: DdapmAgent;
let startError: unknown;
test.before(async () => {
  try {
    agent = await DdapmAgent.start();
  } catch (e) {
    startError = e;
  }
});
test.after(async () => {
  await agent?.close();
});
test.after.each(assertNoLeaks);

let sessions = 0;
/** A fresh test session on the agent; returns its token. */
async function session(): Promise<string> {
  if (startError) throw startError;
  const token = `ddffi-${runtimeName}-${Date.now()}-${++sessions}`;
  await agent.startSession(token);
  return token;
}

const U64 = (1n << 64n) - 1n;

/** A value as compared: every integer as a number when it is safe, else a bigint. */
function norm(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v;
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  }
  return v;
}

/** An event attribute as libdatadog puts it on the wire. */
function wireAttribute(v: SpanEventAttribute): unknown {
  const one = (x: unknown, asDouble: boolean): unknown => {
    if (typeof x === "string") return { type: 0, string_value: x };
    if (typeof x === "boolean") return { type: 1, bool_value: x };
    if (typeof x === "bigint") return { type: 2, int_value: x };
    const n = x as number;
    return asDouble || !Number.isSafeInteger(n) ? { type: 3, double_value: n } : { type: 2, int_value: n };
  };
  if (v && typeof v === "object" && "double" in v) {
    const d = v.double;
    return Array.isArray(d) ? { type: 4, array_value: { values: d.map((x) => one(x, true)) } } : one(d, true);
  }
  if (Array.isArray(v)) {
    const asDouble = v.some((x) => typeof x === "number" && !Number.isSafeInteger(x));
    return { type: 4, array_value: { values: v.map((x) => one(x, asDouble)) } };
  }
  return one(v, false);
}

/**
 * A span as the agent decodes it off the wire (see the file's comment);
 * `first`: the first span of its chunk, which libdatadog 14 (the bundled
 * library) marks with meta `_dd.sdk.otlp_export: "false"`.
 */
function wire(s: Span, first: boolean): Record<string, unknown> {
  const w: Record<string, unknown> = {
    service: s.service,
    name: s.name,
    resource: s.resource ?? s.name,
    trace_id: s.traceId & U64,
    span_id: s.spanId,
    start: BigInt(s.start),
    duration: BigInt(s.duration),
  };
  if (s.parentId) w.parent_id = s.parentId;
  const error = Number(s.error ?? 0);
  if (error) w.error = error;
  const meta: Record<string, string> = { ...s.meta };
  const high = s.traceId >> 64n;
  if (high) meta["_dd.p.tid"] = high.toString(16).padStart(16, "0");
  if (first && bundled) meta[EXPORT_MARKER] = "false";
  if (Object.keys(meta).length > 0) w.meta = meta;
  if (s.metrics && Object.keys(s.metrics).length > 0) w.metrics = s.metrics;
  if (s.type) w.type = s.type;
  if (s.metaStruct && Object.keys(s.metaStruct).length > 0) {
    w.meta_struct = Object.fromEntries(
      Object.entries(s.metaStruct).map(([k, v]) => [k, v instanceof Uint8Array ? decode(v, { useBigInt64: true }) : v]),
    );
  }
  if (s.links?.length) {
    w.span_links = s.links.map((l) => {
      const link: Record<string, unknown> = { trace_id: l.traceId & U64, trace_id_high: l.traceId >> 64n, span_id: l.spanId };
      if (l.attributes && Object.keys(l.attributes).length > 0) link.attributes = l.attributes;
      if (l.tracestate) link.tracestate = l.tracestate;
      if (l.flags) link.flags = l.flags;
      return link;
    });
  }
  if (s.events?.length) {
    w.span_events = s.events.map((e) => {
      const event: Record<string, unknown> = { time_unix_nano: BigInt(e.time), name: e.name };
      if (e.attributes && Object.keys(e.attributes).length > 0) {
        event.attributes = Object.fromEntries(Object.entries(e.attributes).map(([k, v]) => [k, wireAttribute(v)]));
      }
      return event;
    });
  }
  return w;
}

const bySpanId = (a: Record<string, unknown>, b: Record<string, unknown>) => {
  const x = BigInt(a.span_id as bigint), y = BigInt(b.span_id as bigint);
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Asserts the agent's trace checks passed for `token`. */
async function assertChecksPass(token: string): Promise<void> {
  const f = await agent.checkFailures(token);
  assert.is(f.status, 200, `trace checks failed: ${f.text}`);
}

/** Asserts the session's traces are exactly `expected` spans (compared by span id), grouped by trace id as the agent groups them. */
function assertSameSpans(got: AgentSpan[][], expected: Record<string, unknown>[]): void {
  const traceIds = new Set(expected.map((s) => s.trace_id));
  assert.is(got.length, traceIds.size, "traces (the agent groups spans by trace id)");
  for (const trace of got) {
    for (const s of trace) assert.is(s.trace_id, trace[0].trace_id, "one trace id per trace");
  }
  assert.equal(norm([...got.flat()].sort(bySpanId)), norm([...expected].sort(bySpanId)));
}

/** Sends `traces` through a TraceExporter with a fresh session; asserts the checks pass and the agent has exactly them. */
async function roundTrip(traces: Span[][]): Promise<AgentSpan[][]> {
  const token = await session();
  const exporter = new TraceExporter({ url: agent.url, testSessionToken: token });
  try {
    await exporter.send(traces);
  } finally {
    await exporter.close();
  }
  await assertChecksPass(token);
  const got = await agent.traces(token);
  assertSameSpans(got, traces.flatMap((chunk) => chunk.map((s, i) => wire(s, i === 0))));
  return got;
}

const START = 1_700_000_000_000_000_000n;

test("every span field", async () => {
  await roundTrip([[
    {
      name: "http.request", service: "web", resource: "GET /users/:id", type: "web",
      traceId: 0x0102030405060708n, spanId: 0x10n, start: START, duration: 1_500_000n, error: 1,
      meta: { "http.method": "GET", "http.url": "http://x/users/1", "span.kind": "server", "unicode": "żółw 🐢", "empty": "" },
      metrics: { "_sampling_priority_v1": 1, "ratio": 0.25, "negative": -3, "big": 1e300, "tiny": 5e-324 },
    },
    {
      name: "db.query", service: "db", traceId: 0x0102030405060708n, spanId: 0x11n, parentId: 0x10n,
      start: START + 10n, duration: 0n, error: false,
    },
    {
      name: "max", service: "s", resource: "r", traceId: 0x0102030405060708n, spanId: U64, parentId: U64 - 1n,
      start: 2n ** 63n - 1n, duration: 2n ** 62n, error: true,
    },
  ]]);
});

test("128-bit trace ids: low 64 bits as trace_id, the high 64 bits in _dd.p.tid", async () => {
  await roundTrip([
    [{ name: "a", service: "s", traceId: (0x1112131415161718n << 64n) | 0xf102030405060708n, spanId: 1n, start: START, duration: 1n }],
    [{ name: "b", service: "s", traceId: (1n << 64n) | 2n, spanId: 2n, start: START, duration: 1n, meta: { k: "v" } }],
    [{ name: "c", service: "s", traceId: (1n << 128n) - 1n, spanId: 3n, start: START, duration: 1n }],
  ]);
});

test("span links: 128-bit ids, attributes, tracestate, flags (bit 31 kept), and bare links", async () => {
  await roundTrip([[{
    name: "linked", service: "s", traceId: 7n, spanId: 70n, start: START, duration: 5n,
    links: [
      { traceId: (0xabn << 64n) | 0xcdn, spanId: 0xefn, attributes: { "link.kind": "follows_from", "x": "y" }, tracestate: "dd=s:1,other=v", flags: 0x80000001 },
      { traceId: 9n, spanId: 90n },
      { traceId: U64, spanId: U64, flags: 1 },
    ],
  }]]);
});

test("span events: every attribute type, arrays of each, several events", async () => {
  await roundTrip([[{
    name: "evented", service: "s", traceId: 8n, spanId: 80n, start: START, duration: 5n,
    events: [
      {
        name: "exception", time: START + 1n,
        attributes: {
          "exception.message": "boom", ok: true, count: 42, neg: -7, big: 2n ** 62n, ratio: 0.5, whole: double(3),
          strings: ["a", "b"], bools: [true, false], ints: [1, -1, 3], doubles: double([1, 2.5]),
        },
      },
      { name: "bare", time: START + 2n },
      { name: "again", time: 0n, attributes: { k: "v" } },
    ],
  }]]);
});

test("meta_struct: plain values encoded here and msgpack blobs, as maps the agent decodes", async () => {
  await roundTrip([[{
    name: "structured", service: "s", traceId: 9n, spanId: 90n, start: START, duration: 5n,
    metaStruct: {
      "appsec": { triggers: [{ rule: { id: "crs-942-100" }, ok: true, score: 1.5 }], count: 2, none: null },
      "_dd.stack": { frames: [{ file: "a.ts", line: 10 }, { file: "b.ts", line: 20 }], language: "javascript" },
      "blob": encode({ from: "msgpack", n: -1, list: [1, "two"] }),
    },
  }]]);
});

test("many chunks: 200 traces of 10 spans in one send", async () => {
  const traces: Span[][] = [];
  for (let c = 0; c < 200; c++) {
    const chunk: Span[] = [];
    for (let i = 0; i < 10; i++) {
      chunk.push({
        name: `op.${i}`, service: "many", resource: `r${c}`, traceId: BigInt(1000 + c), spanId: BigInt(c * 10 + i + 1),
        parentId: i === 0 ? 0n : BigInt(c * 10 + 1), start: START + BigInt(i), duration: BigInt(100 + i),
        meta: { chunk: String(c), i: String(i) }, metrics: { i },
      });
    }
    traces.push(chunk);
  }
  const got = await roundTrip(traces);
  assert.is(got.length, 200);
});

test("the Tracer's traces with their sampling tags: agent rates, manual keep and drop, 128-bit ids", async () => {
  const token = await session();
  const tracer = new Tracer({
    url: agent.url, testSessionToken: token, service: "svc", env: "test", version: "1.2.3", flushIntervalMs: 600_000,
    logger: () => {},
  });
  const ids: { name: string; traceId: bigint; spanId: bigint; parentId: bigint }[] = [];
  const record = (name: string, span: { context(): { traceId: bigint; spanId: bigint } }, parentId = 0n) => {
    const c = span.context();
    ids.push({ name, traceId: c.traceId, spanId: c.spanId, parentId });
    return c.spanId;
  };
  try {
    tracer.trace("auto", { resource: "GET /auto", type: "web", tags: { "http.method": "GET" } }, (root) => {
      const rootId = record("auto", root);
      tracer.trace("auto.child", { tags: { "db.rows": 3 } }, (child) => void record("auto.child", child, rootId));
    });
    tracer.trace("kept", (span) => {
      span.keep();
      record("kept", span);
    });
    tracer.trace("dropped", (span) => {
      span.drop();
      record("dropped", span);
    });
    await tracer.flush();
  } finally {
    await tracer.shutdown({ timeoutMs: 10_000 });
  }
  await assertChecksPass(token);
  const got = await agent.traces(token);
  const spans = got.flat();
  assert.is(got.length, 3);
  assert.is(spans.length, ids.length);
  const byName = Object.fromEntries(spans.map((s) => [s.name as string, s]));
  for (const id of ids) {
    const s = byName[id.name];
    assert.ok(s, `span ${id.name} arrived`);
    assert.is(BigInt(s.trace_id), id.traceId & U64);
    assert.is(BigInt(s.span_id), id.spanId);
    assert.is(BigInt(s.parent_id ?? 0), id.parentId);
    assert.is(s.meta?.["_dd.p.tid"], (id.traceId >> 64n).toString(16).padStart(16, "0"), "128-bit trace ids by default");
    assert.is(s.service, "svc");
    assert.is(s.meta?.env, "test");
    assert.is(s.meta?.version, "1.2.3");
  }
  // The sampling decision: the priority, and the decision maker in the trace tags (_dd.p.dm).
  assert.is(byName.auto.metrics?._sampling_priority_v1, 1, "no agent rates yet: auto keep");
  assert.is(byName.auto.meta?.["_dd.p.dm"], "-0");
  assert.is(byName.kept.metrics?._sampling_priority_v1, 2, "manual keep: user keep");
  assert.is(byName.kept.meta?.["_dd.p.dm"], "-4");
  assert.is(byName.dropped.metrics?._sampling_priority_v1, -1, "manual drop: user reject, still sent");
  assert.is(byName.auto.resource, "GET /auto");
  assert.is(byName.auto.type, "web");
  assert.is(byName.auto.meta?.["http.method"], "GET");
  assert.is(byName["auto.child"].metrics?.["db.rows"], 3);
  // The payloads as recorded are those traces, one request (the flush) in all.
  const requests = (await agent.requests(token)).filter((r) => r.url.endsWith("/v0.4/traces"));
  assert.is(requests.length, 1);
  assert.is(requests[0].headers["x-datadog-trace-count"] ?? requests[0].headers["X-Datadog-Trace-Count"], "3");
});

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

test("the demo, on this runtime, through Datadog's test agent", async () => {
  const token = await session();
  const env = { ...(globalThis as unknown as { process: { env: Record<string, string> } }).process.env };
  const child = spawn(env.NODE ?? "node", [join(root, "scripts", "runtimes.mjs"), runtimeName, join(root, "examples", "demo.ts")], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...env, DD_TRACE_AGENT_URL: agent.url, DD_TEST_SESSION_TOKEN: token },
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const code = await new Promise<number>((r) => child.on("close", (c) => r(c ?? 1)));
  assert.is(code, 0, `the demo failed:\n${out}`);
  await assertChecksPass(token);
  const got = await agent.traces(token);
  assert.is(got.length, 300, "one trace per request");
  for (const trace of got) {
    assert.equal(trace.map((s) => s.name).sort(), ["postgres.query", "template.render", "web.request"]);
    const server = trace.find((s) => s.name === "web.request")!;
    assert.is(server.service, "demo-shop");
    assert.is(server.parent_id ?? 0, 0);
    for (const s of trace) if (s !== server) assert.is(BigInt(s.parent_id!), BigInt(server.span_id), `${s.name}'s parent`);
  }
  assert.is(got.flat().filter((s) => s.error).length, 6, "every 50th request answers 500");
});

test.run();
