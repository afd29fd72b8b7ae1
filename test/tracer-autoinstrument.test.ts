/**
 * Automatic instrumentation: `tracer.init()` alone traces fetch, node:http
 * and the runtime's own server (Deno.serve, Bun.serve), end to end through a
 * real server on 127.0.0.1 and the TestAgent; `tracer.use()`, the
 * `instrument` option and `DD_TRACE_<NAME>_ENABLED` turn integrations off;
 * Bun's routes give `http.route`; a throw is a 500 with its error; a
 * streamed body ends its span; `traceHandler` under it makes no second span;
 * `shutdown()` undoes every patch.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import {
  type FetchHandler,
  instrumentBunServe,
  instrumentDenoServe,
  integrationNames,
  type IntegrationConfig,
  nodeListener,
  registerIntegration,
  traceHandler,
  Tracer,
  type TracerOptions,
  TracerProxy,
  type TracerSpan,
  ValidationError,
} from "../mod.ts";
import { type DecodedSpan, TestAgent } from "../testing.ts";
import { assertNoLeaks } from "./helpers.ts";
import { runtimeName, sleep, traceIdOf, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

interface DenoServer {
  addr: { port: number };
  shutdown(): Promise<void>;
}
interface BunServer {
  port: number;
  stop(force?: boolean): unknown;
}
type Host<S> = { serve: (...args: never[]) => S };
const g = globalThis as unknown as {
  Deno?: Host<DenoServer>;
  Bun?: Host<BunServer>;
  process: { env: Record<string, string | undefined> };
};
const env = g.process.env;

/** The integration tracing this runtime's own server. */
const serverKind = runtimeName === "deno" ? "deno-serve" : runtimeName === "bun" ? "bun-serve" : "http";
/** The integrations that apply here (the database clients are installed: devDependencies; see tracer-autoinstrument-db.test.ts). */
const expected = ["fetch", "http", ...(serverKind === "http" ? [] : [serverKind]), "ioredis", "pg", "postgres", "redis"].sort();

/** Every global an integration patches, to check that all are put back (the database clients' prototypes: tracer-autoinstrument-db.test.ts). */
function globalsNow(): unknown[] {
  return [globalThis.fetch, http.Server.prototype.emit, http.request, http.get, g.Deno?.serve, g.Bun?.serve];
}

/**
 * Serves `handler` with the runtime's own server on 127.0.0.1, port 0:
 * Deno.serve, Bun.serve (with `routes`), node:http through `nodeListener`
 * on Node. A throw is answered 500 quietly.
 */
function serve(handler: FetchHandler, routes?: Record<string, unknown>): Promise<{ url: string; close(): Promise<void> }> {
  const failed = () => new Response("failed", { status: 500 });
  if (runtimeName === "deno") {
    const serve = g.Deno!.serve as unknown as (o: object, h: FetchHandler) => DenoServer;
    const server = serve({ port: 0, hostname: "127.0.0.1", onListen() {}, onError: failed }, handler);
    return Promise.resolve({ url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() });
  }
  if (runtimeName === "bun") {
    const serve = g.Bun!.serve as unknown as (o: object) => BunServer;
    const server = serve({ port: 0, hostname: "127.0.0.1", fetch: handler, routes, error: failed });
    return Promise.resolve({ url: `http://127.0.0.1:${server.port}`, close: async () => void (await server.stop(true)) });
  }
  return listen(nodeListener(handler, { logger: () => {} }) as http.RequestListener);
}

