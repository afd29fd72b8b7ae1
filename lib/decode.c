/*
 * The v0.4 msgpack decoder behind ddog_trace_exporter_send: libdatadog
 * decodes the payload it is given (libdd-trace-utils msgpack_decoder::v04)
 * and encodes the spans again, so this rebuilds them through the span ABI
 * and the caller encodes them with ddffi_encode_v04. Acceptance rules and
 * messages follow the Rust decoder.
 */
#include "exporter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define E(code) DDOG_TRACE_EXPORTER_ERROR_CODE_##code

typedef struct dec {
  const uint8_t *p, *end;
  ddog_TraceExporterError *err; /* the first error */
} dec;

/* DecodeError kinds, as their Display writes them. */
#define INVALID_FORMAT "Invalid format: "
#define INVALID_TYPE "Invalid type encountered: "
#define INVALID_CONVERSION "Failed to convert value: "
#define UTF8_ERROR "Failed to read utf8 value: "

static bool fail(dec *d, const char *kind, const char *msg) {
  if (!d->err) d->err = ddffi_errorf(E(SERDE), "Deserialization of incoming payload: %s%s", kind, msg);
  return false;
}

static bool fail_io(dec *d) {
  if (!d->err) d->err = ddffi_error(E(SERDE), "Deserialization of incoming payload: Failed to read from buffer");
  return false;
}

static bool fail_abi(dec *d, ddog_TraceExporterError *e) {
  if (!d->err) d->err = e;
  else ddog_trace_exporter_error_free(e);
  return false;
}

static size_t left(const dec *d) { return (size_t)(d->end - d->p); }

static uint64_t be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

/* Reads an n-byte big-endian integer after the marker; false if too short. */
static bool take_be(dec *d, int n, uint64_t *v) {
  if (left(d) < (size_t)n) return false;
  *v = be(d->p, n);
  d->p += n;
  return true;
}

static bool is_nil(dec *d) {
  if (left(d) && *d->p == 0xc0) {
    d->p++;
    return true;
  }
  return false;
}

/* rmp's read_array_len / read_map_len: the fix, 16- and 32-bit forms. */
static bool container_len(dec *d, uint8_t fix, uint8_t m16, uint32_t *len) {
  if (!left(d)) return false;
  uint8_t m = *d->p;
  uint64_t v;
  if ((m & 0xf0) == fix) {
    d->p++;
    *len = m & 0x0f;
    return true;
  }
  if (m != m16 && m != m16 + 1) return false;
  d->p++;
  if (!take_be(d, m == m16 ? 2 : 4, &v)) return false;
  *len = (uint32_t)v;
  return true;
}

static bool array_len(dec *d, uint32_t *len) { return container_len(d, 0x90, 0xdc, len); }
static bool map_len(dec *d, uint32_t *len) { return container_len(d, 0x80, 0xde, len); }

/* rmp's Marker, as Debug prints it. */
static void marker_name(uint8_t m, char *out, size_t n) {
  static const char *names[] = {"Null", "Reserved", "False", "True", "Bin8", "Bin16", "Bin32", "Ext8",
                                "Ext16", "Ext32", "F32", "F64", "U8", "U16", "U32", "U64",
                                "I8", "I16", "I32", "I64", "FixExt1", "FixExt2", "FixExt4", "FixExt8",
                                "FixExt16", "Str8", "Str16", "Str32", "Array16", "Array32", "Map16", "Map32"};
  if (m <= 0x7f) snprintf(out, n, "FixPos(%u)", m);
  else if (m <= 0x8f) snprintf(out, n, "FixMap(%u)", m & 0x0f);
  else if (m <= 0x9f) snprintf(out, n, "FixArray(%u)", m & 0x0f);
  else if (m <= 0xbf) snprintf(out, n, "FixStr(%u)", m & 0x1f);
  else if (m >= 0xe0) snprintf(out, n, "FixNeg(%d)", (int8_t)m);
  else snprintf(out, n, "%s", names[m - 0xc0]);
}

