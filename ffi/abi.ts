/**
 * The libdatadog trace-export C ABI (libdd-data-pipeline-ffi v41): every
 * symbol the bindings call, and every struct layout and enum value they
 * write or read. This table is the single source of truth: the three
 * adapters (`bun.ts`, `deno.ts`, `node.ts`) are generated from it, and the
 * core reads offsets and codes from it. LP64 only (x86_64, aarch64).
 *
 * Parameter types:
 * - `pointer`: a native address, as a JS number or bigint, whichever the
 *   adapter's `wordType` says is fastest (0 is NULL).
 * - `slice`:   a 16-byte `{ ptr, len }` struct passed by value
 *   (`ddog_CharSlice`, `ddog_ByteSlice`, `ddog_Slice_T`). On SysV x86_64 and
 *   AAPCS64 it travels in two integer registers exactly like two separate
 *   arguments, so every adapter declares it as two `pointer`-sized integers
 *   and the caller passes `ptr, len`.
 * - `usize`: `uintptr_t`, as a number or bigint, like `pointer`.
 * - `u64`, `i64`: 64-bit integers, as bigint (or a safe-integer number).
 * - `f64`: `double`. `bool`: C `_Bool`. `u32`, `i32`: 32-bit integers.
 * - `CardinalityLimitConfig`: that 40-byte struct (`layouts`) BY VALUE; in
 *   JS, its bytes (a Uint8Array of its size). Over 16 bytes it travels in
 *   memory (SysV x86_64: copied onto the stack; AAPCS64: a pointer to a
 *   copy), so koffi and Deno declare it as a struct of five `uintptr_t`, and
 *   bun:ffi, which has no struct types, calls through a C trampoline.
 *
 * Result types are the same, plus `void`; a `slice` result (a 16-byte struct
 * returned in RAX:RDX) comes back as `[ptr, len]`.
 *
 * @module
 */

/** A C parameter or result type, in the terms above. */
export type CType =
  | "pointer"
  | "slice"
  | "usize"
  | "u64"
  | "i64"
  | "f64"
  | "bool"
  | "u32"
  | "i32"
  | "void"
  | "CardinalityLimitConfig";

/** One C function: its parameters in order, its result, and how to call it. */
export interface SymbolDef {
  readonly parameters: readonly CType[];
  readonly result: CType;
  /** Blocks on network I/O: adapters also offer it off the JS thread (`Native.async`), never on libuv's pool. */
  readonly blocking?: true;
  /** Not in every library (a debug symbol of the bundled one; a libdatadog feature): bound only if present. */
  readonly optional?: true;
}

