/* A random-mutation fuzzer for the batch decoder (lib/batch.c), built with
 * the bundled library's sources under ASan and UBSan by test/batch-fuzz.test.ts:
 *
 *   batch_fuzz SECONDS SEED_FILE...
 *
 * Each seed is a batch the core's writer made. Each round takes a seed,
 * mutates it (byte flips, u32 overwrites with edge values, truncation,
 * splices, duplicated ranges) and decodes it with ddffi_batch_build(): on
 * success the chunks are freed, on failure the error. After every round the
 * live-object count must be 0. Exits 0 after SECONDS, printing the rounds
 * and how many decoded; a sanitizer report or a leak aborts it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data-pipeline.h"

int32_t ddffi_batch_bind(ddog_CharSlice path);
ddog_TraceExporterError *ddffi_batch_build(const uint8_t *batch, uintptr_t len, ddog_TracerTraceChunks **out);

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
  int nseeds = argc - 2;
  seed *seeds = calloc((size_t)nseeds, sizeof *seeds);
  size_t cap = 0;
  for (int i = 0; i < nseeds; i++) {
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
    ddog_TraceExporterError *err = ddffi_batch_build(exact, n, &chunks);
    if (err) {
      ddog_trace_exporter_error_free(err);
      if (rounds < nseeds) {
        fprintf(stderr, "seed %d does not decode\n", (int)(s - seeds));
        return 1;
      }
    } else {
      decoded++;
      ddog_tracer_trace_chunks_free(chunks);
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