/* Where str::from_utf8 fails, as its Utf8Error Display says. */
static void utf8_error(const uint8_t *p, size_t n, char *out, size_t outn) {
  for (size_t i = 0; i < n;) {
    bool valid;
    size_t k = ddffi_utf8_step(p + i, n - i, &valid);
    if (!valid) {
      /* a prefix cut short by the end of the string is "incomplete" */
      if (p[i] >= 0xC2 && p[i] <= 0xF4 && i + k == n)
        snprintf(out, outn, "incomplete utf-8 byte sequence from index %zu", i);
      else
        snprintf(out, outn, "invalid utf-8 sequence of %zu bytes from index %zu", k, i);
      return;
    }
    i += k;
  }
  snprintf(out, outn, "invalid utf-8");
}

/* Buffer::read_string (rmp read_str_from_slice): a str8/16/32 or fixstr, UTF-8. */
static bool read_str(dec *d, ddog_CharSlice *s) {
  if (!left(d)) return fail(d, INVALID_FORMAT, "failed to fill whole buffer");
  uint8_t m = *d->p;
  uint64_t n;
  if (m >= 0xa0 && m <= 0xbf) {
    d->p++;
    n = m & 0x1f;
  } else if (m >= 0xd9 && m <= 0xdb) {
    d->p++;
    if (!take_be(d, 1 << (m - 0xd9), &n)) return fail(d, INVALID_CONVERSION, "failed to fill whole buffer");
  } else {
    char name[32], msg[64];
    marker_name(m, name, sizeof name);
    snprintf(msg, sizeof msg, "Type mismatch at marker %s", name);
    return fail(d, INVALID_TYPE, msg);
  }
  if (n > left(d)) return fail_io(d);
  if (!ddffi_utf8_valid(d->p, (size_t)n)) {
    char msg[96];
    utf8_error(d->p, (size_t)n, msg, sizeof msg);
    return fail(d, UTF8_ERROR, msg);
  }
  *s = (ddog_CharSlice){(const char *)d->p, (uintptr_t)n};
  d->p += n;
  return true;
}

static bool read_nullable_str(dec *d, ddog_CharSlice *s) {
  if (is_nil(d)) {
    *s = (ddog_CharSlice){"", 0};
    return true;
  }
  return read_str(d, s);
}

static bool str_is(ddog_CharSlice s, const char *lit) { return s.len == strlen(lit) && !memcmp(s.ptr, lit, s.len); }

/* ---- numbers (decode/number.rs) --------------------------------------------- */

typedef struct number {
  enum { NUM_UNSIGNED, NUM_SIGNED, NUM_FLOAT } kind;
  uint64_t u;
  int64_t i;
  double f;
} number;

static bool read_num(dec *d, bool allow_null, number *out) {
  if (!left(d)) return fail(d, INVALID_FORMAT, "Unable to read marker for number");
  uint8_t m = *d->p++;
  uint64_t v;
  *out = (number){.kind = NUM_UNSIGNED};
  if (m <= 0x7f) {
    out->u = m;
  } else if (m >= 0xe0) {
    out->kind = NUM_SIGNED;
    out->i = (int8_t)m;
  } else if (m >= 0xcc && m <= 0xcf) {
    if (!take_be(d, 1 << (m - 0xcc), &v)) return fail_io(d);
    out->u = v;
  } else if (m >= 0xd0 && m <= 0xd3) {
    int n = 1 << (m - 0xd0);
    if (!take_be(d, n, &v)) return fail_io(d);
    out->kind = NUM_SIGNED;
    out->i = n == 8 ? (int64_t)v : (int64_t)(v ^ (1ull << (8 * n - 1))) - (int64_t)(1ull << (8 * n - 1));
  } else if (m == 0xca || m == 0xcb) {
    if (!take_be(d, m == 0xca ? 4 : 8, &v)) return fail_io(d);
    out->kind = NUM_FLOAT;
    if (m == 0xca) {
      uint32_t bits = (uint32_t)v;
      float f;
      memcpy(&f, &bits, 4);
      out->f = f;
    } else {
      memcpy(&out->f, &v, 8);
    }
  } else if (m == 0xc0 && allow_null) {
    out->u = 0;
  } else {
    return fail(d, INVALID_TYPE, "Invalid number type");
  }
  return true;
}

