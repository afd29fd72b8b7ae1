/**
 * The trace buffer: finished trace chunks wait in a bounded queue and go to
 * the exporter on an interval, when the queue passes a size, on `flush()`,
 * and at shutdown. Sends run one after another, off the JavaScript thread
 * (the exporter's); a failed send is counted and logged once per kind, and
 * never reaches the application.
 *
 * @module
 */
import { clearInterval, setInterval } from "node:timers";
import { AbortError, ValidationError } from "../errors.ts";
import type { BatchWriter } from "../batch/writer.ts";
import { type AgentResponse, batchAccess, type SendOptions, TraceExporter } from "../exporter.ts";
import type { FinishedSpan } from "../finished-span.ts";
import type { Span, TraceChunk } from "../span.ts";
import type { OnceLogger } from "./log.ts";

/** A queued trace chunk: the Tracer's finished spans (or plain spans, from any other caller). */
type Chunk = (Span | FinishedSpan)[];

/** What the buffer sends through: a `TraceExporter`, or anything with its `send`. */
export interface ChunkExporter {
  send(traces: readonly TraceChunk[], options?: SendOptions): Promise<AgentResponse>;
}

/** Options of {@link TraceBuffer}. */
export interface BufferOptions {
  exporter: ChunkExporter;
  /** Milliseconds between sends of what is queued. */
  flushIntervalMs: number;
  /** The queue is sent as soon as its estimated size passes this many bytes. */
  flushThresholdBytes: number;
  /** Most trace chunks queued or being sent; past it new chunks are dropped. */
  maxQueuedTraces: number;
  /** Most estimated bytes queued or being sent; past it new chunks are dropped. */
  maxQueuedBytes: number;
  /** Most milliseconds one send may take (libdatadog's retries included); then it is cancelled. */
  flushTimeoutMs: number;
  /** Called with each answer of the agent. */
  onResponse(response: AgentResponse): void;
  log: OnceLogger;
}

/** The tracer's counters. Traces are counted as trace chunks (a partially flushed trace counts once per chunk). */
export interface TracerCounters {
  /** Trace chunks the agent accepted. */
  tracesSent: number;
  /** Spans the agent accepted. */
  spansSent: number;
  /** Estimated encoded bytes of what the agent accepted. */
  bytesSent: number;
  /** Requests the agent accepted. */
  payloadsSent: number;
  /** Trace chunks dropped because the queue was full (or the tracer shut down). */
  tracesDropped: number;
  /** Spans of the dropped trace chunks. */
  spansDropped: number;
  /** Trace chunks whose send failed (the exporter already retried). */
  tracesFailed: number;
  /** Spans of the failed trace chunks. */
  spansFailed: number;
  /** Sends that failed. */
  payloadsFailed: number;
  /**
   * Trace chunks whose send was cancelled at `flushTimeoutMs` or at the
   * shutdown timeout: the agent may have received them (sends are at least once).
   */
  tracesTimedOut: number;
  /** Spans of the timed-out trace chunks. */
  spansTimedOut: number;
  /** Sends cancelled at a timeout. */
  payloadsTimedOut: number;
  /** Trace chunks that could not be built (a `ValidationError`, logged naming the field) and were left out of their send. */
  tracesInvalid: number;
  /** Spans of the invalid trace chunks. */
  spansInvalid: number;
  /** Trace chunks queued or being sent now. */
  queuedTraces: number;
  /** Estimated bytes queued or being sent now. */
  queuedBytes: number;
  /** Malformed trace context headers ignored by `extract`. */
  malformedHeaders: number;
}

/** The index of the chunk a `ValidationError` of the build is in, if it is in one of `chunks`. */
function invalidChunk(error: unknown, chunks: number): number | undefined {
  if (!(error instanceof ValidationError)) return undefined;
  const at = error.chunk;
  return at !== undefined && at >= 0 && at < chunks ? at : undefined;
}

type Counts = Omit<TracerCounters, "queuedTraces" | "queuedBytes" | "malformedHeaders">;

function spanCount(batch: Chunk[]): number {
  return batch.reduce((n, chunk) => n + chunk.length, 0);
}

/** A batch the buffer writes chunk by chunk (a `TraceExporter` on its batch path), and what it holds. */
interface OpenBatch {
  writer: BatchWriter;
  chunks: number;
  spans: number;
  /** Their estimated bytes. */
  bytes: number;
}

/**
 * Queues finished trace chunks and sends them. Through a `TraceExporter` on
 * its batch path, each chunk is written into the next send's batch when it
 * is queued: its spans are then garbage while still young, instead of
 * living until the flush (and through the collections in between).
 */