/** A node:http server (on every runtime). */
async function listen(listener: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(listener);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Flushes until the agent has `count` spans, client spans included (a server span may end just after its client has the answer). */
async function spansOf(tracer: { flush(): Promise<void> }, agent: TestAgent, count: number): Promise<DecodedSpan[]> {
  for (let i = 0; i < 200 && agent.spans().length < count; i++) {
    await tracer.flush();
    if (agent.spans().length < count) await sleep(20);
  }
  return agent.spans();
}

const named = (spans: DecodedSpan[], name: string) => spans.filter((s) => s.name === name);

/** A tracer with automatic instrumentation (`instrument`, default true) pointed at a fresh agent. */
const withAuto = <T>(fn: (tracer: Tracer, agent: TestAgent) => Promise<T> | T, options: TracerOptions = {}) =>
  withTracer(fn, { instrument: true, ...options });

const text = (body: string) => new Response(body, { headers: { "content-type": "text/plain" } });

test("a new user's tracer.init() app: the runtime's server span, the fetch client span and a child span, in one trace; shutdown() puts every global back", async () => {
  const before = globalsNow();
  const agent = await TestAgent.start();
  const tracer = new TracerProxy(); // what `import tracer from "@dd-ffi/trace"` is
  tracer.init({ url: agent.url, service: "shop", flushIntervalMs: 600_000, flushOnExit: false, logger: () => {} });
  let server: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    assert.equal([...tracer.integrations].sort(), expected);
    server = await serve(async () => {
      await tracer.trace("db.query", { type: "sql" }, () => sleep(1));
      return text("hello");
    });
    const url = server.url;
    const body = await tracer.trace("checkout", async () => (await fetch(`${url}/cart/42?token=secret`, { headers: { "user-agent": "tests" } })).text());
    assert.is(body, "hello");
    const spans = await spansOf(tracer, agent, 4);
    assert.equal(spans.map((s) => s.name).sort(), ["checkout", "db.query", "http.request", "web.request"]);
    const [root, client, serverSpan, child] = ["checkout", "http.request", "web.request", "db.query"].map((n) => named(spans, n)[0]);
    for (const s of spans) assert.is(traceIdOf(s), traceIdOf(root), "one trace");
    assert.is(client.parent_id, root.span_id);
    assert.is(client.meta.component, "fetch");
    assert.is(client.meta["http.url"], `${url}/cart/42`);
    assert.is(serverSpan.parent_id, client.span_id, "the server continues the client's context");
    assert.is(child.parent_id, serverSpan.span_id, "the handler's span is a child of the server span");
    assert.is(serverSpan.service, "shop");
    assert.is(serverSpan.type, "web");
    assert.is(serverSpan.resource, "GET");
    assert.is(serverSpan.meta["span.kind"], "server");
    assert.is(serverSpan.meta.component, serverKind);
    assert.is(serverSpan.meta["http.method"], "GET");
    assert.is(serverSpan.meta["http.url"], `${url}/cart/42`);
    assert.is(serverSpan.meta["http.useragent"], "tests");
    assert.is(serverSpan.meta["http.status_code"], "200");
    assert.is(serverSpan.error, 0);
    assert.is(serverSpan.metrics["_dd.top_level"], 1);
  } finally {
    await server?.close();
    await tracer.shutdown();
    await agent.close();
  }
  assert.equal(tracer.integrations, []);
  assert.equal(globalsNow(), before, "every patch undone");
});

test("node:http servers and clients under automatic instrumentation, on every runtime: server, client and child spans in one trace", () =>
  withAuto(async (tracer, agent) => {
    const server = await listen(async (_req, res) => {
      await tracer.trace("work", () => sleep(1));
      res.setHeader("content-type", "text/plain");
      res.end("ok");
    });
    try {
      await tracer.trace("root", () =>
        new Promise<void>((resolve, reject) => {
          http.get(`${server.url}/node?x=1`, (res) => res.resume().on("end", resolve)).on("error", reject);
        }));
    } finally {
      await server.close();
    }
    const spans = await spansOf(tracer, agent, 4);
    const root = named(spans, "root")[0];
    const client = named(spans, "http.request")[0];
    const serverSpan = named(spans, "web.request")[0];
    assert.is(named(spans, "web.request").length, 1, "one server span (Bun's node:http runs on Bun.serve: not a second one)");
    assert.is(client.meta.component, "http");
    assert.is(client.parent_id, root.span_id);
    assert.is(serverSpan.meta.component, "http");
    assert.is(serverSpan.parent_id, client.span_id);
    assert.is(named(spans, "work")[0].parent_id, serverSpan.span_id);
    for (const s of spans) assert.is(traceIdOf(s), traceIdOf(root));
  }));

test("new Tracer() instruments nothing by default; the instrument option turns all on, or configures each; a bad one throws", async () => {
  const before = globalsNow();
  await withTracer((tracer) => {
    assert.equal(tracer.integrations, []);
    assert.equal(globalsNow(), before);
  });
  await withTracer((tracer) => {
    assert.equal([...tracer.integrations].sort(), expected.filter((n) => n !== "fetch"));
    assert.is(globalThis.fetch, before[0], "fetch untouched");
  }, { instrument: { fetch: false, http: { client: false } } });
  await withTracer((tracer) => assert.equal(tracer.integrations, []), { instrument: true, enabled: false });
  assert.throws(() => new Tracer({ instrument: "yes" as never }), (e: unknown) => e instanceof ValidationError && /options\.instrument/.test(e.message));
  assert.throws(() => new Tracer({ instrument: { fetch: 3 as never } }), (e: unknown) => e instanceof ValidationError && /options\.instrument\.fetch/.test(e.message));
  assert.equal(globalsNow(), before);
});

