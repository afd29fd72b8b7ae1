/* The batch decoder: ddffi_batch_send() turns one batch buffer (the format of
 * ffi/batch.ts, offsets and tags from the generated batch-format.h) into trace
 * chunks and sends them, on the calling thread (the adapters' send thread).
 *
 * Not part of libdatadog's ABI: our own code. It calls nothing but the public
 * ddog_* functions, through pointers that ddffi_batch_bind() resolves from the
 * library that is loaded. So the same source is part of the bundled library
 * and, on its own, the shim (libddffi_batch.so) that goes with a real
 * libdatadog at DD_LIBDATADOG_PATH.
 *
 * Every read is bounds-checked: a corrupt or truncated batch is
 * InvalidArgument (an error made by the library itself), never a crash, and
 * everything built so far is freed. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch-format.h"
#include "data-pipeline.h"
#include "internal.h" /* only the declarations of our own entries (DDFFI_BATCH_OWN_API) */

#define DDFFI_BATCH_EXPORT __attribute__((visibility("default")))

/* The public functions the decoder calls, resolved by ddffi_batch_bind(). */
#define DDFFI_BATCH_API(X)                      \
  X(ddog_tracer_span_new)                       \
  X(ddog_tracer_span_free)                      \
  X(ddog_tracer_span_set_meta)                  \
  X(ddog_tracer_span_set_metric)                \
  X(ddog_tracer_span_set_meta_struct_blob)      \
  X(ddog_tracer_span_set_meta_struct)           \
  X(ddog_tracer_span_set_links)                 \
  X(ddog_tracer_span_event_new)                 \
  X(ddog_tracer_span_event_free)                \
  X(ddog_tracer_span_event_set_string)          \
  X(ddog_tracer_span_event_set_bool)            \
  X(ddog_tracer_span_event_set_int)             \
  X(ddog_tracer_span_event_set_double)          \
  X(ddog_tracer_span_event_set_string_array)    \
  X(ddog_tracer_span_event_set_bool_array)      \
  X(ddog_tracer_span_event_set_int_array)       \
  X(ddog_tracer_span_event_set_double_array)    \
  X(ddog_tracer_span_add_event)                 \
  X(ddog_tracer_trace_chunks_new)               \
  X(ddog_tracer_trace_chunks_free)              \
  X(ddog_tracer_trace_chunks_begin_chunk)       \
  X(ddog_tracer_trace_chunks_push_span)         \
  X(ddog_trace_exporter_send_trace_chunks)

/* Our own library's entries for strings the decoder knows valid (see
 * internal.h): used when batch.c is part of the bundled library and bound
 * to it; else (the shim next to a real libdatadog) every string goes
 * through the public functions. */
#define DDFFI_BATCH_OWN_API(X)      \
  X(ddffi_span_new_borrowed)        \
  X(ddffi_span_set_meta_borrowed)   \
  X(ddffi_span_set_metric_borrowed) \
  X(ddffi_utf8_check)               \
  X(ddffi_span_set_links_borrowed)  \
  X(ddffi_span_event_new_borrowed)  \
  X(ddffi_span_event_set_borrowed)

#define DDFFI_BATCH_FIELD(name) __typeof__(name) *name;
static struct { DDFFI_BATCH_API(DDFFI_BATCH_FIELD) } api;
/* Not exported: span.c, where batch.c is part of the bundled library (or
 * the fuzzer), hands them over when the library loads (ddffi_batch_own);
 * in the shim they stay NULL. */
static struct { DDFFI_BATCH_OWN_API(DDFFI_BATCH_FIELD) } own;

void ddffi_batch_own(__typeof__(ddffi_span_new_borrowed) *span_new, __typeof__(ddffi_span_set_meta_borrowed) *set_meta,
                     __typeof__(ddffi_span_set_metric_borrowed) *set_metric, __typeof__(ddffi_utf8_check) *utf8_check,
                     __typeof__(ddffi_span_set_links_borrowed) *set_links,
                     __typeof__(ddffi_span_event_new_borrowed) *event_new,
                     __typeof__(ddffi_span_event_set_borrowed) *event_set) {
  own.ddffi_span_new_borrowed = span_new;
  own.ddffi_span_set_meta_borrowed = set_meta;
  own.ddffi_span_set_metric_borrowed = set_metric;
  own.ddffi_utf8_check = utf8_check;
  own.ddffi_span_set_links_borrowed = set_links;
  own.ddffi_span_event_new_borrowed = event_new;
  own.ddffi_span_event_set_borrowed = event_set;
}

/* Whether two functions are in the same loaded file. */
static bool same_file(void *a, void *b) {
  Dl_info x, y;
  return a && b && dladdr(a, &x) && dladdr(b, &y) && x.dli_fbase == y.dli_fbase;
}
static volatile int bound;
static bool own_bound; /* written before `bound` is released */

