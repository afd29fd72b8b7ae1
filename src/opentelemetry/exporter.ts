/**
 * `DatadogSpanExporter`: an OpenTelemetry SDK `SpanExporter` that maps
 * spans as the Datadog agent maps OTLP and sends them through a
 * `TraceExporter` (libdatadog's C ABI).
 *
 * @module
 */
import { ClosedError, ValidationError } from "../errors.ts";
import { TraceExporter } from "../exporter.ts";
import type { ExporterOptions } from "../options.ts";
import type { Span } from "../span.ts";
import { type ReadableSpanLike, toDatadogSpan } from "./mapping.ts";

/** `ExportResultCode` of `@opentelemetry/core`: 0 success, 1 failed. */
export const ExportResultCode = { SUCCESS: 0, FAILED: 1 } as const;

/** What an export reports to the span processor (`ExportResult` of `@opentelemetry/core`). */
export interface ExportResult {
  /** 0 (`SUCCESS`) or 1 (`FAILED`). */
  code: number;
  /** Why it failed. */
  error?: Error;
}

/**
 * Groups spans into trace chunks, one per trace id (in order of first
 * appearance), as the agent groups OTLP spans (otlp.go,
 * `receiveResourceSpansV2`: `tracesByID`). Spans with invalid ids are
 * counted in `invalid`.
 */
export function toTraceChunks(spans: readonly ReadableSpanLike[]): { chunks: Span[][]; invalid: number } {
  const byTrace = new Map<bigint, Span[]>();
  const traceIds = new Map<string, bigint>();
  let invalid = 0;
  for (const otel of spans) {
    const span = toDatadogSpan(otel, traceIds);
    if (!span) {
      invalid++;
      continue;
    }
    const chunk = byTrace.get(span.traceId);
    if (chunk) chunk.push(span);
    else byTrace.set(span.traceId, [span]);
  }
  return { chunks: [...byTrace.values()], invalid };
}

/**
 * An OpenTelemetry SDK `SpanExporter` (`@opentelemetry/sdk-trace-base`'s
 * interface: `export`, `shutdown`, `forceFlush`; it loads nothing of the SDK)
 * that sends to the Datadog agent through libdatadog's trace exporter.
 *
 * ```ts
 * import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
 * import { DatadogSpanExporter } from "@dd-ffi/trace/opentelemetry";
 *
 * const provider = new BasicTracerProvider({
 *   spanProcessors: [new BatchSpanProcessor(new DatadogSpanExporter({ env: "prod" }))],
 * });
 * ```
 *
 * Each span becomes a Datadog span by the agent's OTLP rules (see
 * `toDatadogSpan`): service from `service.name`, operation name and
 * resource from the semantic conventions (`http.server.request`,
 * `GET /users/:id`, …), type, `span.kind`, errors from the status and the
 * `exception` event, attributes to meta and metrics, `env`, the 128-bit
 * trace id, parent, links, events, sampling priority from the sampled flag,
 * `otel.status_code` and `otel.scope.name`. The spans of one trace in a
 * batch go out as one trace chunk, through `TraceExporter.send`
 * (`ddog_tracer_span_new`, …, `ddog_trace_exporter_send_trace_chunks`).
 *
 * The exporter owns its `TraceExporter`: `shutdown()` frees it.
 */
export class DatadogSpanExporter {
  #exporter: TraceExporter;
  #pending = new Set<Promise<void>>();
  #shutdown: Promise<void> | undefined;

  /**
   * Creates the exporter and its `TraceExporter`.
   *
   * @param options The `TraceExporter` options (agent `url`, `service`, `env`, `version`, …).
   * @throws {ValidationError} an option has the wrong type.
   * @throws {TraceExporterError} libdatadog rejected an option (e.g. `InvalidUrl`).
   * @throws {Error} no native library was found.
   */
  constructor(options: ExporterOptions = {}) {
    this.#exporter = new TraceExporter(options);
  }

  /**
   * Maps `spans` and sends them; calls `resultCallback` once with
   * `SUCCESS` when the agent took them, or `FAILED` with the error (the
   * send failed, the exporter is shut down, or some spans had invalid ids:
   * the others are still sent).
   */
  export(spans: ReadableSpanLike[], resultCallback: (result: ExportResult) => void): void {
    if (this.#shutdown) {
      resultCallback({ code: ExportResultCode.FAILED, error: new ClosedError("The DatadogSpanExporter is shut down") });
      return;
    }
    let chunks: Span[][];
    let invalid: number;
    try {
      ({ chunks, invalid } = toTraceChunks(spans));
    } catch (error) {
      resultCallback({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
      return;
    }
    const done = (error?: Error) => {
      if (!error && invalid > 0) error = new Error(`${invalid} span(s) with an invalid trace id or span id were not exported`);
      resultCallback(error ? { code: ExportResultCode.FAILED, error } : { code: ExportResultCode.SUCCESS });
    };
    if (chunks.length === 0) {
      done();
      return;
    }
    const sent = this.#send(chunks).then(
      (rejected) => done(rejected),
      (error) => done(error instanceof Error ? error : new Error(String(error))),
    );
    this.#pending.add(sent);
    void sent.finally(() => this.#pending.delete(sent));
  }

  /**
   * Sends the chunks. A span the trace exporter rejects (a `ValidationError`
   * naming `traces[c][i]`) is taken out and the rest sent again, so one bad
   * span never loses the batch; the rejections are returned.
   */
  async #send(chunks: Span[][]): Promise<Error | undefined> {
    const rejected: ValidationError[] = [];
    for (;;) {
      try {
        if (chunks.length > 0) await this.#exporter.send(chunks);
        break;
      } catch (error) {
        const at = error instanceof ValidationError ? /^traces\[(\d+)\]\[(\d+)\]/.exec(error.path) : null;
        const chunk = at ? chunks[Number(at[1])] : undefined;
        if (!at || !chunk || Number(at[2]) >= chunk.length) throw error;
        rejected.push(error as ValidationError);
        chunk.splice(Number(at[2]), 1);
        chunks = chunks.filter((c) => c.length > 0);
      }
    }
    if (rejected.length === 0) return undefined;
    return new AggregateError(rejected, `${rejected.length} span(s) were not exported: ${rejected.map((e) => e.message).join("; ")}`);
  }

  /** Resolves when every export in flight has been answered. */
  async forceFlush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /**
   * Waits for the exports in flight, then frees the `TraceExporter`
   * (`ddog_trace_exporter_free`). Later exports fail with `ClosedError`.
   * Calling it again returns the same promise.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      await this.forceFlush();
      await this.#exporter.close();
    })();
    return this.#shutdown;
  }
}
