/* OTLP/HTTP JSON ExportTraceServiceRequest from trace chunks, following
 * libdatadog's otlp_encoder (mapper.rs for what goes where, json_serializer.rs
 * + serde_json for the exact text). */
#include "span.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTRIBUTES_PER_SPAN 128
#define MAX_EVENTS_PER_SPAN 128
#define SPAN_LINK_FLAGS_SET_SENTINEL 0x80000000u

/* OTLP SpanKind */
enum { KIND_UNSPECIFIED = 0, KIND_INTERNAL = 1, KIND_SERVER = 2, KIND_CLIENT = 3, KIND_PRODUCER = 4, KIND_CONSUMER = 5 };

/* ---- JSON text, as serde_json writes it (compact, no spaces) ------------ */

static void j_raw(ddffi_buf *b, const char *s) { ddffi_buf_put(b, s, strlen(s)); }

/* A JSON string: `"`, `\` and control characters escaped as serde_json
 * does (\b \t \n \f \r, others \u00xx in lowercase hex); everything else,
 * UTF-8 and DEL included, passes through. */
static void j_str(ddffi_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  ddffi_buf_put(b, "\"", 1);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[7];
    if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c == '\b') esc = "\\b";
    else if (c == '\f') esc = "\\f";
    else if (c == '\n') esc = "\\n";
    else if (c == '\r') esc = "\\r";
    else if (c == '\t') esc = "\\t";
    else if (c < 0x20) {
      memcpy(u, "\\u00", 4);
      u[4] = hex[c >> 4];
      u[5] = hex[c & 15];
      u[6] = 0;
      esc = u;
    }
    if (!esc) continue;
    ddffi_buf_put(b, s + start, i - start);
    j_raw(b, esc);
    start = i + 1;
  }
  ddffi_buf_put(b, s + start, n - start);
  ddffi_buf_put(b, "\"", 1);
}

static void j_s(ddffi_buf *b, const ddffi_str *s) { j_str(b, s->data, s->len); }

static void j_u64(ddffi_buf *b, uint64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
  ddffi_buf_put(b, tmp, (size_t)n);
}

static void j_i64(ddffi_buf *b, int64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
  ddffi_buf_put(b, tmp, (size_t)n);
}

/* 64-bit integers (timestamps, intValue) are decimal strings in OTLP/JSON. */
static void j_u64_str(ddffi_buf *b, uint64_t v) {
  ddffi_buf_put(b, "\"", 1);
  j_u64(b, v);
  ddffi_buf_put(b, "\"", 1);
}

static void j_i64_str(ddffi_buf *b, int64_t v) {
  ddffi_buf_put(b, "\"", 1);
  j_i64(b, v);
  ddffi_buf_put(b, "\"", 1);
}

/* Shortest round-tripping decimal digits of v > 0 (finite): digits[0..*len]
 * and the power of ten of the first digit. Like Ryu, also accepts the next
 * decimal up when the nearest one falls outside v's (asymmetric) interval. */
static void shortest_digits(double v, char digits[18], int *len, int *exp10) {
  char tmp[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    int n = 0, e = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++)
      if (*p >= '0' && *p <= '9') digits[n++] = *p;
    e = atoi(p + 1);
    double back = strtod(tmp, NULL);
    if (back != v && back < v && prec < 17) {
      /* Try the candidate one unit up in the last digit. */
      char up[18];
      memcpy(up, digits, (size_t)n);
      int i = n - 1;
      while (i >= 0 && up[i] == '9') up[i--] = '0';
      int e_up = e;
      if (i >= 0) {
        up[i]++;
      } else { /* 99..9 -> 100..0 */
        up[0] = '1';
        e_up++;
      }
      char cand[48];
      snprintf(cand, sizeof cand, "%.*se%d", n, up, e_up - (n - 1)); /* integer digits */
      if (strtod(cand, NULL) == v) {
        memcpy(digits, up, (size_t)n);
        e = e_up;
        back = v;
      }
    }
    if (back == v || prec == 17) {
      while (n > 1 && digits[n - 1] == '0') n--;
      *len = n;
      *exp10 = e;
      return;
    }
  }
}

/* A double as serde_json writes it (Ryu's format, e.g. 1.0, 0.001, 1e16,
 * 1.5e-7); NaN and infinities become null. */