test("tracer.use(name, { enabled: false }) turns an integration off and restores its global; use(name, config) turns it back on with that config", () => {
  const unpatched = globalThis.fetch;
  return withAuto(async (tracer, agent) => {
    assert.is.not(globalThis.fetch, unpatched);
    tracer.use("fetch", false);
    tracer.use(serverKind, { enabled: false });
    assert.ok(!tracer.integrations.includes("fetch") && !tracer.integrations.includes(serverKind));
    assert.is(globalThis.fetch, unpatched, "restored to the original");
    const server = await serve(() => text("quiet"));
    try {
      assert.is(await tracer.trace("untraced.root", async () => (await fetch(server.url)).text()), "quiet");
    } finally {
      await server.close();
    }
    // Back on, with a service of its own.
    tracer.use("fetch", { service: "outbound" });
    tracer.use(serverKind, { service: "frontend" });
    const again = await serve(() => text("loud"));
    try {
      assert.is(await tracer.trace("traced.root", async () => (await fetch(`${again.url}/again`)).text()), "loud");
    } finally {
      await again.close();
    }
    const spans = await spansOf(tracer, agent, 4);
    assert.equal(spans.map((s) => s.name).sort(), ["http.request", "traced.root", "untraced.root", "web.request"]);
    assert.is(named(spans, "http.request")[0].service, "outbound");
    assert.is(named(spans, "web.request")[0].service, "frontend");
    assert.is(named(spans, "web.request")[0].meta["http.url"], `${again.url}/again`);
    assert.throws(() => tracer.use("", {}), (e: unknown) => e instanceof ValidationError && /name/.test(e.message));
    assert.throws(() => tracer.use("fetch", 5 as never), (e: unknown) => e instanceof ValidationError && /config/.test(e.message));
  });
});

test("DD_TRACE_<NAME>_ENABLED=false and DD_TRACE_DISABLED_PLUGINS keep an integration off, whatever tracer.use says", async () => {
  const before = globalsNow();
  const variable = { "deno-serve": "DD_TRACE_DENO_SERVE_ENABLED", "bun-serve": "DD_TRACE_BUN_SERVE_ENABLED", http: "DD_TRACE_HTTP_ENABLED" }[serverKind];
  const saved = [env.DD_TRACE_FETCH_ENABLED, env[variable], env.DD_TRACE_DISABLED_PLUGINS];
  env.DD_TRACE_FETCH_ENABLED = "false";
  env[variable] = "0";
  try {
    await withAuto(async (tracer, agent) => {
      tracer.use("fetch", { enabled: true });
      assert.equal(tracer.integrations.filter((n) => n === "fetch" || n === serverKind), []);
      assert.is(globalThis.fetch, before[0]);
      const server = await serve(() => text("off"));
      try {
        assert.is(await tracer.trace("only.root", async () => (await fetch(server.url)).text()), "off");
      } finally {
        await server.close();
      }
      const spans = await spansOf(tracer, agent, 1);
      await sleep(50);
      await tracer.flush();
      assert.equal(agent.spans().map((s) => s.name), ["only.root"]);
      void spans;
    });
    delete env.DD_TRACE_FETCH_ENABLED;
    delete env[variable];
    env.DD_TRACE_DISABLED_PLUGINS = `foo, fetch`;
    await withAuto((tracer) => {
      assert.ok(!tracer.integrations.includes("fetch"));
      assert.ok(tracer.integrations.includes("http"));
    });
  } finally {
    for (const [k, v] of [["DD_TRACE_FETCH_ENABLED", saved[0]], [variable, saved[1]], ["DD_TRACE_DISABLED_PLUGINS", saved[2]]] as const) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
  }
  assert.equal(globalsNow(), before);
});