/* Resolves the public functions from the library file at `path` (already
 * loaded by the runtime: dlopen returns the same handle); an empty path
 * means the program itself. Returns how many are missing (0: ready). */
DDFFI_BATCH_EXPORT int32_t ddffi_batch_bind(ddog_CharSlice path) {
  char file[4096];
  if (path.len >= sizeof file || (path.len > 0 && !path.ptr)) return -1;
  if (path.len) memcpy(file, path.ptr, path.len);
  file[path.len] = 0;
  void *lib = dlopen(path.len ? file : NULL, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return -1;
  int32_t missing = 0;
#define DDFFI_BATCH_RESOLVE(name)                          \
  *(void **)&api.name = dlsym(lib, #name);                 \
  if (!api.name) missing++;
  DDFFI_BATCH_API(DDFFI_BATCH_RESOLVE)
  int32_t own_missing = 0;
#define DDFFI_BATCH_COUNT_OWN(name) \
  if (!own.name) own_missing++;
  DDFFI_BATCH_OWN_API(DDFFI_BATCH_COUNT_OWN)
  /* Only with the spans of the very library they come with. */
  own_bound = missing == 0 && own_missing == 0 && same_file((void *)api.ddog_tracer_span_new, (void *)own.ddffi_span_new_borrowed);
  __atomic_store_n(&bound, missing == 0, __ATOMIC_RELEASE);
  return missing;
}

/* ---- reading --------------------------------------------------------------- */

/* A string read from the batch; `ok`: valid UTF-8, checked once (for a
 * table entry, when it is defined), and our own entries are bound: it may
 * go to them, borrowed. */
typedef struct {
  const char *ptr;
  uint32_t len;
  bool ok;
} bstr;

/* Where utf16 strings are transcoded to: blocks that live until
 * ddffi_batch_text_free (after the spans that borrow from them). */
struct ddffi_batch_text {
  struct ddffi_batch_text *next; /* the block's bytes follow */
};
#define TEXT_BLOCK_MIN 4096
#define TEXT_BLOCK_MAX (1u << 20)

typedef struct {
  const uint8_t *p, *end;
  bool bad;                  /* a read went past the end, or a value was out of range */
  bstr *strings;             /* the string table */
  uint32_t string_cap, string_count;
  ddffi_batch_text *text;    /* blocks, newest first */
  char *text_pos, *text_end; /* the free part of the newest */
  size_t text_next;          /* size of the next block */
  const uint8_t *joined, *joined_end; /* the batch's text: the rest of the `text` strings' characters */
  bool joined_utf16;         /* the text is UTF-16 code units (header flag text_utf16), else UTF-8 */
  bool joined_started;       /* a `text` string was read: the next one follows a 0 byte (a 0 unit in UTF-16) */
} reader;

static const uint8_t *take(reader *r, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = true;
    return NULL;
  }
  const uint8_t *at = r->p;
  r->p += n;
  return at;
}

/* `n` bytes and the zeros after them, to a multiple of 4 (the format's unit). */
static size_t padded(uint32_t n) { return ((size_t)n + 3) & ~(size_t)3; }

static uint32_t rd_u32(reader *r) {
  const uint8_t *p = take(r, 4);
  uint32_t v = 0;
  if (p) memcpy(&v, p, 4);
  return v;
}

static uint64_t rd_u64(reader *r) {
  const uint8_t *p = take(r, 8);
  uint64_t v = 0;
  if (p) memcpy(&v, p, 8);
  return v;
}

static double rd_f64(reader *r) {
  const uint8_t *p = take(r, 8);
  double v = 0;
  if (p) memcpy(&v, p, 8);
  return v;
}

static uint32_t at_u32(const uint8_t *p, size_t offset) {
  uint32_t v;
  memcpy(&v, p + offset, 4);
  return v;
}

static uint64_t at_u64(const uint8_t *p, size_t offset) {
  uint64_t v;
  memcpy(&v, p + offset, 8);
  return v;
}

/* A count of records of at least `min_size` bytes each that must fit in what is left. */
static uint32_t rd_count(reader *r, size_t min_size) {
  uint32_t n = rd_u32(r);
  if (!r->bad && (size_t)n > (size_t)(r->end - r->p) / min_size) r->bad = true;
  return r->bad ? 0 : n;
}

/* Room for n bytes of transcoded text, or NULL when out of memory. */
static char *text_room(reader *r, size_t n) {
  if ((size_t)(r->text_end - r->text_pos) >= n) return r->text_pos;
  size_t size = r->text_next > n ? r->text_next : n;
  if (size > SIZE_MAX - sizeof(ddffi_batch_text)) return NULL;
  ddffi_batch_text *b = malloc(sizeof *b + size);
  if (!b) return NULL;
  b->next = r->text;
  r->text = b;
  r->text_pos = (char *)(b + 1);
  r->text_end = r->text_pos + size;
  if (r->text_next < TEXT_BLOCK_MAX) r->text_next *= 2;
  return r->text_pos;
}

void ddffi_batch_text_free(ddffi_batch_text *text) {
  while (text) {
    ddffi_batch_text *next = text->next;
    free(text);
    text = next;
  }
}

/* The `units` UTF-16 code units (little-endian) at `p` transcoded to UTF-8,
 * as JS TextEncoder does: a lone surrogate becomes U+FFFD. */
static bstr transcode16(reader *r, const uint8_t *p, uint32_t units) {
  bstr s = {"", 0, own_bound};
  if (units == 0) return s;
  /* At most 3 bytes per unit: a pair (2 units) is 4, anything else 1 to 3. */
  char *d = text_room(r, (size_t)units * 3);
  if (!d) {
    r->bad = true;
    return s;
  }
  char *o = d;
  const uint8_t *q = p, *qend = p + 2 * (size_t)units;
  while (q < qend) {
    uint32_t c = (uint32_t)q[0] | (uint32_t)q[1] << 8;
    if (c < 0x80) {
      *o++ = (char)c;
      q += 2;
      /* the rest of an ASCII run, four units at a time */
      while (qend - q >= 8) {
        uint64_t w;
        memcpy(&w, q, 8);
        if (w & 0xff80ff80ff80ff80u) break;
        o[0] = (char)q[0];
        o[1] = (char)q[2];
        o[2] = (char)q[4];
        o[3] = (char)q[6];
        o += 4;
        q += 8;
      }
      continue;
    }
    if (c < 0x800) {
      /* a run of two-byte characters (accented Latin, Greek, Cyrillic...) */
      for (;;) {
        o[0] = (char)(0xc0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3f));
        o += 2;
        q += 2;
        if (q >= qend) break;
        c = (uint32_t)q[0] | (uint32_t)q[1] << 8;
        if (c < 0x80 || c >= 0x800) break;
      }
      continue;
    }
    q += 2;
    if (c >= 0xd800 && c <= 0xdfff) {
      uint32_t c2 = q < qend ? ((uint32_t)q[0] | (uint32_t)q[1] << 8) : 0;
      if (c <= 0xdbff && c2 >= 0xdc00 && c2 <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
        q += 2;
        o[0] = (char)(0xf0 | c >> 18);
        o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[3] = (char)(0x80 | (c & 0x3f));
        o += 4;
        continue;
      }
      c = 0xfffd; /* a lone surrogate */
    }
    o[0] = (char)(0xe0 | c >> 12);
    o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
    o[2] = (char)(0x80 | (c & 0x3f));
    o += 3;
  }
  size_t len = (size_t)(o - d);
  r->text_pos = o;
  s.ptr = d;
  s.len = (uint32_t)len; /* at most 3 * (2^30 - 1) */
  return s;
}

