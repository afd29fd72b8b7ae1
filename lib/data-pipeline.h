/*
 * The libdatadog trace-export C ABI (crate libdd-data-pipeline-ffi, v41),
 * as this project's bundled library implements it. LP64 only.
 * Names, layouts and enum values follow libdatadog's generated
 * `datadog/data-pipeline.h`; see ../../shared/libdatadog-abi.md.
 */
#ifndef DDOG_DATA_PIPELINE_H
#define DDOG_DATA_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- slices (16 bytes, passed by value) -------------------------------- */

typedef struct ddog_Slice_CChar { const char *ptr; uintptr_t len; } ddog_Slice_CChar;
typedef ddog_Slice_CChar ddog_CharSlice;
typedef struct ddog_Slice_U8 { const uint8_t *ptr; uintptr_t len; } ddog_Slice_U8;
typedef ddog_Slice_U8 ddog_ByteSlice;
typedef struct ddog_Slice_CharSlice { const ddog_CharSlice *ptr; uintptr_t len; } ddog_Slice_CharSlice;
typedef struct ddog_Slice_bool { const bool *ptr; uintptr_t len; } ddog_Slice_bool;
typedef struct ddog_Slice_I64 { const int64_t *ptr; uintptr_t len; } ddog_Slice_I64;
typedef struct ddog_Slice_F64 { const double *ptr; uintptr_t len; } ddog_Slice_F64;

/* ---- errors --------------------------------------------------------------- */

typedef enum ddog_TraceExporterErrorCode {
  DDOG_TRACE_EXPORTER_ERROR_CODE_ADDRESS_IN_USE = 0,
  DDOG_TRACE_EXPORTER_ERROR_CODE_CONNECTION_ABORTED = 1,
  DDOG_TRACE_EXPORTER_ERROR_CODE_CONNECTION_REFUSED = 2,
  DDOG_TRACE_EXPORTER_ERROR_CODE_CONNECTION_RESET = 3,
  DDOG_TRACE_EXPORTER_ERROR_CODE_HTTP_BODY_FORMAT = 4,
  DDOG_TRACE_EXPORTER_ERROR_CODE_HTTP_BODY_TOO_LONG = 5,
  DDOG_TRACE_EXPORTER_ERROR_CODE_HTTP_CLIENT = 6,
  DDOG_TRACE_EXPORTER_ERROR_CODE_HTTP_EMPTY_BODY = 7,
  DDOG_TRACE_EXPORTER_ERROR_CODE_HTTP_PARSE = 8,
  DDOG_TRACE_EXPORTER_ERROR_CODE_HTTP_SERVER = 9,
  DDOG_TRACE_EXPORTER_ERROR_CODE_HTTP_UNKNOWN = 10,
  DDOG_TRACE_EXPORTER_ERROR_CODE_HTTP_WRONG_STATUS = 11,
  DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_ARGUMENT = 12,
  DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_DATA = 13,
  DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_INPUT = 14,
  DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_URL = 15,
  DDOG_TRACE_EXPORTER_ERROR_CODE_IO_ERROR = 16,
  DDOG_TRACE_EXPORTER_ERROR_CODE_NETWORK_UNKNOWN = 17,
  DDOG_TRACE_EXPORTER_ERROR_CODE_SERDE = 18,
  DDOG_TRACE_EXPORTER_ERROR_CODE_SHUTDOWN = 19,
  DDOG_TRACE_EXPORTER_ERROR_CODE_TIMED_OUT = 20,
  DDOG_TRACE_EXPORTER_ERROR_CODE_TELEMETRY = 21,
  DDOG_TRACE_EXPORTER_ERROR_CODE_INTERNAL = 22,
  DDOG_TRACE_EXPORTER_ERROR_CODE_PANIC = 23,
} ddog_TraceExporterErrorCode;

/* 16 bytes: code @0, msg @8 (NUL-terminated UTF-8, owned by the error). */
typedef struct ddog_TraceExporterError {
  ddog_TraceExporterErrorCode code;
  char *msg;
} ddog_TraceExporterError;

