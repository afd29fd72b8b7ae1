/* A small MessagePack writer over ddffi_buf, producing the same bytes as the
 * rmp crate (v0.8.14) functions libdatadog calls. Not part of the ABI. */
#ifndef DDFFI_MSGPACK_H
#define DDFFI_MSGPACK_H

#include "internal.h"

void ddffi_mp_nil(ddffi_buf *b);                  /* 0xc0 */
void ddffi_mp_bool(ddffi_buf *b, bool v);         /* 0xc2 / 0xc3 */
void ddffi_mp_u8(ddffi_buf *b, uint8_t v);        /* always 0xcc + 1 byte (rmp write_u8) */
void ddffi_mp_u32(ddffi_buf *b, uint32_t v);      /* always 0xce + 4 bytes (rmp write_u32) */
void ddffi_mp_u64(ddffi_buf *b, uint64_t v);      /* always 0xcf + 8 bytes (rmp write_u64) */
void ddffi_mp_i64(ddffi_buf *b, int64_t v);       /* always 0xd3 + 8 bytes (rmp write_i64) */
void ddffi_mp_f64(ddffi_buf *b, double v);        /* always 0xcb + 8 bytes (rmp write_f64) */

/* rmp write_uint: the most compact unsigned form (fixint, 0xcc, 0xcd, 0xce, 0xcf). */
void ddffi_mp_uint(ddffi_buf *b, uint64_t v);
/* rmp write_sint: negatives take the most compact signed form (negative fixint,
 * 0xd0..0xd3), but non-negative values take the compact UNSIGNED form
 * (fixint, 0xcc, 0xcd, 0xce, 0xcf). */
void ddffi_mp_sint(ddffi_buf *b, int64_t v);

/* Headers, compact as rmp writes them. */
void ddffi_mp_str_len(ddffi_buf *b, uint32_t n);  /* fixstr, 0xd9, 0xda, 0xdb */
void ddffi_mp_bin_len(ddffi_buf *b, uint32_t n);  /* 0xc4, 0xc5, 0xc6 (no fix form) */
void ddffi_mp_array(ddffi_buf *b, uint32_t n);    /* fixarray, 0xdc, 0xdd */
void ddffi_mp_map(ddffi_buf *b, uint32_t n);      /* fixmap, 0xde, 0xdf */

/* A string or binary with its header. Like rmp, the length is narrowed to 32 bits. */
void ddffi_mp_str(ddffi_buf *b, const void *p, size_t n);
void ddffi_mp_cstr(ddffi_buf *b, const char *s);
void ddffi_mp_bin(ddffi_buf *b, const void *p, size_t n);

/* ---- raw writers ----------------------------------------------------------
 * The same bytes as the functions above, written at `p` with no check: the
 * caller has reserved room for them (at most DDFFI_MP_HEAD bytes of header
 * per item, plus a string's bytes). Each returns the end of what it wrote. */
#include <string.h>

#define DDFFI_MP_HEAD 9 /* the longest marker + payload of a number or a header */

/* A marker followed by v's low `n` bytes (2, 4 or 8), big-endian: with `n` a constant, one
 * shift, one byte swap and one store. */
static inline uint8_t *ddffi_mpw_be(int n, uint8_t *p, uint8_t marker, uint64_t v) {
  p[0] = marker;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  v = __builtin_bswap64(v << (64 - 8 * n)); /* the low n bytes, most significant first */
  memcpy(p + 1, &v, (size_t)n);
#else
  for (int i = 0; i < n; i++) p[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
#endif
  return p + 1 + n;
}

/* ddffi_mp_uint */
static inline uint8_t *ddffi_mpw_uint(uint8_t *p, uint64_t v) {
  if (v < 128) {
    *p = (uint8_t)v;
    return p + 1;
  }
  if (v < 256) {
    p[0] = 0xcc;
    p[1] = (uint8_t)v;
    return p + 2;
  }
  if (v < 65536) return ddffi_mpw_be(2, p, 0xcd, (uint32_t)v);
  if (v < 4294967296u) return ddffi_mpw_be(4, p, 0xce, (uint32_t)v);
  return ddffi_mpw_be(8, p, 0xcf, v);
}

/* ddffi_mp_sint */
static inline uint8_t *ddffi_mpw_sint(uint8_t *p, int64_t v) {
  if (v >= 0) return ddffi_mpw_uint(p, (uint64_t)v);
  if (v >= -32) {
    *p = (uint8_t)(int8_t)v;
    return p + 1;
  }
  if (v >= -128) {
    p[0] = 0xd0;
    p[1] = (uint8_t)(int8_t)v;
    return p + 2;
  }
  if (v >= -32768) return ddffi_mpw_be(2, p, 0xd1, (uint32_t)(uint64_t)v & 0xffff);
  if (v >= -2147483648LL) return ddffi_mpw_be(4, p, 0xd2, (uint32_t)(uint64_t)v);
  return ddffi_mpw_be(8, p, 0xd3, (uint64_t)v);
}

static inline uint8_t *ddffi_mpw_f64(uint8_t *p, double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  return ddffi_mpw_be(8, p, 0xcb, bits);
}

/* ddffi_mp_map */
static inline uint8_t *ddffi_mpw_map(uint8_t *p, uint32_t n) {
  if (n < 16) {
    *p = (uint8_t)(0x80 | n);
    return p + 1;
  }
  if (n <= 0xffff) return ddffi_mpw_be(2, p, 0xde, n);
  return ddffi_mpw_be(4, p, 0xdf, n);
}

/* ddffi_mp_str: the header (length narrowed to 32 bits, as rmp), then n bytes. */
static inline uint8_t *ddffi_mpw_str(uint8_t *p, const void *s, size_t n) {
  uint32_t n32 = (uint32_t)n;
  if (n32 < 32) {
    *p++ = (uint8_t)(0xa0 | n32);
  } else if (n32 < 256) {
    p[0] = 0xd9;
    p[1] = (uint8_t)n32;
    p += 2;
  } else if (n32 <= 0xffff) {
    p = ddffi_mpw_be(2, p, 0xda, n32);
  } else {
    p = ddffi_mpw_be(4, p, 0xdb, n32);
  }
  if (n) memcpy(p, s, n);
  return p + n;
}

/* ddffi_mp_bin */
static inline uint8_t *ddffi_mpw_bin(uint8_t *p, const void *s, size_t n) {
  uint32_t n32 = (uint32_t)n;
  if (n32 < 256) {
    p[0] = 0xc4;
    p[1] = (uint8_t)n32;
    p += 2;
  } else if (n32 <= 0xffff) {
    p = ddffi_mpw_be(2, p, 0xc5, n32);
  } else {
    p = ddffi_mpw_be(4, p, 0xc6, n32);
  }
  if (n) memcpy(p, s, n);
  return p + n;
}

/* A string literal's msgpack form, ready-made: DDFFI_MPW_LIT(p, "\xa7" "service"). */
#define DDFFI_MPW_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

#endif