/* A `utf16` str's units, after its word. */
static bstr rd_utf16(reader *r, uint32_t units) {
  const uint8_t *p = take(r, ((size_t)units * 2 + 3) & ~(size_t)3);
  if (!p) return (bstr){"", 0, own_bound};
  return transcode16(r, p, units);
}

/* Where the next text string starts: after the 0 (`width` bytes) that
 * separates it from the one before, if any; NULL (bad) when that is not there. */
static const uint8_t *text_start(reader *r, size_t width) {
  const uint8_t *p = r->joined;
  if (r->joined_started) {
    if ((size_t)(r->joined_end - p) < width || p[0] || p[width - 1]) {
      r->bad = true;
      return NULL;
    }
    p += width;
  }
  r->joined_started = true;
  return p;
}

/* The next `units` UTF-16 code units of a UTF-16 text (transcoded). */
static bstr rd_text16(reader *r, uint32_t units) {
  const uint8_t *p = text_start(r, 2);
  if (!p || (size_t)(r->joined_end - p) < 2 * (size_t)units) {
    r->bad = true;
    return (bstr){"", 0, own_bound};
  }
  r->joined = p + 2 * (size_t)units;
  return transcode16(r, p, units);
}

/* The next `units` UTF-16 code units of the batch's text: in a UTF-8 text,
 * the UTF-8 a WHATWG encoder made of them (4 bytes for a surrogate pair,
 * which is 2 units, and 1 to 3 for any other unit; a lone surrogate is
 * U+FFFD). After the first, each string follows a 0 byte (the writer joins
 * them with "\0", so no pair forms across two of them). */