/** Every symbol, one line per C parameter. All `ddog_TraceExporterError*` results are NULL on success. */
export const symbols = {
  // ---- config ---------------------------------------------------------------
  ddog_trace_exporter_config_new: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig **out_handle
    ],
    result: "void",
  },
  ddog_trace_exporter_config_free: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *handle
    ],
    result: "void",
  },
  ddog_trace_exporter_config_set_url: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice url
    ],
    result: "pointer", // ddog_TraceExporterError *
  },
  ddog_trace_exporter_config_set_tracer_version: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice version
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_language: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice lang
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_lang_version: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice version
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_lang_interpreter: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice interpreter
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_hostname: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice hostname
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_env: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice env
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_version: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice version
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_service: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice service
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_process_tags: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice process_tags
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_test_session_token: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice token
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_enable_health_metrics: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "bool", // bool is_enabled
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_enable_telemetry: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "pointer", // const ddog_TelemetryClientConfig *telemetry_cfg
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_compute_stats: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "bool", // bool is_enabled
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_client_computed_stats: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "bool", // bool is_enabled
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_connection_timeout: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "u64", // uint64_t timeout_ms
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_otlp_endpoint: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice url
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_otlp_protocol: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice protocol
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_otlp_instrumentation_scope: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice name
      "slice", // ddog_CharSlice version
    ],
    result: "pointer",
  },
  ddog_trace_exporter_config_set_output_to_log: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "usize", // uintptr_t max_line_size
    ],
    result: "pointer",
  },

  // ---- exporter -------------------------------------------------------------
  ddog_trace_exporter_new: {
    parameters: [
      "pointer", // ddog_TraceExporter **out_handle
      "pointer", // const ddog_TraceExporterConfig *config
    ],
    result: "pointer",
  },
  ddog_trace_exporter_free: {
    parameters: [
      "pointer", // ddog_TraceExporter *handle
    ],
    result: "void",
    blocking: true, // libdatadog's shutdown, with no timeout: final telemetry and stats flushes
  },
  ddog_trace_exporter_send: {
    parameters: [
      "pointer", // const ddog_TraceExporter *handle
      "slice", // ddog_ByteSlice trace (msgpack v0.4)
      "pointer", // ddog_TraceExporterResponse **response_out (nullable)
    ],
    result: "pointer",
    blocking: true,
  },
  ddog_trace_exporter_send_trace_chunks: {
    parameters: [
      "pointer", // const ddog_TraceExporter *handle
      "pointer", // ddog_TracerTraceChunks *chunks (always consumed)
      "pointer", // ddog_TraceExporterResponse **response_out (nullable)
      "pointer", // const ddog_TraceExporterCancelToken *cancel_token (nullable)
    ],
    result: "pointer",
    blocking: true,
  },
  ddog_trace_exporter_cancel_token_new: {
    parameters: [],
    result: "pointer", // ddog_TraceExporterCancelToken *
  },
  ddog_trace_exporter_cancel_token_cancel: {
    parameters: [
      "pointer", // const ddog_TraceExporterCancelToken *token
    ],
    result: "void",
  },
  ddog_trace_exporter_cancel_token_drop: {
    parameters: [
      "pointer", // ddog_TraceExporterCancelToken *token
    ],
    result: "void",
  },
  ddog_trace_exporter_response_get_body: {
    parameters: [
      "pointer", // const ddog_TraceExporterResponse *response
    ],
    result: "slice", // ddog_ByteSlice, by value
  },
  ddog_trace_exporter_response_free: {
    parameters: [
      "pointer", // ddog_TraceExporterResponse *response
    ],
    result: "void",
  },
  ddog_trace_exporter_error_free: {
    parameters: [
      "pointer", // ddog_TraceExporterError *error
    ],
    result: "void",
  },

  // ---- spans ----------------------------------------------------------------
  ddog_tracer_span_new: {
    parameters: [
      "pointer", // ddog_TracerSpan **out_handle
      "pointer", // const ddog_TracerSpanFields *fields
    ],
    result: "pointer",
  },
  ddog_tracer_span_free: {
    parameters: [
      "pointer", // ddog_TracerSpan *handle
    ],
    result: "void",
  },
  ddog_tracer_span_set_meta: {
    parameters: [
      "pointer", // ddog_TracerSpan *handle
      "slice", // ddog_CharSlice key
      "slice", // ddog_CharSlice value
    ],
    result: "pointer",
  },
  ddog_tracer_span_set_metric: {
    parameters: [
      "pointer", // ddog_TracerSpan *handle
      "slice", // ddog_CharSlice key
      "f64", // double value
    ],
    result: "pointer",
  },
  ddog_tracer_span_set_meta_struct_blob: {
    parameters: [
      "pointer", // ddog_TracerSpan *handle
      "slice", // ddog_CharSlice key
      "slice", // ddog_ByteSlice value (msgpack)
    ],
    result: "pointer",
  },
  ddog_tracer_span_set_meta_struct: {
    parameters: [
      "pointer", // ddog_TracerSpan *handle
      "slice", // ddog_CharSlice key
      "slice", // ddog_Slice_TracerValueToken tokens
    ],
    result: "pointer",
  },
  ddog_tracer_span_set_links: {
    parameters: [
      "pointer", // ddog_TracerSpan *handle
      "slice", // ddog_Slice_TracerSpanLink links
    ],
    result: "pointer",
  },

  // ---- span events ----------------------------------------------------------
  ddog_tracer_span_event_new: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent **out_handle
      "slice", // ddog_CharSlice name
      "u64", // uint64_t time_unix_nano
    ],
    result: "pointer",
  },
  ddog_tracer_span_event_free: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent *handle
    ],
    result: "void",
  },
  ddog_tracer_span_event_set_string: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent *handle
      "slice", // ddog_CharSlice key
      "slice", // ddog_CharSlice value
    ],
    result: "pointer",
  },
  ddog_tracer_span_event_set_bool: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent *handle
      "slice", // ddog_CharSlice key
      "bool", // bool value
    ],
    result: "pointer",
  },
  ddog_tracer_span_event_set_int: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent *handle
      "slice", // ddog_CharSlice key
      "i64", // int64_t value
    ],
    result: "pointer",
  },
  ddog_tracer_span_event_set_double: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent *handle
      "slice", // ddog_CharSlice key
      "f64", // double value
    ],
    result: "pointer",
  },
  ddog_tracer_span_event_set_string_array: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent *handle
      "slice", // ddog_CharSlice key
      "slice", // ddog_Slice_CharSlice values
    ],
    result: "pointer",
  },
  ddog_tracer_span_event_set_bool_array: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent *handle
      "slice", // ddog_CharSlice key
      "slice", // ddog_Slice_bool values
    ],
    result: "pointer",
  },
  ddog_tracer_span_event_set_int_array: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent *handle
      "slice", // ddog_CharSlice key
      "slice", // ddog_Slice_I64 values
    ],
    result: "pointer",
  },
  ddog_tracer_span_event_set_double_array: {
    parameters: [
      "pointer", // ddog_TracerSpanEvent *handle
      "slice", // ddog_CharSlice key
      "slice", // ddog_Slice_F64 values
    ],
    result: "pointer",
  },
  ddog_tracer_span_add_event: {
    parameters: [
      "pointer", // ddog_TracerSpan *span
      "pointer", // ddog_TracerSpanEvent *event (always consumed)
    ],
    result: "pointer",
  },

  // ---- trace chunks ---------------------------------------------------------
  ddog_tracer_trace_chunks_new: {
    parameters: [
      "usize", // uintptr_t capacity (chunks)
      "pointer", // ddog_TracerTraceChunks **out_handle
    ],
    result: "pointer",
  },
  ddog_tracer_trace_chunks_free: {
    parameters: [
      "pointer", // ddog_TracerTraceChunks *handle
    ],
    result: "void",
  },
  ddog_tracer_trace_chunks_begin_chunk: {
    parameters: [
      "pointer", // ddog_TracerTraceChunks *handle
      "usize", // uintptr_t capacity (spans)
    ],
    result: "pointer",
  },
  ddog_tracer_trace_chunks_push_span: {
    parameters: [
      "pointer", // ddog_TracerTraceChunks *handle
      "pointer", // ddog_TracerSpan *span (always consumed)
    ],
    result: "pointer",
  },

  // ---- structured values ----------------------------------------------------
  ddog_tracer_encode_value: {
    parameters: [
      "slice", // ddog_Slice_TracerValueToken tokens
      "pointer", // ddog_TracerEncodedValue **out_handle
    ],
    result: "pointer",
  },
  ddog_tracer_encoded_value_as_slice: {
    parameters: [
      "pointer", // const ddog_TracerEncodedValue *value
    ],
    result: "slice", // ddog_ByteSlice, by value
  },
  ddog_tracer_encoded_value_free: {
    parameters: [
      "pointer", // ddog_TracerEncodedValue *value
    ],
    result: "void",
  },

  // ---- libdatadog's own logs (libdd-log-ffi, libdd-common-ffi) ---------------
  // Optional: libdd_data_pipeline_ffi alone does not export the logger; the
  // release library (libdatadog_profiling.so) and the bundled one do.
  ddog_logger_configure_std: {
    parameters: [
      // ddog_StdConfig config, by value: { ddog_StdTarget target }, a 4-byte
      // struct of one C enum. SysV x86_64 and AAPCS64 pass a struct of at most
      // 16 bytes of integer class in integer registers, so it travels exactly
      // like an int32: every adapter declares it as `i32` (bun:ffi has no
      // struct-by-value parameters; Deno and koffi would also take the struct).
      "i32",
    ],
    result: "pointer", // ddog_Error * (NULL on success; its message freed with ddog_Error_drop)
    optional: true,
  },
  ddog_logger_disable_std: {
    parameters: [],
    result: "pointer", // ddog_Error * (NULL on success)
    optional: true,
  },
  ddog_logger_set_log_level: {
    parameters: [
      "i32", // ddog_LogEventLevel log_level (a C enum, see `logLevels`)
    ],
    result: "pointer", // ddog_Error *
    optional: true,
  },
  ddog_Error_message: {
    parameters: [
      "pointer", // const ddog_Error *error
    ],
    result: "slice", // ddog_CharSlice, by value; valid until ddog_Error_drop
    optional: true,
  },
  ddog_Error_drop: {
    parameters: [
      "pointer", // ddog_Error *error (frees its message; the Error itself is never freed by libdatadog's FFI)
    ],
    result: "void",
    optional: true,
  },

  // ---- optional: in a libdatadog release build, not in every library --------
  ddog_trace_exporter_config_set_stats_cardinality_limit: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "CardinalityLimitConfig", // ddog_CardinalityLimitConfig limits (by value)
    ],
    result: "pointer",
    optional: true,
  },
  ddog_trace_exporter_config_default_stats_cardinality_limit: {
    parameters: [],
    result: "CardinalityLimitConfig", // by value
    optional: true,
  },
  ddog_trace_exporter_config_set_shared_runtime: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "pointer", // const ddog_SharedRuntime *handle (the config takes its own reference)
    ],
    result: "pointer",
    optional: true,
  },
  // libdd-shared-runtime-ffi (libdd-data-pipeline-ffi alone lacks these four)
  ddog_shared_runtime_new: {
    parameters: [
      "pointer", // const ddog_SharedRuntime **out_handle
    ],
    result: "pointer", // ddog_SharedRuntimeFFIError *
    optional: true,
  },
  ddog_shared_runtime_free: {
    parameters: [
      "pointer", // const ddog_SharedRuntime *handle (drops one reference)
    ],
    result: "void",
    optional: true,
  },
  ddog_shared_runtime_shutdown: {
    parameters: [
      "pointer", // const ddog_SharedRuntime *handle
      "u64", // uint64_t timeout_ms (0: no limit)
    ],
    result: "pointer", // ddog_SharedRuntimeFFIError *
    blocking: true,
    optional: true,
  },
  ddog_shared_runtime_error_free: {
    parameters: [
      "pointer", // ddog_SharedRuntimeFFIError *error
    ],
    result: "void",
    optional: true,
  },

  // ---- outside the ABI: what libdatadog's FFI lacks, in the bundled library --
  ddffi_trace_exporter_config_set_agentless: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice intake URL (e.g. https://trace.agent.datadoghq.com)
      "slice", // ddog_CharSlice API key
    ],
    result: "pointer", // ddog_TraceExporterError * (TraceExporterBuilder::set_agentless_endpoint)
    optional: true,
  },
  ddffi_trace_exporter_config_set_dogstatsd_url: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "slice", // ddog_CharSlice url (udp://host:port or unix:///path), for health metrics
    ],
    result: "pointer", // ddog_TraceExporterError * (TraceExporterBuilder::set_dogstatsd_url)
    optional: true,
  },

  ddffi_trace_exporter_config_set_client_computed_top_level: {
    parameters: [
      "pointer", // ddog_TraceExporterConfig *config
      "bool", // the spans carry their own _dd.top_level marks
    ],
    result: "pointer", // ddog_TraceExporterError * (TraceExporterBuilder::set_client_computed_top_level)
    optional: true,
  },

  // ---- outside the ABI: the bundled library's live-object count -------------
  ddffi_debug_live_objects: {
    parameters: [],
    result: "i64",
    optional: true,
  },
  ddffi_debug_config_stats_cardinality_limit: {
    parameters: [
      "pointer", // const ddog_TraceExporterConfig *config
    ],
    result: "CardinalityLimitConfig", // what the config holds (all 0 until set)
    optional: true,
  },

  // ---- outside the ABI: the batch decoder (lib/src/batch.rs in the bundled --
  // ---- library; lib/shim, libddffi_batch.so, next to a real libdatadog) ----
  ddffi_batch_bind: {
    parameters: [
      "slice", // ddog_CharSlice path of the loaded library ("" for the program)
    ],
    result: "i32", // how many ddog_* functions are missing (0: ready), -1 when the file does not open
    optional: true,
  },
  ddffi_batch_send: {
    parameters: [
      "pointer", // const ddog_TraceExporter *exporter
      "pointer", // const uint8_t *batch (the format of ffi/batch.ts)
      "usize", // uintptr_t len
      "pointer", // ddog_TraceExporterResponse **response_out
      "pointer", // const ddog_TraceExporterCancelToken *cancel_token (nullable)
    ],
    result: "pointer", // ddog_TraceExporterError *
    blocking: true,
    optional: true,
  },
} as const satisfies Record<string, SymbolDef>;

