/**
 * @dd-ffi/trace: ships application traces to Datadog through libdatadog's C
 * FFI, on Deno, Bun and Node.
 *
 * @module
 */
export { TraceExporter } from "./src/exporter.ts";
export type { AgentResponse, CloseOptions, SendOptions } from "./src/exporter.ts";
export type { AgentlessOptions, ExporterOptions, OtlpOptions, StatsCardinalityLimit, TelemetryOptions } from "./src/options.ts";
export { defaultStatsCardinalityLimit } from "./src/options.ts";
export { SharedRuntime } from "./src/runtime.ts";
export type { RuntimeShutdownOptions } from "./src/runtime.ts";
export { double } from "./src/span.ts";
export { encodeValue } from "./src/encode.ts";
export type { Double, MetaStructValue, Span, SpanEvent, SpanEventAttribute, SpanLink, TraceChunk } from "./src/span.ts";
export { AbortError, ClosedError, SharedRuntimeError, TraceExporterError, ValidationError } from "./src/errors.ts";
export type { ErrorCodeName, SharedRuntimeErrorCodeName } from "./src/errors.ts";
export { errorCodes, logLevels, sharedRuntimeErrorCodes } from "./ffi/abi.ts";
export { VERSION } from "./src/version.ts";
export { Tracer } from "./src/tracer/tracer.ts";
export type { InstrumentOptions, ShutdownOptions, StartSpanOptions, TracerOptions } from "./src/tracer/tracer.ts";
export { TracerSpan } from "./src/tracer/span.ts";
export type { LinkTarget } from "./src/tracer/span.ts";
export type { SpanContext } from "./src/tracer/context.ts";
export type { TimeInput } from "./src/tracer/clock.ts";
export type { TracerCounters } from "./src/tracer/buffer.ts";
export { SamplingMechanism, SamplingPriority, sampledByRate } from "./src/tracer/sampler.ts";
export { globMatch } from "./src/tracer/sampling-rules.ts";
export type { SamplingRuleOptions } from "./src/tracer/sampling-rules.ts";
export type { HeadersLike, PropagationStyle } from "./src/tracer/propagation.ts";
export { nodeListener, traceHandler } from "./src/tracer/http.ts";
export type { FetchHandler, NodeListenerOptions, NodeRequest, NodeResponse, TraceHandlerOptions } from "./src/tracer/http.ts";
export type { Logger } from "./src/tracer/log.ts";
export { default, tracer, TracerProxy } from "./src/tracer/singleton.ts";
export type { AnyTracer } from "./src/tracer/any-tracer.ts";
export { Scope } from "./src/tracer/scope.ts";
export type { WrapOptions } from "./src/tracer/scope.ts";
export type { DatadogSpanContext } from "./src/tracer/span-context.ts";
export { instrumentFetch } from "./src/tracer/instrument/fetch.ts";
export type { Instrumentation } from "./src/tracer/instrument/fetch.ts";
export { instrumentNodeHttp } from "./src/tracer/instrument/node-http.ts";
export type { NodeHttpOptions } from "./src/tracer/instrument/node-http.ts";
export type { HttpInstrumentationOptions } from "./src/tracer/instrument/client.ts";
export { instrumentDenoServe } from "./src/tracer/instrument/deno-serve.ts";
export { instrumentBunServe } from "./src/tracer/instrument/bun-serve.ts";
export type { ServerSpanOptions } from "./src/tracer/instrument/server.ts";
export { enabledVariable, integrationNames, registerIntegration } from "./src/tracer/instrument/registry.ts";
export type { Integration, IntegrationConfig } from "./src/tracer/instrument/registry.ts";
export type {
  FetchIntegrationConfig,
  HttpIntegrationConfig,
  IntegrationConfigs,
  ServeIntegrationConfig,
} from "./src/tracer/instrument/builtin-integrations.ts";
export type { DatabaseIntegrationConfig, DatabaseInstrumentationOptions } from "./src/tracer/instrument/db.ts";
export { instrumentPg } from "./src/tracer/instrument/pg.ts";
export type { PgIntegrationConfig, PgModule, PgOptions } from "./src/tracer/instrument/pg.ts";
export { instrumentIORedis } from "./src/tracer/instrument/ioredis.ts";
export type { IORedisIntegrationConfig, IORedisModule, IORedisOptions } from "./src/tracer/instrument/ioredis.ts";
export { instrumentRedis } from "./src/tracer/instrument/redis.ts";
export type { RedisIntegrationConfig, RedisModule, RedisOptions } from "./src/tracer/instrument/redis.ts";
export { instrumentPostgres } from "./src/tracer/instrument/postgres.ts";
export type { PostgresIntegrationConfig, PostgresModule, PostgresOptions, PostgresSql } from "./src/tracer/instrument/postgres.ts";
export { instrumentConsole, logContext, logFields, pinoMixin, winstonFormat } from "./src/tracer/log-injection.ts";
export type { ConsoleInstrumentation, LogContext, WinstonFormat } from "./src/tracer/log-injection.ts";
export { enableLibraryLogs } from "./src/tracer/debug.ts";
export type { LibraryLogLevel } from "./src/tracer/debug.ts";
