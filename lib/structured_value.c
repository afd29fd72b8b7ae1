/* Structured values: a flat preorder token list validated and encoded as
 * one MessagePack value (libdatadog's structured_value.rs semantics). */
#include "msgpack.h"
#include "span.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct ddog_TracerEncodedValue {
  uint8_t *data;
  size_t len;
};

static ddog_TraceExporterError *invalid_input(const char *msg) {
  return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_INPUT, msg);
}

/* Encodes the value starting at tokens[*index], advancing *index past it.
 * Errors come out in preorder, as libdatadog's recursive encoder finds them. */
static ddog_TraceExporterError *encode_one(const ddog_TracerValueToken *tokens, size_t n, size_t *index,
                                           uint32_t depth, ddffi_buf *out) {
  if (*index >= n) return invalid_input("structured value container is missing child tokens");
  const ddog_TracerValueToken *t = &tokens[(*index)++];

  switch (t->kind) {
  case DDOG_TRACER_VALUE_NIL:
    ddffi_mp_nil(out);
    return NULL;
  case DDOG_TRACER_VALUE_BOOL:
    if (t->bool_value > 1) return invalid_input("structured value boolean must be 0 or 1");
    ddffi_mp_bool(out, t->bool_value == 1);
    return NULL;
  case DDOG_TRACER_VALUE_I64:
    ddffi_mp_sint(out, t->i64_value);
    return NULL;
  case DDOG_TRACER_VALUE_U64:
    ddffi_mp_uint(out, t->u64_value);
    return NULL;
  case DDOG_TRACER_VALUE_F64:
    ddffi_mp_f64(out, t->f64_value);
    return NULL;
  case DDOG_TRACER_VALUE_STRING:
  case DDOG_TRACER_VALUE_BINARY:
    if (!ddffi_slice_ok(t->bytes.ptr, t->bytes.len, 1, 1))
      return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_ARGUMENT,
                         "structured value contains an invalid byte slice");
    /* rmp narrows lengths to u32, so libdatadog rejects longer ones. */
    if (t->bytes.len > UINT32_MAX) return invalid_input("structured value byte string exceeds u32::MAX");
    if (t->kind == DDOG_TRACER_VALUE_STRING) {
      if (!ddffi_utf8_valid(t->bytes.ptr, t->bytes.len))
        return invalid_input("structured value string is not valid UTF-8");
      ddffi_mp_str(out, t->bytes.ptr, t->bytes.len);
    } else {
      ddffi_mp_bin(out, t->bytes.ptr, t->bytes.len);
    }
    return NULL;
  case DDOG_TRACER_VALUE_ARRAY:
  case DDOG_TRACER_VALUE_MAP: {
    /* The root is at depth 0, so at most 64 nested containers. */
    if (depth >= MAX_DEPTH) return invalid_input("structured value exceeds maximum depth of 64");
    uint64_t values = t->child_count;
    if (t->kind == DDOG_TRACER_VALUE_MAP) {
      ddffi_mp_map(out, t->child_count);
      /* libdatadog doubles the count in u32 arithmetic. Map keys may be any
       * value, not only strings. */
      if (t->child_count > UINT32_MAX / 2) return invalid_input("structured value map child count overflows");
      values *= 2;
    } else {
      ddffi_mp_array(out, t->child_count);
    }
    for (uint64_t i = 0; i < values; i++) {
      ddog_TraceExporterError *err = encode_one(tokens, n, index, depth + 1, out);
      if (err) return err;
    }
    return NULL;
  }
  default:
    return invalid_input("structured value contains an unknown token kind");
  }
}

ddog_TraceExporterError *ddffi_encode_tokens(ddog_Slice_TracerValueToken tokens, ddffi_buf *out) {
  if (!ddffi_slice_ok(tokens.ptr, tokens.len, sizeof(ddog_TracerValueToken), _Alignof(ddog_TracerValueToken)))
    return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_ARGUMENT, "structured value token slice is invalid");
  if (tokens.len == 0) return invalid_input("structured value token slice is empty");
  size_t index = 0;
  ddog_TraceExporterError *err = encode_one(tokens.ptr, tokens.len, &index, 0, out);
  if (err) return err;
  if (index != tokens.len) return invalid_input("structured value has trailing tokens");
  if (out->failed) return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INTERNAL, NULL);
  return NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_tracer_encode_value(ddog_Slice_TracerValueToken tokens,
                                                               ddog_TracerEncodedValue **out_handle) {
  if (!out_handle) return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_ARGUMENT, NULL);
  ddffi_buf buf = {0};
  ddog_TraceExporterError *err = ddffi_encode_tokens(tokens, &buf);
  if (err) {
    ddffi_buf_free(&buf);
    return err;
  }
  ddog_TracerEncodedValue *value = malloc(sizeof *value);
  if (!value) {
    ddffi_buf_free(&buf);
    return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INTERNAL, NULL);
  }
  value->data = buf.data;
  value->len = buf.len;
  ddffi_live_inc();
  *out_handle = value;
  return NULL;
}

DDFFI_EXPORT ddog_ByteSlice ddog_tracer_encoded_value_as_slice(const ddog_TracerEncodedValue *value) {
  /* For NULL, libdatadog returns its empty slice, whose pointer is Rust's
   * dangling-but-aligned 0x1 rather than NULL. */
  if (!value) return (ddog_ByteSlice){(const uint8_t *)(uintptr_t)1, 0};
  return (ddog_ByteSlice){value->data, value->len};
}

DDFFI_EXPORT void ddog_tracer_encoded_value_free(ddog_TracerEncodedValue *value) {
  if (!value) return;
  free(value->data);
  free(value);
  ddffi_live_dec();
}