test("a handler that throws: the server span records the error and http.status_code 500", () =>
  withAuto(async (tracer, agent) => {
    // On Node the runtime's fetch-style server is node:http + nodeListener, which answers a throw itself:
    // a traceHandler there records the error on the http span (and makes no span of its own).
    const failing: FetchHandler = () => {
      throw new TypeError("handler failed");
    };
    const server = await serve(serverKind === "http" ? traceHandler(tracer, failing) : failing);
    try {
      const response = await fetch(`${server.url}/boom`);
      assert.is(response.status, 500);
      await response.body?.cancel();
    } finally {
      await server.close();
    }
    const spans = await spansOf(tracer, agent, 2);
    const serverSpans = named(spans, "web.request");
    assert.is(serverSpans.length, 1);
    const span = serverSpans[0];
    assert.is(span.error, 1);
    assert.is(span.meta["error.message"], "handler failed");
    assert.is(span.meta["error.type"], "TypeError");
    assert.is(span.meta["http.status_code"], "500");
  }));

test("traceHandler alone: a handler that throws (or rejects) has http.status_code 500 and the error on its span", () =>
  withTracer(async (tracer, agent) => {
    const handler = traceHandler(tracer, async (request) => {
      if (request.url.endsWith("/sync")) throw new RangeError("sync failure");
      await sleep(1);
      throw new Error("async failure");
    });
    for (const path of ["/sync", "/async"]) {
      await handler(new Request(`http://example.test${path}`)).then(() => assert.unreachable("rejects"), () => {});
    }
    await tracer.flush();
    const spans = (await agent.waitForTraces(2)).flat();
    assert.equal(spans.map((s) => s.meta["http.status_code"]), ["500", "500"]);
    assert.equal(spans.map((s) => s.meta["error.message"]).sort(), ["async failure", "sync failure"]);
    assert.equal(spans.map((s) => s.error), [1, 1]);
  }));

test("traceHandler: http.url is the URL without query or fragment, for repeated paths with other queries too", () =>
  withTracer(async (tracer, agent) => {
    const handler = traceHandler(tracer, () => new Response("ok"));
    const urls = [
      "http://example.test/orders?id=1",
      "http://example.test/orders?id=2#top",
      "http://example.test/orders#frag?not-a-query",
      "http://example.test/orders",
      "http://EXAMPLE.test:80/a/../orders?x",
      "https://example.test:443/a%20b/?q",
    ];
    for (const url of urls) await handler(new Request(url));
    await tracer.flush();
    const spans = (await agent.waitForTraces(urls.length)).flat();
    assert.equal(spans.map((s) => s.meta["http.url"]).sort(), [
      "http://example.test/orders",
      "http://example.test/orders",
      "http://example.test/orders",
      "http://example.test/orders",
      "http://example.test/orders",
      "https://example.test/a%20b/",
    ]);
  }));

test("a streamed response: the server span ends when the body ends, not at the headers", () =>
  withAuto(async (tracer, agent) => {
    let serverSpan: TracerSpan | undefined;
    const encoder = new TextEncoder();
    const server = await serve(() => {
      serverSpan = tracer.activeSpan();
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          await sleep(20);
          if (sent++ < 3) return controller.enqueue(encoder.encode(`chunk ${sent}\n`));
          // Set after the headers went out: kept only if the span has not finished yet.
          serverSpan!.setTag("body.ended", "yes");
          controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "text/plain" } });
    });
    try {
      const response = await fetch(`${server.url}/stream`);
      assert.is(await response.text(), "chunk 1\nchunk 2\nchunk 3\n");
    } finally {
      await server.close();
    }
    const span = named(await spansOf(tracer, agent, 2), "web.request")[0];
    assert.is(span.meta["body.ended"], "yes", "the span was still open when the body ended");
    assert.is(span.meta["http.status_code"], "200");
  }));

test("a streamed response the client gives up on: the server span still ends", () =>
  withAuto(async (tracer, agent) => {
    const encoder = new TextEncoder();
    const server = await serve(() =>
      new Response(
        new ReadableStream<Uint8Array>({
          async pull(controller) {
            await sleep(10);
            controller.enqueue(encoder.encode("tick\n"));
          },
        }),
        { headers: { "content-type": "text/plain" } },
      )
    );
    try {
      const abort = new AbortController();
      const response = await fetch(`${server.url}/endless`, { signal: abort.signal });
      const reader = response.body!.getReader();
      await reader.read();
      abort.abort();
      await reader.read().catch(() => {});
      // The fetch's client span, and the server span once the server sees the connection go.
      const span = named(await spansOf(tracer, agent, 2), "web.request")[0];
      assert.ok(span, "the server span ended");
      assert.is(span.meta["http.url"], `${server.url}/endless`);
    } finally {
      await server.close();
    }
  }));

