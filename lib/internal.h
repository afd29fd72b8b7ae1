/* Shared internals of the bundled library: not part of the ABI. */
#ifndef DDFFI_INTERNAL_H
#define DDFFI_INTERNAL_H

#include "data-pipeline.h"

#define DDFFI_EXPORT __attribute__((visibility("default")))

/* Live-object accounting behind ddffi_debug_live_objects(). Every
 * allocation of a handle counts up once, every free or consume down once. */
void ddffi_live_inc(void);
void ddffi_live_dec(void);

/* A new error with `code`; msg NULL means libdatadog's text for the code. */
ddog_TraceExporterError *ddffi_error(ddog_TraceExporterErrorCode code, const char *msg);
/* A new error with a printf-formatted message. */
ddog_TraceExporterError *ddffi_errorf(ddog_TraceExporterErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* libdatadog's Display text for a code ("Connection refused", ...). */
const char *ddffi_code_text(ddog_TraceExporterErrorCode code);

/* Slice checks as libdatadog does them: NULL ptr with len > 0, or a size
 * over PTRDIFF_MAX, is
 * InvalidArgument; a CharSlice that is not UTF-8 is InvalidInput.
 * Return NULL when fine, else a new error. */
ddog_TraceExporterError *ddffi_check_bytes(ddog_ByteSlice s);
ddog_TraceExporterError *ddffi_check_str(ddog_CharSlice s);
bool ddffi_utf8_valid(const uint8_t *p, size_t n);

/* A growable byte buffer. On allocation failure `failed` is set and later
 * writes are ignored; callers check it once at the end. */
typedef struct ddffi_buf {
  uint8_t *data;
  size_t len, cap;
  bool failed;
} ddffi_buf;

void ddffi_buf_reserve(ddffi_buf *b, size_t extra);
void ddffi_buf_put_slow(ddffi_buf *b, const void *p, size_t n);
void ddffi_buf_free(ddffi_buf *b);

/* Appends n bytes; inline when they fit. */
static inline void ddffi_buf_put(ddffi_buf *b, const void *p, size_t n) {
  if (b->cap - b->len >= n && n && !b->failed) {
    __builtin_memcpy(b->data + b->len, p, n);
    b->len += n;
  } else {
    ddffi_buf_put_slow(b, p, n);
  }
}

/* An owned copy of a slice's bytes (len may be 0; data NULL then). */
typedef struct ddffi_str {
  char *data;
  size_t len;
} ddffi_str;

/* Copies s (already checked); returns false on allocation failure. */
bool ddffi_str_copy(ddffi_str *dst, const void *p, size_t n);
void ddffi_str_free(ddffi_str *s);

/* ---- for the batch decoder (batch.c), not exported -----------------------
 * ddog_tracer_span_new, _set_meta and _set_metric without their checks and
 * copies: every string must be valid UTF-8 (not checked) and its bytes must
 * outlive the span (they are borrowed, not copied). span.c hands them to
 * batch.c (ddffi_batch_own, when the bundled library loads: the shim has
 * none), whose ddffi_batch_send uses them for the strings it knows valid; its
 * spans are consumed before it returns, while the batch is still alive.
 * Same results otherwise, errors included (a NULL handle or fields is
 * InvalidArgument). */
ddog_TraceExporterError *ddffi_span_new_borrowed(ddog_TracerSpan **out_handle, const ddog_TracerSpanFields *fields);
ddog_TraceExporterError *ddffi_span_set_meta_borrowed(ddog_TracerSpan *handle, ddog_CharSlice key,
                                                      ddog_CharSlice value);
ddog_TraceExporterError *ddffi_span_set_metric_borrowed(ddog_TracerSpan *handle, ddog_CharSlice key, double value);
/* ddffi_utf8_valid, for the decoder to check a string once and reuse the answer. */
bool ddffi_utf8_check(const uint8_t *p, uintptr_t n);
/* ddog_tracer_span_set_links without its checks and copies: the slice and
 * its attribute slices are well-formed, every string valid UTF-8 and kept
 * by pointer (the same rules as above). */
ddog_TraceExporterError *ddffi_span_set_links_borrowed(ddog_TracerSpan *handle, ddog_Slice_TracerSpanLink links);
/* ddog_tracer_span_event_new, the name borrowed and not checked. */
ddog_TraceExporterError *ddffi_span_event_new_borrowed(ddog_TracerSpanEvent **out_handle, ddog_CharSlice name,
                                                       uint64_t time_unix_nano);
/* ddog_tracer_span_event_set_string / _bool / _int / _double, key and
 * string borrowed and not checked: `type` 0 string (s), 1 bool (i != 0),
 * 2 int (i), 3 double (d); any other type is InvalidArgument. */
ddog_TraceExporterError *ddffi_span_event_set_borrowed(ddog_TracerSpanEvent *handle, ddog_CharSlice key,
                                                       uint32_t type, ddog_CharSlice s, int64_t i, double d);
void ddffi_batch_own(__typeof__(ddffi_span_new_borrowed) *span_new, __typeof__(ddffi_span_set_meta_borrowed) *set_meta,
                     __typeof__(ddffi_span_set_metric_borrowed) *set_metric, __typeof__(ddffi_utf8_check) *utf8_check,
                     __typeof__(ddffi_span_set_links_borrowed) *set_links,
                     __typeof__(ddffi_span_event_new_borrowed) *event_new,
                     __typeof__(ddffi_span_event_set_borrowed) *event_set);

/* batch.c: the transcoded strings of a decoded batch (see ddffi_batch_build). */
typedef struct ddffi_batch_text ddffi_batch_text;
ddog_TraceExporterError *ddffi_batch_build(const uint8_t *batch, uintptr_t len, ddog_TracerTraceChunks **out,
                                           ddffi_batch_text **text);
void ddffi_batch_text_free(ddffi_batch_text *text);

/* ---- between span.c (the data) and exporter.c (the transport) ---------- */

/* Number of trace chunks (begun with begin_chunk) in `chunks`. */
size_t ddffi_chunks_len(const ddog_TracerTraceChunks *chunks);

/* Appends the v0.4 payload of `chunks` to `out`: a msgpack array of chunks,
 * each an array of span maps, byte-for-byte as libdatadog's v0.4 encoder. */
void ddffi_encode_v04(const ddog_TracerTraceChunks *chunks, ddffi_buf *out);

/* What an OTLP export says about the process, besides the spans. */
typedef struct ddffi_otlp_resource {
  ddffi_str service, env, version, hostname, language, lang_version, tracer_version, runtime_id;
  ddffi_str scope_name, scope_version; /* instrumentation scope */
  /* libdatadog: its OTLP stats export (not reachable through the FFI, and
   * not implemented here) adds the resource attribute _dd.stats_computed =
   * "true" and the header datadog-client-computed-stats: yes. Always false. */
  bool client_computed_stats;
} ddffi_otlp_resource;

/* Appends the OTLP/HTTP JSON ExportTraceServiceRequest of `chunks` to `out`,
 * mapped from Datadog spans as libdatadog's otlp_encoder does. */
void ddffi_encode_otlp_json(const ddog_TracerTraceChunks *chunks, const ddffi_otlp_resource *resource, ddffi_buf *out);

#endif
