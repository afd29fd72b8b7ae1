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
import { buildTraceChunks } from "./build.ts";
import type { TraceChunk } from "./span.ts";
import { batchAvailable, BatchWriter } from "./batch/writer.ts";

/** Batch writers kept for reuse, per exporter (more are made while sends overlap). */
const POOLED_WRITERS = 4;

/** What the agent answered to a send. */
export interface AgentResponse {
  /**
   * The raw body from `ddog_trace_exporter_response_get_body`. From the agent it is always its whole answer
   * (libdatadog's FFI never enables the rates-payload-version check that would leave it out); it is empty
   * only for an OTLP export.
   */
  readonly body: Uint8Array;
  /** The agent's sampling rates by `service:…,env:…` key: this answer's, else the last ones known (OTLP). */
  readonly rateByService: Record<string, number> | undefined;
  /**
   * Whether this answer's `rate_by_service` differs from the rates known before it (the first answer with
   * rates counts as changed). Compared here, key by key: libdatadog's `AgentResponse::Unchanged` never comes
   * through the FFI from the agent.
   */
  readonly changed: boolean;
}

/** Options of one `send`. */
export interface SendOptions {
  /** Cancels the request (through a `ddog_TraceExporterCancelToken`); the send rejects with an `AbortError`. */
  signal?: AbortSignal;
}

/** Options of `close()`. */
export interface CloseOptions {
  /**
   * The longest `close()` waits, in milliseconds: for the sends in flight (past it they are cancelled
   * through their cancel tokens) and for `ddog_trace_exporter_free`, libdatadog's shutdown, which has no
   * timeout of its own (final telemetry and stats flushes). Past it `close()` resolves and the exporter is
   * freed in the background. Default: no bound.
   */
  timeoutMs?: number;
}

/** Frees an exporter off the JS thread: libdatadog's shutdown may wait on the network. */
function freeExporter(binding: Binding, handle: Word): Promise<void> {
  return binding.native.async.ddog_trace_exporter_free(handle).then(() => {}, () => {});
}

const registry = new FinalizationRegistry<{ binding: Binding; handle: Word; writers: BatchWriter[] }>(({ binding, handle, writers }) => {
  for (const w of writers) w.free();
  void freeExporter(binding, handle);
});

/**
 * The batch path for a writer filled outside `send`: the Tracer's trace
 * buffer writes each trace chunk into a batch as it finishes, so that its
 * spans are garbage while still young, and sends the batch at its flush.
 * Internal: not exported from `mod.ts`.
 */
export let batchAccess: {
  /** A batch writer for a later `send` of this exporter; undefined on the per-field path, or once it is closed. */
  writer(exporter: TraceExporter): BatchWriter | undefined;
  /** Sends the batch ended in `writer` (`length` bytes), as `send` does; the writer goes back to the exporter. */
  send(exporter: TraceExporter, writer: BatchWriter, length: number, options?: SendOptions): Promise<AgentResponse>;
  /** Gives back a writer that is not sent. */
  release(exporter: TraceExporter, writer: BatchWriter): void;
};

/**
 * The cancel tokens of every send in flight, of every exporter. On Node, `process.exit()` joins the worker
 * threads that run the sends, so the runtime's exit hook cancels them all first (cancelling is immediate
 * and thread-safe); otherwise a send to a hung agent would hold the exit for the whole retry policy.
 */
const liveTokens = new Set<Word>();
let exitHooked = false;

function hookExit(binding: Binding): void {
  if (exitHooked) return;
  exitHooked = true;
  binding.native.runtime.onExit?.(() => {
    for (const token of liveTokens) binding.symbols.ddog_trace_exporter_cancel_token_cancel(token);
  });
}

