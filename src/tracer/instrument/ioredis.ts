/**
 * `instrumentIORedis(tracer, Redis)`: a span for every command of ioredis
 * (tested with v6; v5 has the same `sendCommand`) on Node, Bun and Deno, as dd-trace-js's ioredis plugin
 * makes it (`packages/datadog-plugin-ioredis`, which is its redis plugin;
 * tags in `db.ts`): `redis.command`, type `redis`, resource the command as
 * ioredis names it (lower case, e.g. `get`), `redis.raw_command` (`GET key`),
 * `component: ioredis`, `db.type: redis`, `out.host` and
 * `network.destination.port` from the client's options; service
 * `<service>-redis` (`_dd.svc_src: redis`).
 *
 * It patches `Redis.prototype.sendCommand` (as dd-trace-js does): the span
 * starts when the command is sent, a child of the active span, and ends
 * when its promise settles; a command error (e.g. `WRONGTYPE`) is recorded.
 * Commands of a pipeline or `multi` go through `sendCommand` too, one span
 * each; a `Cluster` is traced through its node clients.
 *
 * @module
 */
import type { AnyTracer } from "../any-tracer.ts";
import { resolveTracer } from "../any-tracer.ts";
import type { TracerSpan } from "../span.ts";
import { commonJsIntegration, type DatabaseIntegrationConfig, type DatabaseInstrumentationOptions, finishDbSpan, loadModule, patchMethod, Slot, startRedisSpan } from "./db.ts";
import type { Instrumentation } from "./fetch.ts";

/** The `ioredis` module (its `Redis` class), or `{ Redis }` / `{ default: Redis }`. */
export type IORedisModule = { prototype: object } | { Redis: { prototype: object } } | { default: { prototype: object } };

/** Options of {@link instrumentIORedis}. */
export type IORedisOptions = DatabaseInstrumentationOptions;

/** `tracer.use("ioredis", config)`: the options of {@link instrumentIORedis}, and the `ioredis` module (default the application's, loaded with `require`). */
export type IORedisIntegrationConfig = DatabaseIntegrationConfig<IORedisModule>;

interface Command {
  name?: unknown;
  args?: unknown;
  promise?: Promise<unknown>;
}
type SendCommand = (this: { options?: { host?: string; port?: number } }, command: Command, ...rest: unknown[]) => unknown;

const slot = new Slot();
/** Commands with a span: ioredis sends a command again (e.g. from its offline queue once connected). */
const traced = new WeakSet<Command>();

/** The prototype that holds `sendCommand`. */
function redisPrototype(mod: IORedisModule): object {
  const m = mod as { prototype?: object; Redis?: { prototype?: object }; default?: { prototype?: object } };
  for (const proto of [m.prototype, m.Redis?.prototype, m.default?.prototype]) {
    if (proto && typeof (proto as { sendCommand?: unknown }).sendCommand === "function") return proto;
  }
  return m.prototype ?? {};
}

/**
 * Patches `Redis.prototype.sendCommand` of `ioredis` (default the
 * application's copy, loaded with `require` from the working directory: see
 * `db.ts`). Calling it again replaces the
 * previous instrumentation.
 *
 * ```ts
 * import Redis from "ioredis";
 * const redisTracing = instrumentIORedis(tracer, Redis);
 * await new Redis().get("key"); // a redis.command span, resource "get"
 * redisTracing.uninstrument();
 * ```
 *
 * @throws {ValidationError} when `ioredis` is not given and cannot be loaded, or its `Redis.prototype.sendCommand` is not a function.
 */
export function instrumentIORedis(t: AnyTracer, ioredis?: IORedisModule, options: IORedisOptions = {}): Instrumentation {
  slot.clear();
  const proto = redisPrototype(loadModule("ioredis", ioredis) as IORedisModule);
  const restore = patchMethod<SendCommand>(proto, "sendCommand", "ioredis.Redis.prototype.sendCommand", (sendCommand) =>
    function (this: { options?: { host?: string; port?: number } }, command: Command, ...rest: unknown[]): unknown {
      if (!command?.promise || typeof command.name !== "string" || traced.has(command)) return sendCommand.call(this, command, ...rest);
      let span: TracerSpan;
      try {
        const args = Array.isArray(command.args) ? command.args : [];
        span = startRedisSpan(resolveTracer(t), "ioredis", command.name, args, this.options?.host, this.options?.port, options);
      } catch {
        return sendCommand.call(this, command, ...rest);
      }
      traced.add(command);
      command.promise.then(() => finishDbSpan(span), (e) => finishDbSpan(span, e));
      try {
        return sendCommand.call(this, command, ...rest);
      } catch (error) {
        finishDbSpan(span, error);
        throw error;
      }
    });
  return slot.hold([restore]);
}

/** The `ioredis` integration of `tracer.init()` / `tracer.use("ioredis", config)`. */
export const ioredisIntegration = commonJsIntegration<IORedisModule>("ioredis", instrumentIORedis);
