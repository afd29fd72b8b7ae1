/**
 * An OpenTelemetry `ContextManager` (`@opentelemetry/api`'s interface) over a `Tracer`'s context: the active
 * span is the one the Tracer keeps in its `AsyncLocalStorage`, so spans
 * made through `@opentelemetry/api` and through the `Tracer` nest in one
 * trace, either way round.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import type { OtelContext as Context } from "./types.ts";
import type { TracerSpan } from "../tracer/span.ts";
import type { BridgeSpan } from "./bridge.ts";

/**
 * What the context manager needs of a tracer: its active span, and running
 * a function with a span active (`Tracer.activeSpan()` /
 * `Tracer.activate()`). The only way it reaches the tracer's context.
 */
export interface ActiveSpanSource {
  /** The active span of the current execution context. */
  activeSpan(): TracerSpan | undefined;
  /** Runs `fn` with `span` active (undefined: none). */
  activate<T>(span: TracerSpan | undefined, fn: () => T): T;
}

/** Converts between OTel spans and tracer spans for the context manager. */
export interface SpanViews {
  /** The tracer span behind an OTel span, if it is one of the bridge's. */
  tracerSpanOf(span: unknown): TracerSpan | undefined;
  /** The OTel span for a tracer span (the same object each time). */
  otelSpanOf(span: TracerSpan): BridgeSpan;
}

type Listener = (...args: unknown[]) => unknown;
interface EmitterLike {
  [method: string | symbol]: unknown;
}

const ADD_METHODS = ["addListener", "on", "once", "prependListener", "prependOnceListener"] as const;
const REMOVE_METHODS = ["removeListener", "off"] as const;
const BOUND = Symbol("dd-ffi-trace.boundListeners");

/**
 * The OTel context, carried in two parts: the active span in the tracer's
 * own storage (`tracer.activate()`), and the rest of the OTel context
 * (baggage, suppression flags, instrumentation keys) in an
 * `AsyncLocalStorage` of its own that runs alongside it. `active()` always
 * reports the tracer's active span, so a span the `Tracer` made active is
 * the OTel active span too, and an OTel span made active is the Tracer's.
 */
export class TracerContextManager {
  #source: ActiveSpanSource;
  #views: SpanViews;
  #storage = new AsyncLocalStorage<Context>();
  /** The stored context with the tracer's active span put in, by stored context: `active()` returns the same object while nothing changes. */
  #merged = new WeakMap<Context, { span: TracerSpan; context: Context }>();

  /** A context manager over `source`'s active span. */
  constructor(source: ActiveSpanSource, views: SpanViews) {
    this.#source = source;
    this.#views = views;
  }

  /** The current context, with the tracer's active span as its span. */
  active(): Context {
    const ctx = this.#storage.getStore() ?? ROOT_CONTEXT;
    const tracerSpan = this.#source.activeSpan();
    const carried = this.#views.tracerSpanOf(trace.getSpan(ctx));
    if (tracerSpan) {
      if (carried === tracerSpan) return ctx;
      const cached = this.#merged.get(ctx);
      if (cached?.span === tracerSpan) return cached.context;
      const merged = trace.setSpan(ctx, this.#views.otelSpanOf(tracerSpan));
      this.#merged.set(ctx, { span: tracerSpan, context: merged });
      return merged;
    }
    // The tracer has no active span: drop one of ours, keep a remote span context.
    return carried ? trace.deleteSpan(ctx) : ctx;
  }

  /** Runs `fn` in `context`: its span (if one of ours) active in the tracer, the rest of it in OTel's storage. */
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const span = this.#views.tracerSpanOf(trace.getSpan(context));
    return this.#source.activate(span, () => this.#storage.run(context, () => fn.call(thisArg, ...args)));
  }

  /** Binds a function (or an event emitter's listeners) to `context`. */
  bind<T>(context: Context, target: T): T {
    if (typeof target === "function") return this.#bindFunction(context, target as unknown as Listener) as T;
    if (target && typeof target === "object" && typeof (target as EmitterLike).on === "function") {
      this.#bindEmitter(context, target as unknown as EmitterLike);
    }
    return target;
  }

  /** Enables the manager (it is always on). */
  enable(): this {
    return this;
  }

  /** Disables the manager (a no-op: the tracer's storage is the tracer's). */
  disable(): this {
    return this;
  }

  #bindFunction(context: Context, fn: Listener): Listener {
    const run = (self: unknown, args: unknown[]) => this.with(context, () => fn.apply(self, args));
    const bound = function (this: unknown, ...args: unknown[]) {
      return run(this, args);
    };
    Object.defineProperty(bound, "length", { value: fn.length });
    return bound;
  }

  /** Patches the emitter so that listeners added from now on run in `context` (as OTel's async-hooks context manager does). */
  #bindEmitter(context: Context, emitter: EmitterLike): void {
    if (emitter[BOUND]) return;
    const bound = new Map<string | symbol, Map<Listener, Listener>>();
    Object.defineProperty(emitter, BOUND, { value: bound });
    const wrap = (event: string | symbol, listener: Listener): Listener => {
      if (typeof listener !== "function") return listener;
      let byListener = bound.get(event);
      if (!byListener) bound.set(event, byListener = new Map());
      let wrapped = byListener.get(listener);
      if (!wrapped) byListener.set(listener, wrapped = this.#bindFunction(context, listener));
      return wrapped;
    };
    const unwrap = (event: string | symbol, listener: Listener): Listener => {
      const byListener = bound.get(event);
      const wrapped = byListener?.get(listener);
      if (!wrapped) return listener;
      byListener!.delete(listener);
      return wrapped;
    };
    for (const name of ADD_METHODS) {
      const original = emitter[name];
      if (typeof original !== "function") continue;
      emitter[name] = function (this: unknown, event: string | symbol, listener: Listener) {
        return (original as Listener).call(this, event, wrap(event, listener));
      };
    }
    for (const name of REMOVE_METHODS) {
      const original = emitter[name];
      if (typeof original !== "function") continue;
      emitter[name] = function (this: unknown, event: string | symbol, listener: Listener) {
        return (original as Listener).call(this, event, unwrap(event, listener));
      };
    }
    const removeAll = emitter.removeAllListeners;
    if (typeof removeAll === "function") {
      emitter.removeAllListeners = function (this: unknown, ...args: unknown[]) {
        if (args.length === 0) bound.clear();
        else bound.delete(args[0] as string | symbol);
        return (removeAll as Listener).apply(this, args);
      };
    }
  }
}