/** Whether two `rate_by_service` maps hold the same rates. */
function sameRates(a: Record<string, number> | undefined, b: Record<string, number>): boolean {
  if (!a) return false;
  const keys = Object.keys(b);
  return keys.length === Object.keys(a).length && keys.every((k) => Object.hasOwn(a, k) && Object.is(a[k], b[k]));
}

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
  /** The cancel tokens of the sends in flight (each leaves before it is dropped). */
  #tokens = new Set<Word>();
  /** Set when `close({ timeoutMs })` ran out and cancelled the sends in flight. */
  #cancelledByClose = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #rates: Record<string, number> | undefined;
  /** Whether `send` writes one batch for `ddffi_batch_send` (else the per-field path). */
  readonly #batch: boolean;
  readonly #writers: BatchWriter[] = [];

  static {
    batchAccess = {
      writer: (e) => (e.#batch && !e.#closed ? e.#writers.pop() ?? new BatchWriter(e.#binding.native) : undefined),
      send: (e, writer, length, options = {}) => {
        const signal = options.signal;
        if (e.#closed) {
          e.#release(writer);
          return Promise.reject(new ClosedError("The trace exporter is closed"));
        }
        if (signal?.aborted) {
          e.#release(writer);
          return Promise.reject(new AbortError(undefined, { cause: signal.reason }));
        }
        return e.#track(e.#sendBatch(writer, length, signal));
      },
      release: (e, writer) => e.#release(writer),
    };
  }

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
    hookExit(b);
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
   * it off the JS thread: the bundled library straight into libdatadog's
   * spans, sent with libdatadog's `TraceExporter::send_trace_chunks`; the
   * shim next to a libdatadog release build (`DD_LIBDATADOG_PATH`) through
   * the C ABI (`ddog_tracer_span_new`, `_set_meta`, …,
   * `ddog_tracer_trace_chunks_push_span`, then
   * `ddog_trace_exporter_send_trace_chunks`). On the per-field path
   * (`sendPath: "fields"`) it builds each span through those calls on the
   * calling thread, then sends off it. Both put the same bytes on the wire.
   *
   * @param traces An array of trace chunks, each an array of spans (times in nanoseconds).
   * @returns The agent's answer.
   * @throws {ValidationError} synchronously-built input was invalid (its `path` names the span and field); nothing was sent.
   * @throws {TraceExporterError} libdatadog failed to send (`code`: `ConnectionRefused`, `HttpServer`, `TimedOut`, …).
   * @throws {AbortError} `options.signal` was aborted, or `close({ timeoutMs })` ran out and cancelled the send.
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
    const done = this.#watch(signal);
    try {
      const slot = writer.slot;
      const u32 = new Uint32Array(slot.buffer, 0, 2);
      u32[0] = 0;
      u32[1] = 0;
      const error = await b.native.async.ddffi_batch_send!(this.#handle, writer.address, length, slot.address, done.token);
      if (error) throw this.#sendError(b.takeError(error, "ddffi_batch_send"), signal);
      const response = readPointer(slot);
      if (!response) throw new TraceExporterError("Internal", "ddffi_batch_send returned no response (the decoder is not bound)", "ddffi_batch_send");
      return this.#takeResponse(response);
    } finally {
      done();
      this.#release(writer);
    }
  }

  /**
   * Gives a send its cancel token, which the signal, `close({ timeoutMs })` and
   * the exit hook cancel through; the function returned drops it.
   */
  #watch(signal: AbortSignal | undefined): (() => void) & { token: Word } {
    const s = this.#binding.symbols;
    const token: Word = s.ddog_trace_exporter_cancel_token_new() ?? 0;
    const onAbort = () => s.ddog_trace_exporter_cancel_token_cancel(token);
    if (token) {
      liveTokens.add(token);
      this.#tokens.add(token);
      signal?.addEventListener("abort", onAbort, { once: true });
    }
    return Object.assign(() => {
      if (!token) return;
      signal?.removeEventListener("abort", onAbort);
      liveTokens.delete(token);
      this.#tokens.delete(token);
      s.ddog_trace_exporter_cancel_token_drop(token);
    }, { token });
  }

  /** What a failed send rejects with: an `AbortError` when it was cancelled, else libdatadog's error. */
  #sendError(e: TraceExporterError, signal: AbortSignal | undefined): Error {
    if (signal?.aborted) return new AbortError(undefined, { cause: signal.reason ?? e });
    if (this.#cancelledByClose) return new AbortError("The send was cancelled: close() ran out of time", { cause: e });
    return e;
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
    const slot: NativeMemory = b.native.alloc(8);
    const done = this.#watch(signal);
    try {
      // Consumes the chunks on every path.
      const error = await b.native.async.ddog_trace_exporter_send_trace_chunks(this.#handle, chunks, slot.address, done.token);
      if (error) throw this.#sendError(b.takeError(error, "ddog_trace_exporter_send_trace_chunks"), signal);
      return this.#takeResponse(readPointer(slot));
    } finally {
      done();
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
    let changed = false;
    if (body.length > 0) {
      try {
        const parsed = JSON.parse(decoder.decode(body));
        const rates = parsed?.rate_by_service;
        if (rates && typeof rates === "object" && !Array.isArray(rates)) {
          changed = !sameRates(this.#rates, rates);
          this.#rates = rates;
        }
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
   * Waits for the sends in flight, then frees the exporter with `ddog_trace_exporter_free` off the JS
   * thread (libdatadog's shutdown, which may flush telemetry and stats over the network). With
   * `timeoutMs`, resolves by then at the latest: the sends still in flight are cancelled (they reject
   * with `AbortError`) and the exporter is freed in the background once they returned. Further sends
   * reject with `ClosedError`. Calling it again returns the same promise.
   *
   * @throws {ValidationError} `options.timeoutMs` is not a non-negative number.
   */
  close(options: CloseOptions = {}): Promise<void> {
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && timeoutMs >= 0)) {
      return Promise.reject(new ValidationError("options.timeoutMs", `expected a non-negative number of milliseconds, got ${String(timeoutMs)}`));
    }
    this.#closed = true;
    this.#closing ??= this.#shutdown(timeoutMs);
    return this.#closing;
  }

  async #shutdown(timeoutMs: number | undefined): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = timeoutMs === undefined || timeoutMs === Infinity
      ? new Promise<true>(() => {})
      : new Promise<true>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs)));
    try {
      const settled = Promise.allSettled([...this.#inFlight]);
      if (await Promise.race([settled.then(() => false), expired])) this.#cancelAll();
      await Promise.race([settled.then(() => this.#free()), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Cancels every send in flight through its token (a send without one, `sendEncoded`, runs on). */
  #cancelAll(): void {
    this.#cancelledByClose = true;
    for (const token of this.#tokens) this.#binding.symbols.ddog_trace_exporter_cancel_token_cancel(token);
  }

  #free(): Promise<void> {
    for (const w of this.#writers) w.free();
    this.#writers.length = 0;
    registry.unregister(this);
    const handle = this.#handle;
    this.#handle = 0;
    return freeExporter(this.#binding, handle);
  }

  /** Closes the exporter; it is freed off the JS thread once the sends in flight settled. */
  [Symbol.dispose](): void {
    this.#closed = true;
    this.#closing ??= this.#inFlight.size === 0 ? this.#free() : Promise.allSettled([...this.#inFlight]).then(() => this.#free());
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function readPointer(slot: NativeMemory): number {
  return readAddress(new Uint32Array(slot.buffer, 0, 2));
}