static void j_f64(ddffi_buf *b, double v) {
  if (!isfinite(v)) {
    j_raw(b, "null");
    return;
  }
  char out[64];
  int pos = 0;
  if (signbit(v)) {
    out[pos++] = '-';
    v = -v;
  }
  if (v == 0) {
    memcpy(out + pos, "0.0", 3);
    ddffi_buf_put(b, out, (size_t)pos + 3);
    return;
  }
  char d[18];
  int len, e10;
  shortest_digits(v, d, &len, &e10);
  int kk = e10 + 1; /* 10^(kk-1) <= v < 10^kk */
  int k = kk - len; /* power of ten of the last digit */
  if (k >= 0 && kk <= 16) {
    memcpy(out + pos, d, (size_t)len);
    pos += len;
    for (int i = len; i < kk; i++) out[pos++] = '0';
    memcpy(out + pos, ".0", 2);
    pos += 2;
  } else if (kk > 0 && kk <= 16) {
    memcpy(out + pos, d, (size_t)kk);
    pos += kk;
    out[pos++] = '.';
    memcpy(out + pos, d + kk, (size_t)(len - kk));
    pos += len - kk;
  } else if (kk > -5 && kk <= 0) {
    out[pos++] = '0';
    out[pos++] = '.';
    for (int i = 0; i < -kk; i++) out[pos++] = '0';
    memcpy(out + pos, d, (size_t)len);
    pos += len;
  } else {
    out[pos++] = d[0];
    if (len > 1) {
      out[pos++] = '.';
      memcpy(out + pos, d + 1, (size_t)(len - 1));
      pos += len - 1;
    }
    pos += snprintf(out + pos, sizeof out - (size_t)pos, "e%d", kk - 1);
  }
  ddffi_buf_put(b, out, (size_t)pos);
}

/* Ids are the big-endian bytes in lowercase hex. */
static void j_hex_id(ddffi_buf *b, uint64_t high, uint64_t low, bool with_high) {
  char tmp[40];
  int n = with_high ? snprintf(tmp, sizeof tmp, "\"%016" PRIx64 "%016" PRIx64 "\"", high, low)
                    : snprintf(tmp, sizeof tmp, "\"%016" PRIx64 "\"", low);
  ddffi_buf_put(b, tmp, (size_t)n);
}

/* bytesValue: standard base64 with padding. */
static void j_base64(ddffi_buf *b, const uint8_t *p, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  ddffi_buf_put(b, "\"", 1);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n) v |= p[i + 2];
    char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=', i + 2 < n ? tab[v & 63] : '='};
    ddffi_buf_put(b, q, 4);
  }
  ddffi_buf_put(b, "\"", 1);
}

/* ---- attributes --------------------------------------------------------- */

/* Starts {"key":K,"value":{ ... the caller writes one typed entry, then kv_end. */
static void kv_begin(ddffi_buf *b, bool *first, const char *key, size_t key_len) {
  if (!*first) j_raw(b, ",");
  *first = false;
  j_raw(b, "{\"key\":");
  j_str(b, key, key_len);
  j_raw(b, ",\"value\":{");
}
static void kv_end(ddffi_buf *b) { j_raw(b, "}}"); }

static void kv_string(ddffi_buf *b, bool *first, const char *key, size_t key_len, const char *v, size_t v_len) {
  kv_begin(b, first, key, key_len);
  j_raw(b, "\"stringValue\":");
  j_str(b, v, v_len);
  kv_end(b);
}

static void scalar_value(ddffi_buf *b, const ddffi_attr_scalar *v) {
  switch (v->type) {
  case DDFFI_ATTR_STRING:
    j_raw(b, "\"stringValue\":");
    j_s(b, &v->s);
    break;
  case DDFFI_ATTR_BOOL:
    j_raw(b, v->b ? "\"boolValue\":true" : "\"boolValue\":false");
    break;
  case DDFFI_ATTR_INT:
    j_raw(b, "\"intValue\":");
    j_i64_str(b, v->i);
    break;
  default:
    j_raw(b, "\"doubleValue\":");
    j_f64(b, v->d);
    break;
  }
}

static void event_attributes(ddffi_buf *b, const ddffi_event *ev) {
  bool first = true;
  j_raw(b, "[");
  for (size_t i = 0; i < ev->n_attrs; i++) {
    const ddffi_event_attr *a = &ev->attrs[i];
    kv_begin(b, &first, a->key.data, a->key.len);
    if (!a->is_array) {
      scalar_value(b, &a->single);
    } else {
      j_raw(b, "\"arrayValue\":{\"values\":[");
      for (size_t k = 0; k < a->n_items; k++) {
        j_raw(b, k ? ",{" : "{");
        scalar_value(b, &a->items[k]);
        j_raw(b, "}");
      }
      j_raw(b, "]}");
    }
    kv_end(b);
  }
  j_raw(b, "]");
}