/** The symbol table's type. */
export type Symbols = typeof symbols;
/** A symbol's name. */
export type SymbolName = keyof Symbols;

/** Struct layouts: total size and field offsets in bytes. */
export const layouts = {
  /** `ddog_CharSlice`, `ddog_ByteSlice`, `ddog_Slice_T`. */
  Slice: { size: 16, ptr: 0, len: 8 },
  /** `ddog_TraceExporterError`. */
  TraceExporterError: { size: 16, code: 0, msg: 8 },
  /** `ddog_TracerSpanFields` (passed by pointer to `ddog_tracer_span_new`). */
  TracerSpanFields: {
    size: 120,
    service: 0,
    name: 16,
    resource: 32,
    span_type: 48,
    trace_id_low: 64,
    trace_id_high: 72,
    span_id: 80,
    parent_id: 88,
    start: 96,
    duration: 104,
    error: 112,
  },
  /** `ddog_TracerSpanLinkAttribute`. */
  TracerSpanLinkAttribute: { size: 32, key: 0, value: 16 },
  /** `ddog_TracerSpanLink`. */
  TracerSpanLink: {
    size: 64,
    trace_id_low: 0,
    trace_id_high: 8,
    span_id: 16,
    attributes: 24,
    tracestate: 40,
    flags: 56,
  },
  /** `ddog_TracerValueToken`. */
  TracerValueToken: {
    size: 48,
    kind: 0,
    bool_value: 1,
    child_count: 4,
    i64_value: 8,
    u64_value: 16,
    f64_value: 24,
    bytes: 32,
  },
  /** `ddog_CardinalityLimitConfig` (five `uintptr_t`, passed and returned by value). */
  CardinalityLimitConfig: {
    size: 40,
    whole_key_limit: 0,
    resource_limit: 8,
    http_endpoint_limit: 16,
    peer_tags_limit: 24,
    additional_tags_limit: 32,
  },
  /** `ddog_SharedRuntimeFFIError` (freed with `ddog_shared_runtime_error_free`). */
  SharedRuntimeFFIError: { size: 16, code: 0, msg: 8 },
  /** `ddog_TelemetryClientConfig`. */
  TelemetryClientConfig: {
    size: 80,
    interval: 0,
    runtime_id: 8,
    debug_enabled: 24,
    session_id: 32,
    root_session_id: 48,
    parent_session_id: 64,
  },
} as const;