/* ---- opaque handles ------------------------------------------------------- */

typedef struct ddog_TraceExporterConfig ddog_TraceExporterConfig;
typedef struct ddog_TraceExporter ddog_TraceExporter;
typedef struct ddog_TraceExporterResponse ddog_TraceExporterResponse;
typedef struct ddog_TracerSpan ddog_TracerSpan;
typedef struct ddog_TracerSpanEvent ddog_TracerSpanEvent;
typedef struct ddog_TracerTraceChunks ddog_TracerTraceChunks;
typedef struct ddog_TraceExporterCancelToken ddog_TraceExporterCancelToken;
typedef struct ddog_TracerEncodedValue ddog_TracerEncodedValue;

/* ---- structs passed by pointer -------------------------------------------- */

/* 80 bytes. */
typedef struct ddog_TelemetryClientConfig {
  uint64_t interval;            /* ms */
  ddog_CharSlice runtime_id;
  bool debug_enabled;
  ddog_CharSlice session_id;
  ddog_CharSlice root_session_id;
  ddog_CharSlice parent_session_id;
} ddog_TelemetryClientConfig;

/* 120 bytes. */
typedef struct ddog_TracerSpanFields {
  ddog_CharSlice service;
  ddog_CharSlice name;
  ddog_CharSlice resource;
  ddog_CharSlice span_type;
  uint64_t trace_id_low;
  uint64_t trace_id_high;
  uint64_t span_id;
  uint64_t parent_id;
  int64_t start;     /* ns since the Unix epoch */
  int64_t duration;  /* ns */
  int32_t error;
} ddog_TracerSpanFields;

/* 32 bytes. */
typedef struct ddog_TracerSpanLinkAttribute {
  ddog_CharSlice key;
  ddog_CharSlice value;
} ddog_TracerSpanLinkAttribute;

typedef struct ddog_Slice_TracerSpanLinkAttribute {
  const ddog_TracerSpanLinkAttribute *ptr;
  uintptr_t len;
} ddog_Slice_TracerSpanLinkAttribute;

/* 64 bytes. */
typedef struct ddog_TracerSpanLink {
  uint64_t trace_id_low;
  uint64_t trace_id_high;
  uint64_t span_id;
  ddog_Slice_TracerSpanLinkAttribute attributes;
  ddog_CharSlice tracestate;
  uint32_t flags;
} ddog_TracerSpanLink;

typedef struct ddog_Slice_TracerSpanLink { const ddog_TracerSpanLink *ptr; uintptr_t len; } ddog_Slice_TracerSpanLink;

typedef uint8_t ddog_TracerValueKind;
#define DDOG_TRACER_VALUE_NIL 0
#define DDOG_TRACER_VALUE_BOOL 1
#define DDOG_TRACER_VALUE_I64 2
#define DDOG_TRACER_VALUE_U64 3
#define DDOG_TRACER_VALUE_F64 4
#define DDOG_TRACER_VALUE_STRING 5
#define DDOG_TRACER_VALUE_BINARY 6
#define DDOG_TRACER_VALUE_ARRAY 7
#define DDOG_TRACER_VALUE_MAP 8

/* 48 bytes; a flat preorder list, a map followed by key,value pairs. */
typedef struct ddog_TracerValueToken {
  ddog_TracerValueKind kind;
  uint8_t bool_value;
  uint32_t child_count;
  int64_t i64_value;
  uint64_t u64_value;
  double f64_value;
  ddog_ByteSlice bytes;
} ddog_TracerValueToken;

typedef struct ddog_Slice_TracerValueToken { const ddog_TracerValueToken *ptr; uintptr_t len; } ddog_Slice_TracerValueToken;

/* ---- config --------------------------------------------------------------- */

