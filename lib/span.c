/* Spans, span links, span events, meta_struct, trace chunks, and the v0.4
 * msgpack encoder (libdatadog's tracer.rs and span_v04.rs semantics). */
#include "msgpack.h"
#include "span.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define E_INVALID_ARGUMENT DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_ARGUMENT
#define E_INTERNAL DDOG_TRACE_EXPORTER_ERROR_CODE_INTERNAL
#define E_PANIC DDOG_TRACE_EXPORTER_ERROR_CODE_PANIC

static ddog_TraceExporterError *invalid_argument(void) { return ddffi_error(E_INVALID_ARGUMENT, NULL); }
/* libdatadog aborts the process when an allocation fails; we report it. */
static ddog_TraceExporterError *out_of_memory(void) { return ddffi_error(E_INTERNAL, NULL); }

/* Grows the array whose pointer is at `arrp` (capacity *cap) to hold at
 * least `need` elements. On failure the array is unchanged. */
static bool grow(void *arrp, size_t *cap, size_t need, size_t elem_size) {
  if (need <= *cap) return true;
  size_t cap2 = *cap ? *cap * 2 : 4;
  if (cap2 < need) cap2 = need;
  if (cap2 > SIZE_MAX / elem_size) return false;
  void *items;
  memcpy(&items, arrp, sizeof items); /* any T* through a void* copy */
  items = realloc(items, cap2 * elem_size);
  if (!items) return false;
  memcpy(arrp, &items, sizeof items);
  *cap = cap2;
  return true;
}