/** `ddog_TraceExporterErrorCode`: the names, indexed by value. */
export const errorCodes = [
  "AddressInUse",
  "ConnectionAborted",
  "ConnectionRefused",
  "ConnectionReset",
  "HttpBodyFormat",
  "HttpBodyTooLong",
  "HttpClient",
  "HttpEmptyBody",
  "HttpParse",
  "HttpServer",
  "HttpUnknown",
  "HttpWrongStatus",
  "InvalidArgument",
  "InvalidData",
  "InvalidInput",
  "InvalidUrl",
  "IoError",
  "NetworkUnknown",
  "Serde",
  "Shutdown",
  "TimedOut",
  "Telemetry",
  "Internal",
  "Panic",
] as const;

/** `ddog_SharedRuntimeErrorCode`: the names, indexed by value. */
export const sharedRuntimeErrorCodes = [
  "InvalidArgument",
  "RuntimeUnavailable",
  "LockFailed",
  "WorkerError",
  "RuntimeCreation",
  "ShutdownTimedOut",
  "Panic",
] as const;

/** A `ddog_SharedRuntimeErrorCode` by name. */
export type SharedRuntimeErrorCodeName = (typeof sharedRuntimeErrorCodes)[number];

/** A `ddog_TraceExporterErrorCode` by name. */
export type ErrorCodeName = (typeof errorCodes)[number];

