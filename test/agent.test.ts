/**
 * Tests of the fake agent (src/testing/agent.ts). Runs on all three runtimes:
 *   node --import tsx test/agent.test.ts
 *   bun test/agent.test.ts
 *   deno run -A test/agent.test.ts
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { encode, decode } from "@msgpack/msgpack";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { existsSync, lstatSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { TestAgent, type DecodedSpan } from "../testing.ts";

// --------------------------------------------------------------------------
// helpers

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One HTTP request with node:http (no client-side retries, fresh connection). */
function send(
  url: string,
  path: string,
  body?: Uint8Array | string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const target: Record<string, unknown> = url.startsWith("unix://")
    ? { socketPath: url.slice("unix://".length) }
    : { host: new URL(url).hostname, port: Number(new URL(url).port) };
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { ...target, path, method: options.method ?? "POST", headers: options.headers, agent: false },
      (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (c: Uint8Array) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: new TextDecoder().decode(concat(chunks)) })
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const pack = (value: unknown) => encode(value, { useBigInt64: true });
const sendTraces = (agent: TestAgent, payload: unknown, headers: Record<string, string> = {}) =>
  send(agent.url, "/v0.4/traces", pack(payload), { headers: { "Content-Type": "application/msgpack", ...headers } });

/** A minimal span encoded by @msgpack/msgpack. */
const simpleSpan = (id: bigint, extra: Record<string, unknown> = {}) => ({
  service: "svc",
  name: "op",
  resource: "res",
  trace_id: id,
  span_id: id,
  start: 1_700_000_000_000_000_000n,
  duration: 10,
  ...extra,
});

// Hand-assembled msgpack, byte for byte the way libdatadog's v0.4 encoder
// writes a span: ids as uint 64, start as int 64, metrics as float 64.
const bytes = {
  str(s: string): number[] {
    const b = [...new TextEncoder().encode(s)];
    return b.length < 32 ? [0xa0 | b.length, ...b] : [0xd9, b.length, ...b];
  },
  u64(v: bigint): number[] {
    const dv = new DataView(new ArrayBuffer(8));
    dv.setBigUint64(0, v);
    return [0xcf, ...new Uint8Array(dv.buffer)];
  },
  i64(v: bigint): number[] {
    const dv = new DataView(new ArrayBuffer(8));
    dv.setBigInt64(0, v);
    return [0xd3, ...new Uint8Array(dv.buffer)];
  },
  f64(v: number): number[] {
    const dv = new DataView(new ArrayBuffer(8));
    dv.setFloat64(0, v);
    return [0xcb, ...new Uint8Array(dv.buffer)];
  },
  bin(b: Uint8Array): number[] {
    return [0xc4, b.length, ...b];
  },
  map: (n: number) => [0x80 | n],
  array: (n: number) => [0x90 | n],
};

const TID = 0xffff_ffff_ffff_fffen; // 2^64 - 2
const SID = 0xffff_ffff_ffff_ffffn; // 2^64 - 1
const PID = 0x8000_0000_0000_0001n; // 2^63 + 1
const START = 1_700_000_000_123_456_789n;
const STRUCT = pack({ a: 1, b: ["x"] });

function handMadePayload(): Uint8Array {
  const b = bytes;
  const full = [
    ...b.map(13),
    ...b.str("service"), ...b.str("web-svc"),
    ...b.str("name"), ...b.str("http.request"),
    ...b.str("resource"), ...b.str("GET /users"),
    ...b.str("trace_id"), ...b.u64(TID),
    ...b.str("span_id"), ...b.u64(SID),
    ...b.str("parent_id"), ...b.u64(PID),
    ...b.str("start"), ...b.i64(START),
    ...b.str("duration"), ...[0xcd, 0x30, 0x39], // uint 16: 12345
    ...b.str("error"), ...[0x01],
    ...b.str("meta"), ...b.map(2), ...b.str("_dd.p.tid"), ...b.str("0123456789abcdef"), ...b.str("http.method"), ...b.str("GET"),
    ...b.str("metrics"), ...b.map(2), ...b.str("_sampling_priority_v1"), ...b.f64(1), ...b.str("ratio"), ...b.f64(0.25),
    ...b.str("type"), ...b.str("web"),
    ...b.str("meta_struct"), ...b.map(1), ...b.str("appsec"), ...b.bin(STRUCT),
  ];
  // a child span with everything omitted that the encoder omits
  const minimal = [
    ...b.map(8),
    ...b.str("service"), ...b.str("web-svc"),
    ...b.str("name"), ...b.str("db.query"),
    ...b.str("resource"), ...b.str(""),
    ...b.str("trace_id"), ...b.u64(TID),
    ...b.str("span_id"), ...b.u64(5n),
    ...b.str("start"), ...b.i64(-1n),
    ...b.str("duration"), ...[0x00],
    ...b.str("error"), ...[0xff], // negative fixint -1
  ];
  return new Uint8Array([...b.array(2), ...b.array(1), ...full, ...b.array(1), ...minimal]);
}