static bstr rd_text(reader *r, uint32_t units) {
  if (r->joined_utf16) return rd_text16(r, units);
  bstr s = {"", 0, own_bound};
  const uint8_t *p = text_start(r, 1), *end = r->joined_end;
  if (!p) return s;
  const uint8_t *start = p;
  size_t left = units;
  while (left > 0) {
    /* an ASCII run, eight bytes at a time */
    while (left >= 8 && end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      if (w & 0x8080808080808080u) break;
      p += 8;
      left -= 8;
    }
    if (left == 0) break;
    if (p == end) {
      r->bad = true;
      return s;
    }
    uint8_t b = *p;
    size_t n = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
    size_t u = n == 4 ? 2 : 1;
    if ((size_t)(end - p) < n || left < u) {
      r->bad = true;
      return s;
    }
    p += n;
    left -= u;
  }
  r->joined = p;
  s.ptr = (const char *)start;
  s.len = (uint32_t)(p - start); /* at most 3 bytes a unit, and units < 2^30 */
  s.ok = own_bound && own.ddffi_utf8_check(start, s.len);
  return s;
}

static bstr rd_str_slow(reader *r) {
  bstr s = {"", 0, own_bound};
  uint32_t w = rd_u32(r);
  if (r->bad) return s;
  uint32_t tag = w & ((1u << DDFFI_BATCH_STRING_TAG_BITS) - 1), n = w >> DDFFI_BATCH_STRING_TAG_BITS;
  if (tag == DDFFI_BATCH_STR_REF) {
    if (n >= r->string_count) {
      r->bad = true;
      return s;
    }
    return r->strings[n];
  }
  if (tag == DDFFI_BATCH_STR_UTF16) {
    s = rd_utf16(r, n);
  } else if (tag == DDFFI_BATCH_STR_TEXT) {
    s = rd_text(r, n);
  } else {
    const uint8_t *p = take(r, padded(n));
    if (!p) return s;
    s.ptr = (const char *)p;
    s.len = n;
    s.ok = own_bound && own.ddffi_utf8_check(p, n);
  }
  if (r->bad) return s;
  if (r->string_count >= r->string_cap) {
    r->bad = true;
    return s;
  }
  r->strings[r->string_count++] = s;
  return s;
}

/* A str; inline for its usual case, a ref. */
static inline __attribute__((always_inline)) bstr rd_str(reader *r) {
  if (!r->bad && (size_t)(r->end - r->p) >= 4) {
    uint32_t w;
    memcpy(&w, r->p, 4);
    if ((w & ((1u << DDFFI_BATCH_STRING_TAG_BITS) - 1)) == DDFFI_BATCH_STR_REF &&
        (w >> DDFFI_BATCH_STRING_TAG_BITS) < r->string_count) {
      r->p += 4;
      return r->strings[w >> DDFFI_BATCH_STRING_TAG_BITS];
    }
  }
  return rd_str_slow(r);
}

static ddog_CharSlice cs(bstr s) {
  ddog_CharSlice c = {s.ptr, s.len};
  return c;
}

static ddog_ByteSlice rd_bytes(reader *r) {
  uint32_t n = rd_u32(r);
  const uint8_t *p = take(r, padded(n));
  ddog_ByteSlice b = {p ? p : (const uint8_t *)"", p ? n : 0};
  return b;
}

/* ---- building ---------------------------------------------------------------- */

/* An InvalidArgument error made by the library (only it may allocate errors). */
static ddog_TraceExporterError *invalid(void) {
  ddog_CharSlice empty = {"", 0};
  ddog_TraceExporterError *e = api.ddog_tracer_span_set_meta(NULL, empty, empty);
  return e;
}

static ddog_TraceExporterError *meta_struct(reader *r, ddog_TracerSpan *span) {
  ddog_CharSlice key = cs(rd_str(r));
  uint32_t kind = rd_u32(r);
  if (r->bad) return NULL;
  if (kind == DDFFI_BATCH_META_STRUCT_BLOB) {
    ddog_ByteSlice blob = rd_bytes(r);
    return r->bad ? NULL : api.ddog_tracer_span_set_meta_struct_blob(span, key, blob);
  }
  if (kind != DDFFI_BATCH_META_STRUCT_TOKENS) {
    r->bad = true;
    return NULL;
  }
  uint32_t count = rd_count(r, 1);
  if (r->bad) return NULL;
  ddog_TracerValueToken *tokens = calloc(count ? count : 1, sizeof *tokens);
  if (!tokens) return invalid();
  for (uint32_t i = 0; i < count && !r->bad; i++) {
    ddog_TracerValueToken *t = &tokens[i];
    uint32_t kind = rd_u32(r);
    t->kind = (ddog_TracerValueKind)kind;
    switch (kind) {
      case DDOG_TRACER_VALUE_NIL: break;
      case DDOG_TRACER_VALUE_BOOL: t->bool_value = rd_u32(r) != 0; break;
      case DDOG_TRACER_VALUE_I64: t->i64_value = (int64_t)rd_u64(r); break;
      case DDOG_TRACER_VALUE_U64: t->u64_value = rd_u64(r); break;
      case DDOG_TRACER_VALUE_F64: t->f64_value = rd_f64(r); break;
      case DDOG_TRACER_VALUE_STRING: {
        ddog_CharSlice s = cs(rd_str(r));
        t->bytes.ptr = (const uint8_t *)s.ptr;
        t->bytes.len = s.len;
        break;
      }
      case DDOG_TRACER_VALUE_BINARY: t->bytes = rd_bytes(r); break;
      case DDOG_TRACER_VALUE_ARRAY:
      case DDOG_TRACER_VALUE_MAP: t->child_count = rd_u32(r); break;
      default: r->bad = true;
    }
  }
  ddog_TraceExporterError *err = NULL;
  if (!r->bad) {
    ddog_Slice_TracerValueToken slice = {tokens, count};
    err = api.ddog_tracer_span_set_meta_struct(span, key, slice);
  }
  free(tokens);
  return err;
}

