// The part of bun:ffi that ffi/bun.ts and ffi/bun_worker.ts use, for
// `tsc --noEmit` (Bun ships the real types in bun-types; this project does
// not depend on it). Not part of the packages.
declare module "bun:ffi" {
  export enum FFIType {
    i8 = 1, u8 = 2, i16 = 3, u16 = 4, i32 = 5, u32 = 6, i64 = 7, u64 = 8, f64 = 9, f32 = 10,
    bool = 11, ptr = 12, void = 13, cstring = 14, i64_fast = 15, u64_fast = 16, function = 17,
  }
  export type Pointer = number & { __pointer__: null };
  export interface FFIFunction {
    readonly args?: readonly FFIType[];
    readonly returns?: FFIType;
    readonly ptr?: Pointer | bigint;
    readonly threadsafe?: boolean;
  }
  // deno-lint-ignore no-explicit-any
  type Bound = ((...args: any[]) => any) & { readonly ptr: Pointer };
  export interface Library<Fns extends Record<string, FFIFunction>> {
    symbols: { [K in keyof Fns]: Bound };
    close(): void;
  }
  export function dlopen<Fns extends Record<string, FFIFunction>>(name: string | URL, symbols: Fns): Library<Fns>;
  export function cc<Fns extends Record<string, FFIFunction>>(options: {
    source: string | URL;
    symbols: Fns;
    library?: string[];
    include?: string[];
    define?: Record<string, string>;
    flags?: string | string[];
  }): Library<Fns>;
  export function ptr(view: ArrayBufferLike | ArrayBufferView, byteOffset?: number): Pointer;
  export function toArrayBuffer(ptr: Pointer, byteOffset?: number, byteLength?: number): ArrayBuffer;
  export class CString extends String {
    constructor(ptr: Pointer, byteOffset?: number, byteLength?: number);
  }
}
