/**
 * `instrumentRedis(tracer, redis)`: a span for every command of node-redis
 * (`redis` / `@redis/client`; tested with v6) on Node, Bun and Deno, as
 * dd-trace-js's redis plugin makes it (`packages/datadog-plugin-redis`; tags
 * in `db.ts`): `redis.command`, type `redis`, resource the command as sent
 * (`GET`), `redis.raw_command` (`GET key`), `component: redis`,
 * `db.type: redis`, `out.host` and `network.destination.port` from the
 * client's `socket` or `url` option (default `localhost:6379`, as
 * dd-trace-js's); service `<service>-redis` (`_dd.svc_src: redis`).
 *
 * It patches `RedisClient.prototype.sendCommand`, through which every
 * command method and `client.sendCommand()` go: the span starts when the
 * command is sent, a child of the active span, and ends when its promise
 * settles; an error reply is recorded. dd-trace-js patches the command
 * queue's `addCommand` instead, a module node-redis does not export: so the
 * commands of a `multi()` / pipeline, which node-redis queues directly, and
 * its connection handshake, are not traced here; nor is node-redis v4, whose
 * command methods call a private send method rather than `sendCommand`.
 *
 * @module
 */
import type { AnyTracer } from "../any-tracer.ts";
import { resolveTracer } from "../any-tracer.ts";
import type { TracerSpan } from "../span.ts";
import { commonJsIntegration, type DatabaseIntegrationConfig, type DatabaseInstrumentationOptions, finishDbSpan, loadModule, patchMethod, Slot, startRedisSpan } from "./db.ts";
import type { Instrumentation } from "./fetch.ts";

/** The `redis` (or `@redis/client`) module: its `RedisClient` class, else its `createClient`. */
export interface RedisModule {
  /** The client class (node-redis v6 exports it), whose `prototype.sendCommand` is patched. */
  RedisClient?: { prototype: object };
  /** Makes a client (not connected); its prototype chain leads to `sendCommand` when `RedisClient` is not exported. */
  createClient?: (options?: object) => object;
}

/** Options of {@link instrumentRedis}. */
export type RedisOptions = DatabaseInstrumentationOptions;

/** `tracer.use("redis", config)`: the options of {@link instrumentRedis}, and the `redis` module (default the application's, loaded with `require`). */
export type RedisIntegrationConfig = DatabaseIntegrationConfig<RedisModule>;

interface ClientOptions {
  url?: string;
  socket?: { host?: string; port?: number; path?: string };
}
type SendCommand = (this: { options?: ClientOptions }, args: unknown[], ...rest: unknown[]) => unknown;

const slot = new Slot();

/**
 * The prototype that holds `sendCommand`: `RedisClient.prototype`, or
 * (where the module does not export the class) the one found up the
 * prototype chain of a client made, not connected, by `createClient()`.
 */
function clientPrototype(mod: RedisModule): object {
  const owns = (o: object | null | undefined): o is object => !!o && Object.hasOwn(o, "sendCommand");
  let proto: object | null | undefined = mod?.RedisClient?.prototype;
  if (!owns(proto) && typeof mod?.createClient === "function") {
    proto = Object.getPrototypeOf(mod.createClient());
    while (proto && !owns(proto)) proto = Object.getPrototypeOf(proto);
  }
  return proto ?? {};
}

/** Where the client connects: its socket options, else its URL, else node-redis's default. */
function address(options: ClientOptions | undefined): { host?: string; port?: number } {
  const socket = options?.socket;
  if (socket?.path) return { host: socket.path };
  if (socket?.host || socket?.port) return { host: socket.host ?? "localhost", port: Number(socket.port ?? 6379) };
  if (options?.url) {
    try {
      const url = new URL(options.url);
      return { host: url.hostname.replace(/^\[|\]$/g, "") || "localhost", port: Number(url.port) || 6379 };
    } catch {
      // A URL node-redis itself would reject: the default address.
    }
  }
  return { host: "localhost", port: 6379 };
}

/**
 * Patches `RedisClient.prototype.sendCommand` of `redis` (default the
 * application's copy, loaded with `require` from the working directory: see
 * `db.ts`). Calling it again replaces the
 * previous instrumentation.
 *
 * ```ts
 * import * as redis from "redis";
 * const redisTracing = instrumentRedis(tracer, redis);
 * const client = await redis.createClient().connect();
 * await client.get("key"); // a redis.command span, resource "GET"
 * redisTracing.uninstrument();
 * ```
 *
 * @throws {ValidationError} when `redis` is not given and cannot be loaded, or it has no client `sendCommand`.
 */
export function instrumentRedis(t: AnyTracer, redis?: RedisModule, options: RedisOptions = {}): Instrumentation {
  slot.clear();
  const proto = clientPrototype(loadModule("redis", redis) as RedisModule);
  const restore = patchMethod<SendCommand>(proto, "sendCommand", "redis.RedisClient.prototype.sendCommand", (sendCommand) =>
    function (this: { options?: ClientOptions }, args: unknown[], ...rest: unknown[]): unknown {
      if (!Array.isArray(args) || args.length === 0) return sendCommand.call(this, args, ...rest);
      let span: TracerSpan;
      try {
        const { host, port } = address(this.options);
        span = startRedisSpan(resolveTracer(t), "redis", String(args[0]), args.slice(1), host, port, options);
      } catch {
        return sendCommand.call(this, args, ...rest);
      }
      let result: unknown;
      try {
        result = sendCommand.call(this, args, ...rest);
      } catch (error) {
        finishDbSpan(span, error);
        throw error;
      }
      if (typeof (result as Promise<unknown>)?.then === "function") {
        (result as Promise<unknown>).then(() => finishDbSpan(span), (e) => finishDbSpan(span, e));
      } else finishDbSpan(span);
      return result;
    });
  return slot.hold([restore]);
}

/** The `redis` (node-redis) integration of `tracer.init()` / `tracer.use("redis", config)`. */
export const redisIntegration = commonJsIntegration<RedisModule>("redis", instrumentRedis);
