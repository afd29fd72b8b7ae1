// The part of the Deno namespace that ffi/deno.ts uses, for `tsc --noEmit`
// (`deno check` uses Deno's own types and never reads this). Not part of the
// packages.
declare namespace Deno {
  type NativeNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
  type NativeBigIntType = "u64" | "i64" | "usize" | "isize";
  type NativeStructType = { readonly struct: readonly NativeType[] };
  type NativeType = NativeNumberType | NativeBigIntType | "bool" | "pointer" | "buffer" | "function" | NativeStructType;
  type NativeResultType = NativeType | "void";
  interface ForeignFunction {
    name?: string;
    parameters: readonly NativeType[];
    result: NativeResultType;
    nonblocking?: boolean;
    optional?: boolean;
  }
  type PointerObject = { readonly __deno_pointer: unique symbol };
  type PointerValue = null | PointerObject;
  const UnsafePointer: {
    create(value: bigint): PointerValue;
    of(value: ArrayBuffer | ArrayBufferView): PointerValue;
    value(value: PointerValue): bigint;
  };
  class UnsafePointerView {
    static getArrayBuffer(pointer: PointerObject, byteLength: number, offset?: number): ArrayBuffer;
    static getCString(pointer: PointerObject, offset?: number): string;
  }
  interface DynamicLibrary<S extends Record<string, ForeignFunction>> {
    // deno-lint-ignore no-explicit-any
    symbols: { [K in keyof S]: (...args: any[]) => any };
    close(): void;
  }
  function dlopen<S extends Record<string, ForeignFunction>>(filename: string | URL, symbols: S): DynamicLibrary<S>;
  const env: { get(key: string): string | undefined };
  const pid: number;
  function cwd(): string;
  const permissions: { querySync(descriptor: { name: "read"; path?: string }): { state: "granted" | "denied" | "prompt" } };
  const version: { deno: string; v8: string; typescript: string };
  namespace errors {
    class NotCapable extends Error {}
    class PermissionDenied extends Error {}
  }
}
