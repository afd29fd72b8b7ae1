/**
 * The default tracer, as dd-trace-js's users know it:
 *
 * ```ts
 * import tracer from "@dd-ffi/trace";
 * tracer.init({ service: "shop", env: "prod" }); // once, at startup
 * tracer.trace("checkout", (span) => { … });
 * ```
 *
 * Before `init()` it is a disabled tracer: spans are made and dropped,
 * nothing is loaded or sent (dd-trace-js's noop tracer does the same).
 *
 * @module
 */
import type { TracerCounters } from "./buffer.ts";
import type { SpanContext } from "./context.ts";
import type { HeadersLike } from "./propagation.ts";
import type { Scope, WrapOptions } from "./scope.ts";
import type { TracerSpan } from "./span.ts";
import type { DatadogSpanContext } from "./span-context.ts";
import { type ShutdownOptions, type StartSpanOptions, Tracer, type TracerOptions } from "./tracer.ts";
import type { IntegrationConfigs } from "./instrument/builtin-integrations.ts";
import type { IntegrationConfig } from "./instrument/registry.ts";

/**
 * A tracer made by `init()`: every method forwards to the `Tracer` made
 * then (see `Tracer` for each one's documentation). Pass it, or its
 * `tracer`, to the instrumentations and log helpers.
 */
export class TracerProxy {
  #tracer: Tracer | undefined;
  #noop: Tracer | undefined;
  #uses: [string, boolean | IntegrationConfig | undefined][] = [];

  /**
   * Makes the tracer with `options` (as `new Tracer(options)`; unset
   * options come from the environment, `DD_TRACE_ENABLED=false` making it
   * a no-op), once: a second call logs a warning and changes nothing.
   * Unlike `new Tracer()`, `instrument` defaults to true: `fetch`,
   * `node:http` / `node:https`, `Deno.serve` and `Bun.serve` are traced
   * from here on (see `use()` to configure or turn one off), with the
   * configs given to `use()` before this call.
   * Returns this proxy, so `const tracer = (await import("@dd-ffi/trace")).default.init()` works.
   *
   * @throws {ValidationError} an option has the wrong type.
   */
  init(options: TracerOptions = {}): this {
    if (this.#tracer) {
      (options.logger ?? ((m: string) => console.warn(`[@dd-ffi/trace] ${m}`)))("tracer.init() was called again: ignored (the first call's options stay)");
      return this;
    }
    this.#tracer = new Tracer({ ...options, instrument: options.instrument ?? true });
    for (const [name, config] of this.#uses.splice(0)) this.#tracer.use(name, config);
    return this;
  }

  /** See `Tracer.use`. Before `init()`, the config is kept and applied by `init()`. */
  use<N extends keyof IntegrationConfigs>(name: N, config?: boolean | IntegrationConfigs[N]): this;
  /** See `Tracer.use`. */
  use(name: string, config?: boolean | IntegrationConfig): this;
  use(name: string, config?: boolean | IntegrationConfig): this {
    if (this.#tracer) this.#tracer.use(name, config);
    else {
      this.tracer.use(name, config); // the same checks (a disabled tracer applies nothing)
      this.#uses.push([name, config]);
    }
    return this;
  }

  /** See `Tracer.integrations`. */
  get integrations(): string[] {
    return this.tracer.integrations;
  }

  /** Whether `init()` was called. */
  get initialized(): boolean {
    return this.#tracer !== undefined;
  }

  /** The tracer in use: the one `init()` made, else a disabled one. */
  get tracer(): Tracer {
    return this.#tracer ?? (this.#noop ??= new Tracer({ enabled: false, flushOnExit: false }));
  }

  /** See `Tracer.service`. */
  get service(): string {
    return this.tracer.service;
  }
  /** See `Tracer.env`. */
  get env(): string {
    return this.tracer.env;
  }
  /** See `Tracer.version`. */
  get version(): string {
    return this.tracer.version;
  }
  /** See `Tracer.enabled`. */
  get enabled(): boolean {
    return this.tracer.enabled;
  }
  /** See `Tracer.counters`. */
  get counters(): TracerCounters {
    return this.tracer.counters;
  }
  /** See `Tracer.startSpan`. */
  startSpan(name: string, options?: StartSpanOptions): TracerSpan {
    return this.tracer.startSpan(name, options);
  }
  /** See `Tracer.trace`. */
  trace<T>(name: string, fn: (span: TracerSpan) => T): T;
  /** See `Tracer.trace`. */
  trace<T>(name: string, options: StartSpanOptions, fn: (span: TracerSpan) => T): T;
  trace<T>(name: string, a: StartSpanOptions | ((span: TracerSpan) => T), b?: (span: TracerSpan) => T): T {
    return typeof a === "function" ? this.tracer.trace(name, a) : this.tracer.trace(name, a, b!);
  }
  /** See `Tracer.wrap`. */
  wrap<F extends (...args: never[]) => unknown>(name: string, options: WrapOptions, fn: F): F;
  /** See `Tracer.wrap`. */
  wrap<F extends (...args: never[]) => unknown>(name: string, fn: F): F;
  wrap<F extends (...args: never[]) => unknown>(name: string, a: WrapOptions | F, b?: F): F {
    return b === undefined ? this.tracer.wrap(name, a as F) : this.tracer.wrap(name, a as WrapOptions, b);
  }
  /** See `Tracer.scope`. */
  scope(): Scope {
    return this.tracer.scope();
  }
  /** See `Tracer.activeSpan`. */
  activeSpan(): TracerSpan | undefined {
    return this.tracer.activeSpan();
  }
  /** See `Tracer.activate`. */
  activate<T>(span: TracerSpan | undefined, fn: () => T): T {
    return this.tracer.activate(span, fn);
  }
  /** See `Tracer.inject`. */
  inject(span: TracerSpan | SpanContext | undefined | null, carrier: HeadersLike): void;
  /** See `Tracer.inject`. */
  inject(span: TracerSpan | SpanContext | undefined | null, format: string, carrier: object): void;
  inject(span: TracerSpan | SpanContext | undefined | null, a: HeadersLike | string, b?: object): void {
    if (typeof a === "string") this.tracer.inject(span, a, b!);
    else this.tracer.inject(span, a);
  }
  /** See `Tracer.extract`. */
  extract(carrier: HeadersLike): DatadogSpanContext | undefined;
  /** See `Tracer.extract`. */
  extract(format: string, carrier: HeadersLike): DatadogSpanContext | undefined;
  extract(a: HeadersLike | string, b?: HeadersLike): DatadogSpanContext | undefined {
    return typeof a === "string" ? this.tracer.extract(a, b!) : this.tracer.extract(a);
  }
  /** See `Tracer.flush`. */
  flush(): Promise<void> {
    return this.tracer.flush();
  }
  /** See `Tracer.shutdown`. */
  shutdown(options?: ShutdownOptions): Promise<void> {
    return this.tracer.shutdown(options);
  }
}

/** The default tracer (`import tracer from "@dd-ffi/trace"`); call `tracer.init()` once. */
const tracer: TracerProxy = new TracerProxy();
export { tracer };
export default tracer;