static bool out_of_bounds(dec *d, const number *n) {
  char msg[64];
  if (n->kind == NUM_SIGNED) snprintf(msg, sizeof msg, "%lld is out of bounds for conversion", (long long)n->i);
  else snprintf(msg, sizeof msg, "%llu is out of bounds for conversion", (unsigned long long)n->u);
  return fail(d, INVALID_CONVERSION, msg);
}

/* Number::bounded_int_conversion into [lo, hi] (hi of a u64 is unbounded). */
static bool to_int(dec *d, const number *n, int64_t lo, uint64_t hi, uint64_t *bits) {
  if (n->kind == NUM_FLOAT) return fail(d, INVALID_CONVERSION, "Cannot convert float to int");
  if (n->kind == NUM_SIGNED) {
    if (n->i < lo || (n->i >= 0 && (uint64_t)n->i > hi)) return out_of_bounds(d, n);
    *bits = (uint64_t)n->i;
  } else {
    if (n->u > hi) return out_of_bounds(d, n);
    *bits = n->u;
  }
  return true;
}

static bool read_u64(dec *d, bool nullable, uint64_t *v) {
  number n;
  return read_num(d, nullable, &n) && to_int(d, &n, 0, UINT64_MAX, v);
}

static bool read_i64(dec *d, bool nullable, int64_t *v) {
  number n;
  uint64_t bits = 0;
  if (!read_num(d, nullable, &n) || !to_int(d, &n, INT64_MIN, INT64_MAX, &bits)) return false;
  *v = (int64_t)bits;
  return true;
}

static bool read_f64(dec *d, double *v) {
  number n;
  if (!read_num(d, false, &n)) return false;
  *v = n.kind == NUM_FLOAT ? n.f : n.kind == NUM_SIGNED ? (double)n.i : (double)n.u;
  return true;
}

/* ---- a span under construction ------------------------------------------------ */

typedef struct meta_kv {
  ddog_CharSlice key, value;
} meta_kv;
typedef struct metric_kv {
  ddog_CharSlice key;
  double value;
} metric_kv;
typedef struct struct_kv {
  ddog_CharSlice key;
  ddog_ByteSlice value;
} struct_kv;

typedef struct attr {
  ddog_CharSlice key;
  uint8_t type; /* 0 string, 1 bool, 2 int, 3 double, 4 array */
  uint8_t elem; /* arrays: element type, 0xff when empty */
  ddog_CharSlice s;
  bool b;
  int64_t i;
  double f;
  ddffi_buf values; /* arrays: CharSlice / bool / int64_t / double items */
  size_t count;
} attr;

typedef struct event {
  ddog_CharSlice name;
  uint64_t time;
  ddffi_buf attrs; /* attr */
} event;

typedef struct link {
  ddog_TracerSpanLink link;
  ddffi_buf attrs; /* ddog_TracerSpanLinkAttribute */
} link;

typedef struct span_parts {
  ddog_TracerSpanFields f;
  ddffi_buf meta, metrics, meta_struct; /* meta_kv, metric_kv, struct_kv */
  ddffi_buf links, events;              /* link, event */
} span_parts;

#define ITEMS(buf, type) ((type *)(buf).data)
#define COUNT(buf, type) ((buf).len / sizeof(type))

static void free_attrs(ddffi_buf *attrs) {
  for (size_t i = 0; i < COUNT(*attrs, attr); i++) ddffi_buf_free(&ITEMS(*attrs, attr)[i].values);
  ddffi_buf_free(attrs);
}

static void free_events(ddffi_buf *events) {
  for (size_t i = 0; i < COUNT(*events, event); i++) free_attrs(&ITEMS(*events, event)[i].attrs);
  ddffi_buf_free(events);
}

static void free_links(ddffi_buf *links) {
  for (size_t i = 0; i < COUNT(*links, link); i++) ddffi_buf_free(&ITEMS(*links, link)[i].attrs);
  ddffi_buf_free(links);
}

static void free_parts(span_parts *s) {
  ddffi_buf_free(&s->meta);
  ddffi_buf_free(&s->metrics);
  ddffi_buf_free(&s->meta_struct);
  free_links(&s->links);
  free_events(&s->events);
}

static bool push(dec *d, ddffi_buf *b, const void *item, size_t size) {
  ddffi_buf_put(b, item, size);
  if (b->failed) return fail(d, INVALID_FORMAT, "out of memory");
  return true;
}