test("the ignore option leaves a request untraced; explicit instrumentDenoServe / instrumentBunServe throw on another runtime", () =>
  withAuto(async (tracer, agent) => {
    tracer.use(serverKind, { ignore: (url) => url.endsWith("/health") });
    const server = await serve(() => text("ok"));
    try {
      await (await fetch(`${server.url}/health`)).text();
      await (await fetch(`${server.url}/work`)).text();
    } finally {
      await server.close();
    }
    const spans = await spansOf(tracer, agent, 3);
    await sleep(50);
    await tracer.flush();
    assert.equal(named(agent.spans(), "web.request").map((s) => s.meta["http.url"]), [`${server.url}/work`]);
    void spans;
    if (runtimeName !== "deno") assert.throws(() => instrumentDenoServe(tracer), (e: unknown) => e instanceof TypeError && /only on Deno/.test(e.message));
    if (runtimeName !== "bun") assert.throws(() => instrumentBunServe(tracer), (e: unknown) => e instanceof TypeError && /only on Bun/.test(e.message));
  }));

test("traceHandler under automatic instrumentation: one server span, with traceHandler's route and tags", () =>
  withAuto(async (tracer, agent) => {
    const handler = traceHandler(tracer, (request) => text(`hello ${new URL(request.url).pathname}`), {
      route: () => "/orders/:id",
      tags: { "app.layer": "edge" },
    });
    const server = await serve(handler);
    try {
      assert.is(await (await fetch(`${server.url}/orders/7`)).text(), "hello /orders/7");
    } finally {
      await server.close();
    }
    const spans = await spansOf(tracer, agent, 2);
    await sleep(50);
    await tracer.flush();
    const servers = named(agent.spans(), "web.request");
    assert.is(servers.length, 1, "no second server span");
    assert.is(servers[0].meta.component, serverKind);
    assert.is(servers[0].meta["http.route"], "/orders/:id");
    assert.is(servers[0].resource, "GET /orders/:id");
    assert.is(servers[0].meta["app.layer"], "edge");
    void spans;
  }));

if (runtimeName === "bun") {
  test("Bun.serve routes: each route handler's span has the route pattern as http.route", () =>
    withAuto(async (tracer, agent) => {
      const server = await serve(() => text("fallback"), {
        "/users/:id": (request: Request & { params: { id: string } }) => text(`user ${request.params.id}`),
        "/items/:sku": { GET: () => text("item"), POST: () => new Response(null, { status: 201 }) },
        "/static": new Response("static"),
      });
      try {
        assert.is(await (await fetch(`${server.url}/users/42?x=1`)).text(), "user 42");
        assert.is(await (await fetch(`${server.url}/items/a1`)).text(), "item");
        assert.is((await fetch(`${server.url}/items/a1`, { method: "POST" })).status, 201);
        assert.is(await (await fetch(`${server.url}/static`)).text(), "static");
        assert.is(await (await fetch(`${server.url}/other`)).text(), "fallback");
      } finally {
        await server.close();
      }
      const spans = named(await spansOf(tracer, agent, 9), "web.request");
      const by = (url: string, method = "GET") => spans.find((s) => s.meta["http.url"] === `${server.url}${url}` && s.meta["http.method"] === method)!;
      assert.is(by("/users/42").meta["http.route"], "/users/:id");
      assert.is(by("/users/42").resource, "GET /users/:id");
      assert.is(by("/items/a1").meta["http.route"], "/items/:sku");
      assert.is(by("/items/a1", "POST").resource, "POST /items/:sku");
      assert.is(by("/items/a1", "POST").meta["http.status_code"], "201");
      assert.is(by("/other").meta["http.route"], undefined, "the fetch handler has no route");
      assert.is(spans.length, 4, "a static Response is answered by Bun alone");
    }));

  test("Bun.serve(app): an app object (a class instance with fetch, as Hono's `export default app`) is traced, its other members kept", () =>
    withAuto(async (tracer, agent) => {
      class App {
        hostname = "127.0.0.1";
        greeting = "from the app";
        get port() {
          return 0;
        }
        fetch = () => text(this.greeting);
      }
      const serve = g.Bun!.serve as unknown as (o: object) => BunServer;
      const server = serve(new App());
      try {
        assert.is(await (await fetch(`http://127.0.0.1:${server.port}/app`)).text(), "from the app");
      } finally {
        await server.stop(true);
      }
      const span = named(await spansOf(tracer, agent, 2), "web.request")[0];
      assert.is(span.meta.component, "bun-serve");
    }));

  test("Bun.serve: server.reload(options) keeps tracing, with the new routes' patterns", () =>
    withAuto(async (tracer, agent) => {
      const serve = g.Bun!.serve as unknown as (o: object) => BunServer & { reload(o: object): void };
      const server = serve({ port: 0, hostname: "127.0.0.1", fetch: () => text("v1") });
      const url = `http://127.0.0.1:${server.port}`;
      try {
        server.reload({ fetch: () => text("v2"), routes: { "/v2/:name": () => text("routed") } });
        assert.is(await (await fetch(`${url}/v2/a`)).text(), "routed");
      } finally {
        await server.stop(true);
      }
      const span = named(await spansOf(tracer, agent, 2), "web.request")[0];
      assert.is(span.meta["http.route"], "/v2/:name");
    }));
}

