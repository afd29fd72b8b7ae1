/**
 * Tracer: the database instrumentations (pg, postgres.js, ioredis,
 * node-redis) end to end against a real PostgreSQL and Redis
 * (test/db-servers.ts), on Node, Bun and Deno: a query in a parent span is
 * its child with exactly dd-trace-js's name, type, resource and tags; a
 * failed one records the error; uninstrument restores the library.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import pg from "pg";
import { Redis as IORedis } from "ioredis";
import * as redis from "redis";
import postgres from "postgres";
import {
  instrumentIORedis,
  instrumentPg,
  instrumentPostgres,
  instrumentRedis,
  Tracer,
  ValidationError,
} from "../mod.ts";
import type { DecodedSpan } from "../testing.ts";
import { pgServer, redisServer, stopDbServers } from "./db-servers.ts";
import { assertNoLeaks } from "./helpers.ts";
import { runtimeName, withTracer } from "./tracer-helpers.ts";
import { DdapmAgent } from "./ddapm.ts";

test.after.each(assertNoLeaks);
test.after(stopDbServers);

/** The tags every span of the test tracer has, which say nothing of the integration. */
const TRACER_META = ["env", "version", "language", "runtime-id", "_dd.p.dm", "_dd.p.tid", "_dd.base_service", "process_id"];
const TRACER_METRICS = ["_dd.top_level", "_sampling_priority_v1", "_dd.agent_psr", "_dd.rule_psr", "_dd.limit_psr", "process_id", "_dd.measured"];

/** A span's meta and metrics without the tracer's own tags. */
function ownTags(span: DecodedSpan): { meta: Record<string, string>; metrics: Record<string, number> } {
  const meta = Object.fromEntries(Object.entries(span.meta).filter(([k]) => !TRACER_META.includes(k)));
  const metrics = Object.fromEntries(Object.entries(span.metrics).filter(([k]) => !TRACER_METRICS.includes(k)));
  return { meta, metrics };
}

const named = (spans: DecodedSpan[], name: string) => spans.filter((s) => s.name === name);

test("instrumentPg: client, callback and pool queries are pg.query children of the active span with dd-trace-js's tags; errors recorded; uninstrument restores", () =>
  withTracer(async (tracer, agent) => {
    const server = await pgServer();
    const connection = { host: server.host, port: server.port, user: server.user, database: server.database };
    const original = pg.Client.prototype.query;
    const originalConnect = pg.Pool.prototype.connect;
    const pgTracing = instrumentPg(tracer, pg);
    const client = new pg.Client(connection);
    const pool = new pg.Pool({ ...connection, max: 1 });
    let pid = 0;
    try {
      assert.is.not(pg.Client.prototype.query, original);
      await client.connect();
      pid = (client as unknown as { processID: number }).processID;
      await tracer.trace("parent", async () => {
        const r = await client.query("SELECT $1::int AS n", [41]);
        assert.is(r.rows[0].n, 41);
        await new Promise<void>((resolve, reject) =>
          client.query("SELECT 2 AS two", (error: Error | null, res: pg.QueryResult) => (error ? reject(error) : (assert.is(res.rows[0].two, 2), resolve())))
        );
        await pool.query({ text: "SELECT 3 AS three" });
        const failed = await client.query("SELECT * FROM no_such_table").then(() => undefined, (e: Error) => e);
        assert.ok(failed, "the query failed");
      });
    } finally {
      pgTracing.uninstrument();
    }
    assert.is(pg.Client.prototype.query, original, "restored");
    assert.is(pg.Pool.prototype.connect, originalConnect, "restored");
    pgTracing.uninstrument();
    await client.query("SELECT 'untraced'");
    await client.end();
    await pool.end();
    await tracer.flush();
    const spans = (await agent.waitForTraces(1)).flat();
    const parent = named(spans, "parent")[0];
    const queries = named(spans, "pg.query");
    assert.equal(queries.map((s) => s.resource).sort(), ["SELECT $1::int AS n", "SELECT * FROM no_such_table", "SELECT 2 AS two", "SELECT 3 AS three"]);
    for (const q of queries) {
      assert.is(q.parent_id, parent.span_id, q.resource);
      assert.is(q.trace_id, parent.trace_id);
      assert.is(q.service, "svc-postgres");
      assert.is(q.type, "sql");
    }
    const first = queries.find((s) => s.resource === "SELECT $1::int AS n")!;
    assert.is(first.error, 0);
    assert.equal(ownTags(first), {
      meta: {
        "span.kind": "client",
        component: "pg",
        "db.type": "postgres",
        "db.name": server.database,
        "db.user": server.user,
        "out.host": server.host,
        "peer.service": server.database,
        "_dd.peer.service.source": "db.name",
        "_dd.svc_src": "pg",
      },
      metrics: { "network.destination.port": server.port, "db.pid": pid },
    });
    assert.is(first.meta["_dd.base_service"], "svc");
    const failed = queries.find((s) => s.resource === "SELECT * FROM no_such_table")!;
    assert.is(failed.error, 1);
    assert.is(failed.meta["error.message"], 'relation "no_such_table" does not exist');
    assert.is(failed.meta["error.type"], "error", "pg's DatabaseError is named 'error'");
    assert.ok(failed.meta["error.stack"]);
  }));

