/* Shared between config.c and exporter.c: not part of the ABI. */
#ifndef DDFFI_EXPORTER_H
#define DDFFI_EXPORTER_H

#include "internal.h"

/* An optional string setting: `set` is false until a setter stored it. */
typedef struct ddffi_opt_str {
  bool set;
  ddffi_str value;
} ddffi_opt_str;

struct ddog_TraceExporterConfig {
  ddffi_opt_str url, tracer_version, language, lang_version, lang_interpreter, hostname, env, version, service,
      process_tags, test_session_token, otlp_endpoint, otlp_scope_name, otlp_scope_version;
  bool has_connection_timeout;
  uint64_t connection_timeout_ms;
  bool client_computed_stats;
  bool has_stats_cardinality_limit;
  ddog_CardinalityLimitConfig stats_cardinality_limit; /* kept; stats are not computed here */
  const ddog_SharedRuntime *shared_runtime;             /* a reference of its own, or NULL */
};

/* shared_runtime.c: takes one more reference (NULL: nothing) and returns the
 * handle; drops one, freeing the runtime with the last. */
const ddog_SharedRuntime *ddffi_shared_runtime_retain(const ddog_SharedRuntime *rt);
void ddffi_shared_runtime_release(const ddog_SharedRuntime *rt);

/* Before an OTLP export libdatadog drops the chunks it would not keep
 * (drop_chunks); span.c implements it (declared in span.h too). */
void ddffi_chunks_drop_unsampled(ddog_TracerTraceChunks *chunks);

/* The UTF-8 sequence at p (n > 0 bytes left): returns the length of a whole
 * character (*valid true), or of the maximal invalid prefix that Rust's
 * from_utf8_lossy replaces with one U+FFFD (*valid false). */
size_t ddffi_utf8_step(const uint8_t *p, size_t n, bool *valid);

/* Decodes a v0.4 msgpack payload (an array of chunks, each an array of span
 * maps) as libdatadog's msgpack_decoder::v04 does, into new chunks built
 * through the span ABI. On failure returns a Serde error (decode.c). */
ddog_TraceExporterError *ddffi_decode_v04(const uint8_t *data, size_t len, ddog_TracerTraceChunks **out);

#endif
