/**
 * The client span of a database query or command, shared by the pg,
 * postgres.js, ioredis and node-redis instrumentations, with dd-trace-js's
 * tags (its `DatabasePlugin` / `CachePlugin` over `StoragePlugin`,
 * `OutboundPlugin` and `TracingPlugin.startSpan`, in
 * `packages/dd-trace/src/plugins/`, v5): `span.kind: client`, `component`
 * (the integration), `db.type`, `out.host`, `network.destination.port`,
 * `db.name` / `db.user` where the client knows them; the service is
 * `<tracer service>-<system>` (`<service>-postgres`, `<service>-redis`: the
 * v0 naming schema, `packages/dd-trace/src/service-naming/schemas/v0/storage.js`)
 * with `_dd.svc_src` the integration, or the `service` option with
 * `_dd.svc_src: opt.plugin`; `peer.service` from the first of `db.name`
 * (SQL only: `DatabasePlugin.peerServicePrecursors`) and `out.host`, with
 * `_dd.peer.service.source` naming it (as dd-trace-js does with
 * `DD_TRACE_PEER_SERVICE_DEFAULTS_ENABLED`, and as the HTTP client spans here
 * do). A failed query or command has the error recorded (`error.type`,
 * `error.message`, `error.stack`).
 *
 * The instrumentations patch the client libraries' prototypes rather than
 * bridging OpenTelemetry's contrib instrumentations: a prototype patch works
 * the same on Node, Bun and Deno once the module object is at hand, where
 * the contrib packages hook `require` (Node only) and need the OTel SDK.
 *
 * @module
 */
import nodeModule from "node:module";
import { pathToFileURL } from "node:url";
import { runtime } from "../../../ffi/load.ts";
import { ValidationError } from "../../errors.ts";
import type { TracerSpan } from "../span.ts";
import type { Tracer } from "../tracer.ts";
import type { Instrumentation } from "./fetch.ts";
import type { Integration, IntegrationConfig } from "./registry.ts";

/** Options shared by the database instrumentations. */
export interface DatabaseInstrumentationOptions {
  /** The spans' service. Default `<tracer service>-postgres` or `<tracer service>-redis` (dd-trace-js's default). */
  service?: string;
}

/**
 * The configuration of a database integration (`tracer.use("pg", config)`,
 * …): the instrumentation's options, and the client library's module.
 */
export interface DatabaseIntegrationConfig<M> extends IntegrationConfig, DatabaseInstrumentationOptions {
  /** The client library's module. Default the application's copy (see {@link requireAppModule}). */
  module?: M;
}

/**
 * The integration of a CommonJS client library (pg, ioredis, node-redis):
 * `enable` instruments `config.module`, else the application's copy of
 * `name` ({@link requireAppModule}); when the library is not installed there
 * is nothing to patch (undefined: the integration stays off, silently).
 */
export function commonJsIntegration<M>(
  name: string,
  instrument: (tracer: Tracer, mod: M, options: DatabaseInstrumentationOptions) => Instrumentation,
): Integration<DatabaseIntegrationConfig<M>> {
  return {
    name,
    enable(tracer, { module, enabled: _, ...options }) {
      const mod = module ?? requireAppModule(name) as M | undefined;
      return mod === undefined ? undefined : instrument(tracer, mod, options).uninstrument;
    },
  };
}

/** What a query or command span is made from. */
export interface DbSpanInfo {
  /** The operation name, e.g. `pg.query`. */
  name: string;
  /** The integration, for `component`, e.g. `pg`. */
  component: string;
  /** The default service's `_dd.svc_src`. Default `component` (dd-trace-js: `redis` for ioredis too). */
  serviceSource?: string;
  /** The database system, for `db.type` and the default service suffix: `postgres` or `redis`. */
  system: string;
  /** The span type: `sql` or `redis`. */
  type: string;
  /** The statement, or the command name. */
  resource: string;
  /** Whether `db.name` comes before `out.host` as the source of `peer.service` (SQL databases). */
  sql: boolean;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  /** More tags, e.g. `db.pid`, `redis.raw_command`. */
  tags?: Record<string, unknown>;
}