test("tracer.use(\"pg\", { module, service }): the span's service and _dd.svc_src follow the option; use(\"pg\", false) restores", () =>
  withTracer(async (tracer, agent) => {
    const server = await pgServer();
    const original = pg.Client.prototype.query;
    tracer.use("pg", { module: pg, service: "orders-db" });
    assert.ok(tracer.integrations.includes("pg"));
    const client = new pg.Client({ host: server.host, port: server.port, user: server.user, database: server.database });
    try {
      await client.connect();
      await client.query("SELECT 1");
    } finally {
      tracer.use("pg", false);
      await client.end();
    }
    assert.is(pg.Client.prototype.query, original, "restored");
    await tracer.flush();
    const [span] = (await agent.waitForTraces(1)).flat();
    assert.is(span.name, "pg.query");
    assert.is(span.parent_id, 0n);
    assert.is(span.service, "orders-db");
    assert.is(span.meta["_dd.svc_src"], "opt.plugin");
  }));

test("instrumentPostgres: postgres.js queries are postgres.query children of the active span with dd-trace-js's tags; errors recorded; uninstrument restores", () =>
  withTracer(async (tracer, agent) => {
    const server = await pgServer();
    const sql = postgres({ host: server.host, port: server.port, user: server.user, database: server.database, max: 1, onnotice: () => {} });
    await sql`select 1`;
    const proto = Object.getPrototypeOf(sql.unsafe("")) as Record<string, unknown>;
    const originals = [proto.handle, proto.resolve, proto.reject];
    const pgTracing = instrumentPostgres(tracer, postgres);
    let pid = 0;
    try {
      assert.is.not(proto.handle, originals[0]);
      await tracer.trace("parent", async () => {
        const [row] = await sql`select ${41}::int as n, pg_backend_pid() as pid`;
        assert.is(row.n, 41);
        pid = row.pid;
        assert.is((await sql.unsafe("select 3 as three"))[0].three, 3);
        const failed = await sql`select * from no_such_table`.then(() => undefined, (e: Error) => e);
        assert.ok(failed, "the query failed");
      });
    } finally {
      pgTracing.uninstrument();
    }
    assert.equal([proto.handle, proto.resolve, proto.reject], originals, "restored");
    await sql`select 'untraced'`;
    await sql.end();
    await tracer.flush();
    const spans = (await agent.waitForTraces(1)).flat();
    const parent = named(spans, "parent")[0];
    const queries = named(spans, "postgres.query");
    assert.equal(queries.map((s) => s.resource), ["select $1::int as n, pg_backend_pid() as pid", "select 3 as three", "select * from no_such_table"]);
    for (const q of queries) {
      assert.is(q.parent_id, parent.span_id, q.resource);
      assert.is(q.service, "svc-postgres");
      assert.is(q.type, "sql");
    }
    assert.is(queries[0].error, 0);
    assert.equal(ownTags(queries[0]), {
      meta: {
        "span.kind": "client",
        component: "postgres",
        "db.type": "postgres",
        "db.name": server.database,
        "db.user": server.user,
        "out.host": server.host,
        "peer.service": server.database,
        "_dd.peer.service.source": "db.name",
        "_dd.svc_src": "postgres",
      },
      metrics: { "network.destination.port": server.port, "db.pid": pid },
    });
    const failed = queries[2];
    assert.is(failed.error, 1);
    assert.is(failed.meta["error.type"], "PostgresError");
    assert.is(failed.meta["error.message"], 'relation "no_such_table" does not exist');
    assert.ok(failed.meta["error.stack"]);
  }));

