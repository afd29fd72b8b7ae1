/** End to end: spans in, the test agent decodes exactly those spans off the wire. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { encode } from "@msgpack/msgpack";
import { TraceExporter, TraceExporterError, VERSION } from "../mod.ts";
import { liveNativeObjects, TestAgent } from "../testing.ts";
import { assertNoLeaks, assertNoLeaksSoon, bundledOnly, collectGarbageUntil, span, withExporter } from "./helpers.ts";

test.after.each(assertNoLeaks);

test("every span field arrives exactly", () =>
  withExporter(async (exporter, agent) => {
    const res = await exporter.send([[
      span({
        name: "db.query",
        service: "orders",
        resource: "SELECT * FROM orders",
        type: "sql",
        traceId: 0xabcdefn,
        spanId: 42n,
        parentId: 41n,
        start: 1_712_345_678_901_234_567n,
        duration: 987_654_321n,
        error: 1,
        meta: { "db.system": "postgresql", "span.kind": "client" },
        metrics: { "db.rows": 12, ratio: 0.25, neg: -3.5 },
      }),
    ]]);
    assert.equal(res.rateByService, { "service:,env:": 1 });
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.name, "db.query");
    assert.is(s.service, "orders");
    assert.is(s.resource, "SELECT * FROM orders");
    assert.is(s.type, "sql");
    assert.is(s.trace_id, 0xabcdefn);
    assert.is(s.span_id, 42n);
    assert.is(s.parent_id, 41n);
    assert.is(s.start, 1_712_345_678_901_234_567n);
    assert.is(s.duration, 987_654_321n);
    assert.is(s.error, 1);
    assert.equal(s.meta, { "db.system": "postgresql", "span.kind": "client" });
    assert.equal(s.metrics, { "db.rows": 12, ratio: 0.25, neg: -3.5 });
  }));

test("keys are in libdatadog's order; empty and zero fields are omitted", () =>
  withExporter(async (exporter, agent) => {
    // The bare span is not first in its chunk: libdatadog 14 puts its export marker (meta) on the first.
    await exporter.send([[span({ meta: { a: "b" }, metrics: { m: 1 }, parentId: 7n, error: true }), span({ type: "", parentId: 0n, error: 0 })]]);
    const [[full, bare]] = await agent.waitForTraces(1);
    assert.equal(Object.keys(bare.raw), ["service", "name", "resource", "trace_id", "span_id", "start", "duration"]);
    assert.equal(Object.keys(full.raw), [
      "service", "name", "resource", "trace_id", "span_id", "parent_id", "start", "duration", "error", "meta", "metrics", "type",
    ]);
  }));

test("64- and 128-bit ids, ids near 2^64", () =>
  withExporter(async (exporter, agent) => {
    const max64 = 2n ** 64n - 1n;
    await exporter.send([[
      span({ traceId: max64, spanId: max64, parentId: max64 - 1n }),
      span({ traceId: 2n ** 128n - 1n, spanId: 2n ** 63n }),
      span({ traceId: (0x0123456789abcdefn << 64n) | 5n, spanId: 1n }),
      span({ traceId: 1n << 64n, spanId: 2n ** 53n + 1n }),
    ]]);
    const [[a, b, c, d]] = await agent.waitForTraces(1);
    assert.is(a.trace_id, max64);
    assert.is(a.span_id, max64);
    assert.is(a.parent_id, max64 - 1n);
    assert.is(a.meta["_dd.p.tid"], undefined);
    assert.is(b.trace_id, max64);
    assert.is(b.span_id, 2n ** 63n);
    assert.is(b.meta["_dd.p.tid"], "ffffffffffffffff");
    assert.is(c.trace_id, 5n);
    assert.is(c.meta["_dd.p.tid"], "0123456789abcdef");
    assert.is(d.trace_id, 0n);
    assert.is(d.meta["_dd.p.tid"], "0000000000000001");
    assert.is(d.span_id, 2n ** 53n + 1n);
  }));

test("number ids and times are accepted when exact", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send([[span({ traceId: 7n, spanId: 9, parentId: 3, start: 1_700_000_000_000_000_000, duration: 5 } as never)]]);
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.span_id, 9n);
    assert.is(s.parent_id, 3n);
    assert.is(s.start, 1_700_000_000_000_000_000n);
    assert.is(s.duration, 5n);
  }));

test("unicode: emoji, CJK, lone surrogates, empty strings", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send([[
      span({
        name: "naïve.操作",
        service: "",
        resource: "🚀 launch 👩‍👩‍👧",
        meta: { "κλειδί": "значение", emoji: "🎉", "": "empty key", empty: "", lone: "a\uD800b", lone2: "\uDFFF" },
        metrics: { "ключ": 1 },
      }),
    ]]);
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.name, "naïve.操作");
    assert.is(s.service, "");
    assert.is(s.resource, "🚀 launch 👩‍👩‍👧");
    assert.is(s.meta["κλειδί"], "значение");
    assert.is(s.meta.emoji, "🎉");
    assert.is(s.meta[""], "empty key");
    assert.is(s.meta.empty, "");
    // A lone surrogate cannot be UTF-8: it goes as U+FFFD, like every UTF-8 encoder in JS.
    assert.is(s.meta.lone, "a\uFFFDb");
    assert.is(s.meta.lone2, "\uFFFD");
    assert.is(s.metrics["ключ"], 1);
  }));

test("1 MB values and 1,000 tags", () =>
  withExporter(async (exporter, agent) => {
    const big = "x".repeat(1 << 20);
    const bigUnicode = "é".repeat(1 << 19);
    const meta: Record<string, string> = { big, bigUnicode };
    const metrics: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      meta[`tag.${i}`] = `value-${i}`;
      metrics[`metric.${i}`] = i / 7;
    }
    await exporter.send([[span({ meta, metrics })]]);
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.meta.big, big);
    assert.is(s.meta.bigUnicode, bigUnicode);
    assert.is(Object.keys(s.meta).length, 1002);
    assert.is(Object.keys(s.metrics).length, 1000);
    assert.is(s.meta["tag.999"], "value-999");
    assert.is(s.metrics["metric.500"], 500 / 7);
  }));

test("10,000 spans in many chunks, in order", () =>
  withExporter(async (exporter, agent) => {
    const traces = [];
    for (let c = 0; c < 100; c++) {
      const chunk = [];
      for (let i = 0; i < 100; i++) {
        chunk.push(span({ traceId: BigInt(c + 1), spanId: BigInt(c * 100 + i + 1), meta: { i: String(i) } }));
      }
      traces.push(chunk);
    }
    await exporter.send(traces);
    const got = await agent.waitForTraces(100);
    assert.is(got.length, 100);
    // one trace request (a real libdatadog also polls GET /info in the background)
    const sent = agent.requests.filter((r) => r.path === "/v0.4/traces");
    assert.is(sent.length, 1);
    assert.is(sent[0].headers["x-datadog-trace-count"], "100");
    for (let c = 0; c < 100; c++) {
      assert.is(got[c].length, 100);
      assert.is(got[c][0].trace_id, BigInt(c + 1));
      assert.is(got[c][99].span_id, BigInt(c * 100 + 100));
      assert.is(got[c][42].meta.i, "42");
    }
  }));

test("an empty chunk and an empty send", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send([[], [span()]]);
    const got = await agent.waitForTraces(2);
    assert.is(got[0].length, 0);
    assert.is(got[1].length, 1);
  }));

test("headers: language, versions, trace count, content type, test session token", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send([[span()], [span()], [span()]]);
    const [req] = await agent.waitForRequests(1, 5000, "/v0.4/traces");
    assert.is(req.method, "POST");
    assert.is(req.path, "/v0.4/traces");
    const h = req.headers;
    assert.is(h["content-type"], "application/msgpack");
    assert.is(h["datadog-meta-lang"], "nodejs");
    assert.is(h["datadog-meta-lang-version"], "1.2.3");
    assert.is(h["datadog-meta-lang-interpreter"], "test-interpreter");
    assert.is(h["datadog-meta-tracer-version"], VERSION);
    assert.is(h["x-datadog-trace-count"], "3");
    assert.is(h["x-datadog-test-session-token"], "session-42");
  }, { languageVersion: "1.2.3", languageInterpreter: "test-interpreter", testSessionToken: "session-42" }));

test("defaults: language nodejs, the running runtime's version", () =>
  withExporter(async (exporter, agent) => {
    await exporter.send([[span()]]);
    const [req] = await agent.waitForRequests(1, 5000, "/v0.4/traces");
    assert.is(req.headers["datadog-meta-lang"], "nodejs");
    assert.ok(/^\d+\.\d+\.\d+/.test(req.headers["datadog-meta-lang-version"]));
    assert.ok(["nodejs", "bun", "deno"].includes(req.headers["datadog-meta-lang-interpreter"]));
  }));

test("unix socket", async () => {
  const path = `/tmp/dd-ffi-test-${Math.random().toString(36).slice(2)}.sock`;
  await withExporter(async (exporter, agent) => {
    assert.is(agent.url, `unix://${path}`);
    await exporter.send([[span({ name: "over.uds" })]]);
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.name, "over.uds");
  }, {}, { socketPath: path });
});

test("rate_by_service: parsed from every answer", () =>
  withExporter(async (exporter, agent) => {
    agent.setRates({ "service:web,env:prod": 0.5, "service:,env:": 1 });
    const first = await exporter.send([[span()]]);
    assert.ok(first.changed);
    assert.equal(first.rateByService, { "service:web,env:prod": 0.5, "service:,env:": 1 });
    assert.ok(new TextDecoder().decode(first.body).includes("rate_by_service"));
    agent.setRates({ "service:web,env:prod": 0.1 });
    const second = await exporter.send([[span()]]);
    assert.equal(second.rateByService, { "service:web,env:prod": 0.1 });
    assert.equal(exporter.rateByService, { "service:web,env:prod": 0.1 });
  }));

test("several exporters, one after another and side by side", async () => {
  await using agent = await TestAgent.start();
  const a = new TraceExporter({ url: agent.url, service: "a" });
  const b = new TraceExporter({ url: agent.url, service: "b" });
  await Promise.all([a.send([[span({ name: "a" })]]), b.send([[span({ name: "b" })]])]);
  await a.close();
  await b.close();
  const names = agent.spans().map((s) => s.name).sort();
  assert.equal(names, ["a", "b"]);
});

test("close() twice, dispose after close, send after close", async () => {
  await using agent = await TestAgent.start();
  const e = new TraceExporter({ url: agent.url });
  await e.close();
  await e.close();
  e[Symbol.dispose]();
  try {
    await e.send([[span()]]);
    assert.unreachable();
  } catch (err) {
    assert.is((err as Error).name, "ClosedError");
  }
});

test("using: the exporter is freed (off the JS thread) at the end of the block", async () => {
  await using agent = await TestAgent.start();
  {
    using e = new TraceExporter({ url: agent.url });
    await e.send([[span()]]);
  }
  await assertNoLeaksSoon();
});

test("sendEncoded: a pre-encoded v0.4 payload through ddog_trace_exporter_send", () =>
  withExporter(async (exporter, agent) => {
    const payload = encode([[{
      service: "pre", name: "encoded", resource: "r", trace_id: 2n ** 64n - 1n, span_id: 7n, parent_id: 0n,
      start: 1_700_000_000_000_000_000n, duration: 10n, error: 0, meta: { k: "v" }, metrics: { m: 2 }, type: "web",
    }]], { useBigInt64: true });
    const res = await exporter.sendEncoded(payload);
    assert.ok(res.rateByService);
    const [[s]] = await agent.waitForTraces(1);
    assert.is(s.name, "encoded");
    assert.is(s.trace_id, 2n ** 64n - 1n);
    assert.equal(s.meta, { k: "v" });
    assert.equal(s.metrics, { m: 2 });
    const bad = await exporter.sendEncoded(new Uint8Array([0xc1])).catch((e) => e);
    assert.instance(bad, TraceExporterError);
    assert.is(bad.code, "Serde");
  }));

test("sendEncoded: of duplicate meta, metrics and meta_struct keys the last one wins, as libdatadog sends them all", () =>
  withExporter(async (exporter, agent) => {
    // A span map written by hand: @msgpack/msgpack cannot encode a repeated key.
    const te = new TextEncoder();
    const parts: Uint8Array[] = [];
    const raw = (...b: number[]) => parts.push(new Uint8Array(b));
    const str = (t: string) => {
      const b = te.encode(t);
      raw(0xa0 | b.length);
      parts.push(b);
    };
    const u64 = (n: number) => raw(0xcf, 0, 0, 0, 0, 0, 0, 0, n);
    const f64 = (x: number) => {
      const b = new Uint8Array(9);
      b[0] = 0xcb;
      new DataView(b.buffer).setFloat64(1, x);
      parts.push(b);
    };
    const bin = (b: Uint8Array) => {
      raw(0xc4, b.length);
      parts.push(b);
    };
    raw(0x91, 0x91, 0x8a);
    str("service"), str("s"), str("name"), str("dup"), str("resource"), str("r");
    str("trace_id"), u64(1), str("span_id"), u64(2), str("start"), u64(3), str("duration"), u64(4);
    str("meta"), raw(0x84), str("a"), str("first"), str("b"), str("only"), str("a"), str("second"), str("a"), str("last");
    str("metrics"), raw(0x83), str("m"), f64(1), str("n"), f64(5), str("m"), f64(2);
    str("meta_struct"), raw(0x82), str("x"), bin(encode({ v: 1 })), str("x"), bin(encode({ v: 2 }));
    const payload = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (payload.set(p, at), at + p.length), 0);
    await exporter.sendEncoded(payload);
    const [[sp]] = await agent.waitForTraces(1);
    assert.equal(sp.meta, { a: "last", b: "only" });
    assert.equal(sp.metrics, { m: 2, n: 5 });
    assert.equal([...sp.meta_struct.x], [...encode({ v: 2 })]);
  }));

bundledOnly("a forgotten exporter is freed by the FinalizationRegistry", "proven with the live-object counter", () =>
  test("a forgotten exporter is freed by the FinalizationRegistry", async () => {
    await using agent = await TestAgent.start();
    await (async () => {
      const forgotten = new TraceExporter({ url: agent.url });
      await forgotten.send([[span()]]);
    })();
    await collectGarbageUntil(() => liveNativeObjects() === 0);
    assertNoLeaks();
  }));

test.run();