/** `ddog_TracerValueKind` values of a `ddog_TracerValueToken`. */
export const valueKinds = {
  nil: 0,
  bool: 1,
  i64: 2,
  u64: 3,
  f64: 4,
  string: 5,
  binary: 6,
  array: 7,
  map: 8,
} as const;

/** libdd-log's `ddog_LogEventLevel` values. */
export const logLevels = {
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  error: 4,
} as const;

/** libdd-log's `ddog_StdTarget` values (the field of `ddog_StdConfig`). */
export const stdTargets = {
  stdout: 0,
  stderr: 1,
} as const;

/** The deepest nesting a structured value may have. */
export const MAX_VALUE_DEPTH = 64;

/**
 * The Rust module of the native library (lib/src), generated from this
 * table: `ErrorCode` (`errorCodes`, values in order), and for each of
 * `layouts`, a module `layout::<Name>` with `SIZE` and each field's offset
 * (`SERVICE`, …), which lib/src checks its `#[repr(C)]` structs against at
 * compile time. `build.ts` writes it to `lib/build/abi.rs`.
 */
export function rustModule(): string {
  const lines = [
    "// Generated by build.ts from ffi/abi.ts: do not edit.",
    "/// `ddog_TraceExporterErrorCode`.",
    "#[repr(C)]",
    "#[derive(Clone, Copy, Debug, PartialEq, Eq)]",
    "pub enum ErrorCode {",
    ...errorCodes.map((name, i) => `    ${name} = ${i},`),
    "}",
    "/// `ddog_SharedRuntimeErrorCode`.",
    "#[repr(C)]",
    "#[derive(Clone, Copy, Debug, PartialEq, Eq)]",
    "pub enum SharedRuntimeErrorCode {",
    ...sharedRuntimeErrorCodes.map((name, i) => `    ${name} = ${i},`),
    "}",
    `pub const MAX_VALUE_DEPTH: usize = ${MAX_VALUE_DEPTH};`,
    "#[allow(non_snake_case, dead_code)]",
    "pub mod layout {",
  ];
  for (const [name, fields] of Object.entries(layouts)) {
    lines.push(`    pub mod ${name} {`);
    for (const [field, value] of Object.entries(fields)) lines.push(`        pub const ${field.toUpperCase()}: usize = ${value};`);
    lines.push("    }");
  }
  lines.push("}", "");
  return lines.join("\n");
}

/**
 * The C checks of a hand-written C header of the ABI (test/fixtures/data-pipeline.h,
 * for the C programs of the tests and benchmarks), generated from `layouts`:
 * for each struct `ddog_<Name>` (`ddog_Slice_CChar` for `Slice`), a
 * `_Static_assert` of its size and of each field's offset. `build.ts` writes
 * it to `lib/build/abi-checks.h`.
 */
export function cChecks(): string {
  const lines = ["/* Generated by build.ts from ffi/abi.ts: do not edit. */", "#include <stddef.h>"];
  for (const [name, fields] of Object.entries(layouts)) {
    const type = name === "Slice" ? "ddog_Slice_CChar" : `ddog_${name}`;
    for (const [field, value] of Object.entries(fields)) {
      const what = field === "size" ? `sizeof(${type})` : `offsetof(${type}, ${field})`;
      lines.push(`_Static_assert(${what} == ${value}, "${type} ${field}: ffi/abi.ts says ${value}");`);
    }
  }
  lines.push("");
  return lines.join("\n");
}