/* ---- maps of a span ----------------------------------------------------------- */

/* meta: nil, or a map of string to string; pairs with a nil value are skipped. */
static bool read_meta(dec *d, ddffi_buf *out) {
  ddffi_buf_free(out);
  if (is_nil(d)) return true;
  uint32_t n;
  if (!map_len(d, &n)) return fail(d, INVALID_FORMAT, "Unable to get map len for str map");
  for (uint32_t i = 0; i < n; i++) {
    meta_kv kv;
    if (!read_str(d, &kv.key)) return false;
    if (is_nil(d)) continue;
    if (!read_str(d, &kv.value) || !push(d, out, &kv, sizeof kv)) return false;
  }
  return true;
}

/* decode/map.rs read_map_len, used by metrics and meta_struct. */
static bool read_map_len(dec *d, uint32_t *n) {
  if (!left(d)) return fail(d, INVALID_FORMAT, "Unable to read marker for map");
  uint8_t m = *d->p;
  if ((m & 0xf0) != 0x80 && m != 0xde && m != 0xdf) {
    d->p++;
    return fail(d, INVALID_TYPE, "Unable to read map from buffer");
  }
  return map_len(d, n) || fail_io(d);
}

static bool read_metrics(dec *d, ddffi_buf *out) {
  ddffi_buf_free(out);
  if (is_nil(d)) return true;
  uint32_t n;
  if (!read_map_len(d, &n)) return false;
  for (uint32_t i = 0; i < n; i++) {
    metric_kv kv;
    if (!read_str(d, &kv.key) || !read_f64(d, &kv.value) || !push(d, out, &kv, sizeof kv)) return false;
  }
  return true;
}

static bool read_meta_struct(dec *d, ddffi_buf *out) {
  ddffi_buf_free(out);
  if (is_nil(d)) return true;
  uint32_t n;
  if (!read_map_len(d, &n)) return false;
  for (uint32_t i = 0; i < n; i++) {
    struct_kv kv;
    if (!read_str(d, &kv.key)) return false;
    uint64_t len;
    uint8_t m = left(d) ? *d->p : 0;
    if (m < 0xc4 || m > 0xc6) return fail(d, INVALID_FORMAT, "Unable to read binary len for meta_struct");
    d->p++;
    if (!take_be(d, 1 << (m - 0xc4), &len)) return fail(d, INVALID_FORMAT, "Unable to read binary len for meta_struct");
    if (len > left(d)) return fail(d, INVALID_FORMAT, "Invalid data length");
    kv.value = (ddog_ByteSlice){d->p, (uintptr_t)len};
    d->p += len;
    if (!push(d, out, &kv, sizeof kv)) return false;
  }
  return true;
}

/* ---- span links (decode/span_link.rs) ----------------------------------------- */

static bool read_link(dec *d, link *l) {
  uint32_t n;
  if (!map_len(d, &n)) return fail(d, INVALID_TYPE, "Unable to get map len for span size");
  for (uint32_t i = 0; i < n; i++) {
    ddog_CharSlice key;
    if (!read_str(d, &key)) return false;
    uint64_t v;
    if (str_is(key, "trace_id")) {
      if (!read_u64(d, false, &l->link.trace_id_low)) return false;
    } else if (str_is(key, "trace_id_high")) {
      if (!read_u64(d, false, &l->link.trace_id_high)) return false;
    } else if (str_is(key, "span_id")) {
      if (!read_u64(d, false, &l->link.span_id)) return false;
    } else if (str_is(key, "attributes")) {
      uint32_t m;
      ddffi_buf_free(&l->attrs);
      if (!map_len(d, &m)) return fail(d, INVALID_FORMAT, "Unable to get map len for str map");
      for (uint32_t j = 0; j < m; j++) {
        ddog_TracerSpanLinkAttribute a;
        if (!read_str(d, &a.key)) return false;
        if (is_nil(d)) continue;
        if (!read_str(d, &a.value) || !push(d, &l->attrs, &a, sizeof a)) return false;
      }
    } else if (str_is(key, "tracestate")) {
      if (!read_str(d, &l->link.tracestate)) return false;
    } else if (str_is(key, "flags")) {
      number num;
      if (!read_num(d, false, &num) || !to_int(d, &num, 0, UINT32_MAX, &v)) return false;
      l->link.flags = (uint32_t)v;
    } else {
      char msg[160];
      snprintf(msg, sizeof msg, "Invalid span link key: %.*s", (int)(key.len > 100 ? 100 : key.len), key.ptr);
      return fail(d, INVALID_FORMAT, msg);
    }
  }
  return true;
}

