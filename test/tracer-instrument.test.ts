/** Tracer: instrumentFetch and instrumentNodeHttp end to end (node:http servers and clients on Node, Bun and Deno), and their reversal. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import { instrumentFetch, instrumentNodeHttp, Tracer } from "../mod.ts";
import type { DecodedSpan } from "../testing.ts";
import { assertNoLeaks } from "./helpers.ts";
import { traceIdOf, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const proc = (globalThis as unknown as { process: { on(e: string, f: (e: unknown) => void): void; off(e: string, f: (e: unknown) => void): void } }).process;

/** A plain node:http server (its handler untouched); returns its URL, the headers of each request, and a close function. */
async function listen(handler: http.RequestListener = (_req, res) => res.end("ok")) {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    return handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () => {
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const named = (spans: DecodedSpan[], name: string) => spans.filter((s) => s.name === name);

test("instrumentFetch: a client span per call, headers injected, query left out, 4xx and failures are errors; uninstrument restores fetch", () =>
  withTracer(async (tracer, agent) => {
    const original = globalThis.fetch;
    const server = await listen((req, res) => {
      res.statusCode = req.url?.startsWith("/missing") ? 404 : 200;
      res.end("body");
    });
    const fetchTracing = instrumentFetch(tracer);
    try {
      assert.is.not(globalThis.fetch, original);
      await tracer.trace("parent", async () => {
        const r = await fetch(`${server.url}/items?secret=1`, { headers: { "x-app": "1" } });
        assert.is(await r.text(), "body");
        assert.is((await fetch(new Request(`${server.url}/missing`, { method: "POST", body: "x" }))).status, 404);
      });
      await fetch(`http://127.0.0.1:1/refused`).then(() => assert.unreachable("refused"), () => {});
      const closed = await listen();
      await closed.close();
    } finally {
      fetchTracing.uninstrument();
      await server.close();
    }
    assert.is(globalThis.fetch, original, "restored");
    fetchTracing.uninstrument();
    await fetch(`${server.url.replace(/:\d+$/, ":1")}`).catch(() => {});
    await tracer.flush();
    const spans = (await agent.waitForTraces(2)).flat();
    const clients = named(spans, "http.request");
    assert.is(clients.length, 3, "nothing after uninstrument");
    const parent = named(spans, "parent")[0];
    const [items, missing] = clients.filter((s) => s.parent_id === parent.span_id).sort((a, b) => a.meta["http.url"].localeCompare(b.meta["http.url"]));
    assert.is(items.meta["http.url"], `${server.url}/items`);
    assert.is(items.meta["http.method"], "GET");
    assert.is(items.resource, "GET");
    assert.is(items.type, "http");
    assert.is(items.meta["span.kind"], "client");
    assert.is(items.meta.component, "fetch");
    assert.is(items.meta["out.host"], "127.0.0.1");
    assert.is(items.meta["peer.service"], "127.0.0.1");
    assert.is(items.meta["_dd.peer.service.source"], "out.host");
    assert.is(items.metrics["network.destination.port"], server.port);
    assert.is(items.meta["http.status_code"], "200");
    assert.is(items.error, 0);
    assert.is(missing.meta["http.method"], "POST");
    assert.is(missing.meta["http.status_code"], "404");
    assert.is(missing.error, 1);
    // The server saw this client span's context, and the caller's own header.
    assert.is(server.seen[0]["x-app"], "1");
    assert.is(server.seen[0]["x-datadog-parent-id"], items.span_id.toString());
    assert.is(server.seen[0]["x-datadog-trace-id"], items.trace_id.toString());
    assert.match(String(server.seen[0].traceparent), new RegExp(`-${items.span_id.toString(16).padStart(16, "0")}-01$`));
    const refused = clients.find((s) => s.meta["http.url"] === "http://127.0.0.1:1/refused")!;
    assert.is(refused.error, 1);
    assert.ok(refused.meta["error.message"]);
    assert.is(refused.parent_id, 0n);
  }));

test("instrumentNodeHttp: server spans without wrapping the handler, client spans for http.request and http.get, one trace across them", () =>
  withTracer(async (tracer, agent) => {
    const activeInHandler: unknown[] = [];
    const server = await listen(async (req, res) => {
      activeInHandler.push(tracer.activeSpan()?.name);
      await tracer.trace("db.query", { type: "sql" }, () => new Promise((r) => setTimeout(r, 1)));
      res.statusCode = req.url?.startsWith("/fail") ? 503 : 201;
      res.end("done");
    });
    const httpTracing = instrumentNodeHttp(tracer, { ignore: (url) => url.startsWith(agent.url) });
    try {
      await tracer.trace("client.root", async () => {
        await new Promise<void>((resolve, reject) => {
          http.get(`${server.url}/orders/42?token=secret`, { headers: { "user-agent": "tests" } }, (res) => {
            res.resume();
            res.on("end", resolve);
          }).on("error", reject);
        });
        await new Promise<void>((resolve, reject) => {
          const req = http.request({ host: "127.0.0.1", port: server.port, method: "PUT", path: "/fail" }, (res) => {
            res.resume();
            res.on("end", resolve);
          });
          req.on("error", reject);
          req.end("payload");
        });
      });
    } finally {
      httpTracing.uninstrument();
    }
    // Uninstrumented: neither side makes spans.
    await new Promise<void>((resolve) => http.get(`${server.url}/after`, (res) => res.resume().on("end", resolve)));
    await server.close();
    await tracer.flush();
    // The client trace (its chunk, and one per server span), and the untraced request's lone db.query.
    const all = (await agent.waitForTraces(4)).flat();
    const rootId = traceIdOf(all.find((s) => s.name === "client.root")!);
    const spans = all.filter((s) => traceIdOf(s) === rootId);
    assert.is(all.length - spans.length, 1);
    assert.equal(activeInHandler, ["web.request", "web.request", undefined], "the server span is active in the handler");
    const root = named(spans, "client.root")[0];
    const clients = named(spans, "http.request");
    const servers = named(spans, "web.request");
    assert.is(clients.length, 2);
    assert.is(servers.length, 2);
    for (const s of spans) assert.is(traceIdOf(s), traceIdOf(root), "one trace");
    const get = clients.find((s) => s.meta["http.method"] === "GET")!;
    const put = clients.find((s) => s.meta["http.method"] === "PUT")!;
    assert.is(get.parent_id, root.span_id);
    assert.is(get.meta["http.url"], `${server.url}/orders/42`);
    assert.is(get.meta.component, "http");
    assert.is(get.meta["out.host"], "127.0.0.1");
    assert.is(get.meta["http.status_code"], "201");
    assert.is(put.meta["http.url"], `${server.url}/fail`);
    assert.is(put.meta["http.status_code"], "503");
    assert.is(put.error, 0, "5xx is not a client error by default (dd-trace-js: 400-499)");
    const getServer = servers.find((s) => s.parent_id === get.span_id)!;
    const putServer = servers.find((s) => s.parent_id === put.span_id)!;
    assert.ok(getServer && putServer, "each server span continues its client span");
    assert.is(getServer.type, "web");
    assert.is(getServer.resource, "GET");
    assert.is(getServer.meta["span.kind"], "server");
    assert.is(getServer.meta["http.url"], `${server.url}/orders/42`);
    assert.is(getServer.meta["http.useragent"], "tests");
    assert.is(getServer.meta["http.status_code"], "201");
    assert.is(getServer.metrics["_dd.top_level"], 1);
    assert.is(putServer.meta["http.status_code"], "503");
    assert.is(putServer.error, 1);
    const db = named(spans, "db.query");
    assert.is(db.length, 2);
    for (const d of db) assert.ok([getServer.span_id, putServer.span_id].includes(d.parent_id), "handler spans are children of the server span");
  }));

test("instrumentNodeHttp: a handler that throws records the error and http.status_code 500", () =>
  withTracer(async (tracer, agent) => {
    // Throws once: a client may retry the request (Deno's fetch does after a reset), and that one is answered.
    let thrown = false;
    const server = await listen((_req, res) => {
      if (thrown) return void res.end("ok");
      thrown = true;
      throw new Error("handler failed");
    });
    // The runtime reports the handler's exception as uncaught: Node and Bun at once, Deno later from its
    // event loop (possibly during a later test). The listener takes that one exception, then removes itself.
    const onUncaught = (e: unknown) => {
      if (!(e instanceof Error && e.message === "handler failed")) throw e;
      proc.off("uncaughtException", onUncaught);
    };
    proc.on("uncaughtException", onUncaught);
    const httpTracing = instrumentNodeHttp(tracer, { client: false, ignore: (url) => url.startsWith(agent.url) });
    try {
      // What the client sees differs by runtime (Node: no answer; Bun: 200; Deno: 400): only the span is checked.
      await fetch(`${server.url}/boom`, { signal: AbortSignal.timeout(300) }).then((r) => r.body?.cancel(), () => {});
      await tracer.flush();
      const span = (await agent.waitForTraces(1)).flat().find((x) => x.error)!;
      assert.is(span.name, "web.request");
      assert.is(span.error, 1);
      assert.is(span.meta["error.message"], "handler failed");
      assert.is(span.meta["error.type"], "Error");
      assert.is(span.meta["http.status_code"], "500");
    } finally {
      httpTracing.uninstrument();
      await server.close();
      await new Promise((r) => setTimeout(r, 10));
    }
  }));

test("both instrumentations together: one client span per call, and the default tracer can be passed before init", async () => {
  const { default: defaultTracer } = await import("../mod.ts");
  const fetchTracing = instrumentFetch(defaultTracer);
  const httpTracing = instrumentNodeHttp(defaultTracer);
  const server = await listen();
  try {
    // Not initialized: a disabled tracer; calls pass through unchanged.
    assert.is(await (await fetch(server.url)).text(), "ok");
    assert.is(server.seen[0]["x-datadog-trace-id"], undefined, "a disabled tracer injects nothing");
  } finally {
    fetchTracing.uninstrument();
    httpTracing.uninstrument();
    await server.close();
  }
  await withTracer(async (tracer, agent) => {
    const f = instrumentFetch(tracer);
    const h = instrumentNodeHttp(tracer, { ignore: (url) => url.startsWith(agent.url) });
    const s = await listen();
    try {
      await tracer.trace("root", async () => {
        await (await fetch(`${s.url}/a`)).text();
        await new Promise<void>((resolve) => http.get(`${s.url}/b`, (res) => res.resume().on("end", resolve)));
      });
    } finally {
      f.uninstrument();
      h.uninstrument();
      await s.close();
    }
    await tracer.flush();
    const spans = (await agent.waitForTraces(3)).flat();
    assert.equal(spans.map((x) => x.name).sort(), ["http.request", "http.request", "root", "web.request", "web.request"]);
  });
  assert.ok(Tracer);
});

test("instrumentNodeHttp: node:https servers and clients (a self-signed test certificate)", () =>
  withTracer(async (tracer, agent) => {
    const cert = readFileSync(new URL("./fixtures/localhost-cert.pem", import.meta.url));
    const key = readFileSync(new URL("./fixtures/localhost-key.pem", import.meta.url));
    const httpTracing = instrumentNodeHttp(tracer, { ignore: (url) => url.startsWith(agent.url) });
    const server = https.createServer({ key, cert }, (_req, res) => res.end(String(tracer.activeSpan()?.name)));
    try {
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const { port } = server.address() as { port: number };
      const body = await tracer.trace("tls.root", () =>
        new Promise<string>((resolve, reject) => {
          https.get({ host: "127.0.0.1", port, path: "/secure?x=1", ca: cert }, (res) => {
            let text = "";
            res.on("data", (d) => (text += d));
            res.on("end", () => resolve(text));
          }).on("error", reject);
        }));
      assert.is(body, "web.request");
      await tracer.flush();
      const spans = (await agent.waitForTraces(2)).flat();
      const client = named(spans, "http.request")[0];
      const serverSpan = named(spans, "web.request")[0];
      assert.is(client.meta["http.url"], `https://127.0.0.1:${port}/secure`);
      assert.is(serverSpan.meta["http.url"], `https://127.0.0.1:${port}/secure`);
      assert.is(serverSpan.parent_id, client.span_id);
      assert.is(serverSpan.meta["http.status_code"], "200");
    } finally {
      httpTracing.uninstrument();
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise((r) => server.close(r));
    }
  }));

test.run();