static bool str_eq(const ddffi_str *a, const ddffi_str *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static bool str_eq_c(const ddffi_str *a, const char *s) {
  size_t n = strlen(s);
  return a->len == n && (n == 0 || memcmp(a->data, s, n) == 0);
}

/* Validates a CharSlice as libdatadog does (a malformed slice is
 * InvalidArgument, bad UTF-8 InvalidInput) and copies it into *dst. */
static ddog_TraceExporterError *take_str(ddffi_str *dst, ddog_CharSlice s) {
  *dst = (ddffi_str){0};
  if (!ddffi_slice_ok(s.ptr, s.len, 1, 1)) return invalid_argument();
  ddog_TraceExporterError *err = ddffi_check_str(s);
  if (err) return err;
  if (!ddffi_str_copy(dst, s.ptr, s.len)) return out_of_memory();
  return NULL;
}

/* ---- keyed maps (meta, metrics, meta_struct) ---------------------------- */

static ptrdiff_t str_map_find(const ddffi_str_map *m, const ddffi_str *key) {
  for (size_t i = 0; i < m->len; i++)
    if (str_eq(&m->items[i].key, key)) return (ptrdiff_t)i;
  return -1;
}

static ptrdiff_t f64_map_find(const ddffi_f64_map *m, const ddffi_str *key) {
  for (size_t i = 0; i < m->len; i++)
    if (str_eq(&m->items[i].key, key)) return (ptrdiff_t)i;
  return -1;
}

/* Sets key to value, taking ownership of both (also on failure, when they
 * are freed and the map is unchanged). Last write wins, and a rewritten key
 * moves to the end: libdatadog appends every write to a VecMap and its
 * exporter dedups before encoding (keeping the last write, reversing the
 * order), so the wire order is the reverse order of last writes. The
 * encoders read these arrays backwards to match. */
static bool str_map_set(ddffi_str_map *m, ddffi_str key, ddffi_str value) {
  ptrdiff_t i = str_map_find(m, &key);
  if (i < 0 && !grow(&m->items, &m->cap, m->len + 1, sizeof *m->items)) {
    ddffi_str_free(&key);
    ddffi_str_free(&value);
    return false;
  }
  if (i >= 0) {
    ddffi_str_free(&m->items[i].key);
    ddffi_str_free(&m->items[i].value);
    memmove(&m->items[i], &m->items[i + 1], (m->len - (size_t)i - 1) * sizeof *m->items);
    m->len--;
  }
  m->items[m->len++] = (ddffi_str_entry){key, value};
  return true;
}

static bool f64_map_set(ddffi_f64_map *m, ddffi_str key, double value) {
  ptrdiff_t i = f64_map_find(m, &key);
  if (i < 0 && !grow(&m->items, &m->cap, m->len + 1, sizeof *m->items)) {
    ddffi_str_free(&key);
    return false;
  }
  if (i >= 0) {
    ddffi_str_free(&m->items[i].key);
    memmove(&m->items[i], &m->items[i + 1], (m->len - (size_t)i - 1) * sizeof *m->items);
    m->len--;
  }
  m->items[m->len++] = (ddffi_f64_entry){key, value};
  return true;
}

static void str_map_free(ddffi_str_map *m) {
  for (size_t i = 0; i < m->len; i++) {
    ddffi_str_free(&m->items[i].key);
    ddffi_str_free(&m->items[i].value);
  }
  free(m->items);
  *m = (ddffi_str_map){0};
}

static void f64_map_free(ddffi_f64_map *m) {
  for (size_t i = 0; i < m->len; i++) ddffi_str_free(&m->items[i].key);
  free(m->items);
  *m = (ddffi_f64_map){0};
}

const ddffi_str *ddffi_span_meta_get(const ddog_TracerSpan *span, const char *key) {
  for (size_t i = 0; i < span->meta.len; i++)
    if (str_eq_c(&span->meta.items[i].key, key)) return &span->meta.items[i].value;
  return NULL;
}

const double *ddffi_span_metric_get(const ddog_TracerSpan *span, const char *key) {
  for (size_t i = 0; i < span->metrics.len; i++)
    if (str_eq_c(&span->metrics.items[i].key, key)) return &span->metrics.items[i].value;
  return NULL;
}

/* ---- destructors -------------------------------------------------------- */

static void scalar_free(ddffi_attr_scalar *v) { ddffi_str_free(&v->s); }

static void attr_value_free(ddffi_event_attr *a) {
  scalar_free(&a->single);
  for (size_t i = 0; i < a->n_items; i++) scalar_free(&a->items[i]);
  free(a->items);
  a->items = NULL;
  a->n_items = 0;
}

static void event_clear(ddffi_event *ev) {
  ddffi_str_free(&ev->name);
  for (size_t i = 0; i < ev->n_attrs; i++) {
    ddffi_str_free(&ev->attrs[i].key);
    attr_value_free(&ev->attrs[i]);
  }
  free(ev->attrs);
  ev->attrs = NULL;
  ev->n_attrs = ev->cap_attrs = 0;
}

static void links_free(ddffi_link *links, size_t n) {
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < links[i].n_attrs; k++) {
      ddffi_str_free(&links[i].attrs[k].key);
      ddffi_str_free(&links[i].attrs[k].value);
    }
    free(links[i].attrs);
    ddffi_str_free(&links[i].tracestate);
  }
  free(links);
}

/* Frees a span's memory; the live count is the caller's business. */
void ddffi_span_destroy(ddog_TracerSpan *span) {
  ddffi_str_free(&span->service);
  ddffi_str_free(&span->name);
  ddffi_str_free(&span->resource);
  ddffi_str_free(&span->type);
  str_map_free(&span->meta);
  f64_map_free(&span->metrics);
  str_map_free(&span->meta_struct);
  links_free(span->links, span->n_links);
  for (size_t i = 0; i < span->n_events; i++) event_clear(&span->events[i]);
  free(span->events);
  free(span);
}

/* ---- spans -------------------------------------------------------------- */

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_new(ddog_TracerSpan **out_handle,
                                                           const ddog_TracerSpanFields *fields) {
  if (!fields || !out_handle) return invalid_argument();
  ddog_TracerSpan *span = calloc(1, sizeof *span);
  if (!span) return out_of_memory();
  ddog_TraceExporterError *err = NULL;
  if ((err = take_str(&span->service, fields->service)) || (err = take_str(&span->name, fields->name)) ||
      (err = take_str(&span->resource, fields->resource)) || (err = take_str(&span->type, fields->span_type))) {
    ddffi_span_destroy(span);
    return err;
  }
  span->trace_id_low = fields->trace_id_low;
  span->trace_id_high = fields->trace_id_high;
  span->span_id = fields->span_id;
  span->parent_id = fields->parent_id;
  span->start = fields->start;
  span->duration = fields->duration;
  span->error = fields->error;
  ddffi_live_inc();
  *out_handle = span;
  return NULL;
}

