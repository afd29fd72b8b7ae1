/**
 * The integrations: one table of what `tracer.init()` instruments, by
 * dd-trace-js's plugin names, and one tracer's view of it (which are on,
 * with which configuration), as dd-trace-js's plugin manager does
 * (`packages/dd-trace/src/plugin_manager.js`):
 *
 * - `tracer.use(name, config)` configures one integration; `config.enabled`
 *   false turns it off, anything else (re)turns it on with that config (a
 *   boolean is `{ enabled }`). Like dd-trace-js, a later call replaces the
 *   config; it does not merge.
 * - `DD_TRACE_<NAME>_ENABLED=false` (the name upper-cased, characters other
 *   than letters, digits and `_` as `_`: `DD_TRACE_DENO_SERVE_ENABLED`) or
 *   the name in `DD_TRACE_DISABLED_PLUGINS` (comma-separated) turns an
 *   integration off whatever the code says, as in dd-trace-js.
 *
 * An integration plugs in with {@link registerIntegration}: a name and an
 * `enable(tracer, config)` that patches and returns how to undo it (see
 * {@link Integration}). The built-in ones are registered by
 * `builtin-integrations.ts`.
 *
 * @module
 */
import type { Tracer } from "../tracer.ts";
import type { EnvSettings } from "../validate.ts";

/** What every integration's configuration has. */
export interface IntegrationConfig {
  /** False turns the integration off. Default true. */
  enabled?: boolean;
  /** The service of the integration's spans. Default the parent's, else the tracer's. */
  service?: string;
}

/**
 * An integration: a library or runtime API that the tracer patches to make
 * spans. `enable` patches (tracing into `tracer`) and returns a function
 * that undoes the patch, or undefined when there is nothing to patch here
 * (e.g. `deno-serve` on Node, a database client that is not installed).
 * It is called with the config of `tracer.use(name, config)` (`{}` when
 * none), again after each `use()`, once the previous patch is undone. An
 * exception is logged through the tracer's logger and leaves the
 * integration off; `warn` logs there too, for a failure after `enable` has
 * returned (a patch applied asynchronously).
 */
export interface Integration<C extends IntegrationConfig = IntegrationConfig> {
  /** dd-trace-js's plugin name, e.g. `"fetch"`, `"http"`, `"pg"`: the key of `tracer.use()` and of the variable. */
  readonly name: string;
  /** Patches; returns the undo, or undefined when not applicable on this runtime. */
  enable(tracer: Tracer, config: C, warn: (message: string) => void): (() => void) | undefined;
}

/** The configuration of `Tracer`'s `instrument` option: true or false for all, or one entry per integration name (the others on). */
export type InstrumentOption = boolean | Record<string, boolean | IntegrationConfig | undefined>;

const table = new Map<string, Integration>();

/**
 * Adds an integration to the table (one of the same name is replaced).
 * Tracers made afterwards, and `use(name)` on existing ones, pick it up.
 * Returns a function that takes it out of the table again (if it is still
 * the one registered under its name); tracers that enabled it keep it on
 * until their `shutdown()` or `use(name, false)`.
 *
 * @throws {TypeError} no name, or no `enable` function.
 */
export function registerIntegration<C extends IntegrationConfig>(integration: Integration<C>): () => void {
  if (typeof integration?.name !== "string" || !integration.name || typeof integration.enable !== "function") {
    throw new TypeError("registerIntegration: expected { name: string, enable(tracer, config) }");
  }
  const entry = integration as unknown as Integration;
  table.set(integration.name, entry);
  return () => {
    if (table.get(integration.name) === entry) table.delete(integration.name);
  };
}

/** The names of the registered integrations, in registration order. */
export function integrationNames(): string[] {
  return [...table.keys()];
}

/** The variable that turns `name` off: `DD_TRACE_<NAME>_ENABLED` (dd-trace-js's `normalizePluginEnvName`). */
export function enabledVariable(name: string): string {
  return `DD_TRACE_${name.replace(/^@/, "").toUpperCase().replace(/[^A-Z0-9_]/g, "_")}_ENABLED`;
}

/** One tracer's integrations: their configs, which are on, and how to undo them. */
export class Integrations {
  #tracer: Tracer;
  #auto: boolean;
  #configs = new Map<string, IntegrationConfig>();
  #undo = new Map<string, () => void>();
  #env: Pick<EnvSettings, "boolean" | "text">;
  #log: (kind: string, message: string) => void;
  #closed = false;

  /**
   * `option` is `TracerOptions.instrument`: integrations it does not turn
   * off are enabled now (with `auto`), and later by `use()`.
   */
  constructor(tracer: Tracer, option: InstrumentOption, env: Pick<EnvSettings, "boolean" | "text">, log: (kind: string, message: string) => void) {
    this.#tracer = tracer;
    this.#env = env;
    this.#log = log;
    this.#auto = option !== false;
    if (typeof option === "object") {
      for (const [name, config] of Object.entries(option)) if (config !== undefined) this.#configs.set(name, normalize(config));
    }
    if (this.#auto) for (const name of table.keys()) this.#apply(name);
  }

  /** Configures `name` (see the module documentation) and applies it now. */
  use(name: string, config: boolean | IntegrationConfig = {}): void {
    this.#configs.set(name, normalize(config));
    if (!table.has(name)) this.#log(`use:${name}`, `tracer.use: no integration named ${JSON.stringify(name)} (known: ${integrationNames().join(", ")}); its config is kept for when one registers`);
    this.#apply(name);
  }

  /** The names of the integrations on now. */
  get enabled(): string[] {
    return [...this.#undo.keys()];
  }

  /** Undoes every patch; `use()` does nothing afterwards. */
  close(): void {
    this.#closed = true;
    for (const name of [...this.#undo.keys()].reverse()) this.#disable(name);
  }

  #disabledByEnv(name: string): boolean {
    if (this.#env.boolean(enabledVariable(name)) === false) return true;
    return (this.#env.text("DD_TRACE_DISABLED_PLUGINS") ?? "").split(",").some((n) => n.trim() === name);
  }

  #apply(name: string): void {
    this.#disable(name);
    const integration = table.get(name);
    if (this.#closed || !integration) return;
    const config = this.#configs.get(name);
    // As dd-trace-js: a `use()`d integration is on unless `enabled: false`, even with automatic instrumentation off.
    if (config ? config.enabled === false : !this.#auto) return;
    if (this.#disabledByEnv(name)) return;
    try {
      const undo = integration.enable(this.#tracer, { ...config }, (message) => this.#log(`warn:${name}`, `integration ${name}: ${message}`));
      if (typeof undo === "function") this.#undo.set(name, undo);
    } catch (error) {
      this.#log(`enable:${name}`, `integration ${name} could not be enabled: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #disable(name: string): void {
    const undo = this.#undo.get(name);
    if (!undo) return;
    this.#undo.delete(name);
    try {
      undo();
    } catch (error) {
      this.#log(`disable:${name}`, `integration ${name} could not be disabled: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

function normalize(config: boolean | IntegrationConfig | undefined): IntegrationConfig {
  if (typeof config === "boolean") return { enabled: config };
  return typeof config === "object" && config !== null ? config : {};
}
