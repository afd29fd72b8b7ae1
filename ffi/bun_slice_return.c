/* bun:ffi has no struct types, so bun.ts compiles this with bun:ffi's cc and
 * calls the libdatadog functions that take or return a struct by value
 * through it; `fn` is the target's address.
 *
 * - A 16-byte slice returned by value (RAX:RDX): `out` receives ptr and len.
 * - The 40-byte ddog_CardinalityLimitConfig (five uintptr_t), passed or
 *   returned by value: the caller's bytes at `in`, or `out` receives them. */
typedef struct { unsigned long long ptr, len; } ddffi_slice;
typedef struct { unsigned long long w[5]; } ddffi_words5;

void ddffi_call_slice_return(void *fn, void *arg, unsigned long long *out) {
  ddffi_slice s = ((ddffi_slice(*)(void *))fn)(arg);
  out[0] = s.ptr;
  out[1] = s.len;
}

void *ddffi_call_ptr_words5(void *fn, void *arg, const ddffi_words5 *in) {
  return ((void *(*)(void *, ddffi_words5))fn)(arg, *in);
}

/* For `T f(void)` and `T f(void *)` alike: on SysV and AAPCS64 an argument
 * the callee does not take is harmless. */
void ddffi_call_words5_return(void *fn, ddffi_words5 *out, void *arg) {
  *out = ((ddffi_words5(*)(void *))fn)(arg);
}