void ddog_trace_exporter_config_new(ddog_TraceExporterConfig **out_handle);
void ddog_trace_exporter_config_free(ddog_TraceExporterConfig *handle);
ddog_TraceExporterError *ddog_trace_exporter_config_set_url(ddog_TraceExporterConfig *config, ddog_CharSlice url);
ddog_TraceExporterError *ddog_trace_exporter_config_set_tracer_version(ddog_TraceExporterConfig *config, ddog_CharSlice version);
ddog_TraceExporterError *ddog_trace_exporter_config_set_language(ddog_TraceExporterConfig *config, ddog_CharSlice lang);
ddog_TraceExporterError *ddog_trace_exporter_config_set_lang_version(ddog_TraceExporterConfig *config, ddog_CharSlice version);
ddog_TraceExporterError *ddog_trace_exporter_config_set_lang_interpreter(ddog_TraceExporterConfig *config, ddog_CharSlice interpreter);
ddog_TraceExporterError *ddog_trace_exporter_config_set_hostname(ddog_TraceExporterConfig *config, ddog_CharSlice hostname);
ddog_TraceExporterError *ddog_trace_exporter_config_set_env(ddog_TraceExporterConfig *config, ddog_CharSlice env);
ddog_TraceExporterError *ddog_trace_exporter_config_set_version(ddog_TraceExporterConfig *config, ddog_CharSlice version);
ddog_TraceExporterError *ddog_trace_exporter_config_set_service(ddog_TraceExporterConfig *config, ddog_CharSlice service);
ddog_TraceExporterError *ddog_trace_exporter_config_set_process_tags(ddog_TraceExporterConfig *config, ddog_CharSlice process_tags);
ddog_TraceExporterError *ddog_trace_exporter_config_set_test_session_token(ddog_TraceExporterConfig *config, ddog_CharSlice token);
ddog_TraceExporterError *ddog_trace_exporter_config_enable_health_metrics(ddog_TraceExporterConfig *config, bool is_enabled);
ddog_TraceExporterError *ddog_trace_exporter_config_enable_telemetry(ddog_TraceExporterConfig *config, const ddog_TelemetryClientConfig *telemetry_cfg);
ddog_TraceExporterError *ddog_trace_exporter_config_set_compute_stats(ddog_TraceExporterConfig *config, bool is_enabled);
ddog_TraceExporterError *ddog_trace_exporter_config_set_client_computed_stats(ddog_TraceExporterConfig *config, bool is_enabled);
ddog_TraceExporterError *ddog_trace_exporter_config_set_connection_timeout(ddog_TraceExporterConfig *config, uint64_t timeout_ms);
ddog_TraceExporterError *ddog_trace_exporter_config_set_otlp_endpoint(ddog_TraceExporterConfig *config, ddog_CharSlice url);
ddog_TraceExporterError *ddog_trace_exporter_config_set_otlp_protocol(ddog_TraceExporterConfig *config, ddog_CharSlice protocol);
ddog_TraceExporterError *ddog_trace_exporter_config_set_otlp_instrumentation_scope(ddog_TraceExporterConfig *config, ddog_CharSlice name, ddog_CharSlice version);
ddog_TraceExporterError *ddog_trace_exporter_config_set_output_to_log(ddog_TraceExporterConfig *config, uintptr_t max_line_size);

/* Stats cardinality limits (40 bytes, passed and returned BY VALUE: on SysV
 * x86_64 a struct over 16 bytes goes in memory, not registers; AAPCS64
 * passes it by reference to a caller's copy). libdatadog's defaults: 7000,
 * 1024, 512, 512, 100. Used only when stats are computed. */
typedef struct ddog_CardinalityLimitConfig {
  uintptr_t whole_key_limit;
  uintptr_t resource_limit;
  uintptr_t http_endpoint_limit;
  uintptr_t peer_tags_limit;
  uintptr_t additional_tags_limit;
} ddog_CardinalityLimitConfig;

ddog_TraceExporterError *ddog_trace_exporter_config_set_stats_cardinality_limit(ddog_TraceExporterConfig *config, ddog_CardinalityLimitConfig limits);
ddog_CardinalityLimitConfig ddog_trace_exporter_config_default_stats_cardinality_limit(void);

/* ---- shared runtime (libdd-shared-runtime-ffi) ------------------------------ */