static bool read_links(dec *d, ddffi_buf *out) {
  free_links(out);
  if (is_nil(d)) return true;
  uint32_t n;
  if (!array_len(d, &n)) return fail(d, INVALID_TYPE, "Unable to get array len for span links");
  for (uint32_t i = 0; i < n; i++) {
    link l = {.link = {.tracestate = {"", 0}}};
    bool ok = read_link(d, &l);
    if (!ok || !push(d, out, &l, sizeof l)) {
      ddffi_buf_free(&l.attrs);
      return false;
    }
  }
  return true;
}

/* ---- span events (decode/span_event.rs) --------------------------------------- */

static bool bad_key(dec *d, ddog_CharSlice key, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "Invalid %s key: %.*s", what, (int)(key.len > 100 ? 100 : key.len), key.ptr);
  return fail(d, INVALID_FORMAT, msg);
}

/* One `*_value` field of an attribute into a; false for an unknown key. */
static bool read_value(dec *d, ddog_CharSlice key, attr *a, bool *known) {
  *known = true;
  if (str_is(key, "string_value")) {
    a->type = 0;
    return read_str(d, &a->s);
  }
  if (str_is(key, "bool_value")) {
    a->type = 1;
    if (!left(d) || (*d->p != 0xc2 && *d->p != 0xc3)) {
      if (left(d)) d->p++;
      return fail(d, INVALID_TYPE, "Invalid boolean field");
    }
    a->b = *d->p++ == 0xc3;
    return true;
  }
  if (str_is(key, "int_value")) {
    a->type = 2;
    return read_i64(d, false, &a->i);
  }
  if (str_is(key, "double_value")) {
    a->type = 3;
    return read_f64(d, &a->f);
  }
  *known = false;
  return true;
}

static bool read_type(dec *d, int *type) {
  number n;
  uint64_t v;
  if (!read_num(d, false, &n) || !to_int(d, &n, 0, 255, &v)) return false;
  *type = (int)v;
  return true;
}

/* Checks an attribute's declared type against its value, as the Rust does. */
static bool check_type(dec *d, bool has_value, int type, int value_type) {
  if (!has_value) return fail(d, INVALID_FORMAT, "Invalid attribute");
  if (type < 0) return fail(d, INVALID_TYPE, "Type mismatch for attribute");
  if (type != value_type) return fail(d, INVALID_FORMAT, "No type for attribute");
  return true;
}

/* An array element: {type, <kind>_value}. */
static bool read_array_item(dec *d, int array_type, attr *item) {
  uint32_t n;
  if (!map_len(d, &n)) return fail(d, INVALID_TYPE, "Unable to get map len for attribute size");
  if (n != 2) return fail(d, INVALID_FORMAT, "Invalid number of field for an attribute");
  int type = -1;
  bool has_value = false;
  for (int i = 0; i < 2; i++) {
    ddog_CharSlice key;
    bool known;
    if (!read_str(d, &key)) return false;
    if (str_is(key, "type")) {
      if (!read_type(d, &type)) return false;
    } else {
      if (!read_value(d, key, item, &known)) return false;
      if (!known) return bad_key(d, key, "attribute");
      has_value = true;
    }
  }
  if (!check_type(d, has_value, type, item->type)) return false;
  if (array_type >= 0 && array_type != type) return fail(d, INVALID_TYPE, "Array must have same type element");
  return true;
}

