/** Tracer: Datadog and W3C header propagation, malformed headers, and the fetch-handler wrapper end to end (node:http, Deno.serve, Bun.serve). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { nodeListener, type SpanContext, traceHandler, Tracer } from "../mod.ts";
import { assertNoLeaks } from "./helpers.ts";
import { byName, listen, runtimeName, traceIdOf, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const TID = 0x640cfd8e00000000n;
const LOW = 0xa3ce929d0e0e4736n;

test("inject writes Datadog and W3C headers (Headers and plain objects)", () =>
  withTracer((tracer) => {
    const span = tracer.startSpan("client", { childOf: { traceId: (TID << 64n) | LOW, spanId: 1n, samplingPriority: 2, origin: "rum", traceTags: { "_dd.p.dm": "-4", "_dd.p.usr.id": "abc=" }, tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" } });
    const headers = new Headers();
    tracer.inject(span, headers);
    const spanHex = span.spanId.toString(16).padStart(16, "0");
    assert.is(headers.get("x-datadog-trace-id"), LOW.toString());
    assert.is(headers.get("x-datadog-parent-id"), span.spanId.toString());
    assert.is(headers.get("x-datadog-sampling-priority"), "2");
    assert.is(headers.get("x-datadog-origin"), "rum");
    assert.is(headers.get("x-datadog-tags"), "_dd.p.dm=-4,_dd.p.usr.id=abc=,_dd.p.tid=640cfd8e00000000");
    assert.is(headers.get("traceparent"), `00-640cfd8e00000000a3ce929d0e0e4736-${spanHex}-01`);
    assert.is(headers.get("tracestate"), `dd=s:2;p:${spanHex};o:rum;t.dm:-4;t.usr.id:abc~,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE`);
    const plain: Record<string, string> = {};
    tracer.inject(span, plain);
    assert.equal(Object.fromEntries(headers), plain);
    span.finish();
  }));

test("inject: a rejected trace is not sampled in traceparent; a 64-bit trace id has no _dd.p.tid", () =>
  withTracer((tracer) => {
    const span = tracer.startSpan("x", { childOf: { traceId: 5n, spanId: 6n, samplingPriority: -1 } });
    const h: Record<string, string> = {};
    tracer.inject(span, h);
    assert.match(h.traceparent, /^00-00000000000000000000000000000005-[0-9a-f]{16}-00$/);
    assert.is(h["x-datadog-tags"], undefined);
    assert.match(h.tracestate, /^dd=s:-1;p:[0-9a-f]{16}$/);
    span.finish();
  }));

test("extract reads Datadog headers, 128-bit with _dd.p.tid", () =>
  withTracer((tracer) => {
    const c = tracer.extract({
      "X-Datadog-Trace-Id": LOW.toString(),
      "x-datadog-parent-id": "1234",
      "x-datadog-sampling-priority": "2",
      "x-datadog-origin": "synthetics",
      "x-datadog-tags": "_dd.p.dm=-4,_dd.p.tid=640cfd8e00000000,_dd.p.usr.id=u1",
    });
    assert.equal(c, {
      traceId: (TID << 64n) | LOW,
      spanId: 1234n,
      samplingPriority: 2,
      origin: "synthetics",
      traceTags: { "_dd.p.dm": "-4", "_dd.p.usr.id": "u1" },
    });
    assert.is(tracer.counters.malformedHeaders, 0);
  }));

test("extract reads W3C traceparent and tracestate (the dd member, other vendors kept)", () =>
  withTracer((tracer) => {
    const headers = new Headers({
      traceparent: "00-640cfd8e00000000a3ce929d0e0e4736-00f067aa0ba902b7-01",
      tracestate: "dd=s:2;o:rum;p:0123456789abcdef;t.dm:-4;t.usr.id:a~b,rojo=00f067aa0ba902b7, congo=t61rcWkgMzE",
    });
    const c = tracer.extract(headers);
    assert.equal(c, {
      traceId: (TID << 64n) | LOW,
      spanId: 0x00f067aa0ba902b7n,
      samplingPriority: 2,
      origin: "rum",
      traceTags: { "_dd.p.dm": "-4", "_dd.p.usr.id": "a=b" },
      tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
      lastParentId: "0123456789abcdef",
    });
    // Sampled flag and dd s disagree: the flag wins.
    assert.is(tracer.extract({ traceparent: "00-640cfd8e00000000a3ce929d0e0e4736-00f067aa0ba902b7-00", tracestate: "dd=s:2" })?.samplingPriority, 0);
    assert.is(tracer.extract({ traceparent: "00-640cfd8e00000000a3ce929d0e0e4736-00f067aa0ba902b7-01" })?.samplingPriority, 1);
  }));

test("both styles, same trace: the W3C parent wins and the Datadog one becomes _dd.parent_id; another trace becomes a span link", () =>
  withTracer(async (tracer, agent) => {
    const same = tracer.extract({
      "x-datadog-trace-id": LOW.toString(),
      "x-datadog-parent-id": "5",
      "x-datadog-sampling-priority": "1",
      traceparent: "00-640cfd8e00000000a3ce929d0e0e4736-0000000000000007-01",
      tracestate: "dd=s:1,other=x",
    })!;
    assert.is(same.traceId, (TID << 64n) | LOW, "the 128-bit id from traceparent");
    assert.is(same.spanId, 7n);
    assert.is(same.lastParentId, "0000000000000005");
    assert.is(same.tracestate, "other=x");
    const other = tracer.extract({
      "x-datadog-trace-id": "11",
      "x-datadog-parent-id": "12",
      traceparent: "00-000000000000000000000000000000aa-00000000000000bb-01",
    })!;
    assert.is(other.traceId, 11n, "datadog first");
    assert.equal(other.links, [{ traceId: 0xaan, spanId: 0xbbn, attributes: { reason: "terminated_context", context_headers: "tracecontext" }, flags: 0x80000001 }]);
    tracer.trace("server", { childOf: other }, () => {});
    tracer.trace("server2", { childOf: same }, () => {});
    await tracer.flush();
    const s = byName((await agent.waitForTraces(2)).flat());
    assert.is((s.server.span_links[0] as Record<string, unknown>).span_id, 0xbbn);
    assert.is(s.server2.meta["_dd.parent_id"], "0000000000000005");
    assert.is(s.server2.parent_id, 7n);
  }));

test("malformed headers are ignored and counted, never thrown", () =>
  withTracer((tracer) => {
    const cases: [Record<string, string | string[]>, boolean][] = [
      [{ "x-datadog-trace-id": "abc", "x-datadog-parent-id": "1" }, false],
      [{ "x-datadog-trace-id": "0", "x-datadog-parent-id": "1" }, false],
      [{ "x-datadog-trace-id": "18446744073709551616", "x-datadog-parent-id": "1" }, false],
      [{ "x-datadog-trace-id": "1" }, false],
      [{ "x-datadog-trace-id": "1", "x-datadog-parent-id": "-3" }, false],
      [{ traceparent: "garbage" }, false],
      [{ traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01" }, false],
      [{ traceparent: "00-640cfd8e00000000a3ce929d0e0e4736-0000000000000000-01" }, false],
      [{ traceparent: "ff-640cfd8e00000000a3ce929d0e0e4736-00f067aa0ba902b7-01" }, false],
      [{ traceparent: "00-640cfd8e00000000a3ce929d0e0e4736-00f067aa0ba902b7-01-extra" }, false],
      [{ traceparent: "00-640cfd8e00000000a3ce929d0e0e473-00f067aa0ba902b7-01" }, false],
      // The context survives; the bad part is dropped.
      [{ "x-datadog-trace-id": "1", "x-datadog-parent-id": "2", "x-datadog-sampling-priority": "high" }, true],
      [{ "x-datadog-trace-id": "1", "x-datadog-parent-id": "2", "x-datadog-tags": "not a tag" }, true],
      [{ "x-datadog-trace-id": "1", "x-datadog-parent-id": "2", "x-datadog-tags": "_dd.p.tid=xyz" }, true],
      [{ "x-datadog-trace-id": "1", "x-datadog-parent-id": "2", "x-datadog-tags": `_dd.p.big=${"x".repeat(600)}` }, true],
      [{ traceparent: "00-640cfd8e00000000a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "bad key=1,ok=2" }, true],
    ];
    let expected = 0;
    for (const [headers, survives] of cases) {
      const c = tracer.extract(headers);
      expected++;
      assert.is(c !== undefined, survives, JSON.stringify(headers));
      assert.is(tracer.counters.malformedHeaders, expected, JSON.stringify(headers));
    }
    assert.is(tracer.extract({}), undefined);
    assert.is(tracer.extract(null as never), undefined);
    assert.is(tracer.extract({ "x-datadog-trace-id": ["1"], "x-datadog-parent-id": ["2"] })?.spanId, 2n, "array values");
    assert.is(tracer.counters.malformedHeaders, expected, "absent headers are not malformed");
    const tagsDropped = tracer.extract({ "x-datadog-trace-id": "1", "x-datadog-parent-id": "2", "x-datadog-tags": "_dd.p.tid=xyz" });
    assert.equal(tagsDropped?.traceId, 1n);
  }));

test("propagation styles are configurable", () =>
  withTracer((tracer) => {
    const span = tracer.startSpan("x");
    const h: Record<string, string> = {};
    tracer.inject(span, h);
    assert.equal(Object.keys(h), ["traceparent", "tracestate"]);
    assert.is(tracer.extract({ "x-datadog-trace-id": "1", "x-datadog-parent-id": "2" }), undefined);
    span.finish();
  }, { propagationStyleInject: ["tracecontext"], propagationStyleExtract: ["tracecontext"] }));


test("a distributed trace continued from incoming headers, through node:http and the fetch-handler wrapper", () =>
  withTracer(async (backend, agent) => {
    const frontend = new Tracer({ url: agent.url, service: "frontend", env: "test", flushIntervalMs: 600_000 });
    const server = await listen(nodeListener(traceHandler(backend, async (request) => {
      await backend.trace("db.query", { service: "svc-db", type: "sql" }, async () => {});
      const body = await request.text();
      return new Response(`echo ${body}`, { status: 201, headers: { "x-answer": "1" } });
    }, { route: () => "/orders/:id" })));
    try {
      await frontend.trace("http.request", { type: "http" }, async (client) => {
        client.keep();
        const headers = new Headers({ "user-agent": "tests" });
        frontend.inject(client, headers);
        const response = await fetch(`${server.url}/orders/42?secret=1`, { method: "POST", headers, body: "hi" });
        assert.is(response.status, 201);
        assert.is(response.headers.get("x-answer"), "1");
        assert.is(await response.text(), "echo hi");
      });
      await frontend.flush();
      await backend.flush();
      const spans = (await agent.waitForTraces(2)).flat();
      const s = byName(spans);
      const client = s["http.request"];
      const serverSpan = s["web.request"];
      assert.is(traceIdOf(serverSpan), traceIdOf(client), "one trace");
      assert.is(serverSpan.parent_id, client.span_id);
      assert.is(s["db.query"].parent_id, serverSpan.span_id);
      assert.is(serverSpan.service, "svc");
      assert.is(serverSpan.type, "web");
      assert.is(serverSpan.resource, "POST /orders/:id");
      assert.is(serverSpan.meta["span.kind"], "server");
      assert.is(serverSpan.meta["http.method"], "POST");
      assert.is(serverSpan.meta["http.url"], `${server.url}/orders/42`, "no query string");
      assert.is(serverSpan.meta["http.route"], "/orders/:id");
      assert.is(serverSpan.meta["http.status_code"], "201");
      assert.is(serverSpan.meta["http.useragent"], "tests");
      assert.is(serverSpan.metrics["_dd.top_level"], 1);
      assert.is(serverSpan.metrics["_dd.measured"], 1);
      assert.is(serverSpan.error, 0);
      for (const span of [client, serverSpan, s["db.query"]]) assert.is(span.metrics._sampling_priority_v1, 2, "the client's decision");
      assert.is(serverSpan.meta["_dd.p.dm"], "-4");
    } finally {
      await server.close();
      await frontend.shutdown();
    }
  }));

test("the wrapper: 5xx flags an error, a throw is recorded (and answered 500 by nodeListener), no headers start a new trace", () =>
  withTracer(async (tracer, agent) => {
    const server = await listen(nodeListener(traceHandler(tracer, (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/boom") throw new Error("handler failed");
      return new Response(null, { status: path === "/down" ? 503 : 200 });
    })));
    const original = console.error;
    console.error = () => {};
    try {
      assert.is((await fetch(`${server.url}/down`)).status, 503);
      assert.is((await fetch(`${server.url}/boom`)).status, 500);
      assert.is((await fetch(`${server.url}/ok`, { method: "HEAD" })).status, 200);
    } finally {
      console.error = original;
      await server.close();
    }
    await tracer.flush();
    const spans = (await agent.waitForTraces(3)).flat();
    const byUrl = Object.fromEntries(spans.map((s) => [new URL(s.meta["http.url"]).pathname, s]));
    assert.is(byUrl["/down"].error, 1);
    assert.is(byUrl["/down"].meta["http.status_code"], "503");
    assert.is(byUrl["/down"].resource, "GET");
    assert.is(byUrl["/boom"].error, 1);
    assert.is(byUrl["/boom"].meta["error.message"], "handler failed");
    assert.is(byUrl["/ok"].error, 0);
    assert.is(byUrl["/ok"].resource, "HEAD");
    for (const s of spans) assert.is(s.parent_id, 0n);
  }));

test(`the wrapper on this runtime's own server (${runtimeName === "deno" ? "Deno.serve" : runtimeName === "bun" ? "Bun.serve" : "node:http"})`, () =>
  withTracer(async (tracer, agent) => {
    const handler = traceHandler(tracer, async (request: Request, ..._rest: unknown[]) => {
      assert.ok(tracer.activeSpan(), "the server span is active in the handler");
      await tracer.trace("inner", () => new Promise((r) => setTimeout(r, 1)));
      return new Response(`hello ${new URL(request.url).pathname}`);
    });
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    let url: string;
    let close: () => Promise<void>;
    if (runtimeName === "deno") {
      const server = g.Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handler);
      url = `http://127.0.0.1:${server.addr.port}`;
      close = () => server.shutdown();
    } else if (runtimeName === "bun") {
      const server = g.Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: handler });
      url = `http://127.0.0.1:${server.port}`;
      close = async () => void (await server.stop(true));
    } else {
      ({ url, close } = await listen(nodeListener(handler)));
    }
    const upstream: SpanContext = { traceId: 1234n, spanId: 5678n, samplingPriority: 1 };
    const headers: Record<string, string> = {};
    tracer.inject(upstream, headers);
    try {
      const response = await fetch(`${url}/native`, { headers });
      assert.is(await response.text(), "hello /native");
    } finally {
      await close();
    }
    await tracer.flush();
    const s = byName((await agent.waitForTraces(1)).flat());
    assert.is(s["web.request"].trace_id, 1234n);
    assert.is(s["web.request"].parent_id, 5678n);
    assert.is(s.inner.parent_id, s["web.request"].span_id);
    assert.is(s["web.request"].meta["http.status_code"], "200");
  }));

test.run();
