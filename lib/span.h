/* The span data model behind the opaque span/event/chunks handles, shared
 * by span.c, structured_value.c and otlp.c. Not part of the ABI. */
#ifndef DDFFI_SPAN_H
#define DDFFI_SPAN_H

#include "internal.h"

/* A key with a string or byte value: meta, meta_struct, link attributes. */
typedef struct ddffi_str_entry {
  ddffi_str key, value;
} ddffi_str_entry;

/* A key with a number: metrics. */
typedef struct ddffi_f64_entry {
  ddffi_str key;
  double value;
} ddffi_f64_entry;

/* A hash index over an array of entries whose first member is their
 * ddffi_str key (meta, metrics, meta_struct, link and event attributes):
 * open addressing, linear probing; a used slot holds the key's 32-bit hash
 * (high half) and its entry's position + 1 (low half), 0 is empty; at most
 * half the slots are used. NULL (no index) until the
 * array holds DDFFI_INDEX_MIN keys: below that a linear search is faster. The
 * slots live in the owner's arena. */
#define DDFFI_INDEX_MIN 16
typedef struct ddffi_key_index {
  uint64_t *slots;
  size_t cap;   /* a power of two, or 0 */
  size_t holes; /* entries marked DDFFI_HOLE (ddffi_str_map / ddffi_f64_map only) */
} ddffi_key_index;

/* The key length of an entry whose key was written again later: a hole,
 * skipped by every reader, matched by no key. */
#define DDFFI_HOLE SIZE_MAX

/* meta, metrics and meta_struct hold each key once, in the order of each
 * key's LAST write (a rewrite moves the key to the end). libdatadog keeps
 * these in a VecMap that appends duplicates; before encoding, its exporter
 * dedups them (last write wins), which also reverses the vector. So the
 * wire order is this array read BACKWARDS; the encoders do that.
 *
 * A rewrite appends the entry and leaves a hole (key length DDFFI_HOLE) at
 * its old position, so every write is O(1) on average; holes are squeezed
 * out when they outnumber the keys, and by ddffi_span_seal, which
 * ddog_tracer_trace_chunks_push_span runs: spans in a chunks object have
 * none. */
typedef struct ddffi_str_map {
  ddffi_str_entry *items;
  size_t len, cap;
  ddffi_key_index index;
  uint64_t seen; /* a bit for each key ever put (ddffi_key_bit): a key whose bit is clear is not here */
  bool borrows;  /* some value may be borrowed (ddffi_span_set_meta_borrowed): never rewritten in place */
} ddffi_str_map;

typedef struct ddffi_f64_map {
  ddffi_f64_entry *items;
  size_t len, cap;
  ddffi_key_index index;
  uint64_t seen; /* as in ddffi_str_map */
} ddffi_f64_map;

/* A key's bit among 64 (its length and first, middle and last bytes):
 * lets a small map skip the search for most new keys. */
static inline uint64_t ddffi_key_bit(const void *key, size_t n) {
  const uint8_t *k = (const uint8_t *)key;
  uint32_t x = n ? (uint32_t)k[0] | (uint32_t)k[n / 2] << 8 | (uint32_t)k[n - 1] << 16 : 0;
  x |= (uint32_t)n << 24;
  return (uint64_t)1 << ((x * 0x9e3779b1u) >> 26);
}

/* Span event attribute value types, as libdatadog tags them on the wire. */
enum { DDFFI_ATTR_STRING = 0, DDFFI_ATTR_BOOL = 1, DDFFI_ATTR_INT = 2, DDFFI_ATTR_DOUBLE = 3 };

typedef struct ddffi_attr_scalar {
  uint8_t type; /* DDFFI_ATTR_* */
  bool b;
  int64_t i;
  double d;
  ddffi_str s;
} ddffi_attr_scalar;

typedef struct ddffi_event_attr {
  ddffi_str key;
  bool is_array;             /* type 4 on the wire */
  ddffi_attr_scalar single;  /* when !is_array */
  ddffi_attr_scalar *items;  /* when is_array */
  size_t n_items;
} ddffi_event_attr;

/* Storage for everything a span (or an event) holds: its strings and its
 * entry arrays, bump-allocated. The first block is part of the object's own
 * allocation; further blocks come from the heap, and all of it is freed at
 * once with the object. Nothing is freed on its own (so the ddffi_str
 * values below never go to ddffi_str_free): a value replaced by a longer
 * one, a grown array or replaced links leave their old bytes unused until
 * then. */
