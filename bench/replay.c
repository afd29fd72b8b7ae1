/* Replays a tape recorded by bench/tape.ts: the exact libdatadog calls the
 * binding makes for a span set, made from C with no FFI in between. Prints
 * the median ns per span over the repetitions as JSON.
 *
 *   cc -O2 -o replay bench/replay.c -ldl
 *   ./replay LIBRARY TAPE SPANS [REPS] [MIN_MS]
 *
 * The tape is parsed once, up front, into ready-made C arguments, so the
 * timed loop is only the library's own work. */
#include "../test/fixtures/data-pipeline.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CHUNKS_NEW = 1, BEGIN_CHUNK, SPAN_NEW, SET_META, SET_METRIC, PUSH_SPAN, SET_LINKS, EVENT_NEW,
       EV_STRING, EV_INT, EV_BOOL, EV_DOUBLE, ADD_EVENT, CHUNKS_FREE };

typedef struct {
  int kind;
  uint32_t n;
  ddog_CharSlice a, b;
  uint64_t u;
  double d;
  ddog_TracerSpanFields *fields;
  ddog_TracerSpanLink *links;
} op_t;

static const uint8_t *cur, *end;

static void need(size_t n) {
  if ((size_t)(end - cur) < n) {
    fprintf(stderr, "replay: truncated tape\n");
    exit(2);
  }
}
static uint8_t rd8(void) { need(1); return *cur++; }
static uint32_t rd32(void) { uint32_t v; need(4); memcpy(&v, cur, 4); cur += 4; return v; }
static uint64_t rd64(void) { uint64_t v; need(8); memcpy(&v, cur, 8); cur += 8; return v; }
static double rdf(void) { double v; need(8); memcpy(&v, cur, 8); cur += 8; return v; }
static ddog_CharSlice rds(void) {
  uint32_t n = rd32();
  need(n);
  ddog_CharSlice s = {(const char *)cur, n};
  cur += n;
  return s;
}

#define SYM(name) static __typeof__(&name) p_##name;
SYM(ddog_tracer_trace_chunks_new)
SYM(ddog_tracer_trace_chunks_begin_chunk)
SYM(ddog_tracer_trace_chunks_push_span)
SYM(ddog_tracer_trace_chunks_free)
SYM(ddog_tracer_span_new)
SYM(ddog_tracer_span_set_meta)
SYM(ddog_tracer_span_set_metric)
SYM(ddog_tracer_span_set_links)
SYM(ddog_tracer_span_event_new)
SYM(ddog_tracer_span_event_set_string)
SYM(ddog_tracer_span_event_set_int)
SYM(ddog_tracer_span_event_set_bool)
SYM(ddog_tracer_span_event_set_double)
SYM(ddog_tracer_span_add_event)

static void check(ddog_TraceExporterError *e) {
  if (e) {
    fprintf(stderr, "replay: call failed with code %d\n", (int)e->code);
    exit(3);
  }
}

static void run(const op_t *ops, size_t n) {
  ddog_TracerTraceChunks *chunks = NULL;
  ddog_TracerSpan *span = NULL;
  ddog_TracerSpanEvent *event = NULL;
  for (size_t i = 0; i < n; i++) {
    const op_t *o = &ops[i];
    switch (o->kind) {
    case CHUNKS_NEW: check(p_ddog_tracer_trace_chunks_new(o->n, &chunks)); break;
    case BEGIN_CHUNK: check(p_ddog_tracer_trace_chunks_begin_chunk(chunks, o->n)); break;
    case SPAN_NEW: check(p_ddog_tracer_span_new(&span, o->fields)); break;
    case SET_META: check(p_ddog_tracer_span_set_meta(span, o->a, o->b)); break;
    case SET_METRIC: check(p_ddog_tracer_span_set_metric(span, o->a, o->d)); break;
    case PUSH_SPAN: check(p_ddog_tracer_trace_chunks_push_span(chunks, span)); break;
    case SET_LINKS:
      check(p_ddog_tracer_span_set_links(span, (ddog_Slice_TracerSpanLink){o->links, o->n}));
      break;
    case EVENT_NEW: check(p_ddog_tracer_span_event_new(&event, o->a, o->u)); break;
    case EV_STRING: check(p_ddog_tracer_span_event_set_string(event, o->a, o->b)); break;
    case EV_INT: check(p_ddog_tracer_span_event_set_int(event, o->a, (int64_t)o->u)); break;
    case EV_BOOL: check(p_ddog_tracer_span_event_set_bool(event, o->a, o->u != 0)); break;
    case EV_DOUBLE: check(p_ddog_tracer_span_event_set_double(event, o->a, o->d)); break;
    case ADD_EVENT: check(p_ddog_tracer_span_add_event(span, event)); break;
    case CHUNKS_FREE: p_ddog_tracer_trace_chunks_free(chunks); break;
    }
  }
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: replay LIBRARY TAPE SPANS [REPS] [MIN_MS]\n");
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "replay: %s\n", dlerror());
    return 2;
  }
