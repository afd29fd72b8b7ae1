/* MessagePack writer helpers, byte-compatible with rmp 0.8.14. */
#include "msgpack.h"

#include <string.h>

static void put1(ddffi_buf *b, uint8_t c) { ddffi_buf_put(b, &c, 1); }

/* A marker followed by the low `n` bytes of v, big-endian. */
static void put_be(ddffi_buf *b, uint8_t marker, uint64_t v, int n) {
  uint8_t tmp[9];
  tmp[0] = marker;
  for (int i = 0; i < n; i++) tmp[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  ddffi_buf_put(b, tmp, (size_t)n + 1);
}

void ddffi_mp_nil(ddffi_buf *b) { put1(b, 0xc0); }
void ddffi_mp_bool(ddffi_buf *b, bool v) { put1(b, v ? 0xc3 : 0xc2); }
void ddffi_mp_u8(ddffi_buf *b, uint8_t v) { put_be(b, 0xcc, v, 1); }
void ddffi_mp_u32(ddffi_buf *b, uint32_t v) { put_be(b, 0xce, v, 4); }
void ddffi_mp_u64(ddffi_buf *b, uint64_t v) { put_be(b, 0xcf, v, 8); }
void ddffi_mp_i64(ddffi_buf *b, int64_t v) { put_be(b, 0xd3, (uint64_t)v, 8); }

void ddffi_mp_f64(ddffi_buf *b, double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  put_be(b, 0xcb, bits, 8);
}

void ddffi_mp_uint(ddffi_buf *b, uint64_t v) {
  if (v < 128)
    put1(b, (uint8_t)v);
  else if (v < 256)
    put_be(b, 0xcc, v, 1);
  else if (v < 65536)
    put_be(b, 0xcd, v, 2);
  else if (v < 4294967296u)
    put_be(b, 0xce, v, 4);
  else
    put_be(b, 0xcf, v, 8);
}

void ddffi_mp_sint(ddffi_buf *b, int64_t v) {
  if (v >= 0)
    ddffi_mp_uint(b, (uint64_t)v); /* rmp uses the unsigned markers here */
  else if (v >= -32)
    put1(b, (uint8_t)(int8_t)v); /* negative fixint 0xe0..0xff */
  else if (v >= -128)
    put_be(b, 0xd0, (uint64_t)v, 1);
  else if (v >= -32768)
    put_be(b, 0xd1, (uint64_t)v, 2);
  else if (v >= -2147483648LL)
    put_be(b, 0xd2, (uint64_t)v, 4);
  else
    put_be(b, 0xd3, (uint64_t)v, 8);
}

void ddffi_mp_str_len(ddffi_buf *b, uint32_t n) {
  if (n < 32)
    put1(b, (uint8_t)(0xa0 | n));
  else if (n < 256)
    put_be(b, 0xd9, n, 1);
  else if (n <= 0xffff)
    put_be(b, 0xda, n, 2);
  else
    put_be(b, 0xdb, n, 4);
}

void ddffi_mp_bin_len(ddffi_buf *b, uint32_t n) {
  if (n < 256)
    put_be(b, 0xc4, n, 1);
  else if (n <= 0xffff)
    put_be(b, 0xc5, n, 2);
  else
    put_be(b, 0xc6, n, 4);
}

void ddffi_mp_array(ddffi_buf *b, uint32_t n) {
  if (n < 16)
    put1(b, (uint8_t)(0x90 | n));
  else if (n <= 0xffff)
    put_be(b, 0xdc, n, 2);
  else
    put_be(b, 0xdd, n, 4);
}

void ddffi_mp_map(ddffi_buf *b, uint32_t n) {
  if (n < 16)
    put1(b, (uint8_t)(0x80 | n));
  else if (n <= 0xffff)
    put_be(b, 0xde, n, 2);
  else
    put_be(b, 0xdf, n, 4);
}

void ddffi_mp_str(ddffi_buf *b, const void *p, size_t n) {
  ddffi_mp_str_len(b, (uint32_t)n);
  ddffi_buf_put(b, p, n);
}

void ddffi_mp_cstr(ddffi_buf *b, const char *s) { ddffi_mp_str(b, s, strlen(s)); }

void ddffi_mp_bin(ddffi_buf *b, const void *p, size_t n) {
  ddffi_mp_bin_len(b, (uint32_t)n);
  ddffi_buf_put(b, p, n);
}