/* Links and their attributes up to these counts are read into the stack. */
#define LINKS_ON_STACK 4
#define LINK_ATTRS_ON_STACK 16

static ddog_TraceExporterError *links(reader *r, ddog_TracerSpan *span, uint32_t count) {
  if ((size_t)count > (size_t)(r->end - r->p) / DDFFI_BATCH_LINK_SIZE) {
    r->bad = true;
    return NULL;
  }
  ddog_TracerSpanLink list_stack[LINKS_ON_STACK];
  ddog_TracerSpanLinkAttribute attr_stack[LINK_ATTRS_ON_STACK];
  size_t attr_used = 0; /* of attr_stack */
  ddog_TracerSpanLink *list = list_stack;
  if (count > LINKS_ON_STACK) {
    list = calloc(count, sizeof *list);
    if (!list) return invalid();
  } else {
    memset(list_stack, 0, sizeof list_stack);
  }
  ddog_TraceExporterError *err = NULL;
  bool ok = own_bound; /* every string valid: the links may go borrowed */
  uint32_t made = 0;
  for (; made < count && !r->bad; made++) {
    const uint8_t *f = take(r, DDFFI_BATCH_LINK_SIZE);
    if (!f) break;
    ddog_TracerSpanLink *l = &list[made];
    l->trace_id_low = at_u64(f, DDFFI_BATCH_LINK_TRACE_ID_LOW);
    l->trace_id_high = at_u64(f, DDFFI_BATCH_LINK_TRACE_ID_HIGH);
    l->span_id = at_u64(f, DDFFI_BATCH_LINK_SPAN_ID);
    l->flags = at_u32(f, DDFFI_BATCH_LINK_FLAGS);
    uint32_t n = at_u32(f, DDFFI_BATCH_LINK_ATTRIBUTE_COUNT);
    bstr ts = rd_str(r);
    l->tracestate = cs(ts);
    ok = ok && ts.ok;
    if ((size_t)n > (size_t)(r->end - r->p) / 8) r->bad = true;
    if (r->bad) break;
    ddog_TracerSpanLinkAttribute *attrs;
    if (n <= LINK_ATTRS_ON_STACK - attr_used) {
      attrs = n ? attr_stack + attr_used : attr_stack; /* a valid pointer also when n is 0 */
      attr_used += n;
    } else {
      attrs = calloc(n, sizeof *attrs);
      if (!attrs) {
        err = invalid();
        break;
      }
    }
    l->attributes.ptr = attrs;
    l->attributes.len = n;
    for (uint32_t k = 0; k < n; k++) {
      bstr key = rd_str(r), value = rd_str(r);
      attrs[k].key = cs(key);
      attrs[k].value = cs(value);
      ok = ok && key.ok && value.ok;
    }
  }
  if (!err && !r->bad) {
    ddog_Slice_TracerSpanLink slice = {list, count};
    err = ok ? own.ddffi_span_set_links_borrowed(span, slice) : api.ddog_tracer_span_set_links(span, slice);
  }
  for (uint32_t i = 0; i < count; i++) {
    uintptr_t a = (uintptr_t)list[i].attributes.ptr, stack = (uintptr_t)attr_stack;
    if (a && (a < stack || a >= stack + sizeof attr_stack)) free((void *)a);
  }
  if (list != list_stack) free(list);
  return err;
}