/** Starts the client span of a query or command: a child of the active span. */
export function startDbSpan(tracer: Tracer, info: DbSpanInfo, options: DatabaseInstrumentationOptions): TracerSpan {
  const service = options.service || `${tracer.service}-${info.system}`;
  const tags: Record<string, unknown> = {
    "span.kind": "client",
    component: info.component,
    "db.type": info.system,
  };
  if (service !== tracer.service) tags["_dd.svc_src"] = options.service ? "opt.plugin" : (info.serviceSource ?? info.component);
  if (info.database) tags["db.name"] = info.database;
  if (info.user) tags["db.user"] = info.user;
  if (info.host) tags["out.host"] = info.host;
  if (typeof info.port === "number" && Number.isFinite(info.port)) tags["network.destination.port"] = info.port;
  const peer = info.sql && info.database ? "db.name" : info.host ? "out.host" : undefined;
  if (peer) {
    tags["peer.service"] = tags[peer];
    tags["_dd.peer.service.source"] = peer;
  }
  Object.assign(tags, info.tags);
  return tracer.startSpan(info.name, { service, type: info.type, resource: info.resource, tags });
}

/** The Redis command span of ioredis and node-redis: `redis.command` (dd-trace-js's redis plugin, `packages/datadog-plugin-redis/src/index.js`). */
export function startRedisSpan(
  tracer: Tracer,
  component: string,
  command: string,
  args: readonly unknown[],
  host: string | undefined,
  port: number | undefined,
  options: DatabaseInstrumentationOptions,
): TracerSpan {
  return startDbSpan(tracer, {
    name: "redis.command",
    component,
    serviceSource: "redis",
    system: "redis",
    type: "redis",
    resource: command,
    sql: false,
    host,
    port,
    tags: { "redis.raw_command": redisRawCommand(command.toUpperCase(), args) },
  }, options);
}

const MAX_ARG_LENGTH = 100;
const MAX_COMMAND_LENGTH = 1000;

/**
 * `redis.raw_command`: the command and its arguments, as dd-trace-js's
 * `formatCommand` writes it: strings cut to 100 characters (`...` ending),
 * numbers as text, anything else `?`, functions left out, the whole cut to
 * 1000; `AUTH` without its arguments.
 */
export function redisRawCommand(command: string, args: readonly unknown[]): string {
  if (command === "AUTH") return command;
  let result = command;
  for (const arg of args) {
    if (typeof arg === "function") continue;
    const text = typeof arg === "string"
      ? (arg.length > MAX_ARG_LENGTH ? `${arg.slice(0, MAX_ARG_LENGTH - 3)}...` : arg)
      : typeof arg === "number"
      ? String(arg)
      : "?";
    result = `${result} ${text}`;
    if (result.length > MAX_COMMAND_LENGTH) return `${result.slice(0, MAX_COMMAND_LENGTH - 3)}...`;
  }
  return result;
}

/** Ends a span, recording `error` when there is one. */
export function finishDbSpan(span: TracerSpan, error?: unknown): void {
  if (error !== undefined && error !== null) span.setError(error);
  span.finish();
}

const ORIGINAL = Symbol.for("@dd-ffi/trace.original");

type Method = (this: never, ...args: never[]) => unknown;

/**
 * Replaces `target[key]` with `wrap(original)`; returns how to put the
 * original back. A method this package patched before is unwrapped first,
 * so patches never stack.
 * @throws {ValidationError} when `target[key]` is not a function (`path` names it).
 */
