/**
 * The Node adapter: koffi. Every parameter is declared as a plain integer or
 * double (koffi converts struct objects about 5× slower), so a slice goes
 * as two `uintptr_t`; blocking symbols run on dedicated worker threads that
 * load the same library with koffi (not koffi's asynchronous calls: those
 * run on libuv's 4-thread pool, which four sends to a hung agent would hold,
 * stalling the app's `fs`, `dns.lookup` and `zlib` work).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import process from "node:process";
import { Worker } from "node:worker_threads";
import koffi from "koffi";
import { type CType, type SymbolDef, symbols } from "./abi.ts";
import { flatParameters, type Native, type NativeMemory, type RuntimeInfo, structFields, textEncoderInto, WorkerPool } from "./native.ts";

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

/**
 * The worker's code: plain CommonJS, so that it needs no TypeScript loader and no file next to this
 * one. `workerData` carries koffi's path, the library's and the blocking symbols' declarations.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const koffi = require(workerData.koffi);
const libs = {};
const fns = {};
for (const [name, result, params, file] of workerData.symbols) {
  libs[file] ??= koffi.load(file);
  fns[name] = libs[file].func(name, result, params);
}
parentPort.on("message", ({ id, name, args }) => {
  let reply;
  try {
    reply = { id, result: fns[name](...args) };
  } catch (e) {
    reply = { id, error: String((e && e.stack) || e) };
  }
  parentPort.postMessage(reply);
});
`;

/** The pool's threads on Node: `node:worker_threads` running {@link WORKER_SOURCE}. */
function workerPool(symbols: [string, string, string[], string][]): WorkerPool {
  const workerData = { koffi: createRequire(import.meta.url).resolve("koffi"), symbols };
  return new WorkerPool((onReply, onExit) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    worker.on("message", onReply);
    worker.on("error", onExit);
    worker.on("exit", onExit);
    return {
      post: (message) => worker.postMessage(message),
      ref: () => worker.ref(),
      unref: () => worker.unref(),
      terminate: () => void worker.terminate(),
    };
  });
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
  cwd: () => process.cwd(),
  onBeforeExit(callback) {
    const listener = () => void callback();
    process.on("beforeExit", listener);
    return () => void process.off("beforeExit", listener);
  },
  onExit(callback) {
    process.on("exit", () => callback());
  },
};

/** Opens the library at `path`; optional symbols it lacks come from `shim` when given. */
export function open(path: string, shim?: string): Native {
  const lib = koffi.load(path);
  let shimLib: Any;
  let usedShim: string | undefined;
  const bound: Record<string, Any> = {};
  const async: Record<string, Any> = {};
  const blocking: [string, string, string[], string][] = [];
  for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
    let f: Any;
    let file = path;
    const declare = (l: Any) => l.func(name, resultType(def.result) as Any, flatParameters(def).map(paramType) as Any[]);
    try {
      f = declare(lib);
    } catch (e) {
      if (!def.optional) throw e;
      if (shim === undefined) continue;
      try {
        shimLib ??= koffi.load(shim);
        f = declare(shimLib);
        usedShim = file = shim;
      } catch {
        continue;
      }
    }
    const structs = flatParameters(def).map((t) => t === "CardinalityLimitConfig");
    bound[name] = def.result === "slice" ? (...a: Any[]) => {
      const s = f(...a);
      return [Number(s.ptr), Number(s.len)];
    } : def.result === "CardinalityLimitConfig" ? (...a: Any[]) => fromStruct(f(...a))
    : structs.includes(true) ? (...a: Any[]) => f(...a.map((x, i) => (structs[i] ? toStruct(x) : x)))
    : f;
    if (def.blocking) {
      blocking.push([name, nativeTypes[def.result as keyof typeof nativeTypes], flatParameters(def).map((t) => nativeTypes[t as keyof typeof nativeTypes]), file]);
      async[name] = (...a: Any[]) => pool.call(name, a);
    }
  }
  const pool = workerPool(blocking);
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
      // Buffer#write's utf16le copies a two-byte string's code units as they are, 20× faster than encodeInto's UTF-8.
      const bytes = Buffer.from(buffer);
      const utf16 = { utf16Write: (s: string, at: number) => void bytes.write(s, at, "utf16le") };
      const memory = { buffer, address: Number(koffi.address(block)), utf8: textEncoderInto(buffer), utf16 };
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
      pool.terminate();
      shimLib?.unload();
      lib.unload();
    },
  };
}