/* A scalar attribute through our own entry: 0 string, 1 bool, 2 int, 3 double. */
static ddog_TraceExporterError *own_scalar(reader *r, ddog_TracerSpanEvent *event, bstr key, uint32_t kind) {
  ddog_CharSlice none = {"", 0};
  switch (kind) {
    case DDFFI_BATCH_ATTR_STRING: {
      bstr v = rd_str(r);
      if (r->bad) return NULL;
      if (!v.ok) return api.ddog_tracer_span_event_set_string(event, cs(key), cs(v));
      return own.ddffi_span_event_set_borrowed(event, cs(key), 0, cs(v), 0, 0);
    }
    case DDFFI_BATCH_ATTR_BOOL: {
      bool v = rd_u32(r) != 0;
      return r->bad ? NULL : own.ddffi_span_event_set_borrowed(event, cs(key), 1, none, v, 0);
    }
    case DDFFI_BATCH_ATTR_INT: {
      int64_t v = (int64_t)rd_u64(r);
      return r->bad ? NULL : own.ddffi_span_event_set_borrowed(event, cs(key), 2, none, v, 0);
    }
    default: {
      double v = rd_f64(r);
      return r->bad ? NULL : own.ddffi_span_event_set_borrowed(event, cs(key), 3, none, 0, v);
    }
  }
}

static ddog_TraceExporterError *event_attribute(reader *r, ddog_TracerSpanEvent *event, bool own_event) {
  bstr bkey = rd_str(r);
  ddog_CharSlice key = cs(bkey);
  uint32_t kind = rd_u32(r);
  if (r->bad) return NULL;
  if (own_event && bkey.ok &&
      (kind == DDFFI_BATCH_ATTR_STRING || kind == DDFFI_BATCH_ATTR_BOOL || kind == DDFFI_BATCH_ATTR_INT ||
       kind == DDFFI_BATCH_ATTR_DOUBLE))
    return own_scalar(r, event, bkey, kind);
  switch (kind) {
    case DDFFI_BATCH_ATTR_STRING: {
      ddog_CharSlice v = cs(rd_str(r));
      return r->bad ? NULL : api.ddog_tracer_span_event_set_string(event, key, v);
    }
    case DDFFI_BATCH_ATTR_BOOL: {
      bool v = rd_u32(r) != 0;
      return r->bad ? NULL : api.ddog_tracer_span_event_set_bool(event, key, v);
    }
    case DDFFI_BATCH_ATTR_INT: {
      int64_t v = (int64_t)rd_u64(r);
      return r->bad ? NULL : api.ddog_tracer_span_event_set_int(event, key, v);
    }
    case DDFFI_BATCH_ATTR_DOUBLE: {
      double v = rd_f64(r);
      return r->bad ? NULL : api.ddog_tracer_span_event_set_double(event, key, v);
    }
    case DDFFI_BATCH_ATTR_STRING_ARRAY:
    case DDFFI_BATCH_ATTR_BOOL_ARRAY:
    case DDFFI_BATCH_ATTR_INT_ARRAY:
    case DDFFI_BATCH_ATTR_DOUBLE_ARRAY: break;
    default:
      r->bad = true;
      return NULL;
  }
  size_t width = kind == DDFFI_BATCH_ATTR_STRING_ARRAY || kind == DDFFI_BATCH_ATTR_BOOL_ARRAY ? 4 : 8;
  uint32_t n = rd_count(r, width);
  if (r->bad) return NULL;
  /* Copies: C arrays must be aligned, and a bool must be 0 or 1. */
  size_t elem = kind == DDFFI_BATCH_ATTR_STRING_ARRAY ? sizeof(ddog_CharSlice) : kind == DDFFI_BATCH_ATTR_BOOL_ARRAY ? sizeof(bool) : 8;
  void *values = calloc(n ? n : 1, elem);
  if (!values) return invalid();
  for (uint32_t i = 0; i < n; i++) {
    if (kind == DDFFI_BATCH_ATTR_STRING_ARRAY) ((ddog_CharSlice *)values)[i] = cs(rd_str(r));
    else if (kind == DDFFI_BATCH_ATTR_BOOL_ARRAY) ((bool *)values)[i] = rd_u32(r) != 0;
    else if (kind == DDFFI_BATCH_ATTR_INT_ARRAY) ((int64_t *)values)[i] = (int64_t)rd_u64(r);
    else ((double *)values)[i] = rd_f64(r);
  }
  ddog_TraceExporterError *err = NULL;
  if (!r->bad) {
    if (kind == DDFFI_BATCH_ATTR_STRING_ARRAY) {
      ddog_Slice_CharSlice s = {values, n};
      err = api.ddog_tracer_span_event_set_string_array(event, key, s);
    } else if (kind == DDFFI_BATCH_ATTR_BOOL_ARRAY) {
      ddog_Slice_bool s = {values, n};
      err = api.ddog_tracer_span_event_set_bool_array(event, key, s);
    } else if (kind == DDFFI_BATCH_ATTR_INT_ARRAY) {
      ddog_Slice_I64 s = {values, n};
      err = api.ddog_tracer_span_event_set_int_array(event, key, s);
    } else {
      ddog_Slice_F64 s = {values, n};
      err = api.ddog_tracer_span_event_set_double_array(event, key, s);
    }
  }
  free(values);
  return err;
}