/* A metric is an intValue when integral and within i64 range (Rust's `as`
 * cast saturates at the top), else a doubleValue. */
static void metric_value(ddffi_buf *b, double v) {
  if (v == trunc(v) && v >= -9223372036854775808.0 && v <= 9223372036854775808.0) {
    int64_t i = v >= 9223372036854775808.0 ? INT64_MAX : (int64_t)v;
    j_raw(b, "\"intValue\":");
    j_i64_str(b, i);
  } else {
    j_raw(b, "\"doubleValue\":");
    j_f64(b, v);
  }
}

/* A span's attributes: per-span service.name (when it differs from the
 * resource's), operation.name, span.type, resource.name, then meta, metrics,
 * meta_struct, at most 128 in all. Returns how many were dropped. (The
 * OTel-semantics mode that omits the DD-specific ones is not reachable
 * through the C ABI.) */
static size_t span_attributes(ddffi_buf *b, const ddog_TracerSpan *span, const ddffi_str *resource_service) {
  bool first = true;
  size_t count = 0, promoted = 0;
  j_raw(b, "\"attributes\":[");
  if (span->service.len && !(span->service.len == resource_service->len &&
                             memcmp(span->service.data, resource_service->data, span->service.len) == 0)) {
    kv_string(b, &first, "service.name", 12, span->service.data, span->service.len);
    promoted++;
  }
  if (span->name.len) {
    kv_string(b, &first, "operation.name", 14, span->name.data, span->name.len);
    promoted++;
  }
  if (span->type.len) {
    kv_string(b, &first, "span.type", 9, span->type.data, span->type.len);
    promoted++;
  }
  if (span->resource.len) {
    kv_string(b, &first, "resource.name", 13, span->resource.data, span->resource.len);
    promoted++;
  }
  count = promoted;
  /* Maps in wire order (newest first), as after libdatadog's dedup. */
  for (size_t i = span->meta.len; i-- > 0 && count < MAX_ATTRIBUTES_PER_SPAN; count++) {
    const ddffi_str_entry *e = &span->meta.items[i];
    kv_string(b, &first, e->key.data, e->key.len, e->value.data, e->value.len);
  }
  for (size_t i = span->metrics.len; i-- > 0 && count < MAX_ATTRIBUTES_PER_SPAN; count++) {
    const ddffi_f64_entry *e = &span->metrics.items[i];
    kv_begin(b, &first, e->key.data, e->key.len);
    metric_value(b, e->value);
    kv_end(b);
  }
  for (size_t i = span->meta_struct.len; i-- > 0 && count < MAX_ATTRIBUTES_PER_SPAN; count++) {
    const ddffi_str_entry *e = &span->meta_struct.items[i];
    kv_begin(b, &first, e->key.data, e->key.len);
    j_raw(b, "\"bytesValue\":");
    j_base64(b, (const uint8_t *)e->value.data, e->value.len);
    kv_end(b);
  }
  j_raw(b, "]");
  return promoted + span->meta.len + span->metrics.len + span->meta_struct.len - count;
}

/* ---- span mapping ------------------------------------------------------- */

static bool ascii_ieq(const ddffi_str *s, const char *lit) {
  size_t n = strlen(lit);
  if (s->len != n) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s->data[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != lit[i]) return false;
  }
  return true;
}

/* The explicit span.kind meta tag wins, else the Datadog span type. */
static int span_kind(const ddog_TracerSpan *span) {
  const ddffi_str *tag = ddffi_span_meta_get(span, "span.kind");
  if (tag) {
    if (ascii_ieq(tag, "server")) return KIND_SERVER;
    if (ascii_ieq(tag, "client")) return KIND_CLIENT;
    if (ascii_ieq(tag, "producer")) return KIND_PRODUCER;
    if (ascii_ieq(tag, "consumer")) return KIND_CONSUMER;
    if (ascii_ieq(tag, "internal")) return KIND_INTERNAL;
    return KIND_UNSPECIFIED;
  }
  const ddffi_str *t = &span->type;
  if (ascii_ieq(t, "server") || ascii_ieq(t, "web") || ascii_ieq(t, "http")) return KIND_SERVER;
  if (ascii_ieq(t, "client")) return KIND_CLIENT;
  if (ascii_ieq(t, "producer")) return KIND_PRODUCER;
  if (ascii_ieq(t, "consumer")) return KIND_CONSUMER;
  return KIND_INTERNAL;
}

