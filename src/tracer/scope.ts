/**
 * dd-trace-js's scope manager (`tracer.scope()`: `active()`, `activate()`,
 * `bind()`) and `tracer.wrap()`, on top of the tracer's context storage
 * (`AsyncLocalStorage`). Reference: dd-trace-js `packages/dd-trace/src/scope.js`
 * and `tracer.js` (`wrap`), v5.
 *
 * @module
 */
import { active, runWith } from "./context.ts";
import { TracerSpan } from "./span.ts";
import type { StartSpanOptions, Tracer } from "./tracer.ts";

/** The active span, as `tracer.scope()` gives it. */
export class Scope {
  /** The active span of the current execution context, or null (dd-trace-js returns null). */
  active(): TracerSpan | null {
    const span = active<unknown>();
    return span instanceof TracerSpan ? span : null;
  }

  /**
   * Runs `fn` with `span` active (null or undefined: with no active span),
   * for its whole execution, its awaits and callbacks included; returns what
   * `fn` returns.
   */
  activate<T>(span: TracerSpan | null | undefined, fn: () => T): T {
    return runWith(span ?? undefined, fn);
  }

  /**
   * Binds a function to a span: whenever it is called, `span` (default: the
   * span active now, at `bind` time) is the active span. Anything that is
   * not a function is returned unchanged, as dd-trace-js does.
   */
  bind<F>(fn: F, span?: TracerSpan | null): F {
    if (typeof fn !== "function") return fn;
    const target = span === undefined ? this.active() : span;
    const f = fn as unknown as (this: unknown, ...args: unknown[]) => unknown;
    const bound = function (this: unknown, ...args: unknown[]): unknown {
      return runWith(target ?? undefined, () => f.apply(this, args));
    };
    Object.defineProperty(bound, "length", { value: f.length });
    Object.defineProperty(bound, "name", { value: f.name });
    return bound as unknown as F;
  }
}

/** The one scope manager (the context storage is shared by every tracer). */
export const scope: Scope = new Scope();

/** Options of `tracer.wrap()`: span options, or a function of the call's `this` and arguments that returns them. */
export type WrapOptions = StartSpanOptions | ((...args: unknown[]) => StartSpanOptions);

/**
 * dd-trace-js's `tracer.wrap(name, options, fn)`: a function that runs `fn`
 * in a new span each time it is called. When its last argument is a
 * function, it is taken as a Node-style callback: the span finishes when the
 * callback is called (a truthy first argument is recorded as the error) and
 * the callback runs in the caller's context. Otherwise the span finishes
 * when `fn` returns or its promise settles, as `tracer.trace()`.
 */
export function wrap<F extends (...args: never[]) => unknown>(tracer: Tracer, name: string, options: WrapOptions, fn: F): F {
  if (typeof fn !== "function") return fn;
  const f = fn as unknown as (this: unknown, ...args: unknown[]) => unknown;
  const wrapped = function (this: unknown, ...args: unknown[]): unknown {
    let opts: StartSpanOptions;
    try {
      opts = (typeof options === "function" ? options.apply(this, args) : options) ?? {};
    } catch {
      opts = {};
    }
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback !== "function") return tracer.trace(name, opts, () => f.apply(this, args));
    const span = tracer.startSpan(name, opts);
    const cb = callback as (this: unknown, ...a: unknown[]) => unknown;
    args[last] = scope.bind(function (this: unknown, ...cbArgs: unknown[]): unknown {
      if (cbArgs[0]) span.setError(cbArgs[0]);
      span.finish();
      return cb.apply(this, cbArgs);
    });
    try {
      return runWith(span, () => f.apply(this, args));
    } catch (error) {
      span.setError(error);
      span.finish();
      throw error;
    }
  };
  Object.defineProperty(wrapped, "length", { value: f.length });
  Object.defineProperty(wrapped, "name", { value: f.name });
  return wrapped as unknown as F;
}