static ddog_TraceExporterError *events(reader *r, ddog_TracerSpan *span, uint32_t count) {
  for (uint32_t j = 0; j < count && !r->bad; j++) {
    const uint8_t *f = take(r, DDFFI_BATCH_EVENT_SIZE);
    bstr name = rd_str(r);
    if (r->bad) return NULL;
    uint32_t n = at_u32(f, DDFFI_BATCH_EVENT_ATTRIBUTE_COUNT);
    ddog_TracerSpanEvent *event = NULL;
    /* own_bound: the span and so the event are our library's (also when the name is not known valid). */
    ddog_TraceExporterError *err =
        name.ok ? own.ddffi_span_event_new_borrowed(&event, cs(name), at_u64(f, DDFFI_BATCH_EVENT_TIME))
                : api.ddog_tracer_span_event_new(&event, cs(name), at_u64(f, DDFFI_BATCH_EVENT_TIME));
    if (err) return err;
    for (uint32_t k = 0; k < n && !r->bad && !err; k++) err = event_attribute(r, event, own_bound);
    if (err || r->bad) {
      api.ddog_tracer_span_event_free(event);
      return err;
    }
    /* add_event consumes the event, also when it fails. */
    if ((err = api.ddog_tracer_span_add_event(span, event))) return err;
  }
  return NULL;
}

/* Reads one span; on success *out owns it. */
static ddog_TraceExporterError *span(reader *r, ddog_TracerSpan **out) {
  const uint8_t *f = take(r, DDFFI_BATCH_SPAN_SIZE);
  ddog_TracerSpanFields fields;
  memset(&fields, 0, sizeof fields);
  bstr service = rd_str(r), name = rd_str(r), resource = rd_str(r), type = rd_str(r);
  if (r->bad) return NULL;
  fields.service = cs(service);
  fields.name = cs(name);
  fields.resource = cs(resource);
  fields.span_type = cs(type);
  fields.trace_id_low = at_u64(f, DDFFI_BATCH_SPAN_TRACE_ID_LOW);
  fields.trace_id_high = at_u64(f, DDFFI_BATCH_SPAN_TRACE_ID_HIGH);
  fields.span_id = at_u64(f, DDFFI_BATCH_SPAN_SPAN_ID);
  fields.parent_id = at_u64(f, DDFFI_BATCH_SPAN_PARENT_ID);
  fields.start = (int64_t)at_u64(f, DDFFI_BATCH_SPAN_START);
  fields.duration = (int64_t)at_u64(f, DDFFI_BATCH_SPAN_DURATION);
  fields.error = (int32_t)at_u32(f, DDFFI_BATCH_SPAN_ERROR);
  ddog_TracerSpan *s = NULL;
  /* Strings known valid go borrowed to our own entries; any other to the
   * public ones, which check them (and fail as they do). */
  ddog_TraceExporterError *err = service.ok && name.ok && resource.ok && type.ok
                                     ? own.ddffi_span_new_borrowed(&s, &fields)
                                     : api.ddog_tracer_span_new(&s, &fields);
  if (err) return err;
  uint32_t n = at_u32(f, DDFFI_BATCH_SPAN_META_COUNT);
  for (uint32_t i = 0; i < n && !r->bad && !err; i++) {
    bstr k = rd_str(r), v = rd_str(r);
    if (r->bad) break;
    err = k.ok && v.ok ? own.ddffi_span_set_meta_borrowed(s, cs(k), cs(v)) : api.ddog_tracer_span_set_meta(s, cs(k), cs(v));
  }
  n = at_u32(f, DDFFI_BATCH_SPAN_METRIC_COUNT);
  for (uint32_t i = 0; i < n && !r->bad && !err; i++) {
    bstr k = rd_str(r);
    double v = rd_f64(r);
    if (r->bad) break;
    err = k.ok ? own.ddffi_span_set_metric_borrowed(s, cs(k), v) : api.ddog_tracer_span_set_metric(s, cs(k), v);
  }
  n = at_u32(f, DDFFI_BATCH_SPAN_META_STRUCT_COUNT);
  for (uint32_t i = 0; i < n && !r->bad && !err; i++) err = meta_struct(r, s);
  n = at_u32(f, DDFFI_BATCH_SPAN_LINK_COUNT);
  if (n && !r->bad && !err) err = links(r, s, n);
  n = at_u32(f, DDFFI_BATCH_SPAN_EVENT_COUNT);
  if (n && !r->bad && !err) err = events(r, s, n);
  if (err || r->bad) {
    api.ddog_tracer_span_free(s);
    return err;
  }
  *out = s;
  return NULL;
}

/* Decodes `batch` into a new trace chunks handle (*out, owned by the caller
 * on success). Its spans may borrow the bytes of `batch` and of *text (the
 * transcoded utf16 strings; NULL when none): free the chunks first, then
 * *text with ddffi_batch_text_free, and the batch last. Any failure frees
 * everything and returns an error: the library's, or InvalidArgument for a
 * corrupt or truncated batch. */
