/** @opentelemetry/instrumentation-http through the bridge: a node:http server and its client calls, traced automatically (Node, Bun and Deno). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRequire } from "node:module";
import type * as NodeHttp from "node:http";
import { isWrapped, registerInstrumentations } from "@opentelemetry/instrumentation";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { TracerProvider } from "../opentelemetry.ts";
import { assertNoLeaks } from "./helpers.ts";
import { byName, runtimeName, traceIdOf, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const require = createRequire(import.meta.url);

/** GETs `url` with the (patched) `http.get`; resolves with the body. */
function get(http: typeof NodeHttp, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

test("instrumentation-http: client spans for http.get, server spans for a node:http server, one trace with the handler's spans", () =>
  withTracer(async (tracer, agent) => {
    const provider = new TracerProvider(tracer).register();
    const agentPort = Number(new URL(agent.url).port);
    const instrumentation = new HttpInstrumentation({
      // The test agent is a node:http server too: leave its requests alone.
      ignoreIncomingRequestHook: (req) => req.socket.localPort === agentPort,
    });
    const unregister = registerInstrumentations({ instrumentations: [instrumentation], tracerProvider: provider });
    const http: typeof NodeHttp = require("node:http");
    let server: NodeHttp.Server | undefined;
    try {
      assert.ok(isWrapped(http.Server.prototype.emit), `instrumentation-http patched node:http on ${runtimeName}`);
      assert.ok(isWrapped(http.get));
      let served!: () => void;
      const finished = new Promise<void>((resolve) => (served = resolve));
      server = http.createServer((req, res) => {
        // After the instrumentation's own "finish" listener, which ends the server span.
        res.on("finish", () => setTimeout(served, 0));
        tracer.trace("handler.work", { resource: req.url }, () => res.end(`hello ${req.url}`));
      });
      await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as { port: number }).port;
      const body = await tracer.trace("test.root", () => get(http, `http://127.0.0.1:${port}/users/42?q=1`));
      assert.is(body, "hello /users/42?q=1");
      await finished;
      await tracer.flush();
      const chunks = await agent.waitForTraces(2);
      assert.is(chunks.length, 2, "the client side and the server side (continued from the headers) are two chunks of one trace");
      const spans = byName(chunks.flat());
      assert.equal(Object.keys(spans).sort(), ["handler.work", "http.client.request", "http.server.request", "test.root"]);
      const root = spans["test.root"], client = spans["http.client.request"], srv = spans["http.server.request"], work = spans["handler.work"];
      for (const span of chunks.flat()) assert.is(traceIdOf(span), traceIdOf(root), `${span.name} is in the trace`);
      assert.is(client.parent_id, root.span_id);
      assert.is(srv.parent_id, client.span_id, "the server span continues the client's injected headers");
      assert.is(work.parent_id, srv.span_id, "the handler's Tracer span is a child of the server span");
      const base = { language: "javascript", "runtime-id": tracer.runtimeId, env: "test", version: "1.2.3", "_dd.p.tid": root.meta["_dd.p.tid"] };
      const scope = {
        "otel.scope.name": "@opentelemetry/instrumentation-http",
        "otel.library.name": "@opentelemetry/instrumentation-http",
        "otel.scope.version": instrumentation.instrumentationVersion,
        "otel.library.version": instrumentation.instrumentationVersion,
        "otel.status_code": "Unset",
      };
      assert.is(client.service, "svc");
      assert.is(client.resource, "GET");
      assert.is(client.type, "http");
      assert.equal(client.meta, {
        ...base,
        ...scope,
        "span.kind": "client",
        "http.method": "GET",
        "http.url": `http://127.0.0.1:${port}/users/42?q=1`,
        "http.server_name": "127.0.0.1",
        "http.status_code": "200",
        "http.version": "1.1",
        "network.peer.address": "127.0.0.1",
      });
      assert.equal(client.metrics, {
        process_id: client.metrics.process_id,
        _sampling_priority_v1: 1,
        "_dd.measured": 1,
        "server.port": port,
        "network.peer.port": port,
      });
      assert.is(srv.resource, "GET");
      assert.is(srv.type, "web");
      assert.equal(srv.meta, {
        ...base,
        ...scope,
        "span.kind": "server",
        "_dd.p.dm": "-0",
        "http.method": "GET",
        "http.status_code": "200",
        "http.client_ip": "127.0.0.1",
        "http.server_name": "127.0.0.1",
        "http.version": "1.1",
        "network.peer.address": "127.0.0.1",
        "url.path": "/users/42",
        "url.query": "q=1",
        "url.scheme": "http",
      });
      assert.equal(srv.metrics, {
        process_id: srv.metrics.process_id,
        _sampling_priority_v1: 1,
        "_dd.top_level": 1,
        "_dd.measured": 1,
        "server.port": port,
        "network.peer.port": srv.metrics["network.peer.port"],
      });
      assert.ok(srv.metrics["network.peer.port"] > 0);
      assert.is(work.resource, "/users/42?q=1");
    } finally {
      server?.close();
      unregister();
      instrumentation.disable();
      provider.unregister();
    }
  }));

test.run();