/* One runtime for the background work of several exporters (an Arc in
 * libdatadog: new makes one reference, set_shared_runtime takes its own,
 * free drops one). */
typedef struct ddog_SharedRuntime ddog_SharedRuntime;

typedef enum ddog_SharedRuntimeErrorCode {
  DDOG_SHARED_RUNTIME_ERROR_CODE_INVALID_ARGUMENT = 0,
  DDOG_SHARED_RUNTIME_ERROR_CODE_RUNTIME_UNAVAILABLE = 1,
  DDOG_SHARED_RUNTIME_ERROR_CODE_LOCK_FAILED = 2,
  DDOG_SHARED_RUNTIME_ERROR_CODE_WORKER_ERROR = 3,
  DDOG_SHARED_RUNTIME_ERROR_CODE_RUNTIME_CREATION = 4,
  DDOG_SHARED_RUNTIME_ERROR_CODE_SHUTDOWN_TIMED_OUT = 5,
  DDOG_SHARED_RUNTIME_ERROR_CODE_PANIC = 6,
} ddog_SharedRuntimeErrorCode;

/* 16 bytes: code @0, msg @8 (always set); freed with ddog_shared_runtime_error_free. */
typedef struct ddog_SharedRuntimeFFIError {
  ddog_SharedRuntimeErrorCode code;
  char *msg;
} ddog_SharedRuntimeFFIError;

ddog_SharedRuntimeFFIError *ddog_shared_runtime_new(const ddog_SharedRuntime **out_handle);
void ddog_shared_runtime_free(const ddog_SharedRuntime *handle);
/* Stops the runtime's workers; timeout_ms 0 waits without a limit. */
ddog_SharedRuntimeFFIError *ddog_shared_runtime_shutdown(const ddog_SharedRuntime *handle, uint64_t timeout_ms);
void ddog_shared_runtime_error_free(ddog_SharedRuntimeFFIError *error);
/* The config keeps its own reference: the caller still frees its handle. */
ddog_TraceExporterError *ddog_trace_exporter_config_set_shared_runtime(ddog_TraceExporterConfig *config, const ddog_SharedRuntime *handle);

/* ---- exporter ------------------------------------------------------------- */

ddog_TraceExporterError *ddog_trace_exporter_new(ddog_TraceExporter **out_handle, const ddog_TraceExporterConfig *config);
void ddog_trace_exporter_free(ddog_TraceExporter *handle);
ddog_TraceExporterError *ddog_trace_exporter_send(const ddog_TraceExporter *handle, ddog_ByteSlice trace, ddog_TraceExporterResponse **response_out);
ddog_TraceExporterError *ddog_trace_exporter_send_trace_chunks(const ddog_TraceExporter *handle, ddog_TracerTraceChunks *chunks,
                                                               ddog_TraceExporterResponse **response_out,
                                                               const ddog_TraceExporterCancelToken *cancel_token);

ddog_TraceExporterCancelToken *ddog_trace_exporter_cancel_token_new(void);
void ddog_trace_exporter_cancel_token_cancel(const ddog_TraceExporterCancelToken *token);
void ddog_trace_exporter_cancel_token_drop(ddog_TraceExporterCancelToken *token);

ddog_ByteSlice ddog_trace_exporter_response_get_body(const ddog_TraceExporterResponse *response);
void ddog_trace_exporter_response_free(ddog_TraceExporterResponse *response);
void ddog_trace_exporter_error_free(ddog_TraceExporterError *error);

/* ---- spans, events, chunks ------------------------------------------------ */