ddog_TraceExporterError *ddffi_batch_build(const uint8_t *batch, uintptr_t len, ddog_TracerTraceChunks **out,
                                           ddffi_batch_text **text) {
  *text = NULL;
  if (!batch || len < DDFFI_BATCH_HEADER_SIZE) return invalid();
  uint32_t chunk_count = at_u32(batch, DDFFI_BATCH_HEADER_CHUNK_COUNT);
  uint32_t span_count = at_u32(batch, DDFFI_BATCH_HEADER_SPAN_COUNT);
  uint32_t string_count = at_u32(batch, DDFFI_BATCH_HEADER_STRING_COUNT);
  uint32_t text_offset = at_u32(batch, DDFFI_BATCH_HEADER_TEXT_OFFSET);
  uint16_t version, flags;
  memcpy(&version, batch + DDFFI_BATCH_HEADER_VERSION, 2);
  memcpy(&flags, batch + DDFFI_BATCH_HEADER_FLAGS, 2);
  size_t body = len - DDFFI_BATCH_HEADER_SIZE;
  /* Each chunk takes 4 bytes at least, each span SPAN_SIZE, each string 4. */
  if (at_u32(batch, DDFFI_BATCH_HEADER_MAGIC) != DDFFI_BATCH_MAGIC || version != DDFFI_BATCH_VERSION ||
      (flags & ~DDFFI_BATCH_FLAG_TEXT_UTF16) ||
      chunk_count > body / 4 || span_count > body / DDFFI_BATCH_SPAN_SIZE || string_count > body / 4 ||
      text_offset < DDFFI_BATCH_HEADER_SIZE || text_offset > len || text_offset % 4) {
    return invalid();
  }
  reader r = {.p = batch + DDFFI_BATCH_HEADER_SIZE, .end = batch + text_offset, .string_cap = string_count,
              .text_next = TEXT_BLOCK_MIN, .joined = batch + text_offset, .joined_end = batch + len,
              .joined_utf16 = (flags & DDFFI_BATCH_FLAG_TEXT_UTF16) != 0};
  r.strings = malloc((string_count ? string_count : 1) * sizeof *r.strings);
  if (!r.strings) return invalid();
  ddog_TracerTraceChunks *chunks = NULL;
  ddog_TraceExporterError *err = api.ddog_tracer_trace_chunks_new(chunk_count, &chunks);
  uint32_t spans = 0;
  for (uint32_t c = 0; c < chunk_count && !err && !r.bad; c++) {
    uint32_t n = rd_count(&r, DDFFI_BATCH_SPAN_SIZE);
    if (r.bad || (err = api.ddog_tracer_trace_chunks_begin_chunk(chunks, n))) break;
    for (uint32_t i = 0; i < n && !err && !r.bad; i++) {
      ddog_TracerSpan *s = NULL;
      err = span(&r, &s);
      /* push_span consumes the span, also when it fails. */
      if (s) err = api.ddog_tracer_trace_chunks_push_span(chunks, s);
      spans++;
    }
  }
  if (!err && !r.bad &&
      (r.p != r.end || r.joined != r.joined_end || spans != span_count || r.string_count != string_count)) {
    r.bad = true;
  }
  free(r.strings);
  if (err || r.bad) {
    if (chunks) api.ddog_tracer_trace_chunks_free(chunks);
    ddffi_batch_text_free(r.text);
    return err ? err : invalid();
  }
  *out = chunks;
  *text = r.text;
  return NULL;
}

/* Decodes `batch` (`len` bytes), builds its trace chunks through the public
 * ABI and sends them with ddog_trace_exporter_send_trace_chunks(exporter,
 * chunks, response_out, cancel_token). Blocks until the agent answers. The
 * batch is only read; the caller frees it after this returns. Needs a
 * successful ddffi_batch_bind() first. */
DDFFI_BATCH_EXPORT ddog_TraceExporterError *ddffi_batch_send(const ddog_TraceExporter *exporter, const uint8_t *batch,
                                                             uintptr_t len, ddog_TraceExporterResponse **response_out,
                                                             const ddog_TraceExporterCancelToken *cancel_token) {
  if (!__atomic_load_n(&bound, __ATOMIC_ACQUIRE)) return NULL; /* unreachable: the core binds first; *response_out stays NULL */
  ddog_TracerTraceChunks *chunks = NULL;
  ddffi_batch_text *text = NULL;
  ddog_TraceExporterError *err = ddffi_batch_build(batch, len, &chunks, &text);
  if (err) return err;
  /* The send consumes the chunks, also when it fails: then nothing borrows the text. */
  err = api.ddog_trace_exporter_send_trace_chunks(exporter, chunks, response_out, cancel_token);
  ddffi_batch_text_free(text);
  return err;
}