typedef struct ddffi_block ddffi_block;
typedef struct ddffi_arena {
  char *pos, *end;   /* the free part of the block being filled */
  size_t next_size;  /* size of the next shared heap block */
  ddffi_block *heap; /* heap blocks, newest first */
} ddffi_arena;

/* Link and event attributes are HashMaps in libdatadog (iteration order
 * unspecified). Here: first insertion order, a rewrite replaces in place. */
typedef struct ddffi_link {
  uint64_t trace_id_low, trace_id_high, span_id;
  ddffi_str_entry *attrs;
  size_t n_attrs;
  ddffi_str tracestate;
  uint32_t flags;
} ddffi_link;

/* An event's name and attributes live in its own arena (it is created before
 * it is added to a span); a span keeps the events added to it by pointer. */
struct ddog_TracerSpanEvent {
  uint64_t time_unix_nano;
  ddffi_str name;
  ddffi_event_attr *attrs;
  size_t n_attrs, cap_attrs;
  ddffi_key_index attr_index;
  ddffi_arena arena;
  /* Made by the batch decoder's ddffi_span_event_new_borrowed: not in the
   * live count, as its spans are not (it never leaves ddffi_batch_build; two
   * atomic updates less per event on the send thread). */
  bool uncounted;
  char first_block[]; /* the arena's first block */
};
typedef struct ddog_TracerSpanEvent ddffi_event;

/* All strings, entry arrays and links of a span live in its arena. */
struct ddog_TracerSpan {
  ddffi_str service, name, resource, type;
  uint64_t trace_id_low, trace_id_high, span_id, parent_id;
  int64_t start, duration;
  int32_t error;
  ddffi_str_map meta;
  ddffi_f64_map metrics;
  ddffi_str_map meta_struct; /* values are opaque msgpack blobs */
  ddffi_link *links;
  size_t n_links;
  ddffi_event **events; /* owned */
  size_t n_events, cap_events;
  ddffi_arena arena;
  /* Made by the batch decoder's ddffi_span_new_borrowed, and not yet pushed
   * or freed: not in the live count (it never leaves ddffi_batch_build, and
   * pushing it would count it down again). */
  bool uncounted;
  char first_block[]; /* the arena's first block */
};

typedef struct ddffi_chunk {
  ddog_TracerSpan **spans; /* owned */
  size_t len, cap;
} ddffi_chunk;

struct ddog_TracerTraceChunks {
  ddffi_chunk *chunks;
  size_t len, cap;
};

/* Borrowed strings: the batch decoder's (lib/batch.c) entries, declared in
 * internal.h. A span's strings are copies into its arena, except these,
 * which keep the caller's pointers: a ddffi_str may point outside the
 * span's memory, and is then never written to. */

/* Squeezes the holes out of a span's meta, metrics and meta_struct (see
 * ddffi_str_map); run on every span that goes into a chunks object. */
void ddffi_span_seal(ddog_TracerSpan *span);

/* Frees a span and everything in it WITHOUT touching the live count: for
 * spans already owned by a chunks object (ddog_tracer_span_free is for
 * spans that are still handles). */
void ddffi_span_destroy(ddog_TracerSpan *span);

/* libdatadog's drop_chunks, run before an OTLP export: keeps a chunk with
 * a span whose error is 1, or whose first sampling priority
 * (_sampling_priority_v1) is absent or > 0; otherwise keeps only its spans
 * kept by single-span sampling (_dd.span_sampling.mechanism == 8) or
 * analytics (_dd1.sr.eausr), dropping the chunk when none remain. */
void ddffi_chunks_drop_unsampled(ddog_TracerTraceChunks *chunks);

/* Last-written value of `key` in meta / metrics (NULL when absent). */
const ddffi_str *ddffi_span_meta_get(const ddog_TracerSpan *span, const char *key);
const double *ddffi_span_metric_get(const ddog_TracerSpan *span, const char *key);

/* structured_value.c: validates and encodes a token list into `out` (which
 * the caller frees). NULL on success, else libdatadog's error. */
ddog_TraceExporterError *ddffi_encode_tokens(ddog_Slice_TracerValueToken tokens, ddffi_buf *out);

/* Slice validation as libdd-common-ffi's try_as_slice: NULL with len > 0,
 * a length whose byte size exceeds PTRDIFF_MAX, or a misaligned pointer are
 * invalid. Returns true when fine. Inline: it runs for every string, and
 * with constant sizes the divisions fold away. */
static inline bool ddffi_slice_ok(const void *ptr, size_t len, size_t elem_size, size_t align) {
  if (!ptr) return len == 0;
  if (len > (size_t)PTRDIFF_MAX / elem_size) return false;
  return (uintptr_t)ptr % align == 0;
}

#endif
