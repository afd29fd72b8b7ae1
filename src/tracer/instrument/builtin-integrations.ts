/**
 * The integrations this package ships, registered in the table of
 * `registry.ts` (names as dd-trace-js's plugins where it has them):
 *
 * | name         | patches                                   | config                          |
 * |--------------|-------------------------------------------|---------------------------------|
 * | `fetch`      | `globalThis.fetch`                        | {@link FetchIntegrationConfig}  |
 * | `http`       | `node:http` and `node:https`              | {@link HttpIntegrationConfig}   |
 * | `deno-serve` | `Deno.serve` (Deno only)                  | {@link ServeIntegrationConfig}  |
 * | `bun-serve`  | `Bun.serve` (Bun only)                    | {@link ServeIntegrationConfig}  |
 * | `pg`         | `pg.Client.prototype.query`               | {@link PgIntegrationConfig}     |
 * | `postgres`   | postgres.js's `Query.prototype`           | {@link PostgresIntegrationConfig} |
 * | `ioredis`    | `Redis.prototype.sendCommand`             | {@link IORedisIntegrationConfig} |
 * | `redis`      | node-redis's `RedisClient.prototype.sendCommand` | {@link RedisIntegrationConfig} |
 *
 * The database clients are patched when the application has them installed
 * (found from the working directory: `db.ts`), else stay off.
 * Another integration registers itself the same way, and is imported here.
 *
 * @module
 */
import { bunServeAvailable, instrumentBunServe } from "./bun-serve.ts";
import type { HttpInstrumentationOptions } from "./client.ts";
import { denoServeAvailable, instrumentDenoServe } from "./deno-serve.ts";
import { instrumentFetch } from "./fetch.ts";
import { type IORedisIntegrationConfig, ioredisIntegration } from "./ioredis.ts";
import { instrumentNodeHttp, type NodeHttpOptions } from "./node-http.ts";
import { type PgIntegrationConfig, pgIntegration } from "./pg.ts";
import { type PostgresIntegrationConfig, postgresIntegration } from "./postgres.ts";
import { type RedisIntegrationConfig, redisIntegration } from "./redis.ts";
import { type IntegrationConfig, registerIntegration } from "./registry.ts";
import type { ServerSpanOptions } from "./server.ts";

/** `tracer.use("fetch", config)`: the options of `instrumentFetch`. */
export interface FetchIntegrationConfig extends IntegrationConfig, HttpInstrumentationOptions {}
/** `tracer.use("http", config)`: the options of `instrumentNodeHttp` (`server: false` or `client: false` turns one side off). */
export interface HttpIntegrationConfig extends IntegrationConfig, NodeHttpOptions {}
/** `tracer.use("deno-serve" | "bun-serve", config)`: `service`, `route(request)`, `serverError`, `ignore`, `tags`, `name`. */
export interface ServeIntegrationConfig extends IntegrationConfig, ServerSpanOptions {}

/**
 * The config type of each integration name, for `tracer.use(name, config)`
 * and the `instrument` option. Another integration adds its entry here.
 */
export interface IntegrationConfigs {
  /** `globalThis.fetch`: client spans. */
  fetch: FetchIntegrationConfig;
  /** `node:http` and `node:https`: server and client spans. */
  http: HttpIntegrationConfig;
  /** `Deno.serve`: server spans. */
  "deno-serve": ServeIntegrationConfig;
  /** `Bun.serve`: server spans. */
  "bun-serve": ServeIntegrationConfig;
  /** node-postgres: `pg.query` spans. */
  pg: PgIntegrationConfig;
  /** postgres.js: `postgres.query` spans. */
  postgres: PostgresIntegrationConfig;
  /** ioredis: `redis.command` spans. */
  ioredis: IORedisIntegrationConfig;
  /** node-redis: `redis.command` spans. */
  redis: RedisIntegrationConfig;
}

registerIntegration<FetchIntegrationConfig>({
  name: "fetch",
  enable: (tracer, config) => typeof globalThis.fetch === "function" ? instrumentFetch(tracer, config).uninstrument : undefined,
});
registerIntegration<HttpIntegrationConfig>({
  name: "http",
  enable: (tracer, config) => instrumentNodeHttp(tracer, config).uninstrument,
});
registerIntegration<ServeIntegrationConfig>({
  name: "deno-serve",
  enable: (tracer, config) => denoServeAvailable() ? instrumentDenoServe(tracer, config).uninstrument : undefined,
});
registerIntegration<ServeIntegrationConfig>({
  name: "bun-serve",
  enable: (tracer, config) => bunServeAvailable() ? instrumentBunServe(tracer, config).uninstrument : undefined,
});
registerIntegration(pgIntegration);
registerIntegration(postgresIntegration);
registerIntegration(ioredisIntegration);
registerIntegration(redisIntegration);
