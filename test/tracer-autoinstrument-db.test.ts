/**
 * Automatic instrumentation of the database clients: a new user's
 * `tracer.init()` app (the runtime's own server, whose handler queries
 * PostgreSQL with pg and postgres.js, Redis with ioredis and node-redis, and
 * fetches from another local server) shows the server, database and fetch
 * spans in one trace, decoded by the TestAgent, with the right parents;
 * `DD_TRACE_PG_ENABLED=false`, `DD_TRACE_DISABLED_PLUGINS` and
 * `tracer.use("pg", false)` turn one off; `shutdown()` puts every prototype
 * back; a client library that is not installed leaves its integration off,
 * silently. Against the real servers of test/db-servers.ts, on Node, Bun and
 * Deno.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { Redis as IORedis } from "ioredis";
import * as redis from "redis";
import postgres from "postgres";
import { registerIntegration, TracerProxy } from "../mod.ts";
import { commonJsIntegration, requireAppModule, resolveAppModule } from "../src/tracer/instrument/db.ts";
import { type DecodedSpan, TestAgent } from "../testing.ts";
import { pgServer, redisServer, stopDbServers } from "./db-servers.ts";
import { assertNoLeaks } from "./helpers.ts";
import { runtimeName, sleep, traceIdOf, withTracer } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);
test.after(stopDbServers);

interface DenoServer {
  addr: { port: number };
  shutdown(): Promise<void>;
}
interface BunServer {
  port: number;
  stop(force?: boolean): unknown;
}
const g = globalThis as unknown as {
  Deno?: { serve(options: object, handler: (request: Request) => Promise<Response>): DenoServer };
  Bun?: { serve(options: object): BunServer };
  process: { env: Record<string, string | undefined>; cwd(): string; chdir(dir: string): void };
};
const env = g.process.env;

/** The server integration of this runtime. */
const serverKind = runtimeName === "deno" ? "deno-serve" : runtimeName === "bun" ? "bun-serve" : "http";
const DB_INTEGRATIONS = ["ioredis", "pg", "postgres", "redis"];

type Closable = { url: string; close(): Promise<void> };

/**
 * An app's server, as a user writes it on this runtime: `http.createServer`
 * on Node, `Deno.serve` on Deno, `Bun.serve` on Bun; on 127.0.0.1, port 0.
 */