test("instrumentIORedis: commands and a pipeline are redis.command children of the active span with dd-trace-js's tags; an error reply recorded; uninstrument restores", () =>
  withTracer(async (tracer, agent) => {
    const server = await redisServer();
    const client = new IORedis({ host: server.host, port: server.port, lazyConnect: true });
    await client.connect();
    const original = IORedis.prototype.sendCommand;
    const redisTracing = instrumentIORedis(tracer, IORedis);
    try {
      assert.is.not(IORedis.prototype.sendCommand, original);
      await tracer.trace("parent", async () => {
        await client.set("ioredis:key", "value");
        assert.is(await client.get("ioredis:key"), "value");
        const results = await client.pipeline().incr("ioredis:n").expire("ioredis:n", 60).exec();
        assert.is(results?.length, 2);
        const failed = await client.hget("ioredis:key", "field").then(() => undefined, (e: Error) => e);
        assert.match(String(failed?.message), /WRONGTYPE/);
      });
    } finally {
      redisTracing.uninstrument();
    }
    assert.is(IORedis.prototype.sendCommand, original, "restored");
    await client.get("ioredis:untraced");
    await client.quit();
    await tracer.flush();
    const spans = (await agent.waitForTraces(1)).flat();
    const parent = named(spans, "parent")[0];
    const commands = named(spans, "redis.command");
    assert.equal(commands.map((s) => s.resource), ["set", "get", "incr", "expire", "hget"]);
    for (const c of commands) {
      assert.is(c.parent_id, parent.span_id, c.resource);
      assert.is(c.service, "svc-redis");
      assert.is(c.type, "redis");
    }
    const set = commands[0];
    assert.is(set.error, 0);
    assert.equal(ownTags(set), {
      meta: {
        "span.kind": "client",
        component: "ioredis",
        "db.type": "redis",
        "redis.raw_command": "SET ioredis:key value",
        "out.host": server.host,
        "peer.service": server.host,
        "_dd.peer.service.source": "out.host",
        "_dd.svc_src": "redis",
      },
      metrics: { "network.destination.port": server.port },
    });
    assert.is(commands[3].meta["redis.raw_command"], "EXPIRE ioredis:n 60");
    const failed = commands[4];
    assert.is(failed.error, 1);
    assert.is(failed.meta["error.type"], "ReplyError");
    assert.match(failed.meta["error.message"], /^WRONGTYPE/);
    assert.ok(failed.meta["error.stack"]);
  }));

test("instrumentIORedis: a command sent before the connection is ready (ioredis's offline queue, sent again once ready) has one span", () =>
  withTracer(async (tracer, agent) => {
    const server = await redisServer();
    const redisTracing = instrumentIORedis(tracer, IORedis);
    const client = new IORedis({ host: server.host, port: server.port });
    try {
      await tracer.trace("parent", () => client.get("ioredis:offline"));
    } finally {
      redisTracing.uninstrument();
      await client.quit();
    }
    await tracer.flush();
    await agent.waitForTraces(1);
    const spans = agent.traces().flat();
    assert.is(spans.filter((s) => s.meta["redis.raw_command"] === "GET ioredis:offline").length, 1);
  }));

test("instrumentRedis: node-redis commands are redis.command children of the active span with dd-trace-js's tags; an error reply recorded; uninstrument restores", () =>
  withTracer(async (tracer, agent) => {
    const server = await redisServer();
    const client = redis.createClient({ socket: { host: server.host, port: server.port } });
    await client.connect();
    const proto = redis.RedisClient.prototype as { sendCommand: unknown };
    const original = proto.sendCommand;
    const redisTracing = instrumentRedis(tracer, redis);
    try {
      assert.is.not(proto.sendCommand, original);
      await tracer.trace("parent", async () => {
        await client.set("redis:key", "x".repeat(150));
        assert.is((await client.get("redis:key"))?.length, 150);
        assert.is(await client.sendCommand(["INCRBY", "redis:n", "5"]), 5);
        const failed = await client.hGet("redis:key", "field").then(() => undefined, (e: Error) => e);
        assert.match(String(failed?.message), /WRONGTYPE/);
      });
    } finally {
      redisTracing.uninstrument();
    }
    assert.is(proto.sendCommand, original, "restored");
    await client.get("redis:untraced");
    await client.close();
    await tracer.flush();
    const spans = (await agent.waitForTraces(1)).flat();
    const parent = named(spans, "parent")[0];
    const commands = named(spans, "redis.command");
    assert.equal(commands.map((s) => s.resource), ["SET", "GET", "INCRBY", "HGET"]);
    for (const c of commands) {
      assert.is(c.parent_id, parent.span_id, c.resource);
      assert.is(c.service, "svc-redis");
      assert.is(c.type, "redis");
    }
    const set = commands[0];
    assert.is(set.error, 0);
    assert.equal(ownTags(set), {
      meta: {
        "span.kind": "client",
        component: "redis",
        "db.type": "redis",
        "redis.raw_command": `SET redis:key ${"x".repeat(97)}...`,
        "out.host": server.host,
        "peer.service": server.host,
        "_dd.peer.service.source": "out.host",
        "_dd.svc_src": "redis",
      },
      metrics: { "network.destination.port": server.port },
    });
    assert.is(commands[2].meta["redis.raw_command"], "INCRBY redis:n 5");
    const failed = commands[3];
    assert.is(failed.error, 1);
    assert.is(failed.meta["error.type"], "Error", "node-redis's ErrorReply keeps the name Error");
    assert.match(failed.meta["error.message"], /^WRONGTYPE/);
  }));

