/* Live-object count, errors, slice checks and byte buffers. */
#include "internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int64_t live_objects;

void ddffi_live_inc(void) { live_objects++; }
void ddffi_live_dec(void) { live_objects--; }

DDFFI_EXPORT int64_t ddffi_debug_live_objects(void) { return live_objects; }

static const char *const code_texts[] = {
    "Address already in use",
    "Connection aborted",
    "Connection refused",
    "Connection reset by peer",
    "Error parsing HTTP body",
    "HTTP body too long",
    "HTTP error originated by client",
    "HTTP empty body",
    "Error while parsing HTTP message",
    "HTTP error originated by server",
    "HTTP unknown error",
    "HTTP wrong status number",
    "Invalid argument provided",
    "Invalid data payload",
    "Invalid input",
    "Invalid URL",
    "Input/Output error",
    "Unknown network error",
    "Serialization/Deserialization error",
    "Shutdown timed out",
    "Operation timed out",
    "Telemetry error",
    "Internal error",
    "Operation panicked",
};

const char *ddffi_code_text(ddog_TraceExporterErrorCode code) {
  if ((unsigned)code < sizeof code_texts / sizeof code_texts[0]) return code_texts[code];
  return "Internal error";
}

ddog_TraceExporterError *ddffi_error(ddog_TraceExporterErrorCode code, const char *msg) {
  ddog_TraceExporterError *e = malloc(sizeof *e);
  if (!e) return NULL; /* cannot report; libdatadog would abort here */
  e->code = code;
  e->msg = strdup(msg ? msg : ddffi_code_text(code));
  if (!e->msg) {
    free(e);
    return NULL;
  }
  ddffi_live_inc();
  return e;
}

ddog_TraceExporterError *ddffi_errorf(ddog_TraceExporterErrorCode code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ddffi_error(code, msg);
}

DDFFI_EXPORT void ddog_trace_exporter_error_free(ddog_TraceExporterError *error) {
  if (!error) return;
  free(error->msg);
  free(error);
  ddffi_live_dec();
}

/* True when no byte has its top bit set, read a word at a time (the last
 * word may overlap the previous one). */
static bool all_ascii(const uint8_t *p, size_t n) {
  uint64_t acc = 0, w;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      memcpy(&w, p + i, 8);
      acc |= w;
    }
    memcpy(&w, p + n - 8, 8);
    acc |= w;
  } else if (n >= 4) {
    uint32_t a, b;
    memcpy(&a, p, 4);
    memcpy(&b, p + n - 4, 4);
    acc = a | b;
  } else {
    for (size_t i = 0; i < n; i++) acc |= p[i];
  }
  return (acc & 0x8080808080808080u) == 0;
}

/* Well-formed UTF-8 (the Unicode table 3-7; Rust's str::from_utf8). */
bool ddffi_utf8_valid(const uint8_t *p, size_t n) {
  if (all_ascii(p, n)) return true; /* the usual case */
  const uint8_t *end = p + n;
  while (p < end) {
    uint8_t c = *p;
    if (c < 0x80) {
      p++;
      /* ASCII runs a word at a time */
      while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (w & 0x8080808080808080u) break;
        p += 8;
      }
      continue;
    }
    size_t left = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF) {
      if (left < 2 || (p[1] & 0xC0) != 0x80) return false;
      p += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return false;
      if (c == 0xE0 && p[1] < 0xA0) return false; /* overlong */
      if (c == 0xED && p[1] > 0x9F) return false; /* a surrogate */
      p += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return false;
      if (c == 0xF0 && p[1] < 0x90) return false; /* overlong */
      if (c == 0xF4 && p[1] > 0x8F) return false; /* over U+10FFFF */
      p += 4;
    } else {
      return false;
    }
  }
  return true;
}

bool ddffi_utf8_check(const uint8_t *p, uintptr_t n) { return n == 0 || ddffi_utf8_valid(p, n); }

ddog_TraceExporterError *ddffi_check_bytes(ddog_ByteSlice s) {
  if ((!s.ptr && s.len) || s.len > PTRDIFF_MAX) return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_ARGUMENT, NULL);
  return NULL;
}

ddog_TraceExporterError *ddffi_check_str(ddog_CharSlice s) {
  if ((!s.ptr && s.len) || s.len > PTRDIFF_MAX) return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_ARGUMENT, NULL);
  if (s.len && !ddffi_utf8_valid((const uint8_t *)s.ptr, s.len))
    return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_INPUT, NULL);
  return NULL;
}

void ddffi_buf_reserve(ddffi_buf *b, size_t extra) {
  if (b->failed || b->cap - b->len >= extra) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < extra) {
    if (cap > SIZE_MAX / 2) {
      b->failed = true;
      return;
    }
    cap *= 2;
  }
  uint8_t *data = realloc(b->data, cap);
  if (!data) {
    b->failed = true;
    return;
  }
  b->data = data;
  b->cap = cap;
}

void ddffi_buf_put_slow(ddffi_buf *b, const void *p, size_t n) {
  ddffi_buf_reserve(b, n);
  if (b->failed || !n) return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

void ddffi_buf_free(ddffi_buf *b) {
  free(b->data);
  *b = (ddffi_buf){0};
}

bool ddffi_str_copy(ddffi_str *dst, const void *p, size_t n) {
  dst->data = NULL;
  dst->len = n;
  if (!n) return true;
  dst->data = malloc(n);
  if (!dst->data) return false;
  memcpy(dst->data, p, n);
  return true;
}

void ddffi_str_free(ddffi_str *s) {
  free(s->data);
  s->data = NULL;
  s->len = 0;
}
