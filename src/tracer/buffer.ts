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
  /** Trace chunks queued or being sent now. */
  queuedTraces: number;
  /** Estimated bytes queued or being sent now. */
  queuedBytes: number;
  /** Malformed trace context headers ignored by `extract`. */
  malformedHeaders: number;
}

/** A rough size of a span once encoded (msgpack v0.4), in bytes: enough to bound memory. */
export function estimateSize(span: Span): number {
  let n = 130 + span.name.length + span.service.length + (span.resource?.length ?? 0) + (span.type?.length ?? 0);
  for (const k in span.meta) n += k.length + span.meta[k].length + 4;
  for (const k in span.metrics) n += k.length + 11;
  for (const l of span.links ?? []) n += 64 + JSON.stringify(l.attributes ?? {}).length + (l.tracestate?.length ?? 0);
  for (const e of span.events ?? []) n += 48 + e.name.length + JSON.stringify(e.attributes ?? {}, (_k, v) => typeof v === "bigint" ? 0 : v).length;
  return n;
}

type Counts = Omit<TracerCounters, "queuedTraces" | "queuedBytes" | "malformedHeaders">;

/** Queues finished trace chunks and sends them. */
export class TraceBuffer {
  #o: BufferOptions;
  #queue: Span[][] = [];
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
      const bytes = this.#queueBytes;
      this.#queue = [];
      this.#queueBytes = 0;
      this.#sends = this.#sends.then(() => this.#send(batch, bytes));
    }
    return this.#sends;
  }

  async #send(batch: Span[][], bytes: number): Promise<void> {
    const c = this.#counts;
    const spans = batch.reduce((n, chunk) => n + chunk.length, 0);
    try {
      if (this.#abort.signal.aborted) {
        c.tracesDropped += batch.length;
        c.spansDropped += spans;
        return;
      }
      const response = await this.#o.exporter.send(batch, { signal: this.#abort.signal });
      c.tracesSent += batch.length;
      c.spansSent += spans;
      c.bytesSent += bytes;
      c.payloadsSent++;
      try {
        this.#o.onResponse(response);
      } catch {
        // Rates are best effort.
      }
    } catch (error) {
      c.tracesFailed += batch.length;
      c.spansFailed += spans;
      c.payloadsFailed++;
      const e = error as { name?: string; code?: string; message?: string };
      const kind = e?.code ?? e?.name ?? "Error";
      this.#o.log.once(`send:${kind}`, `sending traces to the agent failed (${kind}): ${e?.message ?? String(error)}`);
    } finally {
      this.#pendingTraces -= batch.length;
      this.#pendingBytes -= bytes;
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