/* array_value: nil or {values: [...]}, all items of one type. */
static bool read_array(dec *d, attr *a) {
  a->type = 4;
  a->elem = 0xff;
  if (is_nil(d)) return true;
  uint32_t n;
  ddog_CharSlice key;
  if (!map_len(d, &n))
    return fail(d, INVALID_TYPE, "Unable to get map len for event attributes array_value object");
  if (n != 1) return fail(d, INVALID_FORMAT, "event attributes array_value object should only have 'values' field");
  if (!read_str(d, &key)) return false;
  if (!str_is(key, "values"))
    return fail(d, INVALID_FORMAT, "Expected 'values' field in event attributes array_value object");
  if (!array_len(d, &n)) return fail(d, INVALID_TYPE, "Unable to get array len for event attributes values field");
  for (uint32_t i = 0; i < n; i++) {
    attr item = {0};
    if (!read_array_item(d, i ? a->elem : -1, &item)) return false;
    a->elem = item.type;
    bool ok = item.type == 0   ? push(d, &a->values, &item.s, sizeof item.s)
              : item.type == 1 ? push(d, &a->values, &item.b, sizeof item.b)
              : item.type == 2 ? push(d, &a->values, &item.i, sizeof item.i)
                               : push(d, &a->values, &item.f, sizeof item.f);
    if (!ok) return false;
    a->count++;
  }
  return true;
}

static bool read_attribute(dec *d, attr *a) {
  uint32_t n;
  if (!map_len(d, &n)) return fail(d, INVALID_TYPE, "Unable to get map len for attribute size");
  if (n != 2) return fail(d, INVALID_FORMAT, "Invalid number of field for an attribute");
  int type = -1;
  bool has_value = false;
  for (int i = 0; i < 2; i++) {
    ddog_CharSlice key;
    bool known;
    if (!read_str(d, &key)) return false;
    if (str_is(key, "type")) {
      if (!read_type(d, &type)) return false;
    } else if (str_is(key, "array_value")) {
      ddffi_buf_free(&a->values);
      a->count = 0;
      if (!read_array(d, a)) return false;
      has_value = true;
    } else {
      if (!read_value(d, key, a, &known)) return false;
      if (!known) return bad_key(d, key, "attribute");
      has_value = true;
    }
  }
  return check_type(d, has_value, type, a->type);
}

static bool read_event(dec *d, event *ev) {
  uint32_t n;
  if (!map_len(d, &n)) return fail(d, INVALID_TYPE, "Unable to get map len for event size");
  for (uint32_t i = 0; i < n; i++) {
    ddog_CharSlice key;
    if (!read_str(d, &key)) return false;
    if (str_is(key, "time_unix_nano")) {
      if (!read_u64(d, false, &ev->time)) return false;
    } else if (str_is(key, "name")) {
      if (!read_str(d, &ev->name)) return false;
    } else if (str_is(key, "attributes")) {
      uint32_t m;
      free_attrs(&ev->attrs);
      if (!map_len(d, &m)) return fail(d, INVALID_TYPE, "Unable to get map len for attributes");
      for (uint32_t j = 0; j < m; j++) {
        attr a = {0};
        if (!read_str(d, &a.key) || !read_attribute(d, &a) || !push(d, &ev->attrs, &a, sizeof a)) {
          ddffi_buf_free(&a.values);
          return false;
        }
      }
    } else {
      return bad_key(d, key, "span event");
    }
  }
  return true;
}

static bool read_events(dec *d, ddffi_buf *out) {
  free_events(out);
  if (is_nil(d)) return true;
  uint32_t n;
  if (!array_len(d, &n)) return fail(d, INVALID_TYPE, "Unable to get array len for span events");
  for (uint32_t i = 0; i < n; i++) {
    event ev = {.name = {"", 0}};
    if (!read_event(d, &ev) || !push(d, out, &ev, sizeof ev)) {
      free_attrs(&ev.attrs);
      return false;
    }
  }
  return true;
}

/* ---- spans -------------------------------------------------------------------- */

