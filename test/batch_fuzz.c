/* A random-mutation fuzzer for the batch decoder (lib/batch.c), built with
 * the bundled library's sources under ASan and UBSan by test/batch-fuzz.test.ts:
 *
 *   batch_fuzz SECONDS SEED_FILE...
 *
 * Each seed is a batch the core's writer made; one more, made here, has
 * utf16 strings (lone surrogates, pairs, a pair cut by the end). Each round
 * takes a seed, mutates it (byte flips, u32 overwrites with edge values,
 * str words of every tag, truncation, splices, duplicated ranges) and
 * decodes it with ddffi_batch_build(): on success the chunks are freed,
 * then the transcoded text, then the batch (the spans borrow from both), on
 * failure the error. After every round the live-object count must be 0.
 * Before the rounds, the utf16 seed's spans are checked against the UTF-8
 * that JS TextEncoder makes. Exits 0 after SECONDS, printing the rounds and
 * how many decoded; a sanitizer report, a wrong transcoding or a leak fails it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch-format.h"
#include "data-pipeline.h"
#include "span.h" /* to read the decoded spans back */

int32_t ddffi_batch_bind(ddog_CharSlice path);

static uint64_t state = 0x9e3779b97f4a7c15u;
static uint32_t next(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return (uint32_t)state;
}

typedef struct {
  uint8_t *p;
  size_t n;
} seed;

static seed read_file(const char *path) {
  seed s = {NULL, 0};
  FILE *f = fopen(path, "rb");
  if (!f) return s;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  s.p = malloc(n > 0 ? (size_t)n : 1);
  s.n = fread(s.p, 1, (size_t)n, f);
  fclose(f);
  return s;
}

/* ---- the utf16 seed ------------------------------------------------------ */

typedef struct {
  uint8_t *p;
  size_t n, cap;
} out;

static void put(out *o, const void *p, size_t n) {
  if (o->n + n > o->cap) {
    o->cap = (o->n + n) * 2;
    o->p = realloc(o->p, o->cap);
  }
  memcpy(o->p + o->n, p, n);
  o->n += n;
}
static void put32(out *o, uint32_t v) { put(o, &v, 4); }
static void pad(out *o) {
  while (o->n % 4) put(o, "", 1);
}
static void put_utf16(out *o, const uint16_t *u, uint32_t n) {
  put32(o, n << DDFFI_BATCH_STRING_TAG_BITS | DDFFI_BATCH_STR_UTF16);
  put(o, u, 2 * (size_t)n); /* little-endian hosts only, as the format */
  pad(o);
}
static void put_ref(out *o, uint32_t i) { put32(o, i << DDFFI_BATCH_STRING_TAG_BITS | DDFFI_BATCH_STR_REF); }
static void put_span(out *o, uint32_t meta) {
  uint8_t f[DDFFI_BATCH_SPAN_SIZE] = {0};
  memcpy(f + DDFFI_BATCH_SPAN_META_COUNT, &meta, 4);
  f[DDFFI_BATCH_SPAN_SPAN_ID] = 1;
  put(o, f, sizeof f);
}

/* UTF-16 inputs and the UTF-8 TextEncoder makes of them. */
static const uint16_t u_ascii[] = {'a', 'b', 'c'};
static const uint16_t u_mixed[] = {'x', 0xe9, 0x7ff, 0x800, 0xffff, 0xd83d, 0xde80, 'y'};
static const uint16_t u_lone[] = {0xdc00, 'a', 0xd800, 'b', 0xd800, 0xd800, 0xdc01, 0xdbff};
static const struct {
  const uint16_t *u;
  uint32_t n;
  const char *utf8;
} cases16[] = {
    {u_ascii, 3, "abc"},
    {u_mixed, 8, "x\xc3\xa9\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x9f\x9a\x80y"},
    {u_lone, 8, "\xef\xbf\xbd" "a\xef\xbf\xbd" "b\xef\xbf\xbd\xf0\x90\x80\x81\xef\xbf\xbd"},
    {u_ascii, 0, ""},
};
#define NCASES16 (sizeof cases16 / sizeof *cases16)

