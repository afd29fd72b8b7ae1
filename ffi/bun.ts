/**
 * The Bun adapter: `bun:ffi`. Pointers are plain numbers; a slice travels
 * as two integer arguments (bun:ffi has no struct arguments); a slice result
 * goes through a tiny trampoline compiled with bun:ffi's `cc`; blocking
 * symbols run on worker threads (`bun_worker.ts`) that load the same library.
 *
 * @module
 */
import process from "node:process";
import { cc, CString, dlopen, type FFIFunction, FFIType, ptr, toArrayBuffer } from "bun:ffi";
import { type CType, layouts, type SymbolDef, symbols } from "./abi.ts";
import { flatParameters, type Native, type NativeMemory, type RuntimeInfo, textEncoderInto, WorkerPool } from "./native.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const nativeTypes: Record<Exclude<CType, "slice" | "CardinalityLimitConfig">, FFIType> = {
  pointer: FFIType.ptr,
  usize: FFIType.u64_fast,
  u64: FFIType.u64,
  i64: FFIType.i64,
  f64: FFIType.f64,
  bool: FFIType.bool,
  u32: FFIType.u32,
  i32: FFIType.i32,
  void: FFIType.void,
};

/** Whether `def` takes or returns a struct by value (called through a trampoline). */
function byValueStruct(def: SymbolDef): boolean {
  return def.result === "CardinalityLimitConfig" || def.parameters.includes("CardinalityLimitConfig");
}

/** bun:ffi's declaration of one symbol (a slice result is declared `void` and called through the trampoline; so is one with a struct by value). */
export function declaration(def: SymbolDef): FFIFunction {
  if (byValueStruct(def)) return { args: [], returns: FFIType.void };
  return {
    args: flatParameters(def).map((t) => nativeTypes[t as Exclude<CType, "slice" | "CardinalityLimitConfig">]),
    returns: def.result === "slice" ? FFIType.void : def.result === "i64" ? FFIType.i64_fast : nativeTypes[def.result as Exclude<CType, "slice" | "CardinalityLimitConfig">],
  };
}

const bun = (globalThis as unknown as { Bun: { version: string; env: Record<string, string | undefined>; serve: unknown } }).Bun;

/** The running Bun. */
export const runtime: RuntimeInfo = {
  name: "bun",
  version: bun.version,
  interpreter: "JavaScriptCore",
  env: (name) => bun.env[name],
  pid: process.pid,
  cwd: () => process.cwd(),
  nativeServer: bun,
  onBeforeExit(callback) {
    const listener = () => void callback();
    process.on("beforeExit", listener);
    return () => void process.off("beforeExit", listener);
  },
};

let trampolines: Record<string, Any> | undefined;

/** The trampolines of bun_slice_return.c, compiled with bun:ffi's cc on first use. */
function trampoline(name: string): Any {
  if (!trampolines) {
    const source = decodeURIComponent(new URL("./bun_slice_return.c", import.meta.url).pathname);
    trampolines = cc({
      source,
      symbols: {
        ddffi_call_slice_return: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.void },
        ddffi_call_ptr_words5: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
        ddffi_call_words5_return: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.void },
      },
    }).symbols;
  }
  return trampolines![name];
}

/** Calls a `slice`-returning function through the trampoline. */
function sliceReturning(fnPtr: Any): (arg: number) => [number, number] {
  const call = trampoline("ddffi_call_slice_return");
  const out = new BigUint64Array(2);
  const outPtr = ptr(out);
  return (arg) => {
    call(fnPtr, arg, outPtr);
    return [Number(out[0]), Number(out[1])];
  };
}