// --------------------------------------------------------------------------
// decoding

test("decodes a hand-made v0.4 payload with u64 ids near 2^64 exactly", async () => {
  await using agent = await TestAgent.start();
  const reply = await send(agent.url, "/v0.4/traces", handMadePayload(), {
    headers: { "Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "2" },
  });
  assert.is(reply.status, 200);

  const traces = agent.traces();
  assert.is(traces.length, 2);
  assert.is(traces[0].length, 1);
  assert.is(traces[1].length, 1);
  const [full, minimal] = agent.spans();

  assert.is(full.service, "web-svc");
  assert.is(full.name, "http.request");
  assert.is(full.resource, "GET /users");
  assert.is(typeof full.trace_id, "bigint");
  assert.is(full.trace_id, TID);
  assert.is(full.span_id, SID);
  assert.is(full.parent_id, PID);
  assert.is(full.start, START);
  assert.is(full.duration, 12345n);
  assert.is(full.error, 1);
  assert.equal(full.meta, { "_dd.p.tid": "0123456789abcdef", "http.method": "GET" });
  assert.equal(full.metrics, { _sampling_priority_v1: 1, ratio: 0.25 });
  assert.is(full.type, "web");
  assert.equal(Object.keys(full.meta_struct), ["appsec"]);
  assert.ok(full.meta_struct.appsec instanceof Uint8Array);
  assert.equal([...full.meta_struct.appsec], [...STRUCT]);
  assert.equal(decode(full.meta_struct.appsec), { a: 1, b: ["x"] });
  assert.equal(full.span_links, []);
  assert.equal(full.span_events, []);
  assert.equal(Object.keys(full.raw), [
    "service", "name", "resource", "trace_id", "span_id", "parent_id", "start",
    "duration", "error", "meta", "metrics", "type", "meta_struct",
  ]);

  // defaults for omitted keys; raw shows exactly what was on the wire
  assert.equal(Object.keys(minimal.raw), [
    "service", "name", "resource", "trace_id", "span_id", "start", "duration", "error",
  ]);
  assert.is(minimal.span_id, 5n); // uint 64 encoding of a small value is still a bigint
  assert.is(minimal.raw.span_id, 5n);
  assert.is(minimal.raw.duration, 0); // compact encodings stay numbers in raw…
  assert.is(minimal.duration, 0n); // …and become bigint in the normalised span
  assert.is(minimal.start, -1n);
  assert.is(minimal.error, -1);
  assert.is(minimal.parent_id, 0n);
  assert.is(minimal.type, "");
  assert.equal(minimal.meta, {});
  assert.equal(minimal.metrics, {});
  assert.equal(minimal.meta_struct, {});
  assert.equal(minimal.span_links, []);
  assert.equal(minimal.span_events, []);
  assert.not.ok("parent_id" in minimal.raw);

  const [req] = agent.requests;
  assert.equal(req.traces, traces);
  assert.is(req.decodeError, undefined);
  assert.is(req.accepted, true);
  assert.is(req.status, 200);
});

test("decodes payloads built with encode(): every span key, links, events, int metrics", async () => {
  await using agent = await TestAgent.start();
  const span = simpleSpan(2n ** 64n - 3n, {
    parent_id: 7n,
    error: 0,
    meta: { a: "b" },
    metrics: { count: 3, big: 2n ** 40n, f: 1.5 },
    type: "http",
    meta_struct: { blob: new Uint8Array([1, 2, 3]) },
    span_links: [{ trace_id: 1n, span_id: 2n, attributes: { k: "v" }, flags: 1 }],
    span_events: [{ name: "ev", time_unix_nano: 5n, attributes: { s: { type: 0, string_value: "x" } } }],
    unknown_key: "kept in raw",
  });
  const reply = await sendTraces(agent, [[span, simpleSpan(1n)], [], [simpleSpan(2n)]]);
  assert.is(reply.status, 200);
  const traces = agent.traces();
  assert.equal(traces.map((c) => c.length), [2, 0, 1]);
  const s = traces[0][0];
  assert.is(s.trace_id, 2n ** 64n - 3n);
  assert.is(s.parent_id, 7n);
  assert.is(s.duration, 10n);
  assert.equal(s.metrics, { count: 3, big: 2 ** 40, f: 1.5 });
  assert.equal([...s.meta_struct.blob], [1, 2, 3]);
  assert.equal(s.span_links, [{ trace_id: 1n, span_id: 2n, attributes: { k: "v" }, flags: 1 }]);
  assert.equal(s.span_events, [{ name: "ev", time_unix_nano: 5n, attributes: { s: { type: 0, string_value: "x" } } }]);
  assert.is(s.raw.unknown_key, "kept in raw");
  assert.equal(agent.spans().map((x) => x.span_id), [2n ** 64n - 3n, 1n, 2n]);
});

test("traces() and spans() flatten across requests in order; reset() forgets", async () => {
  await using agent = await TestAgent.start();
  await sendTraces(agent, [[simpleSpan(1n)]]);
  await sendTraces(agent, [[simpleSpan(2n), simpleSpan(3n)], [simpleSpan(4n)]]);
  assert.equal(agent.traces().map((c) => c.map((s) => s.span_id)), [[1n], [2n, 3n], [4n]]);
  assert.equal(agent.spans().map((s) => s.span_id), [1n, 2n, 3n, 4n]);
  assert.is(agent.requests.length, 2);
  agent.reset();
  assert.is(agent.requests.length, 0);
  assert.equal(agent.traces(), []);
  await sendTraces(agent, [[simpleSpan(5n)]]);
  assert.equal(agent.spans().map((s) => s.span_id), [5n]);
});

test("strict decoding: malformed payloads answer 400 and record decodeError", async () => {
  await using agent = await TestAgent.start();
  const cases: [string, Uint8Array, RegExp][] = [
    ["map at top level", pack({ a: 1 }), /payload must be an array/],
    ["chunk not an array", pack([{ service: "x" }]), /chunk 0 must be an array/],
    ["span not a map", pack([[simpleSpan(1n)], [[1, 2]]]), /chunk 1 span 0 must be a map/],
    ["not msgpack", new Uint8Array([0xc1]), /./],
    ["truncated", pack([[simpleSpan(1n)]]).slice(0, 20), /./],
    ["trailing bytes", new Uint8Array([...pack([]), 0x01]), /./],
    ["empty body", new Uint8Array(0), /./],
    ["service not a string", pack([[simpleSpan(1n, { service: 42 })]]), /"service" must be a string/],
    ["negative span_id", pack([[simpleSpan(1n, { span_id: -1 })]]), /"span_id" must be an unsigned 64-bit integer/],
    ["float duration", pack([[simpleSpan(1n, { duration: 1.5 })]]), /"duration" must be a signed 64-bit integer/],
    ["meta value not a string", pack([[simpleSpan(1n, { meta: { a: 1 } })]]), /"meta" value for "a" must be strings/],
    ["metrics value not a number", pack([[simpleSpan(1n, { metrics: { a: "1" } })]]), /"metrics" value for "a"/],
    ["meta_struct value not bin", pack([[simpleSpan(1n, { meta_struct: { a: "x" } })]]), /"meta_struct" value for "a"/],
    ["integer map key", new Uint8Array([0x91, 0x91, 0x81, 0x01, 0xa1, 0x78]), /map key must be a string/], // [[{1: "x"}]]
    ["__proto__ key", new Uint8Array([0x91, 0x91, 0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0xc0]), /__proto__/],
  ];
  for (const [what, body, pattern] of cases) {
    const reply = await send(agent.url, "/v0.4/traces", body);
    assert.is(reply.status, 400, what);
    const req = agent.requests.at(-1)!;
    assert.type(req.decodeError, "string", what);
    assert.match(req.decodeError!, pattern, what);
    assert.is(reply.text, req.decodeError, what);
    assert.is(req.traces, undefined, what);
    assert.is(req.accepted, false, what);
  }
  assert.equal(agent.traces(), []);
  // an empty array of chunks is valid
  assert.is((await sendTraces(agent, [])).status, 200);
  // nil values count as omitted
  assert.is((await sendTraces(agent, [[simpleSpan(1n, { meta: null, type: null })]])).status, 200);
  assert.equal(agent.spans()[0].meta, {});
  assert.is(agent.spans()[0].type, "");
});

test("gzip/deflate request bodies are inflated; body keeps the bytes as sent", async () => {
  await using agent = await TestAgent.start();
  const gz = gzipSync(pack([[simpleSpan(9n)]]));
  const reply = await send(agent.url, "/v0.4/traces", gz, { headers: { "Content-Encoding": "gzip" } });
  assert.is(reply.status, 200);
  assert.equal(agent.spans().map((s) => s.span_id), [9n]);
  assert.equal([...agent.requests[0].body], [...gz]);
  const bad = await send(agent.url, "/v0.4/traces", pack([]), { headers: { "Content-Encoding": "br" } });
  assert.is(bad.status, 400);
  assert.match(agent.requests[1].decodeError!, /unsupported Content-Encoding br/);
});

test("large bodies (tens of MB) are received whole", async () => {
  await using agent = await TestAgent.start();
  const big = "x".repeat(24 * 1024 * 1024);
  const payload = pack([[simpleSpan(1n, { meta: { big } })], [simpleSpan(2n)]]);
  const reply = await send(agent.url, "/v0.4/traces", payload);
  assert.is(reply.status, 200);
  assert.is(agent.requests[0].body.length, payload.length);
  assert.is(agent.spans()[0].meta.big.length, big.length);
  assert.is(agent.spans()[1].span_id, 2n);
});

// --------------------------------------------------------------------------
// requests, headers, rates, routes

test("records method, path, lowercased headers, body and receive time", async () => {
  await using agent = await TestAgent.start();
  assert.match(agent.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const payload = pack([[simpleSpan(1n)]]);
  const before = Date.now();
  const response = await fetch(agent.url + "/v0.4/traces?x=1", {
    method: "POST",
    body: payload,
    headers: {
      "Content-Type": "application/msgpack",
      "Datadog-Meta-Lang": "nodejs",
      "Datadog-Meta-Lang-Version": "20.0.0",
      "Datadog-Meta-Tracer-Version": "0.1.0",
      "X-Datadog-Trace-Count": "1",
      "X-Datadog-Test-Session-Token": "session-1",
    },
  });
  assert.is(response.status, 200);
  assert.is(response.headers.get("content-type"), "application/json");
  assert.equal(await response.json(), { rate_by_service: { "service:,env:": 1 } });
  const [req] = agent.requests;
  assert.is(req.method, "POST");
  assert.is(req.path, "/v0.4/traces?x=1");
  assert.is(req.headers["content-type"], "application/msgpack");
  assert.is(req.headers["datadog-meta-lang"], "nodejs");
  assert.is(req.headers["datadog-meta-lang-version"], "20.0.0");
  assert.is(req.headers["datadog-meta-tracer-version"], "0.1.0");
  assert.is(req.headers["x-datadog-trace-count"], "1");
  assert.is(req.headers["x-datadog-test-session-token"], "session-1");
  assert.is(req.headers["content-length"], String(payload.length));
  for (const name of Object.keys(req.headers)) assert.is(name, name.toLowerCase());
  assert.equal([...req.body], [...payload]);
  assert.ok(req.receivedAt >= before && req.receivedAt <= Date.now());
  assert.is(agent.spans().length, 1);
});

test("answers rate_by_service from options and setRates()", async () => {
  await using agent = await TestAgent.start({ rates: { "service:a,env:prod": 0.5 } });
  let reply = await sendTraces(agent, []);
  assert.is(reply.headers["content-type"], "application/json");
  assert.equal(JSON.parse(reply.text), { rate_by_service: { "service:a,env:prod": 0.5 } });
  agent.setRates({ "service:,env:": 0.1, "service:b,env:": 1 });
  reply = await sendTraces(agent, []);
  assert.equal(JSON.parse(reply.text), { rate_by_service: { "service:,env:": 0.1, "service:b,env:": 1 } });
  assert.throws(() => agent.setRates({ x: Number.NaN }), /finite number/);
});

test("other paths answer 404, wrong methods 405", async () => {
  await using agent = await TestAgent.start();
  assert.is((await send(agent.url, "/info", undefined, { method: "GET" })).status, 404);
  assert.is((await send(agent.url, "/v0.5/traces", pack([[], []]))).status, 404);
  assert.is((await send(agent.url, "/v0.6/stats", pack({}))).status, 404);
  const wrong = await send(agent.url, "/v0.4/traces", undefined, { method: "GET" });
  assert.is(wrong.status, 405);
  assert.is(wrong.headers.allow, "POST, PUT");
  assert.is((await send(agent.url, "/v0.4/traces", pack([[simpleSpan(3n)]]), { method: "PUT" })).status, 200);
  assert.equal(agent.requests.map((r) => [r.method, r.path, r.status]), [
    ["GET", "/info", 404],
    ["POST", "/v0.5/traces", 404],
    ["POST", "/v0.6/stats", 404],
    ["GET", "/v0.4/traces", 405],
    ["PUT", "/v0.4/traces", 200],
  ]);
  assert.equal(agent.spans().map((s) => s.span_id), [3n]);
});

// --------------------------------------------------------------------------
// fail modes

test("fail({status, times, body}) answers that status, then recovers", async () => {
  await using agent = await TestAgent.start();
  agent.fail({ status: 503, times: 2, body: "overloaded" });
  const r1 = await sendTraces(agent, [[simpleSpan(1n)]]);
  const info = await send(agent.url, "/info", undefined, { method: "GET" }); // does not use up `times`
  const r2 = await sendTraces(agent, [[simpleSpan(1n)]]);
  const r3 = await sendTraces(agent, [[simpleSpan(1n)]]);
  assert.equal([r1.status, info.status, r2.status, r3.status], [503, 404, 503, 200]);
  assert.is(r1.text, "overloaded");
  assert.is(agent.requests.length, 4);
  // the failed attempts were decoded and recorded but not accepted
  assert.equal(agent.requests.map((r) => r.accepted), [false, false, false, true]);
  assert.is(agent.requests[0].traces![0][0].span_id, 1n);
  assert.is(agent.traces().length, 1);
});

test("fail({status}) without times applies until changed; fail(null) clears", async () => {
  await using agent = await TestAgent.start();
  agent.fail({ status: 400 });
  for (let i = 0; i < 3; i++) assert.is((await sendTraces(agent, [])).status, 400);
  agent.fail({ status: 429, times: 1 });
  assert.is((await sendTraces(agent, [])).status, 429);
  assert.is((await sendTraces(agent, [])).status, 200);
  agent.fail({ status: 500 });
  agent.fail(null);
  assert.is((await sendTraces(agent, [])).status, 200);
  assert.throws(() => agent.fail({ status: 99 }), /status must be/);
  assert.throws(() => agent.fail({ status: 500, times: 0 }), /times must be/);
  assert.throws(() => agent.fail({ delayMs: -1 }), /delayMs must be/);
  assert.throws(() => agent.fail({ status: 500, delayMs: 1 } as never), /exactly one/);
});

test("fail({delayMs}) delays the answer, then answers normally", async () => {
  await using agent = await TestAgent.start();
  agent.fail({ delayMs: 300, times: 1 });
  const t0 = Date.now();
  const slow = sendTraces(agent, [[simpleSpan(1n)]]);
  const [req] = await agent.waitForRequests(1);
  assert.is(req.status, undefined); // pending
  assert.is(agent.traces().length, 0);
  const reply = await slow;
  const elapsed = Date.now() - t0;
  assert.is(reply.status, 200);
  assert.ok(elapsed >= 280, `answered after ${elapsed} ms`);
  assert.equal(JSON.parse(reply.text), { rate_by_service: { "service:,env:": 1 } });
  assert.is(agent.traces().length, 1);
  const t1 = Date.now();
  assert.is((await sendTraces(agent, [])).status, 200);
  assert.ok(Date.now() - t1 < 250, "second request not delayed");
});

test("fail({drop}) destroys the connection without an answer", async () => {
  await using agent = await TestAgent.start();
  agent.fail({ drop: true, times: 1 });
  let error: unknown;
  try {
    await sendTraces(agent, [[simpleSpan(1n)]]);
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof Error, "client saw an error");
  assert.is(agent.requests.length, 1);
  assert.is(agent.requests[0].dropped, true);
  assert.is(agent.requests[0].status, undefined);
  assert.is(agent.requests[0].traces![0][0].span_id, 1n);
  assert.equal(agent.traces(), []);
  assert.is((await sendTraces(agent, [[simpleSpan(2n)]])).status, 200);
  assert.equal(agent.spans().map((s) => s.span_id), [2n]);
});

test("close() ends a delayed request and open keep-alive connections promptly", async () => {
  const agent = await TestAgent.start();
  await fetch(agent.url + "/info").then((r) => r.text()); // leaves a pooled keep-alive connection
  agent.fail({ delayMs: 60_000 });
  const pending = sendTraces(agent, [[simpleSpan(1n)]]).then(
    () => "answered",
    () => "failed",
  );
  await agent.waitForRequests(2);
  const waiter = assert_rejects(agent.waitForTraces(1, 30_000), /closed while waiting/);
  const t0 = Date.now();
  await agent.close();
  await waiter;
  assert.ok(Date.now() - t0 < 1000, `closed in ${Date.now() - t0} ms`);
  assert.is(await pending, "failed");
  await agent.close(); // idempotent
  await assert_rejects(agent.waitForTraces(1), /closed/);
});

// --------------------------------------------------------------------------
// waiting

async function assert_rejects(promise: Promise<unknown>, pattern: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, Error);
    assert.match((error as Error).message, pattern);
    return error as Error;
  }
  assert.unreachable("expected a rejection");
  throw new Error("unreachable");
}