if (runtimeName === "deno") {
  test("Deno.serve: http.route from the deno-serve integration's route function; Deno.serve({ handler }) form", () =>
    withAuto(async (tracer, agent) => {
      tracer.use("deno-serve", { route: (request) => new URL(request.url).pathname.startsWith("/users/") ? "/users/:id" : undefined });
      const serve = g.Deno!.serve as unknown as (o: object) => DenoServer;
      const server = serve({ port: 0, hostname: "127.0.0.1", onListen() {}, handler: () => text("deno") });
      const url = `http://127.0.0.1:${server.addr.port}`;
      try {
        assert.is(await (await fetch(`${url}/users/9`)).text(), "deno");
      } finally {
        await server.shutdown();
      }
      const span = named(await spansOf(tracer, agent, 2), "web.request")[0];
      assert.is(span.meta["http.route"], "/users/:id");
      assert.is(span.resource, "GET /users/:id");
    }));
}

test("registerIntegration: another module's integration is enabled by the instrument option, configured by use(), undone by shutdown()", async () => {
  const calls: string[] = [];
  const unregister = registerIntegration<{ enabled?: boolean; service?: string; label?: string }>({
    name: "test-db",
    enable: (_tracer, config) => {
      calls.push(`enable ${config.label ?? "-"}`);
      return () => calls.push("disable");
    },
  });
  assert.ok(integrationNames().includes("test-db"));
  await withTracer((tracer) => {
    assert.ok(tracer.integrations.includes("test-db"));
    tracer.use("test-db", { label: "x" } as IntegrationConfig);
    tracer.use("test-db", false);
    tracer.use("test-db", true);
  }, { instrument: { fetch: false, http: false, "deno-serve": false, "bun-serve": false } });
  assert.equal(calls, ["enable -", "disable", "enable x", "disable", "enable -", "disable"]);
  unregister();
  assert.ok(!integrationNames().includes("test-db"));
  await withTracer((tracer) => assert.ok(!tracer.integrations.includes("test-db")), { instrument: true });
  assert.throws(() => registerIntegration({ name: "", enable: () => undefined }), TypeError);
});

test("tracer.use() before init() is kept and applied by init()", async () => {
  const before = globalsNow();
  const agent = await TestAgent.start();
  const tracer = new TracerProxy();
  tracer.use("fetch", { service: "outbound" }).use(serverKind, false);
  assert.equal(tracer.integrations, [], "nothing before init()");
  assert.is(globalThis.fetch, before[0]);
  tracer.init({ url: agent.url, service: "shop", flushIntervalMs: 600_000, flushOnExit: false, logger: () => {} });
  const server = await serve(() => text("ok"));
  try {
    assert.ok(tracer.integrations.includes("fetch") && !tracer.integrations.includes(serverKind));
    await tracer.trace("root", async () => (await fetch(server.url)).text());
    const spans = await spansOf(tracer, agent, 2);
    assert.equal(spans.map((s) => s.name).sort(), ["http.request", "root"]);
    assert.is(named(spans, "http.request")[0].service, "outbound");
  } finally {
    await server.close();
    await tracer.shutdown();
    await agent.close();
  }
  assert.equal(globalsNow(), before);
});

test.run();
