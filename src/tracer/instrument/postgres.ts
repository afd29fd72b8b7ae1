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
import { pathToFileURL } from "node:url";
import { runtime } from "../../../ffi/load.ts";
import type { AnyTracer } from "../any-tracer.ts";
import { resolveTracer } from "../any-tracer.ts";
import type { TracerSpan } from "../span.ts";
import { type DatabaseIntegrationConfig, type DatabaseInstrumentationOptions, finishDbSpan, patchMethod, resolveAppModule, Slot, startDbSpan } from "./db.ts";
import type { Instrumentation } from "./fetch.ts";
import type { Integration } from "./registry.ts";
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

/** `tracer.use("postgres", config)`: the options of {@link instrumentPostgres}, and the `postgres` function, its module or a `sql` instance (default the application's: see {@link postgresIntegration}). */
export type PostgresIntegrationConfig = DatabaseIntegrationConfig<PostgresModule>;

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
 * ES module: it is not loaded here (see {@link postgresIntegration} for how
 * `tracer.init()` finds the application's instance).
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

/**
 * `import(url)` of a file found at run time (Node only). Written through the
 * Function constructor because `deno publish` warns about any `import()` of
 * a computed specifier and has no way to silence it (denoland/deno#22594).
 */
function importFile(url: string): Promise<unknown> {
  return (new Function("url", "return import(url)") as (url: string) => Promise<unknown>)(url);
}

/**
 * The `postgres` (postgres.js) integration of `tracer.init()` /
 * `tracer.use("postgres", config)`: `config.module` when given, else the
 * application's postgres.js, found from the working directory as `pg` is
 * (`db.ts`, `resolveAppModule`); not installed, it stays off, silently.
 * postgres.js is an ES module, and must be the very instance the application
 * imported (the `Query` prototype is per instance):
 *
 * - Bun and Deno `require` an ES module into the instance their `import`
 *   gives: patched at once.
 * - Node's `require` of an ES module (20.19+) makes another instance under a
 *   loader such as tsx, so on Node the resolved file is `import()`ed (the
 *   application's instance, from the module map) and patched when that
 *   settles, a few ticks after `enable`: a query begun before is not traced.
 *   A failure then is logged through `warn`.
 *
 * A package whose `import` and `require` entries differ (postgres.js v3's
 * `cjs/`) resolves to its `require` entry here, not the application's:
 * pass the module for those.
 */
export const postgresIntegration: Integration<PostgresIntegrationConfig> = {
  name: "postgres",
  enable(tracer, { module, enabled: _, ...options }, warn) {
    if (module !== undefined && module !== null) return instrumentPostgres(tracer, module, options).uninstrument;
    const found = resolveAppModule("postgres");
    if (!found) return undefined;
    if (runtime.name !== "nodejs") return instrumentPostgres(tracer, found.require(found.path) as PostgresModule, options).uninstrument;
    let live = true;
    let instrumentation: Instrumentation | undefined;
    // Node 20.19+ can `require` an ES module, but under a loader (tsx) that is another instance than the app's.
    importFile(pathToFileURL(found.path).href).then((mod) => {
      if (live) instrumentation = instrumentPostgres(tracer, mod as PostgresModule, options);
    }).catch((error: unknown) => warn(`${found.path} could not be instrumented: ${error instanceof Error ? error.message : String(error)}`));
    return () => {
      live = false;
      instrumentation?.uninstrument();
    };
  },
};
