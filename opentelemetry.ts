/**
 * @dd-ffi/trace/opentelemetry: OpenTelemetry support. `DatadogSpanExporter`
 * is an OpenTelemetry SDK span exporter that maps spans the way the Datadog
 * agent maps OTLP and sends them through libdatadog's C ABI;
 * `TracerProvider` bridges `@opentelemetry/api` to this library's `Tracer`.
 *
 * Needs the peer dependencies `@opentelemetry/api` (both) and
 * `@opentelemetry/sdk-trace-base` (the exporter's SDK). The main entry,
 * `@dd-ffi/trace`, never loads them.
 *
 * @module
 */
export { DatadogSpanExporter, ExportResultCode, toTraceChunks } from "./src/opentelemetry/exporter.ts";
export type { ExportResult } from "./src/opentelemetry/exporter.ts";
export {
  DEFAULT_SERVICE,
  kindName,
  mapSpanData,
  normalizeTagValue,
  operationName,
  resourceName,
  serviceName,
  spanType,
  toDatadogSpan,
} from "./src/opentelemetry/mapping.ts";
export type { MappedFields, OtelEvent, OtelSpanData, ReadableSpanLike } from "./src/opentelemetry/mapping.ts";
export { BridgeSpan, BridgeTracer, TracerProvider } from "./src/opentelemetry/bridge.ts";
export { TracerContextManager } from "./src/opentelemetry/context.ts";
export type { ActiveSpanSource, SpanViews } from "./src/opentelemetry/context.ts";
export { EXTRACTED_CONTEXT, TracerPropagator } from "./src/opentelemetry/propagator.ts";
export type { HeaderCodec } from "./src/opentelemetry/propagator.ts";
export type {
  OtelAttributes,
  OtelAttributeValue,
  OtelContext,
  OtelException,
  OtelHrTime,
  OtelLink,
  OtelSpanContext,
  OtelSpanOptions,
  OtelSpanStatus,
  OtelTextMapGetter,
  OtelTextMapSetter,
  OtelTimeInput,
  OtelTraceState,
} from "./src/opentelemetry/types.ts";
