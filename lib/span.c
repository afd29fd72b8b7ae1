/* Spans, span links, span events, meta_struct, trace chunks, and the v0.4
 * msgpack encoder (libdatadog's tracer.rs and span_v04.rs semantics). */
#include "msgpack.h"
#include "span.h"

#include <pthread.h>
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

/* Validates a CharSlice as libdatadog does: a malformed slice is
 * InvalidArgument, bad UTF-8 InvalidInput. */
static ddog_TraceExporterError *check_str(ddog_CharSlice s) { return ddffi_check_str(s); }

/* Grows the heap array whose pointer is at `arrp` (capacity *cap) to hold
 * at least `need` elements. On failure the array is unchanged. */
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

static bool str_is(const ddffi_str *s, const void *p, size_t n) {
  /* The same pointer: a borrowed key from the batch's string table. */
  return s->len == n && (n == 0 || s->data == p || memcmp(s->data, p, n) == 0);
}


/* ---- arenas (see ddffi_arena in span.h) --------------------------------- */

/* Bytes of arena inside a span's and an event's own allocation: enough for
 * a typical span (a few hundred bytes of strings plus the entry arrays), so
 * that most spans are a single malloc. */
#define SPAN_FIRST_BLOCK 1536
#define EVENT_FIRST_BLOCK 512
/* Heap blocks double from MIN up to MAX bytes; a request over a quarter of
 * the next block's size gets a block of its own. */
#define BLOCK_MIN 2048
#define BLOCK_MAX 65536
/* First capacities of the entry arrays. */
#define META_CAP 16
#define METRICS_CAP 8
#define META_STRUCT_CAP 2
#define EVENTS_CAP 2
#define EVENT_ATTRS_CAP 4

struct ddffi_block {
  ddffi_block *next; /* the block's bytes follow */
};

/* ---- spans' and events' own allocations, kept for reuse ----------------
 *
 * A send builds and frees a thousand spans or so, often on another pool
 * thread than the last one (so in another malloc arena); glibc gives the
 * freed memory back to the kernel and the next send faults it all in again:
 * perf put a third of the send thread in those page faults (sysmalloc).
 * So freed span and event allocations of the default size go to a list and
 * the next ones come from it: at most `max` of each (for spans ~12 MiB),
 * freed when the library is unloaded. Under ASan the lists stay empty, so
 * that a use after free is still caught. */
typedef struct {
  _Alignas(64) pthread_mutex_t lock; /* each list on cache lines of its own */
  void *head; /* the next free allocation; each starts with the pointer to the one after */
  size_t len, max, size;
} block_cache;

#if defined(__SANITIZE_ADDRESS__)
#define CACHE_MAX(n) 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHE_MAX(n) 0
#endif
#endif
#ifndef CACHE_MAX
#define CACHE_MAX(n) (n)
#endif

static block_cache span_cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, CACHE_MAX(8192),
                                 sizeof(ddog_TracerSpan) + SPAN_FIRST_BLOCK};
static block_cache event_cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, CACHE_MAX(8192),
                                  sizeof(ddog_TracerSpanEvent) + EVENT_FIRST_BLOCK};

static void *cache_take(block_cache *c) {
  pthread_mutex_lock(&c->lock);
  void *p = c->head;
  if (p) {
    c->head = *(void **)p;
    c->len--;
  }
  pthread_mutex_unlock(&c->lock);
  return p ? p : malloc(c->size);
}

/* Allocations on their way back to a cache, chained through their first
 * pointer: a send frees a thousand spans, and gives them back under one lock
 * instead of one each (4 sends in flight on a pool of threads contend for it). */
typedef struct {
  void *head, *tail;
  size_t len;
} block_chain;

static void chain_add(block_chain *ch, void *p) {
  *(void **)p = ch->head;
  if (!ch->head) ch->tail = p;
  ch->head = p;
  ch->len++;
}

static void cache_give_chain(block_cache *c, block_chain *ch) {
  void *rest = ch->head;
  if (!rest) return;
  pthread_mutex_lock(&c->lock);
  if (c->len + ch->len <= c->max) {
    *(void **)ch->tail = c->head;
    c->head = ch->head;
    c->len += ch->len;
    rest = NULL;
  } else {
    while (rest && c->len < c->max) {
      void *next = *(void **)rest;
      *(void **)rest = c->head;
      c->head = rest;
      c->len++;
      rest = next;
    }
  }
  pthread_mutex_unlock(&c->lock);
  while (rest) {
    void *next = *(void **)rest;
    free(rest);
    rest = next;
  }
  *ch = (block_chain){0};
}

static void cache_clear(block_cache *c) {
  pthread_mutex_lock(&c->lock);
  for (void *p = c->head, *next; p; p = next) {
    next = *(void **)p;
    free(p);
  }
  c->head = NULL;
  c->len = 0;
  pthread_mutex_unlock(&c->lock);
}

__attribute__((destructor)) static void caches_free(void) {
  cache_clear(&span_cache);
  cache_clear(&event_cache);
}

static void arena_init(ddffi_arena *a, char *first_block, size_t size) {
  *a = (ddffi_arena){.pos = first_block, .end = first_block + size, .next_size = BLOCK_MIN};
}

