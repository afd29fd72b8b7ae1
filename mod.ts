/**
 * @dd-ffi/trace: ships application traces to Datadog through libdatadog's C
 * FFI, on Deno, Bun and Node.
 *
 * @module
 */
export { TraceExporter } from "./src/exporter.ts";
export type { AgentResponse, SendOptions } from "./src/exporter.ts";
export type { ExporterOptions, OtlpOptions, StatsCardinalityLimit, TelemetryOptions } from "./src/options.ts";
export { defaultStatsCardinalityLimit } from "./src/options.ts";
export { SharedRuntime } from "./src/runtime.ts";
export type { RuntimeShutdownOptions } from "./src/runtime.ts";
export { double } from "./src/span.ts";
export { encodeValue } from "./src/encode.ts";
export type { Double, MetaStructValue, Span, SpanEvent, SpanEventAttribute, SpanLink, TraceChunk } from "./src/span.ts";
export { AbortError, ClosedError, SharedRuntimeError, TraceExporterError, ValidationError } from "./src/errors.ts";
export type { ErrorCodeName, SharedRuntimeErrorCodeName } from "./src/errors.ts";
export { errorCodes, sharedRuntimeErrorCodes } from "./ffi/abi.ts";
export { VERSION } from "./src/version.ts";
export { Tracer } from "./src/tracer/tracer.ts";
export type { ShutdownOptions, StartSpanOptions, TracerOptions } from "./src/tracer/tracer.ts";
export { TracerSpan } from "./src/tracer/span.ts";
export type { LinkTarget } from "./src/tracer/span.ts";
export type { SpanContext } from "./src/tracer/context.ts";
export type { TimeInput } from "./src/tracer/clock.ts";
export type { TracerCounters } from "./src/tracer/buffer.ts";
export { SamplingMechanism, SamplingPriority, sampledByRate } from "./src/tracer/sampler.ts";
export type { HeadersLike, PropagationStyle } from "./src/tracer/propagation.ts";
export { nodeListener, traceHandler } from "./src/tracer/http.ts";
export type { FetchHandler, TraceHandlerOptions } from "./src/tracer/http.ts";
export type { Logger } from "./src/tracer/log.ts";