test("waitForTraces resolves when enough chunks arrive", async () => {
  await using agent = await TestAgent.start();
  const waiting = agent.waitForTraces(3, 2000);
  await sendTraces(agent, [[simpleSpan(1n)]]);
  await sendTraces(agent, [[simpleSpan(2n)], [simpleSpan(3n)]]);
  const traces: DecodedSpan[][] = await waiting;
  assert.is(traces.length, 3);
  assert.equal(await agent.waitForTraces(2, 10), agent.traces()); // already there
});

test("waitForTraces rejects with a clear error on timeout", async () => {
  await using agent = await TestAgent.start();
  agent.fail({ status: 500 });
  await sendTraces(agent, [[simpleSpan(1n)]]);
  await send(agent.url, "/v0.4/traces", pack({ not: "an array" }));
  const t0 = Date.now();
  const error = await assert_rejects(agent.waitForTraces(2, 150), /timed out after 150 ms/);
  assert.ok(Date.now() - t0 >= 140);
  assert.match(error.message, /waitForTraces/);
  assert.match(error.message, /2 accepted trace chunk\(s\)/);
  assert.match(error.message, /received 2 request\(s\), 0 accepted trace chunk\(s\)/);
  assert.match(error.message, /POST \/v0\.4\/traces → 500/);
  await assert_rejects(agent.waitForTraces(-1), /count must be/);
});