async function serve(handler: (request: Request) => Promise<Response>): Promise<Closable> {
  if (runtimeName === "deno") {
    const server = g.Deno!.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handler);
    return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
  }
  if (runtimeName === "bun") {
    const server = g.Bun!.serve({ port: 0, hostname: "127.0.0.1", fetch: handler });
    return { url: `http://127.0.0.1:${server.port}`, close: async () => void (await server.stop(true)) };
  }
  const server = http.createServer(async (req, res) => {
    const response = await handler(new Request(`http://127.0.0.1${req.url}`, { method: req.method }));
    res.writeHead(response.status, { "content-type": response.headers.get("content-type") ?? "text/plain" });
    res.end(await response.text());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** postgres.js's `Query.prototype`, from a query that is never run. */
function postgresQueryPrototype(): Record<string, unknown> {
  return Object.getPrototypeOf(postgres({ max: 1 }).unsafe(""));
}

/** Every method the database integrations patch. */
function dbMethods(): Record<string, unknown> {
  const q = postgresQueryPrototype();
  return {
    "pg.Client.prototype.query": pg.Client.prototype.query,
    "pg.Pool.prototype.connect": pg.Pool.prototype.connect,
    "postgres Query.prototype.handle": q.handle,
    "postgres Query.prototype.resolve": q.resolve,
    "postgres Query.prototype.reject": q.reject,
    "ioredis sendCommand": IORedis.prototype.sendCommand,
    "redis sendCommand": (redis.RedisClient.prototype as { sendCommand: unknown }).sendCommand,
  };
}

/**
 * Waits until postgres.js's prototype is patched: on Node the postgres
 * integration patches once its `import()` of the application's instance
 * settles (see `postgresIntegration`).
 */
async function postgresPatched(original: unknown): Promise<void> {
  for (let i = 0; i < 500 && postgresQueryPrototype().handle === original; i++) await sleep(2);
  assert.is.not(postgresQueryPrototype().handle, original, "postgres.js patched");
}

/** Flushes until the agent has `count` spans of the trace of the span named `root`. */
async function traceOf(tracer: { flush(): Promise<void> }, agent: TestAgent, root: (s: DecodedSpan) => boolean, count: number): Promise<DecodedSpan[]> {
  let spans: DecodedSpan[] = [];
  for (let i = 0; i < 200; i++) {
    await tracer.flush();
    const r = agent.spans().find(root);
    spans = r ? agent.spans().filter((s) => traceIdOf(s) === traceIdOf(r)) : [];
    if (spans.length >= count) return spans;
    await sleep(20);
  }
  return spans;
}

test("a new user's tracer.init() app: server, pg, postgres.js, ioredis, node-redis and fetch spans in one trace with the right parents; shutdown() restores every prototype", async () => {
  const before = dbMethods();
  const [pgs, rs] = [await pgServer(), await redisServer()];
  const agent = await TestAgent.start();
  const tracer = new TracerProxy(); // what `import tracer from "@dd-ffi/trace"` is
  tracer.init({ url: agent.url, service: "shop", flushIntervalMs: 600_000, flushOnExit: false, logger: () => {} });
  // The app: its clients, made after init() as before it (the prototypes are patched).
  const pool = new pg.Pool({ host: pgs.host, port: pgs.port, user: pgs.user, database: pgs.database, max: 1 });
  const sql = postgres({ host: pgs.host, port: pgs.port, user: pgs.user, database: pgs.database, max: 1, onnotice: () => {} });
  const cache = new IORedis({ host: rs.host, port: rs.port, lazyConnect: true });
  const sessions = redis.createClient({ socket: { host: rs.host, port: rs.port } });
  let backend: Closable | undefined;
  let frontend: Closable | undefined;
  try {
    assert.equal([...tracer.integrations].sort(), ["fetch", "http", ...DB_INTEGRATIONS, ...(serverKind === "http" ? [] : [serverKind])].sort());
    await postgresPatched(before["postgres Query.prototype.handle"]);
    for (const [name, method] of Object.entries(dbMethods())) assert.is.not(method, before[name], `${name} patched`);
    await Promise.all([cache.connect(), sessions.connect()]);
    backend = await serve(() => Promise.resolve(Response.json({ price: 7 })));
    const prices = backend.url;
    frontend = await serve(async (request) => {
      const id = Number(new URL(request.url).pathname.split("/").pop());
      const { rows } = await pool.query("SELECT $1::int AS id", [id]);
      const [{ n }] = await sql`select ${2}::int as n`;
      await cache.set(`cart:${id}`, "1");
      const session = await sessions.get(`session:${id}`);
      const { price } = await (await fetch(`${prices}/price/${id}`)).json();
      return Response.json({ id: rows[0].id, n, session, price });
    });
    const response = await fetch(`${frontend.url}/cart/42`);
    assert.equal(await response.json(), { id: 42, n: 2, session: null, price: 7 });

    const url = frontend.url;
    const isRoot = (s: DecodedSpan) => s.name === "http.request" && s.meta["http.url"] === `${url}/cart/42`;
    const spans = await traceOf(tracer, agent, isRoot, 8);
    assert.equal(spans.map((s) => `${s.name} ${s.service} ${s.resource}`).sort(), [
      `http.request shop GET`,
      `http.request shop GET`,
      "pg.query shop-postgres SELECT $1::int AS id",
      "postgres.query shop-postgres select $1::int as n",
      "redis.command shop-redis GET",
      "redis.command shop-redis set",
      `web.request shop GET`,
      `web.request shop GET`,
    ]);
    const root = spans.find(isRoot)!;
    const server = spans.find((s) => s.name === "web.request" && s.meta["http.url"] === `${url}/cart/42`)!;
    const outbound = spans.find((s) => s.name === "http.request" && s.meta["http.url"] === `${prices}/price/42`)!;
    const priceServer = spans.find((s) => s.name === "web.request" && s.meta["http.url"] === `${prices}/price/42`)!;
    assert.is(root.parent_id, 0n, "the test's fetch starts the trace");
    assert.is(server.parent_id, root.span_id, "the server continues the caller's trace");
    assert.is(server.meta.component, serverKind);
    assert.is(server.meta["http.status_code"], "200");
    for (const s of spans.filter((x) => x.type === "sql" || x.type === "redis")) {
      assert.is(s.parent_id, server.span_id, `${s.name} ${s.resource} is a child of the server span`);
      assert.is(s.meta["span.kind"], "client");
      assert.is(s.error, 0);
    }
    assert.equal(spans.filter((s) => s.parent_id === server.span_id).map((s) => s.meta.component).sort(), ["fetch", "ioredis", "pg", "postgres", "redis"]);
    assert.is(outbound.parent_id, server.span_id);
    assert.is(priceServer.parent_id, outbound.span_id, "the other server continues the fetch's context");
    const pgSpan = spans.find((s) => s.name === "pg.query")!;
    assert.is(pgSpan.meta["db.name"], pgs.database);
    assert.is(pgSpan.metrics["network.destination.port"], pgs.port);
  } finally {
    await frontend?.close();
    await backend?.close();
    await Promise.allSettled([pool.end(), sql.end(), cache.quit(), sessions.close()]);
    await tracer.shutdown();
    await agent.close();
  }
  assert.equal(tracer.integrations, []);
  assert.equal(dbMethods(), before, "every prototype put back");
});

test("DD_TRACE_PG_ENABLED=false and DD_TRACE_DISABLED_PLUGINS keep a database integration off; tracer.use(\"pg\", false) undoes it, use(\"pg\", { service }) turns it back on", async () => {
  const before = dbMethods();
  const server = await pgServer();
  const saved = [env.DD_TRACE_PG_ENABLED, env.DD_TRACE_DISABLED_PLUGINS];
  env.DD_TRACE_PG_ENABLED = "false";
  env.DD_TRACE_DISABLED_PLUGINS = "ioredis,redis";
  const connection = { host: server.host, port: server.port, user: server.user, database: server.database };
  try {
    await withTracer(async (tracer, agent) => {
      assert.ok(!tracer.integrations.includes("pg") && !tracer.integrations.includes("ioredis") && !tracer.integrations.includes("redis"));
      tracer.use("pg", { enabled: true });
      assert.ok(!tracer.integrations.includes("pg"), "the variable wins over use()");
      assert.is(pg.Client.prototype.query, before["pg.Client.prototype.query"]);
      assert.is(IORedis.prototype.sendCommand, before["ioredis sendCommand"]);
      const client = new pg.Client(connection);
      await client.connect();
      try {
        await tracer.trace("only.root", () => client.query("SELECT 1"));
      } finally {
        await client.end();
      }
      await tracer.flush();
      assert.equal((await agent.waitForTraces(1)).flat().map((s) => s.name), ["only.root"]);
    }, { instrument: true });
    delete env.DD_TRACE_PG_ENABLED;
    delete env.DD_TRACE_DISABLED_PLUGINS;
    await withTracer(async (tracer, agent) => {
      assert.ok(tracer.integrations.includes("pg"));
      assert.is.not(pg.Client.prototype.query, before["pg.Client.prototype.query"]);
      tracer.use("pg", false);
      assert.ok(!tracer.integrations.includes("pg"));
      assert.is(pg.Client.prototype.query, before["pg.Client.prototype.query"], "restored by use(\"pg\", false)");
      assert.is(pg.Pool.prototype.connect, before["pg.Pool.prototype.connect"]);
      const client = new pg.Client(connection);
      await client.connect();
      try {
        await tracer.trace("untraced.root", () => client.query("SELECT 'off'"));
        tracer.use("pg", { service: "orders-db" });
        await tracer.trace("traced.root", () => client.query("SELECT 'on'"));
      } finally {
        await client.end();
      }
      await tracer.flush();
      const spans = (await agent.waitForTraces(2)).flat();
      assert.equal(spans.map((s) => s.name).sort(), ["pg.query", "traced.root", "untraced.root"]);
      const query = spans.find((s) => s.name === "pg.query")!;
      assert.is(query.resource, "SELECT 'on'");
      assert.is(query.service, "orders-db");
      assert.is(query.meta["_dd.svc_src"], "opt.plugin");
    }, { instrument: { fetch: false, http: false, "deno-serve": false, "bun-serve": false } });
  } finally {
    for (const [k, v] of [["DD_TRACE_PG_ENABLED", saved[0]], ["DD_TRACE_DISABLED_PLUGINS", saved[1]]] as const) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
  }
  assert.equal(dbMethods(), before);
});

test("tracer.use(\"postgres\", { module }) patches the given postgres.js at once; shutdown() right after init(), before the patch lands, leaves postgres.js untouched", async () => {
  const before = dbMethods();
  await withTracer((tracer) => {
    tracer.use("postgres", { module: postgres, service: "pg-js" });
    assert.is.not(postgresQueryPrototype().handle, before["postgres Query.prototype.handle"], "patched synchronously");
    tracer.use("postgres", false);
    assert.is(postgresQueryPrototype().handle, before["postgres Query.prototype.handle"]);
  });
  // Node patches postgres.js once an import() settles: a shutdown before that must leave nothing behind.
  await withTracer(() => {}, { instrument: true });
  await sleep(50);
  assert.equal(dbMethods(), before);
});

test("a client library that is not installed leaves its integration off, silently; the database clients resolve from the working directory", async () => {
  assert.is(resolveAppModule("no-such-db-client-ddffi"), undefined);
  assert.match(resolveAppModule("pg")?.path ?? "", /node_modules[\\/]pg[\\/]/);
  let instrumented = 0;
  const unregister = registerIntegration(commonJsIntegration("no-such-db-client-ddffi", () => {
    instrumented++;
    return { uninstrument() {} };
  }));
  try {
    await withTracer((tracer, _agent, logs) => {
      assert.ok(!tracer.integrations.includes("no-such-db-client-ddffi"));
      tracer.use("no-such-db-client-ddffi", { service: "x" });
      assert.ok(!tracer.integrations.includes("no-such-db-client-ddffi"));
      assert.equal(logs.filter((l) => l.includes("no-such-db-client")), [], "nothing logged");
    }, { instrument: true });
  } finally {
    unregister();
  }
  assert.is(instrumented, 0);
});

test("the application's copy is the one its working directory resolves, even where this package's location does not", () => {
  const app = mkdtempSync(join(tmpdir(), "ddffi-app-"));
  const previous = g.process.cwd();
  try {
    mkdirSync(join(app, "node_modules", "app-only-db-ddffi"), { recursive: true });
    writeFileSync(join(app, "node_modules", "app-only-db-ddffi", "package.json"), JSON.stringify({ name: "app-only-db-ddffi", main: "index.js" }));
    writeFileSync(join(app, "node_modules", "app-only-db-ddffi", "index.js"), "exports.where = 'the app';\n");
    assert.is(resolveAppModule("app-only-db-ddffi"), undefined, "not found from the checkout");
    g.process.chdir(app);
    assert.equal(requireAppModule("app-only-db-ddffi"), { where: "the app" });
  } finally {
    g.process.chdir(previous);
    rmSync(app, { recursive: true, force: true });
  }
});

test("an integration's warn(message), for a failure after enable returned (postgres.js's import() on Node), goes to the tracer's logger", async () => {
  const unregister = registerIntegration({
    name: "late-db-ddffi",
    enable: (_tracer, _config, warn) => {
      void Promise.resolve().then(() => warn("the module could not be patched"));
      return () => {};
    },
  });
  try {
    await withTracer(async (tracer, _agent, logs) => {
      assert.ok(tracer.integrations.includes("late-db-ddffi"));
      await sleep(1);
      assert.equal(logs.filter((l) => l.includes("late-db-ddffi")), ["integration late-db-ddffi: the module could not be patched"]);
    }, { instrument: true });
  } finally {
    unregister();
  }
});

test.run();