#define LOAD(name)                                             \
  if (!(p_##name = (__typeof__(p_##name))dlsym(lib, #name))) { \
    fprintf(stderr, "replay: no %s\n", #name);                 \
    return 2;                                                  \
  }
  LOAD(ddog_tracer_trace_chunks_new)
  LOAD(ddog_tracer_trace_chunks_begin_chunk)
  LOAD(ddog_tracer_trace_chunks_push_span)
  LOAD(ddog_tracer_trace_chunks_free)
  LOAD(ddog_tracer_span_new)
  LOAD(ddog_tracer_span_set_meta)
  LOAD(ddog_tracer_span_set_metric)
  LOAD(ddog_tracer_span_set_links)
  LOAD(ddog_tracer_span_event_new)
  LOAD(ddog_tracer_span_event_set_string)
  LOAD(ddog_tracer_span_event_set_int)
  LOAD(ddog_tracer_span_event_set_bool)
  LOAD(ddog_tracer_span_event_set_double)
  LOAD(ddog_tracer_span_add_event)

  FILE *f = fopen(argv[2], "rb");
  if (!f) {
    perror("replay: tape");
    return 2;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *tape = malloc((size_t)size);
  if (!tape || fread(tape, 1, (size_t)size, f) != (size_t)size) return 2;
  fclose(f);
  double spans = atof(argv[3]);
  int reps = argc > 4 ? atoi(argv[4]) : 7;
  double min_ms = argc > 5 ? atof(argv[5]) : 200;

  size_t cap = 1024, n = 0;
  op_t *ops = malloc(cap * sizeof *ops);
  cur = tape;
  end = tape + size;
  while (cur < end) {
    if (n == cap) ops = realloc(ops, (cap *= 2) * sizeof *ops);
    op_t *o = &ops[n++];
    memset(o, 0, sizeof *o);
    o->kind = rd8();
    switch (o->kind) {
    case CHUNKS_NEW:
    case BEGIN_CHUNK: o->n = rd32(); break;
    case SPAN_NEW: {
      ddog_TracerSpanFields *x = o->fields = calloc(1, sizeof *x);
      x->service = rds();
      x->name = rds();
      x->resource = rds();
      x->span_type = rds();
      x->trace_id_low = rd64();
      x->trace_id_high = rd64();
      x->span_id = rd64();
      x->parent_id = rd64();
      x->start = (int64_t)rd64();
      x->duration = (int64_t)rd64();
      x->error = (int32_t)rd32();
      break;
    }
    case SET_META:
    case EV_STRING: o->a = rds(); o->b = rds(); break;
    case SET_METRIC:
    case EV_DOUBLE: o->a = rds(); o->d = rdf(); break;
    case EVENT_NEW:
    case EV_INT: o->a = rds(); o->u = rd64(); break;
    case EV_BOOL: o->a = rds(); o->u = rd8(); break;
    case SET_LINKS: {
      o->n = rd32();
      o->links = calloc(o->n ? o->n : 1, sizeof *o->links);
      for (uint32_t i = 0; i < o->n; i++) {
        ddog_TracerSpanLink *l = &o->links[i];
        l->trace_id_low = rd64();
        l->trace_id_high = rd64();
        l->span_id = rd64();
        l->flags = rd32();
        l->tracestate = rds();
        uint32_t na = rd32();
        ddog_TracerSpanLinkAttribute *attrs = calloc(na ? na : 1, sizeof *attrs);
        for (uint32_t j = 0; j < na; j++) {
          attrs[j].key = rds();
          attrs[j].value = rds();
        }
        l->attributes = (ddog_Slice_TracerSpanLinkAttribute){attrs, na};
      }
      break;
    }
    case PUSH_SPAN:
    case ADD_EVENT:
    case CHUNKS_FREE: break;
    default: fprintf(stderr, "replay: bad op %d\n", o->kind); return 2;
    }
  }

  for (int w = 0; w < 20; w++) run(ops, n); /* warm up malloc's free lists */
  double *samples = calloc((size_t)reps, sizeof *samples);
  for (int r = 0; r < reps; r++) {
    double t0 = now_ns(), t;
    long iters = 0;
    do {
      run(ops, n);
      iters++;
    } while ((t = now_ns()) - t0 < min_ms * 1e6);
    samples[r] = (t - t0) / ((double)iters * spans);
  }
  qsort(samples, (size_t)reps, sizeof *samples, cmp);
  printf("{\"median\":%.2f,\"samples\":[", samples[reps / 2]);
  for (int r = 0; r < reps; r++) printf("%s%.2f", r ? "," : "", samples[r]);
  printf("]}\n");
  return 0;
}