test("waitForRequests counts all requests, or those to one path", async () => {
  await using agent = await TestAgent.start();
  const all = agent.waitForRequests(2, 2000);
  const traces = agent.waitForRequests(1, 2000, "/v0.4/traces");
  await send(agent.url, "/info", undefined, { method: "GET" });
  await sendTraces(agent, [], {});
  assert.equal((await all).map((r) => r.path), ["/info", "/v0.4/traces"]);
  assert.equal((await traces).map((r) => r.path), ["/v0.4/traces"]);
  await assert_rejects(agent.waitForRequests(3, 50), /timed out after 50 ms waiting for 3 request\(s\)/);
});

// --------------------------------------------------------------------------
// unix socket

test("listens on a unix socket and removes it on close", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dd-agent-test-"));
  const socketPath = join(dir, "agent.sock");
  try {
    const agent = await TestAgent.start({ socketPath });
    assert.is(agent.url, "unix://" + socketPath);
    assert.ok(existsSync(socketPath));
    const reply = await send(agent.url, "/v0.4/traces", pack([[simpleSpan(2n ** 64n - 1n)]]), {
      headers: { "Datadog-Meta-Lang": "bun" },
    });
    assert.is(reply.status, 200);
    assert.equal(JSON.parse(reply.text), { rate_by_service: { "service:,env:": 1 } });
    assert.is(agent.spans()[0].span_id, 2n ** 64n - 1n);
    assert.is(agent.requests[0].headers["datadog-meta-lang"], "bun");
    await agent.close();
    assert.not.ok(existsSync(socketPath), "socket file removed");

    // a socket path that is in use is an error
    const busy = await TestAgent.start({ socketPath });
    await assert_rejects(TestAgent.start({ socketPath }), /EADDRINUSE|in use/i);
    await busy.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a stale socket file nobody listens on is replaced", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dd-agent-test-"));
  const socketPath = join(dir, "stale.sock");
  try {
    // make a stale socket file: move the file of a live listener aside, close
    // the listener (which then cannot unlink it) and move the file back
    const holder = createNetServer();
    await new Promise<void>((r) => holder.listen(socketPath, () => r()));
    await assert_rejects(TestAgent.start({ socketPath }), /EADDRINUSE|in use/i);
    renameSync(socketPath, socketPath + ".moved");
    await new Promise<void>((r) => holder.close(() => r()));
    renameSync(socketPath + ".moved", socketPath);
    assert.ok(lstatSync(socketPath).isSocket(), "stale socket file exists");

    const agent = await TestAgent.start({ socketPath });
    assert.is((await send(agent.url, "/v0.4/traces", pack([]))).status, 200);
    await agent.close();
    assert.not.ok(existsSync(socketPath));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("start() rejects bad options", async () => {
  await assert_rejects(TestAgent.start({ socketPath: "/tmp/x.sock", port: 1 }), /either socketPath or port/);
  await assert_rejects(TestAgent.start({ port: 70000 }), /port must be/);
  await assert_rejects(TestAgent.start({ rates: { x: Infinity } }), /finite number/);
});

// --------------------------------------------------------------------------
// OTLP

test("OTLP/HTTP JSON on /v1/traces", async () => {
  await using agent = await TestAgent.start();
  const body = {
    resourceSpans: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
      scopeSpans: [{ spans: [{ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", name: "op" }] }],
    }],
  };
  const reply = await send(agent.url, "/v1/traces", JSON.stringify(body), { headers: { "Content-Type": "application/json" } });
  assert.is(reply.status, 200);
  assert.is(reply.headers["content-type"], "application/json");
  assert.equal(JSON.parse(reply.text), {});
  assert.equal(agent.otlp(), [body]);
  assert.equal(agent.traces(), []); // OTLP is not mixed into the v0.4 traces

  const bad = await send(agent.url, "/v1/traces", "{not json", { headers: { "Content-Type": "application/json" } });
  assert.is(bad.status, 400);
  assert.match(agent.requests[1].decodeError!, /invalid OTLP JSON/);
  const proto = await send(agent.url, "/v1/traces", new Uint8Array([10, 0]), {
    headers: { "Content-Type": "application/x-protobuf" },
  });
  assert.is(proto.status, 415);
  agent.fail({ status: 502, times: 1 });
  assert.is((await send(agent.url, "/v1/traces", JSON.stringify({ a: 1 }))).status, 502);
  assert.is(agent.otlp().length, 1);
  await agent.waitForRequests(4);
});

test.run();
