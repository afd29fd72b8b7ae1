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
import { instrumentPg, pgIntegration } from "../mod.ts";
import type { DecodedSpan } from "../testing.ts";
import { pgServer, stopDbServers } from "./db-servers.ts";
import { assertNoLeaks } from "./helpers.ts";
import { withTracer } from "./tracer-helpers.ts";

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

test("pgIntegration: enable with a service option; the span's service and _dd.svc_src follow it", () =>
  withTracer(async (tracer, agent) => {
    const server = await pgServer();
    assert.is(pgIntegration.name, "pg");
    const pgTracing = pgIntegration.enable(tracer, { module: pg, service: "orders-db" });
    const client = new pg.Client({ host: server.host, port: server.port, user: server.user, database: server.database });
    try {
      await client.connect();
      await client.query("SELECT 1");
    } finally {
      pgTracing.uninstrument();
      await client.end();
    }
    await tracer.flush();
    const [span] = (await agent.waitForTraces(1)).flat();
    assert.is(span.name, "pg.query");
    assert.is(span.parent_id, 0n);
    assert.is(span.service, "orders-db");
    assert.is(span.meta["_dd.svc_src"], "opt.plugin");
  }));

test.run();