static bool read_span(dec *d, span_parts *s) {
  static const ddog_CharSlice empty = {"", 0};
  s->f = (ddog_TracerSpanFields){.service = empty, .name = empty, .resource = empty, .span_type = empty};
  uint32_t n;
  if (!map_len(d, &n)) return fail(d, INVALID_FORMAT, "Unable to get map len for span size");
  for (uint32_t i = 0; i < n; i++) {
    ddog_CharSlice key;
    int64_t i64;
    if (!read_str(d, &key)) return false;
    bool ok;
    if (str_is(key, "service")) ok = read_nullable_str(d, &s->f.service);
    else if (str_is(key, "name")) ok = read_nullable_str(d, &s->f.name);
    else if (str_is(key, "resource")) ok = read_nullable_str(d, &s->f.resource);
    else if (str_is(key, "type")) ok = read_nullable_str(d, &s->f.span_type);
    else if (str_is(key, "trace_id")) ok = read_u64(d, true, &s->f.trace_id_low);
    else if (str_is(key, "span_id")) ok = read_u64(d, true, &s->f.span_id);
    else if (str_is(key, "parent_id")) ok = read_u64(d, true, &s->f.parent_id);
    else if (str_is(key, "start")) ok = read_i64(d, true, &s->f.start);
    else if (str_is(key, "duration")) ok = read_i64(d, true, &s->f.duration);
    else if (str_is(key, "error")) {
      number num;
      uint64_t bits = 0;
      ok = read_num(d, true, &num) && to_int(d, &num, INT32_MIN, INT32_MAX, &bits);
      i64 = (int64_t)bits;
      if (ok) s->f.error = (int32_t)i64;
    } else if (str_is(key, "meta")) ok = read_meta(d, &s->meta);
    else if (str_is(key, "metrics")) ok = read_metrics(d, &s->metrics);
    else if (str_is(key, "meta_struct")) ok = read_meta_struct(d, &s->meta_struct);
    else if (str_is(key, "span_links")) ok = read_links(d, &s->links);
    else if (str_is(key, "span_events")) ok = read_events(d, &s->events);
    else ok = bad_key(d, key, "span");
    if (!ok) return false;
  }
  return true;
}

/* ---- building through the span ABI ------------------------------------------- */

static bool add_event(dec *d, ddog_TracerSpan *span, const event *ev) {
  ddog_TracerSpanEvent *e = NULL;
  ddog_TraceExporterError *err = ddog_tracer_span_event_new(&e, ev->name, ev->time);
  for (size_t i = 0; !err && i < COUNT(ev->attrs, attr); i++) {
    const attr *a = &ITEMS(ev->attrs, attr)[i];
    const void *v = a->values.data;
    switch (a->type == 4 ? 4 + (a->elem == 0xff ? 0 : a->elem) : a->type) {
    case 0: err = ddog_tracer_span_event_set_string(e, a->key, a->s); break;
    case 1: err = ddog_tracer_span_event_set_bool(e, a->key, a->b); break;
    case 2: err = ddog_tracer_span_event_set_int(e, a->key, a->i); break;
    case 3: err = ddog_tracer_span_event_set_double(e, a->key, a->f); break;
    case 4: err = ddog_tracer_span_event_set_string_array(e, a->key, (ddog_Slice_CharSlice){v, a->count}); break;
    case 5: err = ddog_tracer_span_event_set_bool_array(e, a->key, (ddog_Slice_bool){v, a->count}); break;
    case 6: err = ddog_tracer_span_event_set_int_array(e, a->key, (ddog_Slice_I64){v, a->count}); break;
    default: err = ddog_tracer_span_event_set_double_array(e, a->key, (ddog_Slice_F64){v, a->count}); break;
    }
  }
  if (err) {
    ddog_tracer_span_event_free(e);
    return fail_abi(d, err);
  }
  err = ddog_tracer_span_add_event(span, e);
  return err ? fail_abi(d, err) : true;
}

/* Whether the key of entry i recurs later in a map as read (every entry
 * type here starts with its ddog_CharSlice key). */
static bool key_recurs(const void *items, size_t stride, size_t n, size_t i) {
  const ddog_CharSlice *k = (const ddog_CharSlice *)((const char *)items + i * stride);
  for (size_t j = i + 1; j < n; j++) {
    const ddog_CharSlice *o = (const ddog_CharSlice *)((const char *)items + j * stride);
    if (o->len == k->len && (k->len == 0 || !memcmp(o->ptr, k->ptr, k->len))) return true;
  }
  return false;
}

