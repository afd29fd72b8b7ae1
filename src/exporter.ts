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

const registry = new FinalizationRegistry<{ binding: Binding; handle: Word }>(({ binding, handle }) => {
  void freeExporter(binding, handle);
});

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
    hookExit(b);
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
   * @throws {AbortError} `options.signal` was aborted, or `close({ timeoutMs })` ran out and cancelled the send.
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
    // Every send has a token: close({ timeoutMs }) and the exit hook cancel through it.
    const token = this.#binding.symbols.ddog_trace_exporter_cancel_token_new() ?? 0;
    return this.#track(this.#sendChunks(chunks, token, signal));
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

  async #sendChunks(chunks: Word, token: Word, signal: AbortSignal | undefined): Promise<AgentResponse> {
    const b = this.#binding;
    const s = b.symbols;
    const slot: NativeMemory = b.native.alloc(8);
    let onAbort: (() => void) | undefined;
    if (token) {
      liveTokens.add(token);
      this.#tokens.add(token);
    }
    if (signal && token) {
      onAbort = () => s.ddog_trace_exporter_cancel_token_cancel(token);
      signal.addEventListener("abort", onAbort, { once: true });
    }
    try {
      // Consumes the chunks on every path.
      const error = await b.native.async.ddog_trace_exporter_send_trace_chunks(this.#handle, chunks, slot.address, token);
      if (error) {
        const e = b.takeError(error, "ddog_trace_exporter_send_trace_chunks");
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason ?? e });
        if (this.#cancelledByClose) throw new AbortError("The send was cancelled: close() ran out of time", { cause: e });
        throw e;
      }
      const response = readPointer(slot);
      return this.#takeResponse(response);
    } finally {
      if (onAbort) signal!.removeEventListener("abort", onAbort);
      if (token) {
        liveTokens.delete(token);
        this.#tokens.delete(token);
        s.ddog_trace_exporter_cancel_token_drop(token);
      }
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
