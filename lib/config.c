/* ddog_trace_exporter_config_*: the exporter's configuration. */
#include "exporter.h"

#include <stdlib.h>
#include <string.h>

#define E(code) DDOG_TRACE_EXPORTER_ERROR_CODE_##code

DDFFI_EXPORT void ddog_trace_exporter_config_new(ddog_TraceExporterConfig **out_handle) {
  if (!out_handle) return;
  ddog_TraceExporterConfig *config = calloc(1, sizeof *config);
  if (!config) return;
  ddffi_live_inc();
  *out_handle = config;
}

static void clear(ddffi_opt_str *s) {
  ddffi_str_free(&s->value);
  s->set = false;
}

DDFFI_EXPORT void ddog_trace_exporter_config_free(ddog_TraceExporterConfig *config) {
  if (!config) return;
  ddffi_opt_str *all[] = {&config->url,          &config->tracer_version,     &config->language,
                          &config->lang_version, &config->lang_interpreter,   &config->hostname,
                          &config->env,          &config->version,            &config->service,
                          &config->process_tags, &config->test_session_token, &config->otlp_endpoint,
                          &config->otlp_scope_name, &config->otlp_scope_version};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clear(all[i]);
  ddffi_shared_runtime_release(config->shared_runtime);
  free(config);
  ddffi_live_dec();
}

/* The config setters turn a CharSlice into a String like libdatadog's
 * sanitize_string(): not UTF-8 is InvalidInput; a NULL pointer with a length
 * makes libdatadog panic while reading the slice, reported as Panic. */
static ddog_TraceExporterError *sanitize(ddog_CharSlice s) {
  if (!s.ptr && s.len) return ddffi_error(E(PANIC), NULL);
  if (s.len && !ddffi_utf8_valid((const uint8_t *)s.ptr, s.len)) return ddffi_error(E(INVALID_INPUT), NULL);
  return NULL;
}

static ddog_TraceExporterError *store(ddffi_opt_str *dst, ddog_CharSlice s) {
  ddog_TraceExporterError *err = sanitize(s);
  if (err) return err;
  ddffi_str copy;
  if (!ddffi_str_copy(&copy, s.ptr, s.len)) return ddffi_error(E(INTERNAL), "out of memory");
  clear(dst);
  dst->value = copy;
  dst->set = true;
  return NULL;
}

#define STRING_SETTER(name, field)                                                                              \
  DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_##name(ddog_TraceExporterConfig *config,     \
                                                                          ddog_CharSlice value) {               \
    if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);                                                 \
    return store(&config->field, value);                                                                        \
  }

/* The URL is only parsed by ddog_trace_exporter_new (InvalidUrl there). */
STRING_SETTER(set_url, url)
STRING_SETTER(set_tracer_version, tracer_version)
STRING_SETTER(set_language, language)
STRING_SETTER(set_lang_version, lang_version)
STRING_SETTER(set_lang_interpreter, lang_interpreter)
STRING_SETTER(set_hostname, hostname)
STRING_SETTER(set_env, env)
STRING_SETTER(set_version, version)
STRING_SETTER(set_service, service)
/* libdatadog uses process tags only for client-side stats and OTLP metrics,
 * neither of which this library sends; stored for completeness. */
STRING_SETTER(set_process_tags, process_tags)
STRING_SETTER(set_test_session_token, test_session_token)
/* Used as given: libdatadog appends no path (no "/v1/traces"). */
STRING_SETTER(set_otlp_endpoint, otlp_endpoint)

DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_set_connection_timeout(ddog_TraceExporterConfig *config,
                                                                                       uint64_t timeout_ms) {
  if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  config->has_connection_timeout = true;
  config->connection_timeout_ms = timeout_ms;
  return NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_set_otlp_protocol(ddog_TraceExporterConfig *config,
                                                                                  ddog_CharSlice protocol) {
  if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  ddog_TraceExporterError *err = sanitize(protocol);
  if (err) return err;
  if (protocol.len == 9 && !memcmp(protocol.ptr, "http/json", 9)) return NULL; /* the default */
  if (protocol.len == 13 && !memcmp(protocol.ptr, "http/protobuf", 13))
    return ddffi_error(E(INVALID_ARGUMENT),
                       "ddog_trace_exporter_config_set_otlp_protocol: \"http/protobuf\" is not implemented by the "
                       "bundled trace exporter (only \"http/json\" is); use a real libdatadog build (set "
                       "DD_LIBDATADOG_PATH)");
  /* libdatadog itself rejects "grpc" and any other value. */
  return ddffi_error(E(INVALID_ARGUMENT), NULL);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_set_otlp_instrumentation_scope(
    ddog_TraceExporterConfig *config, ddog_CharSlice name, ddog_CharSlice version) {
  if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  ddffi_opt_str n = {0}, v = {0};
  ddog_TraceExporterError *err;
  if ((err = store(&n, name)) || (err = store(&v, version))) {
    clear(&n);
    return err;
  }
  clear(&config->otlp_scope_name);
  clear(&config->otlp_scope_version);
  config->otlp_scope_name = n;
  config->otlp_scope_version = v;
  return NULL;
}

/* ---- features this library does not implement ---------------------------- */

/* Never accepted silently: enabling one of these needs real libdatadog. */
static ddog_TraceExporterError *unsupported(const char *setter, const char *feature) {
  return ddffi_errorf(E(INVALID_ARGUMENT),
                      "%s: %s is not implemented by the bundled trace exporter; use a real libdatadog build (set "
                      "DD_LIBDATADOG_PATH)",
                      setter, feature);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_enable_health_metrics(ddog_TraceExporterConfig *config,
                                                                                      bool is_enabled) {
  if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  if (!is_enabled) return NULL; /* off is the default */
  return unsupported("ddog_trace_exporter_config_enable_health_metrics", "health metrics (DogStatsD)");
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_set_compute_stats(ddog_TraceExporterConfig *config,
                                                                                  bool is_enabled) {
  if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  if (!is_enabled) return NULL;
  return unsupported("ddog_trace_exporter_config_set_compute_stats", "client-side stats computation");
}

/* The tracer computed stats itself: libdatadog then sends
 * `datadog-client-computed-stats: true` with v0.4 traces. Not with OTLP:
 * there libdatadog marks stats only when its own OTLP stats export runs. */
DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_set_client_computed_stats(
    ddog_TraceExporterConfig *config, bool is_enabled) {
  if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  config->client_computed_stats = is_enabled;
  return NULL;
}

/* A NULL telemetry config leaves telemetry off, as in libdatadog. */
DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_enable_telemetry(
    ddog_TraceExporterConfig *config, const ddog_TelemetryClientConfig *telemetry_cfg) {
  if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  if (!telemetry_cfg) return NULL;
  ddog_CharSlice strings[] = {telemetry_cfg->runtime_id, telemetry_cfg->session_id, telemetry_cfg->root_session_id,
                              telemetry_cfg->parent_session_id};
  for (size_t i = 0; i < 4; i++) {
    ddog_TraceExporterError *err = sanitize(strings[i]);
    if (err) return err;
  }
  return unsupported("ddog_trace_exporter_config_enable_telemetry", "telemetry");
}

/* Any call turns log output on (max_line_size 0 means the default size). */
DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_set_output_to_log(ddog_TraceExporterConfig *config,
                                                                                  uintptr_t max_line_size) {
  (void)max_line_size;
  if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  return unsupported("ddog_trace_exporter_config_set_output_to_log", "writing traces to the log (stdout)");
}

/* Kept for the stats computation, which the bundled library does not do
 * (set_compute_stats refuses); libdatadog likewise ignores it without stats. */
DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_set_stats_cardinality_limit(
    ddog_TraceExporterConfig *config, ddog_CardinalityLimitConfig limits) {
  if (!config) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  config->stats_cardinality_limit = limits;
  config->has_stats_cardinality_limit = true;
  return NULL;
}

/* libdatadog's CardinalityLimitConfig::default() (libdd-trace-stats). */
DDFFI_EXPORT ddog_CardinalityLimitConfig ddog_trace_exporter_config_default_stats_cardinality_limit(void) {
  return (ddog_CardinalityLimitConfig){.whole_key_limit = 7000,
                                       .resource_limit = 1024,
                                       .http_endpoint_limit = 512,
                                       .peer_tags_limit = 512,
                                       .additional_tags_limit = 100};
}

DDFFI_EXPORT ddog_CardinalityLimitConfig ddffi_debug_config_stats_cardinality_limit(const ddog_TraceExporterConfig *config) {
  return config ? config->stats_cardinality_limit : (ddog_CardinalityLimitConfig){0};
}