/* One chunk of two spans: the first's service, name, resource and type
 * are utf16 cases 0-2 and a ref to case 0, then one meta per case (key:
 * the case, value: a ref to case 1); the second refers to them all. */
static seed utf16_seed(void) {
  out o = {0};
  uint8_t h[DDFFI_BATCH_HEADER_SIZE] = {0};
  uint32_t magic = DDFFI_BATCH_MAGIC, one = 1, two = 2, strings = NCASES16;
  uint16_t version = DDFFI_BATCH_VERSION;
  memcpy(h + DDFFI_BATCH_HEADER_MAGIC, &magic, 4);
  memcpy(h + DDFFI_BATCH_HEADER_VERSION, &version, 2);
  memcpy(h + DDFFI_BATCH_HEADER_CHUNK_COUNT, &one, 4);
  memcpy(h + DDFFI_BATCH_HEADER_SPAN_COUNT, &two, 4);
  memcpy(h + DDFFI_BATCH_HEADER_STRING_COUNT, &strings, 4);
  put(&o, h, sizeof h);
  put32(&o, 2);
  put_span(&o, NCASES16 - 3);
  for (size_t i = 0; i < 3; i++) put_utf16(&o, cases16[i].u, cases16[i].n);
  put_ref(&o, 0);
  for (size_t i = 3; i < NCASES16; i++) {
    put_utf16(&o, cases16[i].u, cases16[i].n);
    put_ref(&o, 1);
  }
  put_span(&o, NCASES16);
  for (uint32_t i = 0; i < 4; i++) put_ref(&o, i);
  for (uint32_t i = 0; i < NCASES16; i++) {
    put_ref(&o, i);
    put_ref(&o, (i + 1) % NCASES16);
  }
  uint32_t text_offset = (uint32_t)o.n; /* no text */
  memcpy(o.p + DDFFI_BATCH_HEADER_TEXT_OFFSET, &text_offset, 4);
  seed s = {o.p, o.n};
  return s;
}

static int check_str(const ddffi_str *got, const char *want, const char *what) {
  size_t n = strlen(want);
  if (got->len == n && (n == 0 || memcmp(got->data, want, n) == 0)) return 0;
  fprintf(stderr, "utf16 seed: %s is %.*s (%zu bytes), not %s\n", what, (int)got->len, got->data ? got->data : "",
          got->len, want);
  return 1;
}

/* Decodes the utf16 seed and checks its strings. */
static int check_utf16(const seed *s) {
  ddog_TracerTraceChunks *chunks = NULL;
  ddffi_batch_text *text = NULL;
  ddog_TraceExporterError *err = ddffi_batch_build(s->p, s->n, &chunks, &text);
  if (err) {
    fprintf(stderr, "utf16 seed does not decode: %s\n", err->msg);
    return 1;
  }
  int bad = 0;
  ddog_TracerSpan *a = chunks->chunks[0].spans[0], *b = chunks->chunks[0].spans[1];
  bad |= check_str(&a->service, cases16[0].utf8, "service");
  bad |= check_str(&a->name, cases16[1].utf8, "name");
  bad |= check_str(&a->resource, cases16[2].utf8, "resource");
  bad |= check_str(&a->type, cases16[0].utf8, "type");
  bad |= check_str(&b->resource, cases16[2].utf8, "resource (a ref)");
  if (a->meta.len != 1 || b->meta.len != NCASES16) {
    fprintf(stderr, "utf16 seed: %zu and %zu meta\n", a->meta.len, b->meta.len);
    return 1;
  }
  bad |= check_str(&a->meta.items[0].key, cases16[3].utf8, "meta key");
  for (size_t i = 0; i < NCASES16; i++) {
    bad |= check_str(&b->meta.items[i].key, cases16[i].utf8, "meta key (a ref)");
    bad |= check_str(&b->meta.items[i].value, cases16[(i + 1) % NCASES16].utf8, "meta value (a ref)");
  }
  ddog_tracer_trace_chunks_free(chunks);
  ddffi_batch_text_free(text);
  return bad;
}