test("pg, postgres.js, ioredis and node-redis spans pass Datadog's test agent's trace checks (peer.service, service), and it decodes their tags", async () => {
  const [pgs, rs] = [await pgServer(), await redisServer()];
  const ddapm = await DdapmAgent.start();
  const token = `ddffi-db-${runtimeName}-${Date.now()}`;
  const pgClient = new pg.Client({ host: pgs.host, port: pgs.port, user: pgs.user, database: pgs.database });
  const sql = postgres({ host: pgs.host, port: pgs.port, user: pgs.user, database: pgs.database, max: 1 });
  const ioredis = new IORedis({ host: rs.host, port: rs.port, lazyConnect: true });
  const nodeRedis = redis.createClient({ socket: { host: rs.host, port: rs.port } });
  try {
    await ddapm.startSession(token);
    await Promise.all([pgClient.connect(), ioredis.connect(), nodeRedis.connect()]);
    const tracer = new Tracer({ url: ddapm.url, testSessionToken: token, service: "svc", env: "test", flushIntervalMs: 600_000, logger: () => {} });
    const tracing = [instrumentPg(tracer, pg), instrumentPostgres(tracer, sql), instrumentIORedis(tracer, IORedis), instrumentRedis(tracer, redis)];
    try {
      await tracer.trace("parent", async () => {
        await pgClient.query("SELECT 1");
        await sql`select 2`;
        await ioredis.ping();
        await nodeRedis.ping();
      });
      await tracer.flush();
    } finally {
      for (const t of tracing) t.uninstrument();
      await tracer.shutdown({ timeoutMs: 10_000 });
    }
    const failures = await ddapm.checkFailures(token);
    assert.is(failures.status, 200, `trace checks failed: ${failures.text}`);
    const spans = (await ddapm.traces(token)).flat();
    assert.equal(spans.map((s) => `${s.name} ${s.service} ${s.resource}`).sort(), [
      "parent svc parent",
      "pg.query svc-postgres SELECT 1",
      "postgres.query svc-postgres select 2",
      "redis.command svc-redis PING",
      "redis.command svc-redis ping",
    ]);
    for (const s of spans.filter((x) => x.name !== "parent")) {
      assert.is(s.meta?.["span.kind"], "client");
      assert.ok(s.meta?.["peer.service"]);
      assert.is(s.meta?.["_dd.base_service"], "svc");
    }
  } finally {
    await Promise.allSettled([pgClient.end(), sql.end(), ioredis.quit(), nodeRedis.close()]);
    await ddapm.close();
  }
});

test("instrumentPg, instrumentIORedis, instrumentRedis without a module patch the application's copy (require from the working directory: the same as the import); a module without the method is a ValidationError", () => {
  const tracer = new Tracer({ enabled: false, flushOnExit: false });
  const cases = [
    ["pg", () => pg.Client.prototype.query, () => instrumentPg(tracer)],
    ["ioredis", () => IORedis.prototype.sendCommand, () => instrumentIORedis(tracer)],
    ["redis", () => (redis.RedisClient.prototype as { sendCommand: unknown }).sendCommand, () => instrumentRedis(tracer)],
  ] as const;
  for (const [name, method, instrument] of cases) {
    const before = method();
    const instrumentation = instrument();
    assert.is.not(method(), before, name);
    instrumentation.uninstrument();
    assert.is(method(), before, name);
  }
  assert.throws(() => instrumentPg(tracer, {} as never), (e: unknown) => e instanceof ValidationError && e.path === "pg.Client.prototype.query");
  assert.throws(() => instrumentPostgres(tracer, {} as never), (e: unknown) => e instanceof ValidationError && e.path === "postgres");
});

test.run();
