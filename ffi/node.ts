/**
 * The Node adapter: koffi. Every parameter is declared as a plain integer or
 * double (koffi converts struct objects about 5× slower), so a slice goes
 * as two `uintptr_t`; blocking symbols use koffi's asynchronous calls, which
 * run on koffi's worker threads.
 *
 * @module
 */
import process from "node:process";
import koffi from "koffi";
import { type CType, type SymbolDef, symbols } from "./abi.ts";
import { flatParameters, type Native, type NativeMemory, type RuntimeInfo } from "./native.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const nativeTypes: Record<Exclude<CType, "slice">, string> = {
  pointer: "uintptr_t",
  usize: "uintptr_t",
  u64: "uint64_t",
  i64: "int64_t",
  f64: "double",
  bool: "bool",
  u32: "uint32_t",
  i32: "int32_t",
  void: "void",
};

let sliceType: unknown;

function resultType(t: CType): unknown {
  if (t !== "slice") return nativeTypes[t];
  sliceType ??= koffi.struct("ddffi_slice_result", { ptr: "uintptr_t", len: "uintptr_t" });
  return sliceType;
}

/** The running Node. */
export const runtime: RuntimeInfo = {
  name: "nodejs",
  version: process.versions.node,
  interpreter: "v8",
  env: (name) => process.env[name],
  pid: process.pid,
  onBeforeExit(callback) {
    const listener = () => void callback();
    process.on("beforeExit", listener);
    return () => void process.off("beforeExit", listener);
  },
};

/** Opens the library at `path`; optional symbols it lacks come from `shim` when given. */
export function open(path: string, shim?: string): Native {
  const lib = koffi.load(path);
  let shimLib: Any;
  let usedShim: string | undefined;
  const bound: Record<string, Any> = {};
  const async: Record<string, Any> = {};
  for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
    let f: Any;
    const declare = (l: Any) => l.func(name, resultType(def.result) as Any, flatParameters(def).map((t) => nativeTypes[t]));
    try {
      f = declare(lib);
    } catch (e) {
      if (!def.optional) throw e;
      if (shim === undefined) continue;
      try {
        shimLib ??= koffi.load(shim);
        f = declare(shimLib);
        usedShim = shim;
      } catch {
        continue;
      }
    }
    bound[name] = def.result === "slice" ? (...a: Any[]) => {
      const s = f(...a);
      return [Number(s.ptr), Number(s.len)];
    } : f;
    if (def.blocking) {
      async[name] = (...a: Any[]) =>
        new Promise((resolve, reject) => f.async(...a, (err: unknown, r: unknown) => (err ? reject(err) : resolve(r))));
    }
  }
  const owned = new WeakMap<NativeMemory, unknown>();
  return {
    path,
    shim: usedShim,
    runtime,
    wordType: "number",
    symbols: bound as Native["symbols"],
    async: async as Native["async"],
    alloc(size: number): NativeMemory {
      const block = koffi.alloc("uint8_t", size);
      const buffer = koffi.view(block, size) as ArrayBuffer;
      new Uint8Array(buffer).fill(0);
      const memory = { buffer, address: Number(koffi.address(block)) };
      owned.set(memory, block);
      return memory;
    },
    free(memory) {
      const block = owned.get(memory);
      if (block) koffi.free(block as Any);
      owned.delete(memory);
    },
    read(address, length) {
      if (length === 0) return new Uint8Array(0);
      return new Uint8Array(koffi.view(address as Any, length) as ArrayBuffer).slice();
    },
    cstring(address) {
      return koffi.decode(address as Any, "char", -1) as string;
    },
    close() {
      shimLib?.unload();
      lib.unload();
    },
  };
}
