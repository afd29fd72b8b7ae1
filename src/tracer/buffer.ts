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
import type { AgentResponse, SendOptions } from "../exporter.ts";
import type { Span, TraceChunk } from "../span.ts";
import type { OnceLogger } from "./log.ts";

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

/** A rough size of a span once encoded (msgpack v0.4), in bytes: enough to bound memory. */
export function estimateSize(span: Span): number {
  let n = 130 + len(span.name) + len(span.service) + len(span.resource) + len(span.type);
  for (const k in span.meta) n += k.length + len(span.meta[k]) + 4;
  for (const k in span.metrics) n += k.length + 11;
  for (const l of span.links ?? []) n += 64 + JSON.stringify(l.attributes ?? {}).length + len(l.tracestate);
  for (const e of span.events ?? []) n += 48 + len(e.name) + JSON.stringify(e.attributes ?? {}, (_k, v) => typeof v === "bigint" ? 0 : v).length;
  return n;
}

/** A string's length; 0 for anything else (the size stays a number whatever the span holds). */
function len(v: unknown): number {
  return typeof v === "string" ? v.length : 0;
}

/** The index of the chunk a `ValidationError` of the build names (`traces[3][0].resource`), if it is one. */
function invalidChunk(error: unknown, chunks: number): number | undefined {
  if (!(error instanceof ValidationError)) return undefined;
  const m = /^traces\[(\d+)\]/.exec(error.path);
  const at = m ? Number(m[1]) : -1;
  return at >= 0 && at < chunks ? at : undefined;
}

type Counts = Omit<TracerCounters, "queuedTraces" | "queuedBytes" | "malformedHeaders">;

function spanCount(batch: Span[][]): number {
  return batch.reduce((n, chunk) => n + chunk.length, 0);
}

/** Queues finished trace chunks and sends them. */
export class TraceBuffer {
  #o: BufferOptions;
  #queue: Span[][] = [];
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
      if (this.#queue.length > 0) void this.flush();
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
    return this.#queue.length > 0;
  }

  /**
   * Queues a finished trace chunk of `bytes` estimated bytes. Returns false
   * (and counts the chunk dropped) when the queue is full or the buffer closed.
   */
  push(chunk: Span[], bytes: number): boolean {
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
    this.#queue.push(chunk);
    this.#sizes.push(bytes);
    this.#queueBytes += bytes;
    this.#pendingTraces++;
    this.#pendingBytes += bytes;
    if (this.#queueBytes >= o.flushThresholdBytes) void this.flush();
    return true;
  }

  /** Sends what is queued now; resolves when it and every earlier send settled (never rejects). */
  flush(): Promise<void> {
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
  async #send(batch: Span[][], sizes: number[]): Promise<void> {
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
          c.tracesInvalid++;
          c.spansInvalid += chunk.length;
          const e = error as ValidationError;
          this.#o.log.once(
            `invalid:${e.path.replace(/\[\d+\]/g, "[]")}`,
            `a trace chunk could not be built and was dropped (see counters.tracesInvalid): ${e.message}`,
          );
        }
      }
    } catch (error) {
      const spans = spanCount(batch);
      if (error instanceof AbortError) {
        // Cancelled in flight: the agent may have received it.
        c.tracesTimedOut += batch.length;
        c.spansTimedOut += spans;
        c.payloadsTimedOut++;
        const why = deadline.signal.aborted ? `it took longer than flushTimeoutMs (${this.#o.flushTimeoutMs} ms)` : "the tracer shut down";
        this.#o.log.once(
          `timeout:${deadline.signal.aborted}`,
          `a send of traces to the agent was cancelled: ${why} (see counters.tracesTimedOut; the agent may have received them)`,
        );
        return;
      }
      c.tracesFailed += batch.length;
      c.spansFailed += spans;
      c.payloadsFailed++;
      const e = error as { name?: string; code?: string; message?: string };
      const kind = e?.code ?? e?.name ?? "Error";
      this.#o.log.once(`send:${kind}`, `sending traces to the agent failed (${kind}): ${e?.message ?? String(error)}`);
    } finally {
      clearTimeout(timer);
      this.#pendingTraces -= pendingTraces;
      this.#pendingBytes -= pendingBytes;
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
