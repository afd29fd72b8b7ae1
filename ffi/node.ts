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
import { flatParameters, type Native, type NativeMemory, type RuntimeInfo, structFields } from "./native.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const nativeTypes: Record<Exclude<CType, "slice" | "CardinalityLimitConfig">, string> = {
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
let limitsType: unknown;
const LIMITS = structFields("CardinalityLimitConfig");

function resultType(t: CType): unknown {
  if (t === "CardinalityLimitConfig") return paramType(t);
  if (t !== "slice") return nativeTypes[t];
  sliceType ??= koffi.struct("ddffi_slice_result", { ptr: "uintptr_t", len: "uintptr_t" });
  return sliceType;
}

/** A by-value struct is a koffi struct of its `uintptr_t` fields (koffi passes it as the C ABI says). */
function paramType(t: Exclude<CType, "slice" | "void">): unknown {
  if (t !== "CardinalityLimitConfig") return nativeTypes[t];
  limitsType ??= koffi.struct("ddog_CardinalityLimitConfig", Object.fromEntries(LIMITS.map((f) => [f, "uintptr_t"])));
  return limitsType;
}

/** A struct's bytes as the object koffi takes, and back. */
function toStruct(bytes: Uint8Array): Record<string, bigint> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Object.fromEntries(LIMITS.map((f, i) => [f, v.getBigUint64(8 * i, true)]));
}
function fromStruct(o: Record<string, number | bigint>): Uint8Array {
  const bytes = new Uint8Array(8 * LIMITS.length);
  const v = new DataView(bytes.buffer);
  LIMITS.forEach((f, i) => v.setBigUint64(8 * i, BigInt(o[f]), true));
  return bytes;
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

/** Opens the library at `path`. */
export function open(path: string): Native {
  const lib = koffi.load(path);
  const bound: Record<string, Any> = {};
  const async: Record<string, Any> = {};
  for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
    let f: Any;
    try {
      f = lib.func(name, resultType(def.result) as Any, flatParameters(def).map(paramType) as Any[]);
    } catch (e) {
      if (def.optional) continue;
      throw e;
    }
    const structs = flatParameters(def).map((t) => t === "CardinalityLimitConfig");
    bound[name] = def.result === "slice" ? (...a: Any[]) => {
      const s = f(...a);
      return [Number(s.ptr), Number(s.len)];
    } : def.result === "CardinalityLimitConfig" ? (...a: Any[]) => fromStruct(f(...a))
    : structs.includes(true) ? (...a: Any[]) => f(...a.map((x, i) => (structs[i] ? toStruct(x) : x)))
    : f;
    if (def.blocking) {
      async[name] = (...a: Any[]) =>
        new Promise((resolve, reject) => f.async(...a, (err: unknown, r: unknown) => (err ? reject(err) : resolve(r))));
    }
  }
  const owned = new WeakMap<NativeMemory, unknown>();
  return {
    path,
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
      lib.unload();
    },
  };
}