DDFFI_EXPORT void ddog_tracer_span_free(ddog_TracerSpan *handle) {
  if (!handle) return;
  ddffi_span_destroy(handle);
  ddffi_live_dec();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_meta(ddog_TracerSpan *handle, ddog_CharSlice key,
                                                                ddog_CharSlice value) {
  if (!handle) return invalid_argument();
  ddffi_str k, v;
  ddog_TraceExporterError *err = take_str(&k, key);
  if (err) return err;
  if ((err = take_str(&v, value))) {
    ddffi_str_free(&k);
    return err;
  }
  return str_map_set(&handle->meta, k, v) ? NULL : out_of_memory();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_metric(ddog_TracerSpan *handle, ddog_CharSlice key,
                                                                  double value) {
  if (!handle) return invalid_argument();
  ddffi_str k;
  ddog_TraceExporterError *err = take_str(&k, key);
  if (err) return err;
  return f64_map_set(&handle->metrics, k, value) ? NULL : out_of_memory();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_meta_struct_blob(ddog_TracerSpan *handle,
                                                                            ddog_CharSlice key,
                                                                            ddog_ByteSlice value) {
  if (!handle) return invalid_argument();
  ddffi_str k, v;
  ddog_TraceExporterError *err = take_str(&k, key);
  if (err) return err;
  /* The blob is opaque: not checked to be msgpack. */
  if (!ddffi_slice_ok(value.ptr, value.len, 1, 1)) {
    ddffi_str_free(&k);
    return invalid_argument();
  }
  if (!ddffi_str_copy(&v, value.ptr, value.len)) {
    ddffi_str_free(&k);
    return out_of_memory();
  }
  return str_map_set(&handle->meta_struct, k, v) ? NULL : out_of_memory();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_meta_struct(ddog_TracerSpan *handle, ddog_CharSlice key,
                                                                       ddog_Slice_TracerValueToken tokens) {
  if (!handle) return invalid_argument();
  ddffi_str k;
  ddog_TraceExporterError *err = take_str(&k, key);
  if (err) return err;
  ddffi_buf buf = {0};
  if ((err = ddffi_encode_tokens(tokens, &buf))) {
    ddffi_buf_free(&buf);
    ddffi_str_free(&k);
    return err; /* the span is unchanged */
  }
  ddffi_str v = {(char *)buf.data, buf.len};
  return str_map_set(&handle->meta_struct, k, v) ? NULL : out_of_memory();
}

/* Converts one C link; on error *dst holds nothing to free. */
static ddog_TraceExporterError *convert_link(ddffi_link *dst, const ddog_TracerSpanLink *src) {
  *dst = (ddffi_link){.trace_id_low = src->trace_id_low,
                      .trace_id_high = src->trace_id_high,
                      .span_id = src->span_id,
                      .flags = src->flags};
  const ddog_Slice_TracerSpanLinkAttribute *attrs = &src->attributes;
  if (!ddffi_slice_ok(attrs->ptr, attrs->len, sizeof *attrs->ptr, _Alignof(ddog_TracerSpanLinkAttribute)))
    return invalid_argument();
  ddog_TraceExporterError *err = NULL;
  if (attrs->len) {
    dst->attrs = calloc(attrs->len, sizeof *dst->attrs);
    if (!dst->attrs) return out_of_memory();
  }
  for (size_t i = 0; i < attrs->len; i++) {
    ddffi_str k, v;
    if ((err = take_str(&k, attrs->ptr[i].key))) break;
    if ((err = take_str(&v, attrs->ptr[i].value))) {
      ddffi_str_free(&k);
      break;
    }
    /* A HashMap in libdatadog: a repeated key replaces the value. */
    size_t j = 0;
    while (j < dst->n_attrs && !str_eq(&dst->attrs[j].key, &k)) j++;
    if (j < dst->n_attrs) {
      ddffi_str_free(&k);
      ddffi_str_free(&dst->attrs[j].value);
      dst->attrs[j].value = v;
    } else {
      dst->attrs[dst->n_attrs++] = (ddffi_str_entry){k, v};
    }
  }
  if (!err) err = take_str(&dst->tracestate, src->tracestate);
  if (err) {
    for (size_t k = 0; k < dst->n_attrs; k++) {
      ddffi_str_free(&dst->attrs[k].key);
      ddffi_str_free(&dst->attrs[k].value);
    }
    free(dst->attrs);
    *dst = (ddffi_link){0};
  }
  return err;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_links(ddog_TracerSpan *handle,
                                                                 ddog_Slice_TracerSpanLink links) {
  if (!handle) return invalid_argument();
  if (!ddffi_slice_ok(links.ptr, links.len, sizeof *links.ptr, _Alignof(ddog_TracerSpanLink)))
    return invalid_argument();
  ddffi_link *converted = NULL;
  if (links.len) {
    converted = calloc(links.len, sizeof *converted);
    if (!converted) return out_of_memory();
  }
  for (size_t i = 0; i < links.len; i++) {
    ddog_TraceExporterError *err = convert_link(&converted[i], &links.ptr[i]);
    if (err) {
      links_free(converted, i); /* the span keeps its old links */
      return err;
    }
  }
  links_free(handle->links, handle->n_links);
  handle->links = converted;
  handle->n_links = links.len;
  return NULL;
}

/* ---- span events -------------------------------------------------------- */

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_new(ddog_TracerSpanEvent **out_handle,
                                                                 ddog_CharSlice name, uint64_t time_unix_nano) {
  if (!out_handle) return invalid_argument();
  ddffi_str n;
  ddog_TraceExporterError *err = take_str(&n, name);
  if (err) return err;
  ddog_TracerSpanEvent *ev = calloc(1, sizeof *ev);
  if (!ev) {
    ddffi_str_free(&n);
    return out_of_memory();
  }
  ev->name = n;
  ev->time_unix_nano = time_unix_nano;
  ddffi_live_inc();
  *out_handle = ev;
  return NULL;
}

DDFFI_EXPORT void ddog_tracer_span_event_free(ddog_TracerSpanEvent *handle) {
  if (!handle) return;
  event_clear(handle);
  free(handle);
  ddffi_live_dec();
}

/* Sets attribute `key` (not yet validated) of `event` to `value`, which it
 * takes over (freed on error). libdatadog keeps event attributes in a
 * HashMap: a repeated key replaces the value, whatever the types. */
static ddog_TraceExporterError *event_set(ddog_TracerSpanEvent *event, ddog_CharSlice key, ddffi_event_attr value) {
  ddog_TraceExporterError *err = NULL;
  if (!event) err = invalid_argument();
  else err = take_str(&value.key, key);
  if (err) {
    attr_value_free(&value);
    return err;
  }
  for (size_t i = 0; i < event->n_attrs; i++) {
    if (str_eq(&event->attrs[i].key, &value.key)) {
      ddffi_str_free(&value.key);
      attr_value_free(&event->attrs[i]);
      value.key = event->attrs[i].key;
      event->attrs[i] = value;
      return NULL;
    }
  }
  if (!grow(&event->attrs, &event->cap_attrs, event->n_attrs + 1, sizeof *event->attrs)) {
    ddffi_str_free(&value.key);
    attr_value_free(&value);
    return out_of_memory();
  }
  event->attrs[event->n_attrs++] = value;
  return NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_string(ddog_TracerSpanEvent *handle,
                                                                        ddog_CharSlice key, ddog_CharSlice value) {
  /* libdatadog checks the value before the handle and the key. */
  ddffi_event_attr a = {.single.type = DDFFI_ATTR_STRING};
  ddog_TraceExporterError *err = take_str(&a.single.s, value);
  if (err) return err;
  return event_set(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_bool(ddog_TracerSpanEvent *handle,
                                                                      ddog_CharSlice key, bool value) {
  return event_set(handle, key, (ddffi_event_attr){.single = {.type = DDFFI_ATTR_BOOL, .b = value}});
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_int(ddog_TracerSpanEvent *handle,
                                                                     ddog_CharSlice key, int64_t value) {
  return event_set(handle, key, (ddffi_event_attr){.single = {.type = DDFFI_ATTR_INT, .i = value}});
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_double(ddog_TracerSpanEvent *handle,
                                                                        ddog_CharSlice key, double value) {
  return event_set(handle, key, (ddffi_event_attr){.single = {.type = DDFFI_ATTR_DOUBLE, .d = value}});
}

/* An array attribute of n items (calloc'ed; items NULL when n == 0). */
static bool array_attr(ddffi_event_attr *a, size_t n) {
  *a = (ddffi_event_attr){.is_array = true, .n_items = 0};
  if (n == 0) return true;
  a->items = calloc(n, sizeof *a->items);
  return a->items != NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_string_array(ddog_TracerSpanEvent *handle,
                                                                              ddog_CharSlice key,
                                                                              ddog_Slice_CharSlice values) {
  /* The values (slice, then each string) are checked before the handle and key. */
  if (!ddffi_slice_ok(values.ptr, values.len, sizeof *values.ptr, _Alignof(ddog_CharSlice)))
    return invalid_argument();
  ddffi_event_attr a;
  if (!array_attr(&a, values.len)) return out_of_memory();
  for (size_t i = 0; i < values.len; i++) {
    a.items[i].type = DDFFI_ATTR_STRING;
    a.n_items = i + 1;
    ddog_TraceExporterError *err = take_str(&a.items[i].s, values.ptr[i]);
    if (err) {
      attr_value_free(&a);
      return err;
    }
  }
  return event_set(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_bool_array(ddog_TracerSpanEvent *handle,
                                                                            ddog_CharSlice key,
                                                                            ddog_Slice_bool values) {
  if (!ddffi_slice_ok(values.ptr, values.len, sizeof(bool), _Alignof(bool))) return invalid_argument();
  /* Check the handle and key before allocating, as libdatadog's order. */
  if (!handle) return invalid_argument();
  ddffi_event_attr a;
  if (!array_attr(&a, values.len)) return out_of_memory();
  const uint8_t *raw = (const uint8_t *)values.ptr;
  for (size_t i = 0; i < values.len; i++) a.items[i] = (ddffi_attr_scalar){.type = DDFFI_ATTR_BOOL, .b = raw[i] != 0};
  a.n_items = values.len;
  return event_set(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_int_array(ddog_TracerSpanEvent *handle,
                                                                           ddog_CharSlice key,
                                                                           ddog_Slice_I64 values) {
  if (!ddffi_slice_ok(values.ptr, values.len, sizeof(int64_t), _Alignof(int64_t))) return invalid_argument();
  if (!handle) return invalid_argument();
  ddffi_event_attr a;
  if (!array_attr(&a, values.len)) return out_of_memory();
  for (size_t i = 0; i < values.len; i++) a.items[i] = (ddffi_attr_scalar){.type = DDFFI_ATTR_INT, .i = values.ptr[i]};
  a.n_items = values.len;
  return event_set(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_double_array(ddog_TracerSpanEvent *handle,
                                                                              ddog_CharSlice key,
                                                                              ddog_Slice_F64 values) {
  if (!ddffi_slice_ok(values.ptr, values.len, sizeof(double), _Alignof(double))) return invalid_argument();
  if (!handle) return invalid_argument();
  ddffi_event_attr a;
  if (!array_attr(&a, values.len)) return out_of_memory();
  for (size_t i = 0; i < values.len; i++)
    a.items[i] = (ddffi_attr_scalar){.type = DDFFI_ATTR_DOUBLE, .d = values.ptr[i]};
  a.n_items = values.len;
  return event_set(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_add_event(ddog_TracerSpan *span, ddog_TracerSpanEvent *event) {
  /* The event is consumed whatever happens; on error the span is unchanged. */
  if (!span) {
    ddog_tracer_span_event_free(event);
    return invalid_argument();
  }
  if (!event) return invalid_argument();
  if (!grow(&span->events, &span->cap_events, span->n_events + 1, sizeof *span->events)) {
    ddog_tracer_span_event_free(event);
    return out_of_memory();
  }
  span->events[span->n_events++] = *event; /* move the contents */
  free(event);
  ddffi_live_dec();
  return NULL;
}

/* ---- trace chunks ------------------------------------------------------- */

/* Capacities are only hints here. libdatadog passes them to
 * Vec::with_capacity, which panics (caught: Panic error) when the byte size
 * overflows isize; with a smaller but still absurd hint Rust would abort on
 * the failed allocation, while we just ignore the hint. Element sizes:
 * Vec<SpanBytes> is 24 bytes; SpanBytes is about 336 bytes on LP64. */
#define RUST_CHUNK_SIZE 24
#define RUST_SPAN_SIZE 336

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_trace_chunks_new(uintptr_t capacity,
                                                                   ddog_TracerTraceChunks **out_handle) {
  if (capacity > (uintptr_t)PTRDIFF_MAX / RUST_CHUNK_SIZE) return ddffi_error(E_PANIC, NULL);
  if (!out_handle) return invalid_argument();
  ddog_TracerTraceChunks *chunks = calloc(1, sizeof *chunks);
  if (!chunks) return out_of_memory();
  ddffi_live_inc();
  *out_handle = chunks;
  return NULL;
}

DDFFI_EXPORT void ddog_tracer_trace_chunks_free(ddog_TracerTraceChunks *handle) {
  if (!handle) return;
  /* The spans inside were uncounted when pushed: free them silently. */
  for (size_t c = 0; c < handle->len; c++) {
    for (size_t s = 0; s < handle->chunks[c].len; s++) ddffi_span_destroy(handle->chunks[c].spans[s]);
    free(handle->chunks[c].spans);
  }
  free(handle->chunks);
  free(handle);
  ddffi_live_dec();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_trace_chunks_begin_chunk(ddog_TracerTraceChunks *handle,
                                                                           uintptr_t capacity) {
  if (!handle) return invalid_argument();
  if (capacity > (uintptr_t)PTRDIFF_MAX / RUST_SPAN_SIZE) return ddffi_error(E_PANIC, NULL);
  if (!grow(&handle->chunks, &handle->cap, handle->len + 1, sizeof *handle->chunks)) return out_of_memory();
  handle->chunks[handle->len++] = (ddffi_chunk){0};
  return NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_trace_chunks_push_span(ddog_TracerTraceChunks *handle,
                                                                         ddog_TracerSpan *span) {
  /* The span is consumed whatever happens; without a chunk begun yet,
   * libdatadog drops it with InvalidArgument. */
  if (!handle || !span || handle->len == 0) {
    ddog_tracer_span_free(span);
    return invalid_argument();
  }
  ddffi_chunk *chunk = &handle->chunks[handle->len - 1];
  if (!grow(&chunk->spans, &chunk->cap, chunk->len + 1, sizeof *chunk->spans)) {
    ddog_tracer_span_free(span);
    return out_of_memory();
  }
  chunk->spans[chunk->len++] = span;
  ddffi_live_dec(); /* now owned by the chunks */
  return NULL;
}

size_t ddffi_chunks_len(const ddog_TracerTraceChunks *chunks) { return chunks ? chunks->len : 0; }

/* A span that single-span sampling or trace analytics keeps. */
static bool span_kept_alone(const ddog_TracerSpan *span) {
  const double *mechanism = ddffi_span_metric_get(span, "_dd.span_sampling.mechanism");
  return (mechanism && *mechanism == 8.0) || ddffi_span_metric_get(span, "_dd1.sr.eausr") != NULL;
}

/* libdatadog's drop_chunks (trace_utils.rs). */
void ddffi_chunks_drop_unsampled(ddog_TracerTraceChunks *chunks) {
  if (!chunks) return;
  size_t kept = 0;
  for (size_t c = 0; c < chunks->len; c++) {
    ddffi_chunk chunk = chunks->chunks[c];
    bool keep = false;
    for (size_t i = 0; i < chunk.len && !keep; i++) keep = chunk.spans[i]->error == 1;
    if (!keep) {
      /* The first span carrying a sampling priority decides. */
      const double *prio = NULL;
      for (size_t i = 0; i < chunk.len && !prio; i++) prio = ddffi_span_metric_get(chunk.spans[i], "_sampling_priority_v1");
      keep = !prio || *prio > 0.0;
    }
    if (!keep) {
      size_t n = 0;
      for (size_t i = 0; i < chunk.len; i++) {
        if (span_kept_alone(chunk.spans[i])) chunk.spans[n++] = chunk.spans[i];
        else ddffi_span_destroy(chunk.spans[i]); /* owned: not counted */
      }
      chunk.len = n;
      keep = n > 0;
      if (!keep) free(chunk.spans);
    }
    if (keep) chunks->chunks[kept++] = chunk;
  }
  chunks->len = kept;
}

/* ---- v0.4 msgpack encoding (span_v04.rs) -------------------------------- */

static void mp_s(ddffi_buf *b, const ddffi_str *s) { ddffi_mp_str(b, s->data, s->len); }

static void encode_links(ddffi_buf *b, const ddog_TracerSpan *span) {
  ddffi_mp_cstr(b, "span_links");
  ddffi_mp_array(b, (uint32_t)span->n_links);
  for (size_t i = 0; i < span->n_links; i++) {
    const ddffi_link *l = &span->links[i];
    ddffi_mp_map(b, 3 + (l->n_attrs != 0) + (l->tracestate.len != 0) + (l->flags != 0));
    ddffi_mp_cstr(b, "trace_id");
    ddffi_mp_u64(b, l->trace_id_low);
    ddffi_mp_cstr(b, "trace_id_high"); /* written even when 0 */
    ddffi_mp_u64(b, l->trace_id_high);
    ddffi_mp_cstr(b, "span_id");
    ddffi_mp_u64(b, l->span_id);
    if (l->n_attrs) {
      ddffi_mp_cstr(b, "attributes");
      ddffi_mp_map(b, (uint32_t)l->n_attrs);
      for (size_t k = 0; k < l->n_attrs; k++) {
        mp_s(b, &l->attrs[k].key);
        mp_s(b, &l->attrs[k].value);
      }
    }
    if (l->tracestate.len) {
      ddffi_mp_cstr(b, "tracestate");
      mp_s(b, &l->tracestate);
    }
    if (l->flags) {
      ddffi_mp_cstr(b, "flags");
      ddffi_mp_u32(b, l->flags); /* raw, bit 31 included, always 0xce */
    }
  }
}

/* {"type": <u8>, "<kind>_value": v}; the type is always written as 0xcc NN. */
static void encode_attr_scalar(ddffi_buf *b, const ddffi_attr_scalar *v) {
  ddffi_mp_map(b, 2);
  ddffi_mp_cstr(b, "type");
  ddffi_mp_u8(b, v->type);
  switch (v->type) {
  case DDFFI_ATTR_STRING:
    ddffi_mp_cstr(b, "string_value");
    mp_s(b, &v->s);
    break;
  case DDFFI_ATTR_BOOL:
    ddffi_mp_cstr(b, "bool_value");
    ddffi_mp_bool(b, v->b);
    break;
  case DDFFI_ATTR_INT:
    ddffi_mp_cstr(b, "int_value");
    ddffi_mp_sint(b, v->i);
    break;
  default:
    ddffi_mp_cstr(b, "double_value");
    ddffi_mp_f64(b, v->d);
    break;
  }
}

static void encode_events(ddffi_buf *b, const ddog_TracerSpan *span) {
  ddffi_mp_cstr(b, "span_events");
  ddffi_mp_array(b, (uint32_t)span->n_events);
  for (size_t i = 0; i < span->n_events; i++) {
    const ddffi_event *ev = &span->events[i];
    ddffi_mp_map(b, 2 + (ev->n_attrs != 0));
    ddffi_mp_cstr(b, "time_unix_nano");
    ddffi_mp_u64(b, ev->time_unix_nano);
    ddffi_mp_cstr(b, "name");
    mp_s(b, &ev->name);
    if (!ev->n_attrs) continue;
    ddffi_mp_cstr(b, "attributes");
    ddffi_mp_map(b, (uint32_t)ev->n_attrs);
    for (size_t k = 0; k < ev->n_attrs; k++) {
      const ddffi_event_attr *a = &ev->attrs[k];
      mp_s(b, &a->key);
      if (!a->is_array) {
        encode_attr_scalar(b, &a->single);
        continue;
      }
      /* {"type": 4, "array_value": {"values": [scalar maps...]}} */
      ddffi_mp_map(b, 2);
      ddffi_mp_cstr(b, "type");
      ddffi_mp_u8(b, 4);
      ddffi_mp_cstr(b, "array_value");
      ddffi_mp_map(b, 1);
      ddffi_mp_cstr(b, "values");
      ddffi_mp_array(b, (uint32_t)a->n_items);
      for (size_t j = 0; j < a->n_items; j++) encode_attr_scalar(b, &a->items[j]);
    }
  }
}

static void encode_span(ddffi_buf *b, const ddog_TracerSpan *span) {
  uint32_t n = 7 + (span->type.len != 0) + (span->parent_id != 0) + (span->error != 0) + (span->meta.len != 0) +
               (span->metrics.len != 0) + (span->meta_struct.len != 0) + (span->n_links != 0) +
               (span->n_events != 0);
  ddffi_mp_map(b, n);
  ddffi_mp_cstr(b, "service");
  mp_s(b, &span->service);
  ddffi_mp_cstr(b, "name");
  mp_s(b, &span->name);
  ddffi_mp_cstr(b, "resource");
  mp_s(b, &span->resource);
  ddffi_mp_cstr(b, "trace_id");
  ddffi_mp_u64(b, span->trace_id_low); /* the low 64 bits only */
  ddffi_mp_cstr(b, "span_id");
  ddffi_mp_u64(b, span->span_id);
  if (span->parent_id) {
    ddffi_mp_cstr(b, "parent_id");
    ddffi_mp_u64(b, span->parent_id);
  }
  ddffi_mp_cstr(b, "start");
  ddffi_mp_i64(b, span->start);
  ddffi_mp_cstr(b, "duration");
  ddffi_mp_sint(b, span->duration);
  if (span->error) {
    ddffi_mp_cstr(b, "error");
    ddffi_mp_sint(b, span->error);
  }
  /* Maps go out newest-first: see ddffi_str_map in span.h. */
  if (span->meta.len) {
    ddffi_mp_cstr(b, "meta");
    ddffi_mp_map(b, (uint32_t)span->meta.len);
    for (size_t i = span->meta.len; i-- > 0;) {
      mp_s(b, &span->meta.items[i].key);
      mp_s(b, &span->meta.items[i].value);
    }
  }
  if (span->metrics.len) {
    ddffi_mp_cstr(b, "metrics");
    ddffi_mp_map(b, (uint32_t)span->metrics.len);
    for (size_t i = span->metrics.len; i-- > 0;) {
      mp_s(b, &span->metrics.items[i].key);
      ddffi_mp_f64(b, span->metrics.items[i].value);
    }
  }
  if (span->type.len) {
    ddffi_mp_cstr(b, "type");
    mp_s(b, &span->type);
  }
  if (span->meta_struct.len) {
    ddffi_mp_cstr(b, "meta_struct");
    ddffi_mp_map(b, (uint32_t)span->meta_struct.len);
    for (size_t i = span->meta_struct.len; i-- > 0;) {
      mp_s(b, &span->meta_struct.items[i].key);
      ddffi_mp_bin(b, span->meta_struct.items[i].value.data, span->meta_struct.items[i].value.len);
    }
  }
  if (span->n_links) encode_links(b, span);
  if (span->n_events) encode_events(b, span);
}

void ddffi_encode_v04(const ddog_TracerTraceChunks *chunks, ddffi_buf *out) {
  size_t n = chunks ? chunks->len : 0;
  ddffi_mp_array(out, (uint32_t)n);
  for (size_t c = 0; c < n; c++) {
    const ddffi_chunk *chunk = &chunks->chunks[c];
    ddffi_mp_array(out, (uint32_t)chunk->len);
    for (size_t s = 0; s < chunk->len; s++) encode_span(out, chunk->spans[s]);
  }
}
