/**
 * `instrumentPg(tracer, pg)`: a span for every query of node-postgres
 * (`pg`, v8), `Pool` queries included, on Node, Bun and Deno, as dd-trace-js's
 * pg plugin makes it (`packages/datadog-plugin-pg/src/index.js`, v5, with
 * the tags of `db.ts`): `pg.query`, type `sql`, resource the statement,
 * `component: pg`, `db.type: postgres`, `db.name`, `db.user`, `out.host`,
 * `network.destination.port` (from the client's `connectionParameters`),
 * `db.pid` (the server process, once connected), `db.stream: 1` for a
 * cursor or stream; service `<service>-postgres`.
 *
 * It patches `pg.Client.prototype.query` (dd-trace-js patches the same
 * method), so every client from that module object is traced: the span
 * starts when `query()` is called, a child of the active span, and ends when
 * pg calls back, its promise settles, or a submittable (cursor, stream)
 * ends or fails. `pg.Pool.prototype.connect` is patched too, so that a pool's
 * callback runs in its caller's context. pg's native bindings (`pg.native`)
 * are not patched.
 *
 * @module
 */
import { errorMonitor } from "node:events";
import type { AnyTracer } from "../any-tracer.ts";
import { resolveTracer } from "../any-tracer.ts";
import { scope } from "../scope.ts";
import type { TracerSpan } from "../span.ts";
import { commonJsIntegration, type DatabaseIntegrationConfig, type DatabaseInstrumentationOptions, finishDbSpan, loadModule, patchMethod, Slot, startDbSpan } from "./db.ts";
import type { Instrumentation } from "./fetch.ts";

/** The part of the `pg` module this instrumentation uses: its `Client` class. */
export interface PgModule {
  /** pg's client class, whose `prototype.query` is patched. */
  Client: { prototype: object };
}

/** Options of {@link instrumentPg}. */
export type PgOptions = DatabaseInstrumentationOptions;

/** `tracer.use("pg", config)`: the options of {@link instrumentPg}, and the `pg` module (default the application's, loaded with `require`). */
export type PgIntegrationConfig = DatabaseIntegrationConfig<PgModule>;

interface PgClient {
  connectionParameters?: { user?: string; database?: string; host?: string; port?: number };
  processID?: number | null;
}

interface QueryConfig {
  text?: unknown;
  submit?: unknown;
  read?: unknown;
  callback?: unknown;
  cursor?: { text?: unknown; read?: unknown };
  once?: (event: string | symbol, listener: (...a: unknown[]) => void) => unknown;
}

type Callback = (this: unknown, ...args: unknown[]) => unknown;
type Query = (this: PgClient, ...args: unknown[]) => unknown;
type Connect = (this: unknown, ...args: unknown[]) => unknown;

const slot = new Slot();

/**
 * Patches `pg.Client.prototype.query` of `pg` (default the application's
 * copy, loaded with `require` from the working directory: see `db.ts`). Calling it again replaces the previous instrumentation.
 *
 * ```ts
 * import pg from "pg";
 * const pgTracing = instrumentPg(tracer, pg);
 * await new pg.Pool().query("SELECT 1"); // a pg.query span, service "<service>-postgres"
 * pgTracing.uninstrument();
 * ```
 *
 * @throws {ValidationError} when `pg` is not given and cannot be loaded, or its `Client.prototype.query` is not a function.
 */
export function instrumentPg(t: AnyTracer, pg?: PgModule, options: PgOptions = {}): Instrumentation {
  slot.clear();
  const mod = loadModule("pg", pg) as PgModule;
  const restore = patchMethod<Query>(mod?.Client?.prototype ?? {}, "query", "pg.Client.prototype.query", (query) =>
    function (this: PgClient, ...args: unknown[]): unknown {
      let span: TracerSpan;
      let config: QueryConfig;
      try {
        config = (args[0] !== null && typeof args[0] === "object" ? args[0] : { text: args[0] }) as QueryConfig;
        const source = config.cursor ?? config;
        const params = this.connectionParameters ?? {};
        const tags: Record<string, unknown> = {};
        if (typeof this.processID === "number") tags["db.pid"] = this.processID;
        if (typeof source.read === "function") tags["db.stream"] = 1;
        span = startDbSpan(resolveTracer(t), {
          name: "pg.query",
          component: "pg",
          system: "postgres",
          type: "sql",
          resource: typeof source.text === "string" ? source.text : String(source.text ?? ""),
          sql: true,
          host: params.host,
          port: params.port,
          database: params.database,
          user: params.user,
          tags,
        }, options);
      } catch {
        return query.apply(this, args);
      }
      let finished = false;
      const finish = (error?: unknown) => {
        if (finished) return;
        finished = true;
        finishDbSpan(span, error);
      };
      const wrap = (callback: Callback): Callback =>
        function (this: unknown, ...a: unknown[]) {
          finish(a[0]);
          return callback.apply(this, a);
        };
      const submittable = typeof config.submit === "function";
      // Where pg looks for the callback: (text, values, callback), (text, callback), or the config's.
      const at = typeof args[1] === "function" ? 1 : typeof args[2] === "function" ? 2 : -1;
      if (at >= 0 && !(submittable && typeof config.callback === "function")) args[at] = wrap(args[at] as Callback);
      else if (typeof config.callback === "function") config.callback = wrap(config.callback as Callback);
      else if (submittable && typeof config.once === "function") {
        config.once("end", () => finish());
        config.once(errorMonitor, (e) => finish(e));
      }
      let result: unknown;
      try {
        result = query.apply(this, args);
      } catch (error) {
        finish(error);
        throw error;
      }
      if (!finished && at < 0 && !submittable && typeof (result as Promise<unknown>)?.then === "function") {
        (result as Promise<unknown>).then(() => finish(), (e) => finish(e));
      }
      return result;
    });
  const restores = [restore];
  // A pool hands its callback a client once one is free or connected: from a socket event, where Deno's
  // node:net does not carry the caller's async context. Bound to it, the pool's query is still a child
  // of the span active at `pool.query()` (dd-trace-js does the same with its pool connect channels).
  const pool = (mod as { Pool?: { prototype?: object } }).Pool?.prototype;
  if (pool && typeof (pool as { connect?: unknown }).connect === "function") {
    restores.push(patchMethod<Connect>(pool, "connect", "pg.Pool.prototype.connect", (connect) =>
      function (this: unknown, ...args: unknown[]): unknown {
        if (typeof args[0] === "function") args[0] = scope.bind(args[0]);
        return connect.apply(this, args);
      }));
  }
  return slot.hold(restores);
}

/** The `pg` integration of `tracer.init()` / `tracer.use("pg", config)`. */
export const pgIntegration = commonJsIntegration<PgModule>("pg", instrumentPg);
