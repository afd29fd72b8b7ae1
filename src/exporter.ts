/**
 * `TraceExporter`: owns a `ddog_TraceExporter` and sends trace chunks to the
 * Datadog agent through it.
 *
 * @module
 */
import type { NativeMemory, Word } from "../ffi/native.ts";
import { type Binding, getBinding, readAddress } from "./binding.ts";
import { type ExporterOptions, resolveOptions } from "./options.ts";
import { AbortError, ClosedError, ValidationError } from "./errors.ts";
import { buildTraceChunks, type TraceChunk } from "./span.ts";

/** What the agent answered to a send. */
export interface AgentResponse {
  /** The raw body from `ddog_trace_exporter_response_get_body`; empty when the agent's rates are unchanged. */
  readonly body: Uint8Array;
  /** The agent's sampling rates by `service:…,env:…` key: the new ones, or the last known ones when unchanged. */
  readonly rateByService: Record<string, number> | undefined;
  /** Whether the agent's rates changed with this answer. */
  readonly changed: boolean;
}

/** Options of one `send`. */
export interface SendOptions {
  /** Cancels the request (through a `ddog_TraceExporterCancelToken`); the send rejects with an `AbortError`. */
  signal?: AbortSignal;
}

const registry = new FinalizationRegistry<{ binding: Binding; handle: Word }>(({ binding, handle }) => {
  binding.symbols.ddog_trace_exporter_free(handle);
});

const decoder = new TextDecoder();

/**
 * Sends traces to a Datadog agent through libdatadog's trace exporter.
 *
 * ```ts
 * using exporter = new TraceExporter({ service: "web", env: "prod" });
 * await exporter.send([[{ name: "web.request", service: "web", traceId: 1n, spanId: 1n, start: 0n, duration: 1000n }]]);
 * ```
 *
 * Free it with `close()` (waits for sends in flight), `using` / `Symbol.dispose`,
 * or `await using` / `Symbol.asyncDispose`; a forgotten one is freed when
 * garbage-collected.
 */
export class TraceExporter implements Disposable, AsyncDisposable {
  #binding: Binding;
  #handle: Word;
  #inFlight = new Set<Promise<unknown>>();
  #closed = false;
  #rates: Record<string, number> | undefined;