/** Calls a function taking or returning the 40-byte struct by value through its trampoline (the two shapes in abi.ts). */
function structByValue(name: string, def: SymbolDef, fnPtr: Any): Any {
  const size = layouts.CardinalityLimitConfig.size;
  if (size !== 40) throw new Error("bun_slice_return.c's ddffi_words5 is 40 bytes");
  const shape = `${def.parameters.join(",")}->${def.result}`;
  if (shape === "pointer,CardinalityLimitConfig->pointer") {
    const call = trampoline("ddffi_call_ptr_words5");
    return (arg: number, bytes: Uint8Array) => {
      if (!(bytes instanceof Uint8Array) || bytes.length !== size) throw new RangeError(`${name}: expected the struct's ${size} bytes`);
      return call(fnPtr, arg, ptr(bytes));
    };
  }
  if (shape === "->CardinalityLimitConfig" || shape === "pointer->CardinalityLimitConfig") {
    const call = trampoline("ddffi_call_words5_return");
    return (arg?: number) => {
      const out = new Uint8Array(size);
      call(fnPtr, ptr(out), arg ?? 0);
      return out;
    };
  }
  throw new Error(`bun.ts has no trampoline for ${name} (${shape})`);
}

/** The pool's threads on Bun: workers (`bun_worker.ts`) that open the same library (and shim). */
function workerPool(path: string, shim: string | undefined): WorkerPool {
  // bun_worker.js next to the compiled bun.js of the npm package
  const file = import.meta.url.endsWith(".ts") ? "./bun_worker.ts" : "./bun_worker.js";
  return new WorkerPool((onReply, onExit) => {
    const worker = new Worker(new URL(file, import.meta.url).href);
    worker.postMessage({ open: path, shim });
    worker.onmessage = ({ data }: MessageEvent) => onReply(data);
    worker.addEventListener("error", (e) => onExit((e as ErrorEvent).error ?? e));
    worker.addEventListener("close", () => onExit(new Error("the FFI worker thread closed")));
    return {
      post: (message) => worker.postMessage(message),
      ref: () => (worker as Any).ref(),
      unref: () => (worker as Any).unref(),
      terminate: () => worker.terminate(),
    };
  });
}

/** Opens the library at `path`; optional symbols it lacks come from `shim` when given. */
export function open(path: string, shim?: string): Native {
  const required: Record<string, FFIFunction> = {};
  const optional: string[] = [];
  for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
    if (def.optional) optional.push(name);
    else required[name] = declaration(def);
  }
  const lib = dlopen(path, required);
  let usedShim: string | undefined;
  const extra = optional.map((name) => {
    const decl = { [name]: declaration((symbols as Record<string, SymbolDef>)[name]) };
    try {
      return dlopen(path, decl);
    } catch {
      if (shim === undefined) return undefined;
      try {
        const l = dlopen(shim, decl);
        usedShim = shim;
        return l;
      } catch {
        return undefined;
      }
    }
  });
  const bound: Record<string, Any> = { ...lib.symbols };
  optional.forEach((name, i) => (bound[name] = extra[i]?.symbols[name]));
  for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
    if (def.result === "slice" && bound[name]) bound[name] = sliceReturning(bound[name].ptr);
    if (byValueStruct(def) && bound[name]) bound[name] = structByValue(name, def, bound[name].ptr);
  }
  const pool = workerPool(path, usedShim);
  const async: Record<string, Any> = {};
  for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
    if (def.blocking && bound[name] !== undefined) async[name] = (...a: unknown[]) => pool.call(name, a);
  }
  return {
    path,
    shim: usedShim,
    runtime,
    wordType: "number",
    symbols: bound as Native["symbols"],
    async: async as Native["async"],
    alloc(size: number): NativeMemory {
      const buffer = new ArrayBuffer(size);
      return { buffer, address: ptr(buffer) as number, utf8: textEncoderInto(buffer) };
    },
    free() {},
    read(address, length) {
      if (length === 0) return new Uint8Array(0);
      return new Uint8Array(toArrayBuffer(address as Any, 0, length)).slice();
    },
    cstring(address) {
      return new CString(address as Any).toString();
    },
    close() {
      pool.terminate();
      for (const l of extra) l?.close();
      lib.close();
    },
  };
}