/* Rust's u64::from_str_radix(s, 16): optional '+', then 1+ hex digits, no overflow. */
static bool parse_hex_u64(const ddffi_str *s, uint64_t *out) {
  size_t i = 0;
  if (s->len && s->data[0] == '+') i = 1;
  if (i == s->len) return false;
  uint64_t v = 0;
  for (; i < s->len; i++) {
    char c = s->data[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
    else return false;
    if (v > (UINT64_MAX >> 4)) return false;
    v = (v << 4) | d;
  }
  *out = v;
  return true;
}

/* The high 64 bits of the chunk's trace id: the first span with a native
 * high part, or else a parsable _dd.p.tid meta tag; 0 when none. Applied to
 * every span of the chunk. */
static uint64_t chunk_trace_id_high(const ddffi_chunk *chunk) {
  for (size_t i = 0; i < chunk->len; i++) {
    const ddog_TracerSpan *s = chunk->spans[i];
    if (s->trace_id_high) return s->trace_id_high;
    const ddffi_str *tid = ddffi_span_meta_get(s, "_dd.p.tid");
    uint64_t v;
    if (tid && parse_hex_u64(tid, &v)) return v;
  }
  return 0;
}

static void map_link(ddffi_buf *b, const ddffi_link *l) {
  j_raw(b, "{\"traceId\":");
  j_hex_id(b, l->trace_id_high, l->trace_id_low, true);
  j_raw(b, ",\"spanId\":");
  j_hex_id(b, 0, l->span_id, false);
  if (l->tracestate.len) {
    j_raw(b, ",\"traceState\":");
    j_s(b, &l->tracestate);
  }
  if (l->n_attrs) {
    bool first = true;
    j_raw(b, ",\"attributes\":[");
    for (size_t i = 0; i < l->n_attrs; i++)
      kv_string(b, &first, l->attrs[i].key.data, l->attrs[i].key.len, l->attrs[i].value.data, l->attrs[i].value.len);
    j_raw(b, "]");
  }
  /* Bit 31 is libdatadog's internal "flags set" sentinel: masked for OTLP. */
  uint32_t flags = l->flags & ~SPAN_LINK_FLAGS_SET_SENTINEL;
  if (flags) {
    j_raw(b, ",\"flags\":");
    j_u64(b, flags);
  }
  j_raw(b, "}");
}

static void map_span(ddffi_buf *b, const ddog_TracerSpan *span, const ddffi_str *resource_service, uint64_t high) {
  j_raw(b, "{\"traceId\":");
  j_hex_id(b, high, span->trace_id_low, true);
  j_raw(b, ",\"spanId\":");
  j_hex_id(b, 0, span->span_id, false);
  if (span->parent_id) {
    j_raw(b, ",\"parentSpanId\":");
    j_hex_id(b, 0, span->parent_id, false);
  }
  const ddffi_str *ts = ddffi_span_meta_get(span, "tracestate");
  if (ts && ts->len) {
    j_raw(b, ",\"traceState\":");
    j_s(b, ts);
  }
  /* The OTLP span name is the Datadog resource. */
  j_raw(b, ",\"name\":");
  j_s(b, &span->resource);
  j_raw(b, ",\"kind\":");
  j_i64(b, span_kind(span));
  /* Negative times clamp to 0; the end is start + duration (wrapping). */
  int64_t end = (int64_t)((uint64_t)span->start + (uint64_t)span->duration);
  j_raw(b, ",\"startTimeUnixNano\":");
  j_u64_str(b, span->start > 0 ? (uint64_t)span->start : 0);
  j_raw(b, ",\"endTimeUnixNano\":");
  j_u64_str(b, end > 0 ? (uint64_t)end : 0);

  /* Attributes go to a scratch buffer: omitted altogether when empty. */
  ddffi_buf attrs = {0};
  size_t dropped = span_attributes(&attrs, span, resource_service);
  if (attrs.failed) b->failed = true;
  if (attrs.len > sizeof "\"attributes\":[]" - 1) {
    j_raw(b, ",");
    ddffi_buf_put(b, attrs.data, attrs.len);
  }
  ddffi_buf_free(&attrs);
  if (dropped) {
    j_raw(b, ",\"droppedAttributesCount\":");
    j_u64(b, dropped);
  }

  size_t n_events = span->n_events < MAX_EVENTS_PER_SPAN ? span->n_events : MAX_EVENTS_PER_SPAN;
  if (n_events) {
    j_raw(b, ",\"events\":[");
    for (size_t i = 0; i < n_events; i++) {
      const ddffi_event *ev = span->events[i];
      j_raw(b, i ? ",{\"timeUnixNano\":" : "{\"timeUnixNano\":");
      j_u64_str(b, ev->time_unix_nano);
      j_raw(b, ",\"name\":");
      j_s(b, &ev->name);
      if (ev->n_attrs) {
        j_raw(b, ",\"attributes\":");
        event_attributes(b, ev);
      }
      j_raw(b, "}");
    }
    j_raw(b, "]");
  }
  if (span->n_events > n_events) {
    j_raw(b, ",\"droppedEventsCount\":");
    j_u64(b, span->n_events - n_events);
  }

  if (span->n_links) {
    j_raw(b, ",\"links\":[");
    for (size_t i = 0; i < span->n_links; i++) {
      if (i) j_raw(b, ",");
      map_link(b, &span->links[i]);
    }
    j_raw(b, "]");
  }

  /* Status: ERROR (2) with error.msg or else error.message when error != 0,
   * else UNSET (0). Always present; an empty message is omitted. */
  j_raw(b, ",\"status\":{");
  if (span->error != 0) {
    const ddffi_str *msg = ddffi_span_meta_get(span, "error.msg");
    if (!msg) msg = ddffi_span_meta_get(span, "error.message");
    if (msg && msg->len) {
      j_raw(b, "\"message\":");
      j_s(b, msg);
      j_raw(b, ",");
    }
    j_raw(b, "\"code\":2}");
  } else {
    j_raw(b, "\"code\":0}");
  }

  /* W3C sampled flag from the sampling priority. */
  const double *prio = ddffi_span_metric_get(span, "_sampling_priority_v1");
  if (prio && *prio >= 1.0) j_raw(b, ",\"flags\":1");
  j_raw(b, "}");
}

static void resource_attr(ddffi_buf *b, bool *first, const char *key, const ddffi_str *v) {
  if (v->len) kv_string(b, first, key, strlen(key), v->data, v->len);
}

void ddffi_encode_otlp_json(const ddog_TracerTraceChunks *chunks, const ddffi_otlp_resource *resource,
                            ddffi_buf *out) {
  static const ddffi_otlp_resource none = {0};
  if (!resource) resource = &none;
  bool first = true;
  j_raw(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
  resource_attr(out, &first, "service.name", &resource->service);
  resource_attr(out, &first, "deployment.environment.name", &resource->env);
  resource_attr(out, &first, "service.version", &resource->version);
  kv_string(out, &first, "telemetry.sdk.name", 18, "datadog", 7);
  resource_attr(out, &first, "telemetry.sdk.language", &resource->language);
  resource_attr(out, &first, "telemetry.sdk.version", &resource->tracer_version);
  resource_attr(out, &first, "runtime-id", &resource->runtime_id);
  if (resource->client_computed_stats) kv_string(out, &first, "_dd.stats_computed", 18, "true", 4);
  /* hostname and lang_version are not mapped by libdatadog. */
  j_raw(out, "]},\"scopeSpans\":[{\"scope\":{");
  if (resource->scope_name.len) {
    j_raw(out, "\"name\":");
    j_s(out, &resource->scope_name);
  }
  if (resource->scope_version.len) {
    j_raw(out, resource->scope_name.len ? ",\"version\":" : "\"version\":");
    j_s(out, &resource->scope_version);
  }
  j_raw(out, "}");
  size_t total = 0;
  for (size_t c = 0; chunks && c < chunks->len; c++) total += chunks->chunks[c].len;
  if (total) {
    bool first_span = true;
    j_raw(out, ",\"spans\":[");
    for (size_t c = 0; c < chunks->len; c++) {
      const ddffi_chunk *chunk = &chunks->chunks[c];
      uint64_t high = chunk_trace_id_high(chunk);
      for (size_t s = 0; s < chunk->len; s++) {
        if (!first_span) j_raw(out, ",");
        first_span = false;
        map_span(out, chunk->spans[s], &resource->service, high);
      }
    }
    j_raw(out, "]");
  }
  j_raw(out, "}]}]}");
}