  /**
   * Creates the exporter: `ddog_trace_exporter_config_new`, one config setter
   * per option, then `ddog_trace_exporter_new`.
   *
   * @throws {TraceExporterError} when libdatadog rejects an option (e.g. `InvalidUrl`), or a setter the library lacks.
   * @throws {ValidationError} when an option has the wrong type (its path names it, e.g. `options.connectionTimeoutMs`).
   * @throws {Error} when no native library is found (build it, or set `DD_LIBDATADOG_PATH`).
   */
  constructor(options: ExporterOptions = {}) {
    const b = getBinding();
    this.#binding = b;
    const calls = resolveOptions(options, b.native.runtime);
    const s = b.symbols;
    s.ddog_trace_exporter_config_new(b.out);
    const config = b.takeOut();
    try {
      for (const call of calls) call(b, config);
      b.unwrap(s.ddog_trace_exporter_new(b.out, config), "ddog_trace_exporter_new");
      this.#handle = b.takeOut();
    } finally {
      s.ddog_trace_exporter_config_free(config);
    }
    registry.register(this, { binding: b, handle: this.#handle }, this);
  }

  /**
   * Sends trace chunks: builds each span field by field through the C ABI
   * (`ddog_tracer_span_new`, `_set_meta`, `_set_metric`, …,
   * `ddog_tracer_trace_chunks_push_span`) on the calling thread, then calls
   * `ddog_trace_exporter_send_trace_chunks` off the JS thread.
   *
   * @param traces An array of trace chunks, each an array of spans (times in nanoseconds).
   * @returns The agent's answer.
   * @throws {ValidationError} synchronously-built input was invalid (its `path` names the span and field); nothing was sent.
   * @throws {TraceExporterError} libdatadog failed to send (`code`: `ConnectionRefused`, `HttpServer`, `TimedOut`, …).
   * @throws {AbortError} `options.signal` was aborted.
   * @throws {ClosedError} the exporter is closed.
   */
  send(traces: readonly TraceChunk[], options: SendOptions = {}): Promise<AgentResponse> {
    if (this.#closed) return Promise.reject(new ClosedError("The trace exporter is closed"));
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }));
    let chunks: Word;
    try {
      chunks = buildTraceChunks(this.#binding, traces);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#track(this.#sendChunks(chunks, signal));
  }

  /**
   * Sends a payload already encoded as msgpack v0.4 (an array of trace
   * chunks, each an array of span maps) with `ddog_trace_exporter_send`,
   * off the JS thread. libdatadog decodes and re-encodes it.
   *
   * @throws {TraceExporterError} the payload does not decode (`Serde`), or the send failed.
   * @throws {ClosedError} the exporter is closed.
   */
  sendEncoded(payload: Uint8Array): Promise<AgentResponse> {
    if (this.#closed) return Promise.reject(new ClosedError("The trace exporter is closed"));
    if (!(payload instanceof Uint8Array)) {
      return Promise.reject(new ValidationError("payload", "expected a Uint8Array of msgpack v0.4"));
    }
    return this.#track(this.#sendBytes(payload));
  }

  /** Counts a send as in flight until it settles (`close()` waits for it). */
  #track<T>(sent: Promise<T>): Promise<T> {
    this.#inFlight.add(sent);
    const done = () => this.#inFlight.delete(sent);
    sent.then(done, done);
    return sent;
  }

  async #sendBytes(payload: Uint8Array): Promise<AgentResponse> {
    const b = this.#binding;
    const memory = b.native.alloc(8 + payload.length);
    try {
      new Uint8Array(memory.buffer).set(payload, 8);
      const error = await b.native.async.ddog_trace_exporter_send(this.#handle, memory.address + 8, payload.length, memory.address);
      if (error) throw b.takeError(error, "ddog_trace_exporter_send");
      return this.#takeResponse(readPointer(memory));
    } finally {
      b.native.free(memory);
    }
  }

  async #sendChunks(chunks: Word, signal: AbortSignal | undefined): Promise<AgentResponse> {
    const b = this.#binding;
    const s = b.symbols;
    const slot: NativeMemory = b.native.alloc(8);
    let token: Word = 0;
    let onAbort: (() => void) | undefined;
    if (signal) {
      token = s.ddog_trace_exporter_cancel_token_new() ?? 0;
      onAbort = () => s.ddog_trace_exporter_cancel_token_cancel(token);
      signal.addEventListener("abort", onAbort, { once: true });
    }
    try {
      // Consumes the chunks on every path.
      const error = await b.native.async.ddog_trace_exporter_send_trace_chunks(this.#handle, chunks, slot.address, token);
      if (error) {
        const e = b.takeError(error, "ddog_trace_exporter_send_trace_chunks");
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason ?? e });
        throw e;
      }
      const response = readPointer(slot);
      return this.#takeResponse(response);
    } finally {
      if (onAbort) signal!.removeEventListener("abort", onAbort);
      if (token) s.ddog_trace_exporter_cancel_token_drop(token);
      b.native.free(slot);
    }
  }

  /** Reads and frees a `ddog_TraceExporterResponse`. */
  #takeResponse(response: number): AgentResponse {
    const b = this.#binding;
    let body: Uint8Array;
    try {
      const [ptr, len] = b.symbols.ddog_trace_exporter_response_get_body(response);
      body = b.native.read(ptr, len);
    } finally {
      b.symbols.ddog_trace_exporter_response_free(response);
    }
    const changed = body.length > 0;
    if (changed) {
      try {
        const parsed = JSON.parse(decoder.decode(body));
        if (parsed && typeof parsed.rate_by_service === "object") this.#rates = parsed.rate_by_service;
      } catch {
        // Not JSON: the raw body is still returned.
      }
    }
    return { body, rateByService: this.#rates, changed };
  }

  /** The last sampling rates the agent sent (`rate_by_service`), if any. */
  get rateByService(): Record<string, number> | undefined {
    return this.#rates;
  }

  /** Sends in flight. */
  get pending(): number {
    return this.#inFlight.size;
  }

  /** Whether `close()` or dispose was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Waits for the sends in flight, then frees the exporter
   * (`ddog_trace_exporter_free`). Further sends reject with `ClosedError`.
   * Calling it again is a no-op.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    this.#free();
  }

  #free() {
    registry.unregister(this);
    this.#binding.symbols.ddog_trace_exporter_free(this.#handle);
    this.#handle = 0;
  }

  /** Closes the exporter; with sends in flight it is freed when they settle. */
  [Symbol.dispose](): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inFlight.size === 0) this.#free();
    else void Promise.allSettled([...this.#inFlight]).then(() => this.#free());
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function readPointer(slot: NativeMemory): number {
  return readAddress(new Uint32Array(slot.buffer, 0, 2));
}