ddog_TraceExporterError *ddog_tracer_span_new(ddog_TracerSpan **out_handle, const ddog_TracerSpanFields *fields);
void ddog_tracer_span_free(ddog_TracerSpan *handle);
ddog_TraceExporterError *ddog_tracer_span_set_meta(ddog_TracerSpan *handle, ddog_CharSlice key, ddog_CharSlice value);
ddog_TraceExporterError *ddog_tracer_span_set_metric(ddog_TracerSpan *handle, ddog_CharSlice key, double value);
ddog_TraceExporterError *ddog_tracer_span_set_meta_struct_blob(ddog_TracerSpan *handle, ddog_CharSlice key, ddog_ByteSlice value);
ddog_TraceExporterError *ddog_tracer_span_set_meta_struct(ddog_TracerSpan *handle, ddog_CharSlice key, ddog_Slice_TracerValueToken tokens);
ddog_TraceExporterError *ddog_tracer_span_set_links(ddog_TracerSpan *handle, ddog_Slice_TracerSpanLink links);

ddog_TraceExporterError *ddog_tracer_span_event_new(ddog_TracerSpanEvent **out_handle, ddog_CharSlice name, uint64_t time_unix_nano);
void ddog_tracer_span_event_free(ddog_TracerSpanEvent *handle);
ddog_TraceExporterError *ddog_tracer_span_event_set_string(ddog_TracerSpanEvent *handle, ddog_CharSlice key, ddog_CharSlice value);
ddog_TraceExporterError *ddog_tracer_span_event_set_bool(ddog_TracerSpanEvent *handle, ddog_CharSlice key, bool value);
ddog_TraceExporterError *ddog_tracer_span_event_set_int(ddog_TracerSpanEvent *handle, ddog_CharSlice key, int64_t value);
ddog_TraceExporterError *ddog_tracer_span_event_set_double(ddog_TracerSpanEvent *handle, ddog_CharSlice key, double value);
ddog_TraceExporterError *ddog_tracer_span_event_set_string_array(ddog_TracerSpanEvent *handle, ddog_CharSlice key, ddog_Slice_CharSlice values);
ddog_TraceExporterError *ddog_tracer_span_event_set_bool_array(ddog_TracerSpanEvent *handle, ddog_CharSlice key, ddog_Slice_bool values);
ddog_TraceExporterError *ddog_tracer_span_event_set_int_array(ddog_TracerSpanEvent *handle, ddog_CharSlice key, ddog_Slice_I64 values);
ddog_TraceExporterError *ddog_tracer_span_event_set_double_array(ddog_TracerSpanEvent *handle, ddog_CharSlice key, ddog_Slice_F64 values);
ddog_TraceExporterError *ddog_tracer_span_add_event(ddog_TracerSpan *span, ddog_TracerSpanEvent *event);

ddog_TraceExporterError *ddog_tracer_trace_chunks_new(uintptr_t capacity, ddog_TracerTraceChunks **out_handle);
void ddog_tracer_trace_chunks_free(ddog_TracerTraceChunks *handle);
ddog_TraceExporterError *ddog_tracer_trace_chunks_begin_chunk(ddog_TracerTraceChunks *handle, uintptr_t capacity);
ddog_TraceExporterError *ddog_tracer_trace_chunks_push_span(ddog_TracerTraceChunks *handle, ddog_TracerSpan *span);

/* ---- structured values ---------------------------------------------------- */

ddog_TraceExporterError *ddog_tracer_encode_value(ddog_Slice_TracerValueToken tokens, ddog_TracerEncodedValue **out_handle);
ddog_ByteSlice ddog_tracer_encoded_value_as_slice(const ddog_TracerEncodedValue *value);
void ddog_tracer_encoded_value_free(ddog_TracerEncodedValue *value);

/* ---- outside the ABI: this library's debug aid (libdatadog lacks it) ------ */

/* Live native objects: configs, exporters, responses, errors, spans, events,
 * chunks, cancel tokens, encoded values, shared runtimes (until their last
 * reference goes) and shared-runtime errors not yet freed or consumed. */
int64_t ddffi_debug_live_objects(void);
/* The stats cardinality limits a config holds (all 0 until set): lets the
 * tests see a struct passed by value arrive. */
ddog_CardinalityLimitConfig ddffi_debug_config_stats_cardinality_limit(const ddog_TraceExporterConfig *config);

#ifdef __cplusplus
}
#endif

#endif /* DDOG_DATA_PIPELINE_H */