export function patchMethod<F extends Method>(target: object, key: string, path: string, wrap: (original: F) => F): () => void {
  const t = target as Record<string, unknown>;
  const current = t[key] as (F & { [ORIGINAL]?: F }) | undefined;
  if (typeof current !== "function") throw new ValidationError(path, `expected a function, got ${typeof current}`);
  const original = current[ORIGINAL] ?? current;
  const hadOwn = Object.hasOwn(target, key);
  const previous = Object.getOwnPropertyDescriptor(target, key);
  const patched = wrap(original) as F & { [ORIGINAL]?: F };
  Object.defineProperty(patched, ORIGINAL, { value: original });
  t[key] = patched;
  return () => {
    if (t[key] !== patched) return;
    if (hadOwn && previous) Object.defineProperty(target, key, { ...previous, value: original });
    else delete t[key];
  };
}

/** The one live instrumentation of an integration: a new one undoes the previous. */
export class Slot {
  #active: Instrumentation | undefined;

  /** Undoes the live instrumentation, if any. */
  clear(): void {
    this.#active?.uninstrument();
  }

  /** Makes the instrumentation that `restore` undoes (in reverse order) the live one. */
  hold(restore: (() => void)[]): Instrumentation {
    this.clear();
    let done = false;
    const instrumentation: Instrumentation = {
      uninstrument: () => {
        if (done) return;
        done = true;
        for (const r of restore.reverse()) r();
        if (this.#active === instrumentation) this.#active = undefined;
      },
    };
    this.#active = instrumentation;
    return instrumentation;
  }
}

/**
 * A `require` function, as far as it is used here: written out rather than
 * `ReturnType<typeof createRequire>`, so that the published `.d.ts` need no
 * `@types/node`.
 */
type Require = { (id: string): unknown; resolve(id: string): string };

/**
 * The `require` functions that find the application's modules: one from the
 * working directory (the application's own `node_modules`, whatever the
 * layout of this package's), then one from this package's location (where
 * it is a file: not a JSR module on Deno). None on Deno without
 * `--allow-read` of everything.
 */
function appRequires(): Require[] {
  const cwd = runtime.cwd();
  // Unknown on Deno without --allow-read: reading node_modules would prompt or fail, so nothing is looked up.
  if (!cwd) return [];
  const from = [pathToFileURL(`${cwd.replace(/[\\/]+$/, "")}/`).href, import.meta.url];
  const requires: Require[] = [];
  for (const f of from) {
    try {
      requires.push(nodeModule.createRequire(f));
    } catch {
      // Not a file location (a JSR module's https: URL).
    }
  }
  return requires;
}

/** Where the application's `name` is (its entry file), or undefined when it is not installed where {@link appRequires} looks. */
export function resolveAppModule(name: string): { require: Require; path: string } | undefined {
  for (const require of appRequires()) {
    try {
      return { require, path: require.resolve(name) };
    } catch {
      // Not found from here.
    }
  }
  return undefined;
}

/**
 * The application's copy of the CommonJS module `name`, loaded with
 * `require` from the working directory, else from this package's location
 * (Node, Bun, and Deno with a `node_modules` directory); undefined when it is
 * not installed there. The copy an application `import`s is the same (a
 * CommonJS module has one instance per file on all three runtimes).
 * @throws what the module throws while loading.
 */
export function requireAppModule(name: string): unknown {
  const found = resolveAppModule(name);
  return found ? found.require(found.path) : undefined;
}

/**
 * A client library's module: `given`, else {@link requireAppModule}.
 * @throws {ValidationError} naming `config.module` when neither works.
 */
export function loadModule(name: string, given: unknown): unknown {
  if (given !== undefined && given !== null) return given;
  let mod: unknown;
  let cause: unknown;
  try {
    mod = requireAppModule(name);
  } catch (error) {
    cause = error;
  }
  if (mod === undefined) {
    throw new ValidationError("config.module", `${name} was not given and could not be loaded: pass the module (\`import ${name.replace(/\W/g, "")} from "${name}"\`)`, { cause });
  }
  return mod;
}