static void arena_free(ddffi_arena *a) {
  for (ddffi_block *b = a->heap, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  a->heap = NULL;
}

static size_t padding(const char *p, size_t align) { return (size_t)(-(uintptr_t)p & (align - 1)); }

/* n bytes aligned to `align` (a power of two), or NULL when out of memory. */
static void *arena_alloc(ddffi_arena *a, size_t n, size_t align) {
  size_t avail = (size_t)(a->end - a->pos), pad = padding(a->pos, align);
  if (pad <= avail && n <= avail - pad) {
    char *p = a->pos + pad;
    a->pos = p + n;
    return p;
  }
  if (n > SIZE_MAX - sizeof(ddffi_block) - align) return NULL;
  size_t size = n + align - 1;
  bool own = size > a->next_size / 4; /* the block being filled stays in use */
  if (!own) size = a->next_size;
  ddffi_block *b = malloc(sizeof *b + size);
  if (!b) return NULL;
  b->next = a->heap;
  a->heap = b;
  char *data = (char *)(b + 1), *p = data + padding(data, align);
  if (!own) {
    a->pos = p + n;
    a->end = data + size;
    if (a->next_size < BLOCK_MAX) a->next_size *= 2;
  }
  return p;
}

/* Copies n bytes (already checked) into the arena. Empty is {NULL, 0}, as
 * ddffi_str_copy makes it. */
static bool arena_str(ddffi_arena *a, ddffi_str *dst, const void *p, size_t n) {
  if (n == 0) {
    *dst = (ddffi_str){0};
    return true;
  }
  char *d = arena_alloc(a, n, 1);
  if (!d) return false;
  memcpy(d, p, n);
  *dst = (ddffi_str){d, n};
  return true;
}

/* Makes room for one more element in the arena array at `arrp` (len
 * elements, capacity *cap): when full, the elements move to a slot twice
 * the size (first_cap at first). On failure the array is unchanged. */
static bool arena_grow(ddffi_arena *a, void *arrp, size_t len, size_t *cap, size_t first_cap, size_t elem_size,
                       size_t align) {
  if (len < *cap) return true;
  size_t cap2 = *cap ? *cap * 2 : first_cap;
  if (cap2 > SIZE_MAX / elem_size) return false;
  void *old;
  memcpy(&old, arrp, sizeof old); /* any T* through a void* copy */
  void *items = arena_alloc(a, cap2 * elem_size, align);
  if (!items) return false;
  if (len) memcpy(items, old, len * elem_size);
  memcpy(arrp, &items, sizeof items);
  *cap = cap2;
  return true;
}

/* ---- key index (see ddffi_key_index in span.h) --------------------------- */

/* FNV-1a, then murmur3's 64-bit finalizer (FNV alone mixes poorly); the
 * top 32 bits. Keys are short. */
static uint32_t hash_key(const void *p, size_t n) {
  const unsigned char *c = p;
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3u;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdu;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53u;
  h ^= h >> 33;
  return (uint32_t)(h >> 32);
}

static ddffi_str *key_at(const void *items, size_t esz, size_t i) {
  return (ddffi_str *)((char *)(uintptr_t)items + i * esz);
}

/* A used slot: the key's hash, and its entry's position + 1. */
static uint64_t slot_of(uint32_t hash, size_t pos) { return (uint64_t)hash << 32 | (uint32_t)(pos + 1); }

/* The slot of `key` (hash `h`): it holds the key's entry, or is the empty
 * slot (0) where the key would go. The index must have an empty slot. The
 * hash in a slot spares looking at the entries of other keys. */
static uint64_t *index_slot(const ddffi_key_index *ix, const void *items, size_t esz, const void *key, size_t n,
                            uint32_t h) {
  size_t mask = ix->cap - 1;
  for (size_t s = h & mask;; s = (s + 1) & mask) {
    uint64_t v = ix->slots[s];
    if (v == 0 || ((uint32_t)(v >> 32) == h && str_is(key_at(items, esz, (uint32_t)v - 1), key, n)))
      return &ix->slots[s];
  }
}

/* An empty index with room for `keys` keys (at most half its slots used);
 * false (ix untouched) when out of memory. */
static bool index_alloc(ddffi_arena *a, ddffi_key_index *ix, size_t keys) {
  size_t cap = 2 * DDFFI_INDEX_MIN;
  while (cap / 2 < keys) {
    if (cap > SIZE_MAX / 4 / sizeof(uint64_t)) return false;
    cap *= 2;
  }
  uint64_t *slots = arena_alloc(a, cap * sizeof *slots, _Alignof(uint64_t));
  if (!slots) return false;
  memset(slots, 0, cap * sizeof *slots);
  ix->slots = slots;
  ix->cap = cap;
  return true;
}

/* Puts a used slot in an index that does not hold its key. */
static void index_put(ddffi_key_index *ix, uint64_t v) {
  size_t mask = ix->cap - 1, s = (uint32_t)(v >> 32) & mask;
  while (ix->slots[s]) s = (s + 1) & mask;
  ix->slots[s] = v;
}

/* Builds the index of the `len` entries at `items` (holes skipped). Out of
 * memory: no index at all (searches fall back to linear: slower, right). */
static void index_build(ddffi_arena *a, ddffi_key_index *ix, const void *items, size_t esz, size_t len) {
  ddffi_key_index built = {.holes = ix->holes};
  if (!index_alloc(a, &built, len - ix->holes)) {
    ix->slots = NULL;
    ix->cap = 0;
    return;
  }
  for (size_t i = 0; i < len; i++) {
    const ddffi_str *k = key_at(items, esz, i);
    if (k->len != DDFFI_HOLE) index_put(&built, slot_of(hash_key(k->data, k->len), i));
  }
  *ix = built;
}

/* The position of `key` among `len` entries, or -1. Builds the index once
 * the entries are many enough; with an index, *h is the key's hash (what
 * index_added and map_moved need), else 0 (a small map hashes nothing). */
static inline __attribute__((always_inline)) ptrdiff_t key_find(ddffi_arena *a, ddffi_key_index *ix,
                                                                 const void *items, size_t esz, size_t len,
                                                                 const void *key, size_t n, uint32_t *h) {
  if (!ix->slots && len - ix->holes >= DDFFI_INDEX_MIN) index_build(a, ix, items, esz, len);
  *h = 0;
  if (ix->slots) {
    *h = hash_key(key, n);
    uint64_t v = *index_slot(ix, items, esz, key, n, *h);
    return v ? (ptrdiff_t)(uint32_t)v - 1 : -1;
  }
  for (size_t i = 0; i < len; i++)
    if (str_is(key_at(items, esz, i), key, n)) return (ptrdiff_t)i;
  return -1;
}

/* Indexes the entry just put at position len - 1, a new key (hash `h`);
 * the index doubles when half full (its slots carry their hashes: no key
 * is looked at again). */
static void index_grow_put(ddffi_arena *a, ddffi_key_index *ix, size_t len, uint32_t h);
static inline void index_added(ddffi_arena *a, ddffi_key_index *ix, size_t len, uint32_t h) {
  if (ix->slots) index_grow_put(a, ix, len, h);
}

static void index_grow_put(ddffi_arena *a, ddffi_key_index *ix, size_t len, uint32_t h) {
  size_t keys = len - ix->holes;
  if (keys * 2 > ix->cap) {
    ddffi_key_index grown = {.holes = ix->holes};
    if (!index_alloc(a, &grown, keys)) {
      ix->slots = NULL; /* linear from now on */
      ix->cap = 0;
      return;
    }
    for (size_t s = 0; s < ix->cap; s++)
      if (ix->slots[s]) index_put(&grown, ix->slots[s]);
    *ix = grown; /* the old slots stay unused in the arena */
  }
  index_put(ix, slot_of(h, len - 1));
}

/* ---- keyed maps (meta, metrics, meta_struct) ---------------------------- */

/* After a rewritten key's entry was copied to position *len - 1 (a copy of
 * the one at `old`): points the index at the copy, leaves a hole at `old`,
 * and squeezes the holes out when they outnumber the keys. */
static void map_moved(ddffi_arena *a, ddffi_key_index *ix, void *items, size_t esz, size_t *len, size_t old,
                      uint32_t h) {
  ddffi_str *k = key_at(items, esz, old);
  if (ix->slots) *index_slot(ix, items, esz, k->data, k->len, h) = slot_of(h, *len - 1); /* was `old`'s slot */
  *k = (ddffi_str){NULL, DDFFI_HOLE};
  ix->holes++;
  if (ix->holes > DDFFI_INDEX_MIN && ix->holes * 2 > *len) {
    size_t n = 0;
    for (size_t i = 0; i < *len; i++) {
      if (key_at(items, esz, i)->len == DDFFI_HOLE) continue;
      if (n != i) memcpy(key_at(items, esz, n), key_at(items, esz, i), esz);
      n++;
    }
    *len = n;
    ix->holes = 0;
    if (ix->slots) index_build(a, ix, items, esz, n);
  }
}

static void map_seal(void *items, size_t esz, size_t *len, ddffi_key_index *ix) {
  if (!ix->holes) return;
  size_t n = 0;
  for (size_t i = 0; i < *len; i++) {
    if (key_at(items, esz, i)->len == DDFFI_HOLE) continue;
    if (n != i) memcpy(key_at(items, esz, n), key_at(items, esz, i), esz);
    n++;
  }
  *len = n;
  *ix = (ddffi_key_index){0}; /* positions moved: the index is stale */
}

void ddffi_span_seal(ddog_TracerSpan *span) {
  map_seal(span->meta.items, sizeof *span->meta.items, &span->meta.len, &span->meta.index);
  map_seal(span->metrics.items, sizeof *span->metrics.items, &span->metrics.len, &span->metrics.index);
  map_seal(span->meta_struct.items, sizeof *span->meta_struct.items, &span->meta_struct.len, &span->meta_struct.index);
}

/* Replaces a value: in the old value's bytes when it fits (rewriting a key
 * does not grow the arena), else in new arena bytes. False (value
 * unchanged) when out of memory. */
static bool replace_value(ddffi_arena *a, ddffi_str *dst, const void *value, size_t value_len) {
  if (value_len > dst->len) return arena_str(a, dst, value, value_len);
  if (value_len) memcpy(dst->data, value, value_len);
  else dst->data = NULL;
  dst->len = value_len;
  return true;
}

/* Sets key to value (both already checked), copying them into the arena.
 * Last write wins, and a rewritten key moves to the end: libdatadog appends
 * every write to a VecMap and its exporter dedups before encoding (keeping
 * the last write, reversing the order), so the wire order is the reverse
 * order of last writes. The encoders read these arrays backwards to match.
 * O(1) on average (the key index; a rewrite leaves a hole, see span.h).
 * On failure (out of memory) the map is unchanged. */
/* A key or value: borrowed (the pointer kept) or copied into the arena. */
static bool put_str(ddffi_arena *a, ddffi_str *dst, const void *p, size_t n, bool borrowed) {
  if (!borrowed) return arena_str(a, dst, p, n);
  *dst = (ddffi_str){n ? (char *)(uintptr_t)p : NULL, n};
  return true;
}

/* A new value for an entry: rewritten in the old value's bytes when the map
 * holds only copies and it fits, else borrowed or copied anew. */
static bool set_value(ddffi_arena *a, ddffi_str_map *m, ddffi_str *dst, const void *value, size_t value_len,
                      bool borrowed) {
  if (borrowed || m->borrows) return put_str(a, dst, value, value_len, borrowed);
  return replace_value(a, dst, value, value_len);
}

static bool str_map_set(ddffi_arena *a, ddffi_str_map *m, size_t first_cap, const void *key, size_t key_len,
                        const void *value, size_t value_len, bool borrowed) {
  if (m->len >= UINT32_MAX - 1) return false;
  uint32_t h;
  ptrdiff_t i = key_find(a, &m->index, m->items, sizeof *m->items, m->len, key, key_len, &h);
  ddffi_str_entry e;
  if (i >= 0 && (size_t)i == m->len - 1) { /* already the last write: in place */
    e = m->items[i];
    if (!set_value(a, m, &e.value, value, value_len, borrowed)) return false;
    m->items[i] = e;
    m->borrows |= borrowed;
    return true;
  }
  if (!arena_grow(a, &m->items, m->len, &m->cap, first_cap, sizeof *m->items, _Alignof(ddffi_str_entry)))
    return false;
  if (i < 0) {
    if (!put_str(a, &e.key, key, key_len, borrowed) || !put_str(a, &e.value, value, value_len, borrowed)) return false;
    m->items[m->len++] = e;
    m->seen |= ddffi_key_bit(key, key_len);
    m->borrows |= borrowed;
    index_added(a, &m->index, m->len, h);
    return true;
  }
  e = m->items[i]; /* keeps its key */
  if (!set_value(a, m, &e.value, value, value_len, borrowed)) return false;
  m->items[m->len++] = e;
  m->borrows |= borrowed;
  map_moved(a, &m->index, m->items, sizeof *m->items, &m->len, (size_t)i, h);
  return true;
}

static bool f64_map_set(ddffi_arena *a, ddffi_f64_map *m, const void *key, size_t key_len, double value,
                        bool borrowed) {
  if (m->len >= UINT32_MAX - 1) return false;
  uint32_t h;
  ptrdiff_t i = key_find(a, &m->index, m->items, sizeof *m->items, m->len, key, key_len, &h);
  if (i >= 0 && (size_t)i == m->len - 1) {
    m->items[i].value = value;
    return true;
  }
  if (!arena_grow(a, &m->items, m->len, &m->cap, METRICS_CAP, sizeof *m->items, _Alignof(ddffi_f64_entry)))
    return false;
  if (i < 0) {
    ddffi_f64_entry e = {.value = value};
    if (!put_str(a, &e.key, key, key_len, borrowed)) return false;
    m->items[m->len++] = e;
    m->seen |= ddffi_key_bit(key, key_len);
    index_added(a, &m->index, m->len, h);
    return true;
  }
  m->items[m->len++] = (ddffi_f64_entry){m->items[i].key, value};
  map_moved(a, &m->index, m->items, sizeof *m->items, &m->len, (size_t)i, h);
  return true;
}

/* Read-only lookups (no index is built here: spans in chunks are sealed). */
static ptrdiff_t key_lookup(const ddffi_key_index *ix, const void *items, size_t esz, size_t len, const char *key) {
  size_t n = strlen(key);
  if (ix->slots) {
    uint64_t v = *index_slot(ix, items, esz, key, n, hash_key(key, n));
    return v ? (ptrdiff_t)(uint32_t)v - 1 : -1;
  }
  for (size_t i = 0; i < len; i++)
    if (str_is(key_at(items, esz, i), key, n)) return (ptrdiff_t)i;
  return -1;
}

const ddffi_str *ddffi_span_meta_get(const ddog_TracerSpan *span, const char *key) {
  ptrdiff_t i = key_lookup(&span->meta.index, span->meta.items, sizeof *span->meta.items, span->meta.len, key);
  return i < 0 ? NULL : &span->meta.items[i].value;
}

const double *ddffi_span_metric_get(const ddog_TracerSpan *span, const char *key) {
  ptrdiff_t i = key_lookup(&span->metrics.index, span->metrics.items, sizeof *span->metrics.items, span->metrics.len, key);
  return i < 0 ? NULL : &span->metrics.items[i].value;
}

/* ---- destructors -------------------------------------------------------- */

static void event_destroy(ddffi_event *ev) {
  block_chain events = {0};
  arena_free(&ev->arena);
  chain_add(&events, ev);
  cache_give_chain(&event_cache, &events);
}

/* Frees a span's own memory; the span and its events join `spans` and
 * `events`, for cache_give_chain. */
static void span_destroy_into(ddog_TracerSpan *span, block_chain *spans, block_chain *events) {
  for (size_t i = 0; i < span->n_events; i++) {
    arena_free(&span->events[i]->arena);
    chain_add(events, span->events[i]);
  }
  arena_free(&span->arena);
  chain_add(spans, span);
}

/* Frees a span's memory; the live count is the caller's business. */
void ddffi_span_destroy(ddog_TracerSpan *span) {
  block_chain spans = {0}, events = {0};
  span_destroy_into(span, &spans, &events);
  cache_give_chain(&event_cache, &events);
  cache_give_chain(&span_cache, &spans);
}

/* ---- spans -------------------------------------------------------------- */

static ddog_TraceExporterError *span_new(ddog_TracerSpan **out_handle, const ddog_TracerSpanFields *fields,
                                         bool borrowed) {
  if (!fields || !out_handle) return invalid_argument();
  ddog_TracerSpan *span = cache_take(&span_cache);
  if (!span) return out_of_memory();
  *span = (ddog_TracerSpan){0};
  arena_init(&span->arena, span->first_block, SPAN_FIRST_BLOCK);
  const ddog_CharSlice *src[] = {&fields->service, &fields->name, &fields->resource, &fields->span_type};
  ddffi_str *dst[] = {&span->service, &span->name, &span->resource, &span->type};
  for (size_t i = 0; i < 4; i++) {
    ddog_TraceExporterError *err = borrowed ? NULL : check_str(*src[i]);
    if (!err && !put_str(&span->arena, dst[i], src[i]->ptr, src[i]->len, borrowed)) err = out_of_memory();
    if (err) {
      ddffi_span_destroy(span);
      return err;
    }
  }
  if (borrowed) {
    /* The batch decoder's spans mostly have meta and metrics: room for
     * them now, in the first block, spares their first insertions the
     * slow path. (Out of memory here is no error: the arrays grow later.) */
    (void)arena_grow(&span->arena, &span->meta.items, 0, &span->meta.cap, META_CAP, sizeof *span->meta.items,
                     _Alignof(ddffi_str_entry));
    (void)arena_grow(&span->arena, &span->metrics.items, 0, &span->metrics.cap, METRICS_CAP,
                     sizeof *span->metrics.items, _Alignof(ddffi_f64_entry));
  }
  span->trace_id_low = fields->trace_id_low;
  span->trace_id_high = fields->trace_id_high;
  span->span_id = fields->span_id;
  span->parent_id = fields->parent_id;
  span->start = fields->start;
  span->duration = fields->duration;
  span->error = fields->error;
  span->uncounted = borrowed;
  if (!borrowed) ddffi_live_inc();
  *out_handle = span;
  return NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_new(ddog_TracerSpan **out_handle,
                                                           const ddog_TracerSpanFields *fields) {
  return span_new(out_handle, fields, false);
}

ddog_TraceExporterError *ddffi_span_new_borrowed(ddog_TracerSpan **out_handle,
                                                              const ddog_TracerSpanFields *fields) {
  return span_new(out_handle, fields, true);
}

DDFFI_EXPORT void ddog_tracer_span_free(ddog_TracerSpan *handle) {
  if (!handle) return;
  bool counted = !handle->uncounted;
  ddffi_span_destroy(handle);
  if (counted) ddffi_live_dec();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_meta(ddog_TracerSpan *handle, ddog_CharSlice key,
                                                                ddog_CharSlice value) {
  if (!handle) return invalid_argument();
  ddog_TraceExporterError *err;
  if ((err = check_str(key)) || (err = check_str(value))) return err;
  return str_map_set(&handle->arena, &handle->meta, META_CAP, key.ptr, key.len, value.ptr, value.len, false)
             ? NULL
             : out_of_memory();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_metric(ddog_TracerSpan *handle, ddog_CharSlice key,
                                                                  double value) {
  if (!handle) return invalid_argument();
  ddog_TraceExporterError *err = check_str(key);
  if (err) return err;
  return f64_map_set(&handle->arena, &handle->metrics, key.ptr, key.len, value, false) ? NULL : out_of_memory();
}

/* True when a small map (no index yet, room for one more entry) surely
 * lacks `key`: its bit is clear, or a search finds nothing. Then the key
 * can be appended as is: what str_map_set / f64_map_set would do. */
static inline __attribute__((always_inline)) bool small_map_new_key(const void *items, size_t esz, size_t len,
                                                                    size_t cap, const ddffi_key_index *ix,
                                                                    uint64_t seen, const void *key, size_t n,
                                                                    uint64_t bit) {
  if (ix->slots || len >= cap || len + 1 >= DDFFI_INDEX_MIN) return false;
  if (!(seen & bit)) return true;
  for (size_t i = 0; i < len; i++)
    if (str_is(key_at(items, esz, i), key, n)) return false;
  return true;
}

ddog_TraceExporterError *ddffi_span_set_meta_borrowed(ddog_TracerSpan *handle, ddog_CharSlice key,
                                                                   ddog_CharSlice value) {
  if (!handle) return invalid_argument();
  ddffi_str_map *m = &handle->meta;
  uint64_t bit = ddffi_key_bit(key.ptr, key.len);
  if (small_map_new_key(m->items, sizeof *m->items, m->len, m->cap, &m->index, m->seen, key.ptr, key.len, bit)) {
    m->items[m->len++] = (ddffi_str_entry){{key.len ? (char *)(uintptr_t)key.ptr : NULL, key.len},
                                           {value.len ? (char *)(uintptr_t)value.ptr : NULL, value.len}};
    m->seen |= bit;
    m->borrows = true;
    return NULL;
  }
  return str_map_set(&handle->arena, &handle->meta, META_CAP, key.ptr, key.len, value.ptr, value.len, true)
             ? NULL
             : out_of_memory();
}

ddog_TraceExporterError *ddffi_span_set_metric_borrowed(ddog_TracerSpan *handle, ddog_CharSlice key,
                                                                     double value) {
  if (!handle) return invalid_argument();
  ddffi_f64_map *m = &handle->metrics;
  uint64_t bit = ddffi_key_bit(key.ptr, key.len);
  if (small_map_new_key(m->items, sizeof *m->items, m->len, m->cap, &m->index, m->seen, key.ptr, key.len, bit)) {
    m->items[m->len++] = (ddffi_f64_entry){{key.len ? (char *)(uintptr_t)key.ptr : NULL, key.len}, value};
    m->seen |= bit;
    return NULL;
  }
  return f64_map_set(&handle->arena, &handle->metrics, key.ptr, key.len, value, true) ? NULL : out_of_memory();
}

/* Hands the borrowed entries to the batch decoder when the library loads. */
__attribute__((constructor)) static void hand_to_batch(void) {
  ddffi_batch_own(ddffi_span_new_borrowed, ddffi_span_set_meta_borrowed, ddffi_span_set_metric_borrowed,
                  ddffi_utf8_check, ddffi_span_set_links_borrowed, ddffi_span_event_new_borrowed,
                  ddffi_span_event_set_borrowed);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_meta_struct_blob(ddog_TracerSpan *handle,
                                                                            ddog_CharSlice key,
                                                                            ddog_ByteSlice value) {
  if (!handle) return invalid_argument();
  ddog_TraceExporterError *err = check_str(key);
  if (err) return err;
  /* The blob is opaque: not checked to be msgpack. */
  if (!ddffi_slice_ok(value.ptr, value.len, 1, 1)) return invalid_argument();
  return str_map_set(&handle->arena, &handle->meta_struct, META_STRUCT_CAP, key.ptr, key.len, value.ptr, value.len, false)
             ? NULL
             : out_of_memory();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_meta_struct(ddog_TracerSpan *handle, ddog_CharSlice key,
                                                                       ddog_Slice_TracerValueToken tokens) {
  if (!handle) return invalid_argument();
  ddog_TraceExporterError *err = check_str(key);
  if (err) return err;
  ddffi_buf buf = {0};
  if ((err = ddffi_encode_tokens(tokens, &buf))) {
    ddffi_buf_free(&buf);
    return err; /* the span is unchanged */
  }
  bool ok = str_map_set(&handle->arena, &handle->meta_struct, META_STRUCT_CAP, key.ptr, key.len, buf.data, buf.len, false);
  ddffi_buf_free(&buf);
  return ok ? NULL : out_of_memory();
}

/* Checks one C link as libdatadog converts it: the attribute slice, then
 * each attribute's key and value, then the tracestate. */
static ddog_TraceExporterError *check_link(const ddog_TracerSpanLink *src) {
  const ddog_Slice_TracerSpanLinkAttribute *attrs = &src->attributes;
  if (!ddffi_slice_ok(attrs->ptr, attrs->len, sizeof *attrs->ptr, _Alignof(ddog_TracerSpanLinkAttribute)))
    return invalid_argument();
  ddog_TraceExporterError *err;
  for (size_t i = 0; i < attrs->len; i++)
    if ((err = check_str(attrs->ptr[i].key)) || (err = check_str(attrs->ptr[i].value))) return err;
  return check_str(src->tracestate);
}

/* Copies one checked C link into the arena (its strings borrowed instead
 * when `borrowed`); false when out of memory. */
static bool copy_link(ddffi_arena *a, ddffi_link *dst, const ddog_TracerSpanLink *src, bool borrowed) {
  *dst = (ddffi_link){.trace_id_low = src->trace_id_low,
                      .trace_id_high = src->trace_id_high,
                      .span_id = src->span_id,
                      .flags = src->flags};
  const ddog_Slice_TracerSpanLinkAttribute *attrs = &src->attributes;
  if (attrs->len) {
    dst->attrs = arena_alloc(a, attrs->len * sizeof *dst->attrs, _Alignof(ddffi_str_entry));
    if (!dst->attrs) return false;
  }
  ddffi_key_index index = {0}; /* only for this copy; its slots stay in the arena */
  for (size_t i = 0; i < attrs->len; i++) {
    ddog_CharSlice k = attrs->ptr[i].key, v = attrs->ptr[i].value;
    /* A HashMap in libdatadog: a repeated key replaces the value. */
    if (dst->n_attrs >= UINT32_MAX - 1) return false;
    uint32_t h;
    ptrdiff_t found = key_find(a, &index, dst->attrs, sizeof *dst->attrs, dst->n_attrs, k.ptr, k.len, &h);
    size_t j = found < 0 ? dst->n_attrs : (size_t)found;
    if (found < 0 && !put_str(a, &dst->attrs[j].key, k.ptr, k.len, borrowed)) return false;
    if (!put_str(a, &dst->attrs[j].value, v.ptr, v.len, borrowed)) return false;
    if (found < 0) index_added(a, &index, ++dst->n_attrs, h);
  }
  return put_str(a, &dst->tracestate, src->tracestate.ptr, src->tracestate.len, borrowed);
}

/* Replaces the span's links with copies of `links` (already checked). */
static ddog_TraceExporterError *set_links(ddog_TracerSpan *handle, ddog_Slice_TracerSpanLink links, bool borrowed) {
  ddffi_link *converted = NULL;
  if (links.len) {
    if (links.len > SIZE_MAX / sizeof *converted) return out_of_memory();
    converted = arena_alloc(&handle->arena, links.len * sizeof *converted, _Alignof(ddffi_link));
    if (!converted) return out_of_memory();
  }
  for (size_t i = 0; i < links.len; i++)
    if (!copy_link(&handle->arena, &converted[i], &links.ptr[i], borrowed)) return out_of_memory();
  handle->links = converted; /* the old links' bytes stay unused in the arena */
  handle->n_links = links.len;
  return NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_set_links(ddog_TracerSpan *handle,
                                                                 ddog_Slice_TracerSpanLink links) {
  if (!handle) return invalid_argument();
  if (!ddffi_slice_ok(links.ptr, links.len, sizeof *links.ptr, _Alignof(ddog_TracerSpanLink)))
    return invalid_argument();
  /* All or nothing: check every link before copying any, so that on error
   * the span keeps its old links (and its arena does not grow). */
  for (size_t i = 0; i < links.len; i++) {
    ddog_TraceExporterError *err = check_link(&links.ptr[i]);
    if (err) return err;
  }
  return set_links(handle, links, false);
}

ddog_TraceExporterError *ddffi_span_set_links_borrowed(ddog_TracerSpan *handle, ddog_Slice_TracerSpanLink links) {
  if (!handle) return invalid_argument();
  return set_links(handle, links, true);
}

/* ---- span events -------------------------------------------------------- */

static ddog_TraceExporterError *event_new(ddog_TracerSpanEvent **out_handle, ddog_CharSlice name,
                                          uint64_t time_unix_nano, bool borrowed) {
  if (!out_handle) return invalid_argument();
  ddog_TraceExporterError *err = borrowed ? NULL : check_str(name);
  if (err) return err;
  ddog_TracerSpanEvent *ev = cache_take(&event_cache);
  if (!ev) return out_of_memory();
  *ev = (ddffi_event){.time_unix_nano = time_unix_nano, .uncounted = borrowed};
  arena_init(&ev->arena, ev->first_block, EVENT_FIRST_BLOCK);
  if (!put_str(&ev->arena, &ev->name, name.ptr, name.len, borrowed)) {
    event_destroy(ev);
    return out_of_memory();
  }
  if (!borrowed) ddffi_live_inc();
  *out_handle = ev;
  return NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_new(ddog_TracerSpanEvent **out_handle,
                                                                 ddog_CharSlice name, uint64_t time_unix_nano) {
  return event_new(out_handle, name, time_unix_nano, false);
}

ddog_TraceExporterError *ddffi_span_event_new_borrowed(ddog_TracerSpanEvent **out_handle, ddog_CharSlice name,
                                                       uint64_t time_unix_nano) {
  return event_new(out_handle, name, time_unix_nano, true);
}

DDFFI_EXPORT void ddog_tracer_span_event_free(ddog_TracerSpanEvent *handle) {
  if (!handle) return;
  bool counted = !handle->uncounted;
  event_destroy(handle);
  if (counted) ddffi_live_dec();
}

/* Sets attribute `key` (already checked) of `event` to `value`, whose
 * strings are already in the event's arena. libdatadog keeps event
 * attributes in a HashMap: a repeated key replaces the value, whatever the
 * types (the old value's bytes stay unused in the arena). */
static ddog_TraceExporterError *event_put_as(ddffi_event *event, ddog_CharSlice key, ddffi_event_attr value,
                                             bool borrowed) {
  if (event->n_attrs >= UINT32_MAX - 1) return out_of_memory();
  uint32_t h;
  ptrdiff_t i = key_find(&event->arena, &event->attr_index, event->attrs, sizeof *event->attrs, event->n_attrs,
                         key.ptr, key.len, &h);
  if (i >= 0) {
    value.key = event->attrs[i].key;
    event->attrs[i] = value;
    return NULL;
  }
  if (!arena_grow(&event->arena, &event->attrs, event->n_attrs, &event->cap_attrs, EVENT_ATTRS_CAP,
                  sizeof *event->attrs, _Alignof(ddffi_event_attr)) ||
      !put_str(&event->arena, &value.key, key.ptr, key.len, borrowed))
    return out_of_memory();
  event->attrs[event->n_attrs++] = value;
  index_added(&event->arena, &event->attr_index, event->n_attrs, h);
  return NULL;
}

static ddog_TraceExporterError *event_put(ddffi_event *event, ddog_CharSlice key, ddffi_event_attr value) {
  return event_put_as(event, key, value, false);
}

ddog_TraceExporterError *ddffi_span_event_set_borrowed(ddog_TracerSpanEvent *handle, ddog_CharSlice key,
                                                       uint32_t type, ddog_CharSlice s, int64_t i, double d) {
  if (!handle) return invalid_argument();
  ddffi_event_attr a = {.single.type = (uint8_t)type};
  switch (type) {
  case DDFFI_ATTR_STRING: a.single.s = (ddffi_str){s.len ? (char *)(uintptr_t)s.ptr : NULL, s.len}; break;
  case DDFFI_ATTR_BOOL: a.single.b = i != 0; break;
  case DDFFI_ATTR_INT: a.single.i = i; break;
  case DDFFI_ATTR_DOUBLE: a.single.d = d; break;
  default: return invalid_argument();
  }
  return event_put_as(handle, key, a, true);
}

/* Checks the handle, then the key: libdatadog's order for every setter,
 * after the value checks of those that check their value first. */
static ddog_TraceExporterError *check_event_key(const ddffi_event *event, ddog_CharSlice key) {
  if (!event) return invalid_argument();
  return check_str(key);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_string(ddog_TracerSpanEvent *handle,
                                                                        ddog_CharSlice key, ddog_CharSlice value) {
  /* libdatadog checks the value before the handle and the key. */
  ddog_TraceExporterError *err;
  if ((err = check_str(value)) || (err = check_event_key(handle, key))) return err;
  ddffi_event_attr a = {.single.type = DDFFI_ATTR_STRING};
  if (!arena_str(&handle->arena, &a.single.s, value.ptr, value.len)) return out_of_memory();
  return event_put(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_bool(ddog_TracerSpanEvent *handle,
                                                                      ddog_CharSlice key, bool value) {
  ddog_TraceExporterError *err = check_event_key(handle, key);
  if (err) return err;
  return event_put(handle, key, (ddffi_event_attr){.single = {.type = DDFFI_ATTR_BOOL, .b = value}});
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_int(ddog_TracerSpanEvent *handle,
                                                                     ddog_CharSlice key, int64_t value) {
  ddog_TraceExporterError *err = check_event_key(handle, key);
  if (err) return err;
  return event_put(handle, key, (ddffi_event_attr){.single = {.type = DDFFI_ATTR_INT, .i = value}});
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_double(ddog_TracerSpanEvent *handle,
                                                                        ddog_CharSlice key, double value) {
  ddog_TraceExporterError *err = check_event_key(handle, key);
  if (err) return err;
  return event_put(handle, key, (ddffi_event_attr){.single = {.type = DDFFI_ATTR_DOUBLE, .d = value}});
}

/* An array attribute of n items in the event's arena (items NULL when n is
 * 0); false when out of memory. */
static bool array_attr(ddffi_event *event, ddffi_event_attr *a, size_t n) {
  *a = (ddffi_event_attr){.is_array = true, .n_items = n};
  if (n == 0) return true;
  if (n > SIZE_MAX / sizeof *a->items) return false;
  a->items = arena_alloc(&event->arena, n * sizeof *a->items, _Alignof(ddffi_attr_scalar));
  return a->items != NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_string_array(ddog_TracerSpanEvent *handle,
                                                                              ddog_CharSlice key,
                                                                              ddog_Slice_CharSlice values) {
  /* The values (slice, then each string) are checked before the handle and key. */
  if (!ddffi_slice_ok(values.ptr, values.len, sizeof *values.ptr, _Alignof(ddog_CharSlice)))
    return invalid_argument();
  ddog_TraceExporterError *err;
  for (size_t i = 0; i < values.len; i++)
    if ((err = check_str(values.ptr[i]))) return err;
  if ((err = check_event_key(handle, key))) return err;
  ddffi_event_attr a;
  if (!array_attr(handle, &a, values.len)) return out_of_memory();
  for (size_t i = 0; i < values.len; i++) {
    a.items[i] = (ddffi_attr_scalar){.type = DDFFI_ATTR_STRING};
    if (!arena_str(&handle->arena, &a.items[i].s, values.ptr[i].ptr, values.ptr[i].len)) return out_of_memory();
  }
  return event_put(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_bool_array(ddog_TracerSpanEvent *handle,
                                                                            ddog_CharSlice key,
                                                                            ddog_Slice_bool values) {
  if (!ddffi_slice_ok(values.ptr, values.len, sizeof(bool), _Alignof(bool))) return invalid_argument();
  ddog_TraceExporterError *err = check_event_key(handle, key);
  if (err) return err;
  ddffi_event_attr a;
  if (!array_attr(handle, &a, values.len)) return out_of_memory();
  const uint8_t *raw = (const uint8_t *)values.ptr;
  for (size_t i = 0; i < values.len; i++) a.items[i] = (ddffi_attr_scalar){.type = DDFFI_ATTR_BOOL, .b = raw[i] != 0};
  return event_put(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_int_array(ddog_TracerSpanEvent *handle,
                                                                           ddog_CharSlice key,
                                                                           ddog_Slice_I64 values) {
  if (!ddffi_slice_ok(values.ptr, values.len, sizeof(int64_t), _Alignof(int64_t))) return invalid_argument();
  ddog_TraceExporterError *err = check_event_key(handle, key);
  if (err) return err;
  ddffi_event_attr a;
  if (!array_attr(handle, &a, values.len)) return out_of_memory();
  for (size_t i = 0; i < values.len; i++) a.items[i] = (ddffi_attr_scalar){.type = DDFFI_ATTR_INT, .i = values.ptr[i]};
  return event_put(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_event_set_double_array(ddog_TracerSpanEvent *handle,
                                                                              ddog_CharSlice key,
                                                                              ddog_Slice_F64 values) {
  if (!ddffi_slice_ok(values.ptr, values.len, sizeof(double), _Alignof(double))) return invalid_argument();
  ddog_TraceExporterError *err = check_event_key(handle, key);
  if (err) return err;
  ddffi_event_attr a;
  if (!array_attr(handle, &a, values.len)) return out_of_memory();
  for (size_t i = 0; i < values.len; i++)
    a.items[i] = (ddffi_attr_scalar){.type = DDFFI_ATTR_DOUBLE, .d = values.ptr[i]};
  return event_put(handle, key, a);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_span_add_event(ddog_TracerSpan *span, ddog_TracerSpanEvent *event) {
  /* The event is consumed whatever happens; on error the span is unchanged. */
  if (!span) {
    ddog_tracer_span_event_free(event);
    return invalid_argument();
  }
  if (!event) return invalid_argument();
  if (!arena_grow(&span->arena, &span->events, span->n_events, &span->cap_events, EVENTS_CAP, sizeof *span->events,
                  _Alignof(ddffi_event *))) {
    ddog_tracer_span_event_free(event);
    return out_of_memory();
  }
  span->events[span->n_events++] = event; /* now owned by the span */
  if (!event->uncounted) ddffi_live_dec();
  event->uncounted = false;
  return NULL;
}

/* ---- trace chunks ------------------------------------------------------- */

/* Capacities are only hints here. libdatadog passes them to
 * Vec::with_capacity, which panics (caught: Panic error) when the byte size
 * overflows isize; with a smaller but still absurd hint Rust would abort on
 * the failed allocation, while we size the array by at most
 * CAPACITY_HINT_MAX elements of it. Element sizes:
 * Vec<SpanBytes> is 24 bytes; SpanBytes is about 336 bytes on LP64. */
#define RUST_CHUNK_SIZE 24
#define RUST_SPAN_SIZE 336
/* Up to this many elements, a hint is used to size the array up front (a
 * failure to do so is ignored: it is only a hint). */
#define CAPACITY_HINT_MAX 4096

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_trace_chunks_new(uintptr_t capacity,
                                                                   ddog_TracerTraceChunks **out_handle) {
  if (capacity > (uintptr_t)PTRDIFF_MAX / RUST_CHUNK_SIZE) return ddffi_error(E_PANIC, NULL);
  if (!out_handle) return invalid_argument();
  ddog_TracerTraceChunks *chunks = calloc(1, sizeof *chunks);
  if (!chunks) return out_of_memory();
  (void)grow(&chunks->chunks, &chunks->cap, capacity < CAPACITY_HINT_MAX ? capacity : CAPACITY_HINT_MAX,
             sizeof *chunks->chunks);
  ddffi_live_inc();
  *out_handle = chunks;
  return NULL;
}

DDFFI_EXPORT void ddog_tracer_trace_chunks_free(ddog_TracerTraceChunks *handle) {
  if (!handle) return;
  /* The spans inside were uncounted when pushed: free them silently. */
  block_chain spans = {0}, events = {0};
  for (size_t c = 0; c < handle->len; c++) {
    for (size_t s = 0; s < handle->chunks[c].len; s++) span_destroy_into(handle->chunks[c].spans[s], &spans, &events);
    free(handle->chunks[c].spans);
  }
  cache_give_chain(&event_cache, &events);
  cache_give_chain(&span_cache, &spans);
  free(handle->chunks);
  free(handle);
  ddffi_live_dec();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_trace_chunks_begin_chunk(ddog_TracerTraceChunks *handle,
                                                                           uintptr_t capacity) {
  if (!handle) return invalid_argument();
  if (capacity > (uintptr_t)PTRDIFF_MAX / RUST_SPAN_SIZE) return ddffi_error(E_PANIC, NULL);
  if (!grow(&handle->chunks, &handle->cap, handle->len + 1, sizeof *handle->chunks)) return out_of_memory();
  ddffi_chunk *chunk = &handle->chunks[handle->len++];
  *chunk = (ddffi_chunk){0};
  (void)grow(&chunk->spans, &chunk->cap, capacity < CAPACITY_HINT_MAX ? capacity : CAPACITY_HINT_MAX,
             sizeof *chunk->spans);
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
  ddffi_span_seal(span); /* no more writes: the maps lose their holes */
  chunk->spans[chunk->len++] = span;
  if (!span->uncounted) ddffi_live_dec(); /* now owned by the chunks */
  span->uncounted = false;
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

static uint8_t *mpw_s(uint8_t *p, const ddffi_str *s) { return ddffi_mpw_str(p, s->data, s->len); }

/* Links and events, written raw into room reserved by extras_bound. */

/* The most bytes a link or an event takes, its strings aside: field names
 * and headers (each number or header at most DDFFI_MP_HEAD bytes). */
#define LINK_FIXED (1 + 9 + 9 + 14 + 9 + 8 + 9 + 11 + DDFFI_MP_HEAD + 11 + DDFFI_MP_HEAD + 6 + 5)
#define EVENT_FIXED (1 + 15 + 9 + 5 + DDFFI_MP_HEAD + 11 + DDFFI_MP_HEAD)
/* {"type": 0xcc NN, "<kind>_value": v} and its array wrapper, strings aside. */
#define SCALAR_FIXED (1 + 5 + 2 + 13 + DDFFI_MP_HEAD)
#define ARRAY_FIXED (1 + 5 + 2 + 12 + 1 + 7 + DDFFI_MP_HEAD)

static size_t extras_bound(const ddog_TracerSpan *span) {
  size_t n = 12 + DDFFI_MP_HEAD + 12 + DDFFI_MP_HEAD; /* "span_links" [..] "span_events" [..] */
  for (size_t i = 0; i < span->n_links; i++) {
    const ddffi_link *l = &span->links[i];
    n += LINK_FIXED + l->tracestate.len;
    for (size_t k = 0; k < l->n_attrs; k++) n += 2 * DDFFI_MP_HEAD + l->attrs[k].key.len + l->attrs[k].value.len;
  }
  for (size_t i = 0; i < span->n_events; i++) {
    const ddffi_event *ev = span->events[i];
    n += EVENT_FIXED + ev->name.len;
    for (size_t k = 0; k < ev->n_attrs; k++) {
      const ddffi_event_attr *a = &ev->attrs[k];
      n += DDFFI_MP_HEAD + a->key.len;
      if (!a->is_array) {
        n += SCALAR_FIXED + (a->single.type == DDFFI_ATTR_STRING ? a->single.s.len : 0);
        continue;
      }
      n += ARRAY_FIXED + a->n_items * SCALAR_FIXED;
      for (size_t j = 0; j < a->n_items; j++)
        if (a->items[j].type == DDFFI_ATTR_STRING) n += a->items[j].s.len;
    }
  }
  return n;
}

/* ddffi_mp_array */
static uint8_t *mpw_array(uint8_t *p, uint32_t n) {
  if (n < 16) {
    *p = (uint8_t)(0x90 | n);
    return p + 1;
  }
  if (n <= 0xffff) return ddffi_mpw_be(2, p, 0xdc, n);
  return ddffi_mpw_be(4, p, 0xdd, n);
}

static uint8_t *encode_links(uint8_t *p, const ddog_TracerSpan *span) {
  p = DDFFI_MPW_LIT(p, "\xaaspan_links");
  p = mpw_array(p, (uint32_t)span->n_links);
  for (size_t i = 0; i < span->n_links; i++) {
    const ddffi_link *l = &span->links[i];
    p = ddffi_mpw_map(p, 3 + (l->n_attrs != 0) + (l->tracestate.len != 0) + (l->flags != 0));
    p = DDFFI_MPW_LIT(p, "\xa8trace_id");
    p = ddffi_mpw_be(8, p, 0xcf, l->trace_id_low);
    p = DDFFI_MPW_LIT(p, "\xadtrace_id_high"); /* written even when 0 */
    p = ddffi_mpw_be(8, p, 0xcf, l->trace_id_high);
    p = DDFFI_MPW_LIT(p, "\xa7span_id");
    p = ddffi_mpw_be(8, p, 0xcf, l->span_id);
    if (l->n_attrs) {
      p = DDFFI_MPW_LIT(p, "\xaa" "attributes");
      p = ddffi_mpw_map(p, (uint32_t)l->n_attrs);
      for (size_t k = 0; k < l->n_attrs; k++) {
        p = mpw_s(p, &l->attrs[k].key);
        p = mpw_s(p, &l->attrs[k].value);
      }
    }
    if (l->tracestate.len) {
      p = DDFFI_MPW_LIT(p, "\xaatracestate");
      p = mpw_s(p, &l->tracestate);
    }
    if (l->flags) {
      p = DDFFI_MPW_LIT(p, "\xa5" "flags");
      p = ddffi_mpw_be(4, p, 0xce, l->flags); /* raw, bit 31 included, always 0xce */
    }
  }
  return p;
}

/* {"type": <u8>, "<kind>_value": v}; the type is always written as 0xcc NN. */
static uint8_t *encode_attr_scalar(uint8_t *p, const ddffi_attr_scalar *v) {
  p[0] = 0x82;
  p = DDFFI_MPW_LIT(p + 1, "\xa4type");
  p[0] = 0xcc;
  p[1] = v->type;
  p += 2;
  switch (v->type) {
  case DDFFI_ATTR_STRING:
    p = DDFFI_MPW_LIT(p, "\xacstring_value");
    return mpw_s(p, &v->s);
  case DDFFI_ATTR_BOOL:
    p = DDFFI_MPW_LIT(p, "\xaa" "bool_value");
    *p = v->b ? 0xc3 : 0xc2;
    return p + 1;
  case DDFFI_ATTR_INT:
    p = DDFFI_MPW_LIT(p, "\xa9int_value");
    return ddffi_mpw_sint(p, v->i);
  default:
    p = DDFFI_MPW_LIT(p, "\xac" "double_value");
    return ddffi_mpw_f64(p, v->d);
  }
}

static uint8_t *encode_events(uint8_t *p, const ddog_TracerSpan *span) {
  p = DDFFI_MPW_LIT(p, "\xab" "span_events");
  p = mpw_array(p, (uint32_t)span->n_events);
  for (size_t i = 0; i < span->n_events; i++) {
    const ddffi_event *ev = span->events[i];
    p = ddffi_mpw_map(p, 2 + (ev->n_attrs != 0));
    p = DDFFI_MPW_LIT(p, "\xaetime_unix_nano");
    p = ddffi_mpw_be(8, p, 0xcf, ev->time_unix_nano);
    p = DDFFI_MPW_LIT(p, "\xa4name");
    p = mpw_s(p, &ev->name);
    if (!ev->n_attrs) continue;
    p = DDFFI_MPW_LIT(p, "\xaa" "attributes");
    p = ddffi_mpw_map(p, (uint32_t)ev->n_attrs);
    for (size_t k = 0; k < ev->n_attrs; k++) {
      const ddffi_event_attr *a = &ev->attrs[k];
      p = mpw_s(p, &a->key);
      if (!a->is_array) {
        p = encode_attr_scalar(p, &a->single);
        continue;
      }
      /* {"type": 4, "array_value": {"values": [scalar maps...]}} */
      p = DDFFI_MPW_LIT(p, "\x82\xa4type\xcc\x04\xab" "array_value\x81\xa6values");
      p = mpw_array(p, (uint32_t)a->n_items);
      for (size_t j = 0; j < a->n_items; j++) p = encode_attr_scalar(p, &a->items[j]);
    }
  }
  return p;
}

/* The most bytes encode_span writes for a span, links and events aside
 * (written after, through the checked writers): each string or number at
 * most DDFFI_MP_HEAD bytes of header, the field names below SPAN_NAMES. */
#define SPAN_NAMES 112
static size_t span_bound(const ddog_TracerSpan *span) {
  size_t n = SPAN_NAMES + 16 * DDFFI_MP_HEAD + span->service.len + span->name.len + span->resource.len + span->type.len;
  for (size_t i = 0; i < span->meta.len; i++)
    n += 2 * DDFFI_MP_HEAD + span->meta.items[i].key.len + span->meta.items[i].value.len;
  n += span->metrics.len * 2 * DDFFI_MP_HEAD;
  for (size_t i = 0; i < span->metrics.len; i++) n += span->metrics.items[i].key.len;
  for (size_t i = 0; i < span->meta_struct.len; i++)
    n += 2 * DDFFI_MP_HEAD + span->meta_struct.items[i].key.len + span->meta_struct.items[i].value.len;
  return n;
}

static void encode_span(ddffi_buf *b, const ddog_TracerSpan *span) {
  ddffi_buf_reserve(b, span_bound(span));
  if (b->failed) return;
  uint8_t *p = b->data + b->len;
  uint32_t n = 7 + (span->type.len != 0) + (span->parent_id != 0) + (span->error != 0) + (span->meta.len != 0) +
               (span->metrics.len != 0) + (span->meta_struct.len != 0) + (span->n_links != 0) +
               (span->n_events != 0);
  p = ddffi_mpw_map(p, n);
  p = DDFFI_MPW_LIT(p, "\xa7service");
  p = mpw_s(p, &span->service);
  p = DDFFI_MPW_LIT(p, "\xa4name");
  p = mpw_s(p, &span->name);
  p = DDFFI_MPW_LIT(p, "\xa8resource");
  p = mpw_s(p, &span->resource);
  p = DDFFI_MPW_LIT(p, "\xa8trace_id");
  p = ddffi_mpw_be(8, p, 0xcf, span->trace_id_low); /* the low 64 bits only */
  p = DDFFI_MPW_LIT(p, "\xa7span_id");
  p = ddffi_mpw_be(8, p, 0xcf, span->span_id);
  if (span->parent_id) {
    p = DDFFI_MPW_LIT(p, "\xa9parent_id");
    p = ddffi_mpw_be(8, p, 0xcf, span->parent_id);
  }
  p = DDFFI_MPW_LIT(p, "\xa5start");
  p = ddffi_mpw_be(8, p, 0xd3, (uint64_t)span->start);
  p = DDFFI_MPW_LIT(p, "\xa8" "duration");
  p = ddffi_mpw_sint(p, span->duration);
  if (span->error) {
    p = DDFFI_MPW_LIT(p, "\xa5" "error");
    p = ddffi_mpw_sint(p, span->error);
  }
  /* Maps go out newest-first: see ddffi_str_map in span.h. */
  if (span->meta.len) {
    p = DDFFI_MPW_LIT(p, "\xa4meta");
    p = ddffi_mpw_map(p, (uint32_t)span->meta.len);
    for (size_t i = span->meta.len; i-- > 0;) {
      p = mpw_s(p, &span->meta.items[i].key);
      p = mpw_s(p, &span->meta.items[i].value);
    }
  }
  if (span->metrics.len) {
    p = DDFFI_MPW_LIT(p, "\xa7metrics");
    p = ddffi_mpw_map(p, (uint32_t)span->metrics.len);
    for (size_t i = span->metrics.len; i-- > 0;) {
      p = mpw_s(p, &span->metrics.items[i].key);
      p = ddffi_mpw_f64(p, span->metrics.items[i].value);
    }
  }
  if (span->type.len) {
    p = DDFFI_MPW_LIT(p, "\xa4type");
    p = mpw_s(p, &span->type);
  }
  if (span->meta_struct.len) {
    p = DDFFI_MPW_LIT(p, "\xabmeta_struct");
    p = ddffi_mpw_map(p, (uint32_t)span->meta_struct.len);
    for (size_t i = span->meta_struct.len; i-- > 0;) {
      p = mpw_s(p, &span->meta_struct.items[i].key);
      p = ddffi_mpw_bin(p, span->meta_struct.items[i].value.data, span->meta_struct.items[i].value.len);
    }
  }
  b->len = (size_t)(p - b->data);
  if (!span->n_links && !span->n_events) return;
  ddffi_buf_reserve(b, extras_bound(span));
  if (b->failed) return;
  p = b->data + b->len;
  if (span->n_links) p = encode_links(p, span);
  if (span->n_events) p = encode_events(p, span);
  b->len = (size_t)(p - b->data);
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
