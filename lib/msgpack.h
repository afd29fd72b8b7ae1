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

#endif
