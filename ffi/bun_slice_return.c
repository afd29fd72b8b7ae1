/* bun:ffi cannot receive a 16-byte struct returned by value (RAX:RDX), so
 * bun.ts compiles this with bun:ffi's cc and calls the libdatadog function
 * through it: `fn` is the target's address, `out` receives ptr and len. */
typedef struct { unsigned long long ptr, len; } ddffi_slice;

void ddffi_call_slice_return(void *fn, void *arg, unsigned long long *out) {
  ddffi_slice s = ((ddffi_slice(*)(void *))fn)(arg);
  out[0] = s.ptr;
  out[1] = s.len;
}