/* Creates the span and pushes it into the current chunk. */
static bool build_span(dec *d, const span_parts *s, ddog_TracerTraceChunks *chunks) {
  ddog_TracerSpan *span = NULL;
  ddog_TraceExporterError *err = ddog_tracer_span_new(&span, &s->f);
  if (err) return fail_abi(d, err);
  /* Decoded maps are marked deduped in libdatadog, so they go out in input
   * order, duplicate keys included: the agent then sees the LAST value of a
   * key. span.c holds each key once and writes a map backwards (libdatadog's
   * dedup reverses it), hence the reversed insertion, which skips every
   * entry whose key comes again later: the last one wins, and the keys go
   * out in input order of their last occurrence. */
  size_t n = COUNT(s->meta, meta_kv);
  for (size_t i = n; !err && i-- > 0;) {
    const meta_kv *kv = &ITEMS(s->meta, meta_kv)[i];
    if (!key_recurs(s->meta.data, sizeof *kv, n, i)) err = ddog_tracer_span_set_meta(span, kv->key, kv->value);
  }
  n = COUNT(s->metrics, metric_kv);
  for (size_t i = n; !err && i-- > 0;) {
    const metric_kv *kv = &ITEMS(s->metrics, metric_kv)[i];
    if (!key_recurs(s->metrics.data, sizeof *kv, n, i)) err = ddog_tracer_span_set_metric(span, kv->key, kv->value);
  }
  n = COUNT(s->meta_struct, struct_kv);
  for (size_t i = n; !err && i-- > 0;) {
    const struct_kv *kv = &ITEMS(s->meta_struct, struct_kv)[i];
    if (!key_recurs(s->meta_struct.data, sizeof *kv, n, i))
      err = ddog_tracer_span_set_meta_struct_blob(span, kv->key, kv->value);
  }
  size_t nlinks = COUNT(s->links, link);
  if (!err && nlinks) {
    ddog_TracerSpanLink *links = malloc(nlinks * sizeof *links);
    if (!links) {
      err = ddffi_error(E(INTERNAL), "out of memory");
    } else {
      for (size_t i = 0; i < nlinks; i++) {
        const link *l = &ITEMS(s->links, link)[i];
        links[i] = l->link;
        links[i].attributes = (ddog_Slice_TracerSpanLinkAttribute){
            l->attrs.data ? (const ddog_TracerSpanLinkAttribute *)l->attrs.data : NULL,
            COUNT(l->attrs, ddog_TracerSpanLinkAttribute)};
      }
      err = ddog_tracer_span_set_links(span, (ddog_Slice_TracerSpanLink){links, nlinks});
      free(links);
    }
  }
  if (err) {
    ddog_tracer_span_free(span);
    return fail_abi(d, err);
  }
  for (size_t i = 0; i < COUNT(s->events, event); i++) {
    if (!add_event(d, span, &ITEMS(s->events, event)[i])) {
      ddog_tracer_span_free(span);
      return false;
    }
  }
  err = ddog_tracer_trace_chunks_push_span(chunks, span); /* consumes the span */
  return err ? fail_abi(d, err) : true;
}

ddog_TraceExporterError *ddffi_decode_v04(const uint8_t *data, size_t len, ddog_TracerTraceChunks **out) {
  dec d = {.p = data, .end = data + len};
  uint32_t traces;
  if (!data || !array_len(&d, &traces)) {
    fail(&d, INVALID_FORMAT, "Unable to read array len for trace count");
    return d.err;
  }
  ddog_TracerTraceChunks *chunks = NULL;
  ddog_TraceExporterError *err = ddog_tracer_trace_chunks_new(traces < left(&d) ? traces : left(&d), &chunks);
  if (err) return err;
  for (uint32_t t = 0; t < traces && !d.err; t++) {
    uint32_t spans;
    if (!array_len(&d, &spans)) {
      fail(&d, INVALID_FORMAT, "Unable to read array len for span count");
      break;
    }
    err = ddog_tracer_trace_chunks_begin_chunk(chunks, spans < left(&d) ? spans : left(&d));
    if (err) {
      fail_abi(&d, err);
      break;
    }
    for (uint32_t i = 0; i < spans && !d.err; i++) {
      span_parts s = {0};
      if (read_span(&d, &s)) build_span(&d, &s, chunks);
      free_parts(&s);
    }
  }
  if (d.err) {
    ddog_tracer_trace_chunks_free(chunks);
    return d.err;
  }
  *out = chunks;
  return NULL;
}
