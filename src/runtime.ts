/**
 * `SharedRuntime`: one libdatadog runtime (`ddog_shared_runtime_new`) for
 * the background work of all the trace exporters of a process, instead of
 * one runtime (and its threads) per exporter.
 *
 * @module
 */
import { layouts, sharedRuntimeErrorCodes } from "../ffi/abi.ts";
import type { Word } from "../ffi/native.ts";
import { type Binding, getBinding } from "./binding.ts";
import { ClosedError, SharedRuntimeError } from "./errors.ts";

const handles = new WeakMap<SharedRuntime, Word>();

const registry = new FinalizationRegistry<{ binding: Binding; handle: Word }>(({ binding, handle }) => {
  binding.symbols.ddog_shared_runtime_free?.(handle);
});

/** Options of `SharedRuntime.shutdown()`. */
export interface RuntimeShutdownOptions {
  /** How long to wait for the runtime's workers to stop, in milliseconds (0: no limit). Default 5000. */
  timeoutMs?: number;
}

/** Reads and frees a `ddog_SharedRuntimeFFIError`. */
function takeError(b: Binding, error: Word, fn: string): SharedRuntimeError {
  const L = layouts.SharedRuntimeFFIError;
  const raw = new DataView(b.native.read(Number(error), L.size).buffer);
  const code = raw.getInt32(L.code, true);
  const msgPtr = raw.getUint32(L.msg, true) + raw.getUint32(L.msg + 4, true) * 2 ** 32;
  const message = msgPtr ? b.native.cstring(msgPtr) : "";
  b.symbols.ddog_shared_runtime_error_free!(error);
  return new SharedRuntimeError(sharedRuntimeErrorCodes[code] ?? "Panic", message, fn);
}

/**
 * One libdatadog runtime shared by the trace exporters given it in
 * `ExporterOptions.sharedRuntime` (`ddog_trace_exporter_config_set_shared_runtime`):
 * create one per process and pass it to each exporter (or `Tracer`).
 *
 * ```ts
 * const runtime = new SharedRuntime();
 * const a = new TraceExporter({ sharedRuntime: runtime });
 * const b = new TraceExporter({ sharedRuntime: runtime, url: "http://other:8126" });
 * // … at exit: close the exporters, then
 * await runtime.shutdown({ timeoutMs: 2000 });
 * ```
 *
 * Each exporter keeps its own reference (libdatadog's runtime is an `Arc`),
 * so freeing this handle early does not stop them. Free it with
 * `shutdown()`, `using` / `Symbol.dispose` (frees without stopping the
 * workers), or `await using`; a forgotten one is freed when garbage-collected.
 *
 * Needs a library with libdd-shared-runtime-ffi (a libdatadog release build,
 * or the bundled library, whose runtime has no background workers).
 */
export class SharedRuntime implements Disposable, AsyncDisposable {
  #binding: Binding;
  #closed = false;

  /** Whether the loaded library has the shared runtime (`ddog_shared_runtime_new` and `config_set_shared_runtime`). */
  static get available(): boolean {
    const s = getBinding().symbols;
    return !!(s.ddog_shared_runtime_new && s.ddog_trace_exporter_config_set_shared_runtime && s.ddog_shared_runtime_free);
  }

  /**
   * Creates the runtime (`ddog_shared_runtime_new`).
   * @throws {SharedRuntimeError} when libdatadog cannot create it (`RuntimeCreation`).
   * @throws {Error} when the loaded library has no shared runtime (`SharedRuntime.available` is false).
   */
  constructor() {
    const b = getBinding();
    this.#binding = b;
    const s = b.symbols;
    if (!SharedRuntime.available) {
      throw new Error(
        `The loaded library (${b.native.path}) has no shared runtime (ddog_shared_runtime_new): ` +
          "use a libdatadog release build (libdatadog_profiling.so) or the bundled library",
      );
    }
    const error = s.ddog_shared_runtime_new!(b.out);
    if (error) throw takeError(b, error, "ddog_shared_runtime_new");
    const handle = b.takeOut();
    handles.set(this, handle);
    registry.register(this, { binding: b, handle }, this);
  }

  /** Whether `shutdown()` or dispose was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops the runtime's background workers (`ddog_shared_runtime_shutdown`,
   * off the JS thread), then frees this handle (`ddog_shared_runtime_free`).
   * Exporters that still use the runtime keep sending. Calling it again is a
   * no-op.
   * @throws {SharedRuntimeError} e.g. `ShutdownTimedOut` (the handle is freed all the same).
   */
  async shutdown(options: RuntimeShutdownOptions = {}): Promise<void> {
    if (this.#closed) return;
    const timeoutMs = options.timeoutMs ?? 5000;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) {
      throw new TypeError(`options.timeoutMs: expected a non-negative integer, got ${timeoutMs}`);
    }
    this.#closed = true;
    const b = this.#binding;
    const handle = handles.get(this)!;
    try {
      const error = await b.native.async.ddog_shared_runtime_shutdown!(handle, BigInt(timeoutMs));
      if (error) throw takeError(b, error, "ddog_shared_runtime_shutdown");
    } finally {
      this.#free();
    }
  }

  #free() {
    registry.unregister(this);
    this.#binding.symbols.ddog_shared_runtime_free!(handles.get(this)!);
    handles.delete(this);
  }

  /** Frees this handle without stopping the workers (the exporters keep the runtime alive). */
  [Symbol.dispose](): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#free();
  }

  /** Same as `shutdown()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

/** The native handle of `runtime`, for `config_set_shared_runtime`. @throws {ClosedError} when it was shut down or disposed. */
export function runtimeHandle(runtime: SharedRuntime): Word {
  const handle = handles.get(runtime);
  if (handle === undefined) throw new ClosedError("options.sharedRuntime: the shared runtime is closed");
  return handle;
}
