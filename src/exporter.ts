/**
 * `TraceExporter`: owns a `ddog_TraceExporter` and sends trace chunks to the
 * Datadog agent through it.
 *
 * @module
 */
import type { NativeMemory, Word } from "../ffi/native.ts";
import { type Binding, getBinding, readAddress } from "./binding.ts";
import { type ExporterOptions, resolveOptions } from "./options.ts";
import { AbortError, ClosedError, TraceExporterError, ValidationError } from "./errors.ts";
import { buildTraceChunks, type TraceChunk } from "./span.ts";
import { batchAvailable, BatchWriter } from "./batch.ts";

/** Batch writers kept for reuse, per exporter (more are made while sends overlap). */
const POOLED_WRITERS = 4;

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

const registry = new FinalizationRegistry<{ binding: Binding; handle: Word; writers: BatchWriter[] }>(({ binding, handle, writers }) => {
  for (const w of writers) w.free();
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
  /** Whether `send` writes one batch for `ddffi_batch_send` (else the per-field path). */
  readonly #batch: boolean;
  readonly #writers: BatchWriter[] = [];

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
    registry.register(this, { binding: b, handle: this.#handle, writers: this.#writers }, this);
    this.#batch = options.sendPath !== "fields" && batchAvailable(b);
  }

  /** How `send` reaches the library: `"batch"` (one `ddffi_batch_send` per send) or `"fields"` (field by field). */
  get sendPath(): "batch" | "fields" {
    return this.#batch ? "batch" : "fields";
  }

  /**
   * Sends trace chunks. On the batch path (the default when the library or
   * its shim has `ddffi_batch_send`) it writes them into one batch buffer
   * (`ffi/batch.ts`) on the calling thread, then `ddffi_batch_send` decodes
   * it off the JS thread, builds every span through the C ABI
   * (`ddog_tracer_span_new`, `_set_meta`, …, `ddog_tracer_trace_chunks_push_span`)
   * and calls `ddog_trace_exporter_send_trace_chunks`. On the per-field path
   * (`sendPath: "fields"`) it builds each span through those calls on the
   * calling thread, then sends off it. Both put the same bytes on the wire.
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
    if (this.#batch) {
      const writer = this.#writers.pop() ?? new BatchWriter(this.#binding.native);
      let length: number;
      try {
        length = writer.write(traces);
      } catch (e) {
        this.#release(writer);
        return Promise.reject(e);
      }
      return this.#track(this.#sendBatch(writer, length, signal));
    }
    let chunks: Word;
    try {
      chunks = buildTraceChunks(this.#binding, traces);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#track(this.#sendChunks(chunks, signal));
  }

  /** Returns a writer to the pool once its send is done (or frees it). */
  #release(writer: BatchWriter): void {
    if (this.#writers.length < POOLED_WRITERS && !this.#closed) this.#writers.push(writer);
    else writer.free();
  }

  /** Sends a written batch with `ddffi_batch_send`; the batch memory stays untouched until it returns. */
  async #sendBatch(writer: BatchWriter, length: number, signal: AbortSignal | undefined): Promise<AgentResponse> {
    const b = this.#binding;
    const s = b.symbols;
    let token: Word = 0;
    let onAbort: (() => void) | undefined;
    if (signal) {
      token = s.ddog_trace_exporter_cancel_token_new() ?? 0;
      onAbort = () => s.ddog_trace_exporter_cancel_token_cancel(token);
      signal.addEventListener("abort", onAbort, { once: true });
    }
    try {
      const slot = writer.slot;
      const u32 = new Uint32Array(slot.buffer, 0, 2);
      u32[0] = 0;
      u32[1] = 0;
      const error = await b.native.async.ddffi_batch_send!(this.#handle, writer.address, length, slot.address, token);
      if (error) {
        const e = b.takeError(error, "ddffi_batch_send");
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason ?? e });
        throw e;
      }
      const response = readPointer(slot);
      if (!response) throw new TraceExporterError("Internal", "ddffi_batch_send returned no response (the decoder is not bound)", "ddffi_batch_send");
      return this.#takeResponse(response);
    } finally {
      if (onAbort) signal!.removeEventListener("abort", onAbort);
      if (token) s.ddog_trace_exporter_cancel_token_drop(token);
      this.#release(writer);
    }
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
    for (const w of this.#writers) w.free();
    this.#writers.length = 0;
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