/* ---- mutations ------------------------------------------------------------- */

static const uint32_t edges[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 0x7f, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};

static size_t mutate(const seed *s, uint8_t *out, size_t cap) {
  size_t n = s->n < cap ? s->n : cap;
  memcpy(out, s->p, n);
  int rounds = 1 + next() % 4;
  for (int r = 0; r < rounds && n > 0; r++) {
    switch (next() % 6) {
      case 0: out[next() % n] ^= (uint8_t)(1u << (next() % 8)); break;
      case 1: out[next() % n] = (uint8_t)next(); break;
      case 2: {
        if (n < 4) break;
        uint32_t v = edges[next() % (sizeof edges / sizeof *edges)];
        if (next() % 2) v = (v << 2) | (next() % 4); /* a str word: index or length, and a tag */
        memcpy(out + next() % (n - 3), &v, 4);
        break;
      }
      case 3: n = next() % (n + 1); break;
      case 4: { /* copy a range over another */
        size_t a = next() % n, b = next() % n, len = next() % (n - (a > b ? a : b) + 1);
        memmove(out + a, out + b, len);
        break;
      }
      case 5: { /* duplicate a range (grows) */
        size_t a = next() % n, len = next() % (n - a + 1);
        if (n + len > cap) break;
        memmove(out + a + len, out + a, n - a);
        n += len;
        break;
      }
    }
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s SECONDS SEED_FILE...\n", argv[0]);
    return 2;
  }
  double seconds = atof(argv[1]);
  int nseeds = argc - 1;
  seed *seeds = calloc((size_t)nseeds, sizeof *seeds);
  size_t cap = 0;
  seeds[nseeds - 1] = utf16_seed();
  cap = seeds[nseeds - 1].n * 2;
  for (int i = 0; i < nseeds - 1; i++) {
    seeds[i] = read_file(argv[i + 2]);
    if (!seeds[i].p) {
      fprintf(stderr, "cannot read %s\n", argv[i + 2]);
      return 2;
    }
    if (seeds[i].n * 2 > cap) cap = seeds[i].n * 2;
  }
  ddog_CharSlice self = {"", 0};
  if (ddffi_batch_bind(self) != 0) {
    fprintf(stderr, "ddffi_batch_bind failed (link with -rdynamic)\n");
    return 2;
  }
  if (check_utf16(&seeds[nseeds - 1])) return 1;
  state ^= (uint64_t)time(NULL);
  uint8_t *buf = malloc(cap + 1);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long rounds = 0, decoded = 0;
  for (;;) {
    const seed *s = &seeds[next() % nseeds];
    size_t n = rounds < nseeds ? s->n : mutate(s, buf, cap);
    if (rounds < nseeds) memcpy(buf, s->p, n);
    /* An exact-size copy, so ASan sees any read past the end. */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    ddog_TracerTraceChunks *chunks = NULL;
    ddffi_batch_text *text = NULL;
    ddog_TraceExporterError *err = ddffi_batch_build(exact, n, &chunks, &text);
    if (err) {
      ddog_trace_exporter_error_free(err);
      if (rounds < nseeds) {
        fprintf(stderr, "seed %d does not decode\n", (int)(s - seeds));
        return 1;
      }
    } else {
      decoded++;
      ddog_tracer_trace_chunks_free(chunks);
      ddffi_batch_text_free(text);
    }
    free(exact);
    if (ddffi_debug_live_objects() != 0) {
      fprintf(stderr, "leak after round %ld: %lld live objects\n", rounds, (long long)ddffi_debug_live_objects());
      return 1;
    }
    rounds++;
    if (rounds % 256 == 0) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds) break;
    }
  }
  printf("%ld rounds, %ld decoded\n", rounds, decoded);
  for (int i = 0; i < nseeds; i++) free(seeds[i].p);
  free(seeds);
  free(buf);
  return 0;
}
