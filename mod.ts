/**
 * @dd-ffi/trace: ships application traces to Datadog through libdatadog's C
 * FFI, on Deno, Bun and Node.
 *
 * @module
 */
export { TraceExporter } from "./src/exporter.ts";
export type { AgentResponse, SendOptions } from "./src/exporter.ts";
export type { ExporterOptions, OtlpOptions, TelemetryOptions } from "./src/options.ts";
export { double } from "./src/span.ts";
export { encodeValue } from "./src/encode.ts";
export type { Double, MetaStructValue, Span, SpanEvent, SpanEventAttribute, SpanLink, TraceChunk } from "./src/span.ts";
export { AbortError, ClosedError, TraceExporterError, ValidationError } from "./src/errors.ts";
export type { ErrorCodeName } from "./src/errors.ts";
export { errorCodes } from "./ffi/abi.ts";
export { VERSION } from "./src/version.ts";