export class TraceBuffer {
  #o: BufferOptions;
  /** The batch being written, when the exporter takes one. */
  #open: OpenBatch | undefined;
  /** Chunks queued as they are, for any other exporter (or the per-field path). */
  #queue: Chunk[] = [];
  /** The estimated bytes of each queued chunk, and their sum. */
  #sizes: number[] = [];
  #queueBytes = 0;
  /** Chunks and bytes queued or in a send not yet settled. */
  #pendingTraces = 0;
  #pendingBytes = 0;
  /** The tail of the chain of sends. */
  #sends: Promise<void> = Promise.resolve();
  #abort = new AbortController();
  #closed = false;
  #timer: ReturnType<typeof setInterval>;
  #counts: Counts = {
    tracesSent: 0,
    spansSent: 0,
    bytesSent: 0,
    payloadsSent: 0,
    tracesDropped: 0,
    spansDropped: 0,
    tracesFailed: 0,
    spansFailed: 0,
    payloadsFailed: 0,
    tracesTimedOut: 0,
    spansTimedOut: 0,
    payloadsTimedOut: 0,
    tracesInvalid: 0,
    spansInvalid: 0,
  };

  constructor(options: BufferOptions) {
    this.#o = options;
    this.#timer = setInterval(() => {
      if (this.queued) void this.flush();
    }, options.flushIntervalMs);
    // The interval never keeps the process alive: the exit hook flushes.
    this.#timer.unref();
  }

  /** The counters (without `malformedHeaders`, which the tracer adds). */
  counters(): Omit<TracerCounters, "malformedHeaders"> {
    return { ...this.#counts, queuedTraces: this.#pendingTraces, queuedBytes: this.#pendingBytes };
  }

  /** Whether chunks are queued or being sent. */
  get busy(): boolean {
    return this.#pendingTraces > 0;
  }

  /** Whether chunks are queued and not yet handed to a send. */
  get queued(): boolean {
    return this.#queue.length > 0 || this.#open !== undefined;
  }

  /**
   * Queues a finished trace chunk of `bytes` estimated bytes. Returns false
   * (and counts the chunk dropped) when the queue is full or the buffer
   * closed, or (counted invalid, logged) when it cannot be built.
   */
  push(chunk: Chunk, bytes: number): boolean {
    const o = this.#o;
    if (!(bytes >= 0 && bytes <= Number.MAX_SAFE_INTEGER)) bytes = 0; // never NaN, whatever the caller computed

    if (this.#closed || this.#pendingTraces + 1 > o.maxQueuedTraces || this.#pendingBytes + bytes > o.maxQueuedBytes) {
      this.#counts.tracesDropped++;
      this.#counts.spansDropped += chunk.length;
      if (this.#closed) {
        o.log.once("closed", "a trace finished after the tracer shut down: it was dropped (see counters.tracesDropped)");
      } else {
        o.log.once(
          "queue-full",
          `the trace queue is full (${o.maxQueuedTraces} traces / ${o.maxQueuedBytes} bytes): new traces are dropped (see counters.tracesDropped)`,
        );
      }
      return false;
    }
    const written = this.#write(chunk, bytes);
    if (written === "invalid") return false;
    if (written === "unbatched") {
      this.#queue.push(chunk);
      this.#sizes.push(bytes);
    }
    this.#queueBytes += bytes;
    this.#pendingTraces++;
    this.#pendingBytes += bytes;
    if (this.#queueBytes >= o.flushThresholdBytes) void this.flush();
    return true;
  }

  /**
   * Writes `chunk` into the open batch (opened here if need be); "unbatched"
   * when the exporter takes no batch. A chunk that fails to build is left
   * out, counted and logged ("invalid"): nothing of it is written.
   */
  #write(chunk: Chunk, bytes: number): "written" | "invalid" | "unbatched" {
    const exporter = this.#o.exporter;
    if (!(exporter instanceof TraceExporter)) return "unbatched";
    let open = this.#open;
    if (open === undefined) {
      const writer = batchAccess.writer(exporter);
      if (writer === undefined) return "unbatched";
      writer.begin();
      open = this.#open = { writer, chunks: 0, spans: 0, bytes: 0 };
    }
    try {
      open.writer.append(chunk, open.chunks);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      this.#invalid(chunk.length, error);
      return "invalid";
    }
    open.chunks++;
    open.spans += chunk.length;
    open.bytes += bytes;
    return "written";
  }

  /** Counts and logs a chunk that could not be built (left out of its send). */
  #invalid(spans: number, e: ValidationError): void {
    this.#counts.tracesInvalid++;
    this.#counts.spansInvalid += spans;
    this.#o.log.once(
      `invalid:${e.path.replace(/\[\d+\]/g, "[]")}`,
      `a trace chunk could not be built and was dropped (see counters.tracesInvalid): ${e.message}`,
    );
  }

  /** Sends what is queued now; resolves when it and every earlier send settled (never rejects). */
  flush(): Promise<void> {
    const open = this.#open;
    if (open !== undefined) {
      this.#open = undefined;
      this.#queueBytes = 0;
      if (open.chunks === 0) batchAccess.release(this.#o.exporter as TraceExporter, open.writer);
      else {
        const length = open.writer.end();
        this.#sends = this.#sends.then(() => this.#sendWritten(open, length));
      }
    }
    if (this.#queue.length > 0) {
      const batch = this.#queue;
      const sizes = this.#sizes;
      this.#queue = [];
      this.#sizes = [];
      this.#queueBytes = 0;
      this.#sends = this.#sends.then(() => this.#send(batch, sizes));
    }
    return this.#sends;
  }

  /**
   * One send of `batch` (chunks of `sizes` estimated bytes), cancelled after
   * `flushTimeoutMs`. A chunk that fails to build is left out (counted
   * invalid) and the others are sent.
   */
  async #send(batch: Chunk[], sizes: number[]): Promise<void> {
    const c = this.#counts;
    const pendingBytes = sizes.reduce((n, b) => n + b, 0);
    const pendingTraces = batch.length;
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new Error(`the send took longer than flushTimeoutMs (${this.#o.flushTimeoutMs} ms)`)),
      this.#o.flushTimeoutMs,
    );
    const signal = AbortSignal.any([this.#abort.signal, deadline.signal]);
    try {
      while (batch.length > 0) {
        if (signal.aborted) {
          c.tracesDropped += batch.length;
          c.spansDropped += spanCount(batch);
          return;
        }
        try {
          const response = await this.#o.exporter.send(batch, { signal });
          c.tracesSent += batch.length;
          c.spansSent += spanCount(batch);
          c.bytesSent += sizes.reduce((n, b) => n + b, 0);
          c.payloadsSent++;
          try {
            this.#o.onResponse(response);
          } catch {
            // Rates are best effort.
          }
          return;
        } catch (error) {
          const at = invalidChunk(error, batch.length);
          if (at === undefined) throw error;
          // Nothing was sent: leave the chunk out and send the others.
          const [chunk] = batch.splice(at, 1);
          sizes.splice(at, 1);
          this.#invalid(chunk.length, error as ValidationError);
        }
      }
    } catch (error) {
      this.#failed(error, batch.length, spanCount(batch), deadline.signal);
    } finally {
      clearTimeout(timer);
      this.#pendingTraces -= pendingTraces;
      this.#pendingBytes -= pendingBytes;
    }
  }

  /** Counts and logs a send that failed, or was cancelled (`AbortError`: at `flushTimeoutMs` when `deadline` is aborted, else at shutdown). */
  #failed(error: unknown, chunks: number, spans: number, deadline: AbortSignal): void {
    const c = this.#counts;
    if (error instanceof AbortError) {
      // Cancelled in flight: the agent may have received it.
      c.tracesTimedOut += chunks;
      c.spansTimedOut += spans;
      c.payloadsTimedOut++;
      const why = deadline.aborted ? `it took longer than flushTimeoutMs (${this.#o.flushTimeoutMs} ms)` : "the tracer shut down";
      this.#o.log.once(
        `timeout:${deadline.aborted}`,
        `a send of traces to the agent was cancelled: ${why} (see counters.tracesTimedOut; the agent may have received them)`,
      );
      return;
    }
    c.tracesFailed += chunks;
    c.spansFailed += spans;
    c.payloadsFailed++;
    const e = error as { name?: string; code?: string; message?: string };
    const kind = e?.code ?? e?.name ?? "Error";
    this.#o.log.once(`send:${kind}`, `sending traces to the agent failed (${kind}): ${e?.message ?? String(error)}`);
  }

  /** `#send` for a written batch: sent whole (its chunks were built as they were written), cancelled after `flushTimeoutMs`. */
  async #sendWritten(open: OpenBatch, length: number): Promise<void> {
    const c = this.#counts;
    const exporter = this.#o.exporter as TraceExporter;
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new Error(`the send took longer than flushTimeoutMs (${this.#o.flushTimeoutMs} ms)`)),
      this.#o.flushTimeoutMs,
    );
    const signal = AbortSignal.any([this.#abort.signal, deadline.signal]);
    try {
      if (signal.aborted) {
        batchAccess.release(exporter, open.writer);
        c.tracesDropped += open.chunks;
        c.spansDropped += open.spans;
        return;
      }
      const response = await batchAccess.send(exporter, open.writer, length, { signal });
      c.tracesSent += open.chunks;
      c.spansSent += open.spans;
      c.bytesSent += open.bytes;
      c.payloadsSent++;
      try {
        this.#o.onResponse(response);
      } catch {
        // Rates are best effort.
      }
    } catch (error) {
      this.#failed(error, open.chunks, open.spans, deadline.signal);
    } finally {
      clearTimeout(timer);
      this.#pendingTraces -= open.chunks;
      this.#pendingBytes -= open.bytes;
    }
  }

  /**
   * Stops the interval, sends what is queued and waits for the sends up to
   * `timeoutMs`; past it, cancels the send in flight and drops (counts) the
   * rest. Chunks pushed afterwards are dropped.
   */
  async close(timeoutMs: number): Promise<void> {
    clearInterval(this.#timer);
    const done = this.flush();
    this.#closed = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs)));
    const late = await Promise.race([done.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      this.#o.log.once("shutdown-timeout", `shutdown: the agent did not take the queued traces within ${timeoutMs} ms; they were cancelled`);
      this.#abort.abort(new Error("the tracer's shutdown timed out"));
      await done;
    }
  }
}
