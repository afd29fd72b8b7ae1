/**
 * `instrumentPostgres(tracer, postgres)`: a span for every query of
 * postgres.js (`postgres`, tested with v4) on Node, Bun and Deno, as
 * dd-trace-js's postgres plugin makes it
 * (`packages/datadog-plugin-postgres/src/index.js`, v5; tags in `db.ts`):
 * `postgres.query` (its v0 operation name,
 * `service-naming/schemas/v0/storage.js`), type `sql`, resource the
 * statement as sent (`select $1 as n`), `component: postgres`,
 * `db.type: postgres`, `db.name`, `db.user`, `out.host`,
 * `network.destination.port` (of the connection that ran it, else the first
 * configured host), `db.pid` (the server process); service
 * `<service>-postgres`.
 *
 * postgres.js does not export its `Query` class, so its prototype is found
 * from a query made, and never run, by a `sql` instance: the one given, or
 * one made (not connected) from the given `postgres` function. Every query
 * of that module is then traced: `Query.prototype.handle` (which runs a
 * query the first time it is awaited or executed) starts the span, a child
 * of the active span; `resolve` and `reject` end it. postgres.js v4 also
 * publishes `diagnostics_channel` tracing events (`postgres:query`); they
 * are not used, as their start event comes from a microtask that Bun and
 * Deno do not run in the caller's async context in every case.
 *
 * @module
 */
import type { AnyTracer } from "../any-tracer.ts";
import { resolveTracer } from "../any-tracer.ts";
import type { TracerSpan } from "../span.ts";
import { type DatabaseInstrumentationOptions, finishDbSpan, type IntegrationDescriptor, patchMethod, Slot, startDbSpan } from "./db.ts";
import type { Instrumentation } from "./fetch.ts";
import { ValidationError } from "../../errors.ts";

/** A postgres.js `sql` instance (what `postgres(options)` returns). */
export interface PostgresSql {
  /** Makes a query from text; the query runs only when awaited. */
  unsafe(query: string): object;
}

/** The `postgres` module's default export (`postgres(options)`), the module itself, or a `sql` instance. */
export type PostgresModule = ((options?: object) => PostgresSql) | { default: (options?: object) => PostgresSql } | PostgresSql;

/** Options of {@link instrumentPostgres}. */
export type PostgresOptions = DatabaseInstrumentationOptions;

/** The configuration of {@link postgresIntegration}: the options, and the `postgres` module or a `sql` instance. */
export interface PostgresIntegrationConfig extends PostgresOptions {
  /** The `postgres` function or a `sql` instance (required). */
  module?: PostgresModule;
}

interface Query {
  executed?: boolean;
  text?: string;
  statement?: { string?: string } | null;
  state?: { pid?: number } | null;
  connection?: { host?: string; port?: number } | null;
  handler?: { options?: { host?: string[]; port?: number[]; database?: string; user?: unknown } };
}
type Method = (this: Query, ...args: unknown[]) => unknown;

const slot = new Slot();
const spans = new WeakMap<Query, TracerSpan>();

/** postgres.js's `Query.prototype`, from a query that is never run. */
function queryPrototype(given: PostgresModule): object {
  let sql = given as unknown as PostgresSql;
  if (typeof sql?.unsafe !== "function") {
    const make = typeof given === "function" ? given : (given as { default?: unknown })?.default;
    if (typeof make !== "function") throw new ValidationError("postgres", "expected postgres.js's postgres function, its module, or a sql instance");
    // Not connected: postgres.js connects at a query's first run.
    sql = (make as (options?: object) => PostgresSql)({ max: 1 });
  }
  return Object.getPrototypeOf(sql.unsafe(""));
}

/** The statement of a query: the one sent when known, else the query's text. */
function statementOf(q: Query): string | undefined {
  try {
    return q.statement?.string || q.text || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Patches postgres.js's `Query.prototype` (`handle`, `resolve`, `reject`)
 * for the `postgres` function, its module, or a `sql` instance given.
 * Calling it again replaces the previous instrumentation. postgres.js is an
 * ES module: it is not loaded here, since a copy loaded with `require` may
 * not be the application's (it is not under tsx on Node).
 *
 * ```ts
 * import postgres from "postgres";
 * const pgTracing = instrumentPostgres(tracer, postgres);
 * const sql = postgres();
 * await sql`select ${1} as n`; // a postgres.query span, resource "select $1 as n"
 * pgTracing.uninstrument();
 * ```
 *
 * @throws {ValidationError} when `postgres` is not postgres.js.
 */
export function instrumentPostgres(t: AnyTracer, postgres: PostgresModule, options: PostgresOptions = {}): Instrumentation {
  slot.clear();
  const proto = queryPrototype(postgres);
  const end = (q: Query, error?: unknown) => {
    const span = spans.get(q);
    if (!span) return;
    spans.delete(q);
    try {
      const statement = statementOf(q);
      if (statement) span.setTag("resource.name", statement);
      if (typeof q.state?.pid === "number") span.setTag("db.pid", q.state.pid);
      if (q.connection?.host) span.setTag("out.host", q.connection.host);
      if (typeof q.connection?.port === "number") span.setTag("network.destination.port", q.connection.port);
    } finally {
      finishDbSpan(span, error);
    }
  };
  const restore = [
    patchMethod<Method>(proto, "handle", "postgres Query.prototype.handle", (handle) =>
      function (this: Query, ...args: unknown[]): unknown {
        if (!this.executed && !spans.has(this)) {
          try {
            const o = this.handler?.options ?? {};
            const single = (a: unknown) => (Array.isArray(a) ? a[0] : a);
            spans.set(this, startDbSpan(resolveTracer(t), {
              name: "postgres.query",
              component: "postgres",
              system: "postgres",
              type: "sql",
              resource: statementOf(this) ?? "",
              sql: true,
              host: single(o.host),
              port: single(o.port),
              database: o.database,
              user: typeof o.user === "string" ? o.user : undefined,
            }, options));
          } catch {
            // Not traced.
          }
        }
        return handle.apply(this, args);
      }),
    patchMethod<Method>(proto, "resolve", "postgres Query.prototype.resolve", (resolve) =>
      function (this: Query, ...args: unknown[]): unknown {
        end(this);
        return resolve.apply(this, args);
      }),
    patchMethod<Method>(proto, "reject", "postgres Query.prototype.reject", (reject) =>
      function (this: Query, ...args: unknown[]): unknown {
        end(this, args[0] ?? new Error("query failed"));
        return reject.apply(this, args);
      }),
  ];
  return slot.hold(restore);
}

/** The postgres.js integration, for a `tracer.use("postgres", config)` registry. */
export const postgresIntegration: IntegrationDescriptor<PostgresIntegrationConfig> = {
  name: "postgres",
  enable(t: AnyTracer, config: PostgresIntegrationConfig = {}): Instrumentation {
    const { module, ...options } = config;
    if (module === undefined || module === null) throw new ValidationError("config.module", "expected postgres.js's postgres function, its module, or a sql instance");
    return instrumentPostgres(t, module, options);
  },
};
