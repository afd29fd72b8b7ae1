/**
 * The Deno adapter: `Deno.dlopen`. Pointer parameters and results are
 * declared `usize`, so words are bigints: Deno's fast calls take 64-bit
 * integers only as bigints (a number argument falls back to the slow path,
 * about 50 ns more per call), and a `usize` result comes back as a bigint
 * (0n, falsy, for NULL) with no wrapper in between. Blocking symbols get a
 * second, `nonblocking` binding that runs on Deno's blocking thread pool.
 *
 * Permissions: `--allow-ffi`, `--allow-env` (the `DD_*` variables) and
 * `--allow-read` of the library file.
 *
 * @module
 */
import { type CType, type SymbolDef, symbols } from "./abi.ts";
import { flatParameters, type Native, type NativeMemory, type RuntimeInfo, structFields, textEncoderInto, utf16Loop } from "./native.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const nativeTypes: Record<Exclude<CType, "slice">, Deno.NativeResultType> = {
  // by value: Deno takes and returns a struct as its bytes (a Uint8Array)
  CardinalityLimitConfig: { struct: structFields("CardinalityLimitConfig").map(() => "usize" as const) },
  pointer: "usize",
  usize: "usize",
  u64: "u64",
  i64: "i64",
  f64: "f64",
  bool: "bool",
  u32: "u32",
  i32: "i32",
  void: "void",
};

function resultType(t: CType): Deno.NativeResultType {
  if (t === "slice") return { struct: ["usize", "usize"] };
  return nativeTypes[t];
}

function declaration(name: string, def: SymbolDef, nonblocking: boolean): Deno.ForeignFunction {
  return {
    name,
    parameters: flatParameters(def).map((t) => nativeTypes[t] as Deno.NativeType),
    result: resultType(def.result),
    nonblocking,
    optional: def.optional ?? false,
  } as Deno.ForeignFunction;
}

/** Converts a raw Deno result into the core's representation (a `pointer` result is a word as it is). */
function converter(t: CType): ((r: Any) => Any) | undefined {
  switch (t) {
    case "slice":
      return (s: Uint8Array) => {
        const v = new BigUint64Array(s.buffer, s.byteOffset, 2);
        return [Number(v[0]), Number(v[1])];
      };
    case "i64":
    case "u64":
    case "usize":
      return (n: bigint | number) => Number(n);
  }
  return undefined;
}

/** Wraps an exception from a missing permission in an error naming the flag. */
function permission<T>(flag: string, what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new Error(`@dd-ffi/trace needs Deno's ${flag} to ${what}: run with ${flag}`, { cause: e });
    }
    throw e;
  }
}

/** The running Deno. */
export const runtime: RuntimeInfo = {
  name: "deno",
  version: Deno.version.deno,
  interpreter: "v8",
  env: (name) => permission("--allow-env", `read ${name}`, () => Deno.env.get(name)),
  pid: Deno.pid,
  cwd() {
    // Only with --allow-read of everything: asking for it would prompt (in a terminal), and the caller reads modules from there.
    if (Deno.permissions.querySync({ name: "read" }).state !== "granted") return undefined;
    try {
      return Deno.cwd();
    } catch {
      return undefined;
    }
  },
  nativeServer: Deno as unknown as { serve: unknown },
  onBeforeExit(callback) {
    // Deno exits after `beforeunload` unless a listener calls preventDefault();
    // the event fires again once the work it scheduled is done.
    const listener: EventListener = (event) => {
      if (callback()) event.preventDefault();
    };
    globalThis.addEventListener("beforeunload", listener);
    return () => globalThis.removeEventListener("beforeunload", listener);
  },
};

/** Opens the library at `path`; optional symbols it lacks come from `shim` when given. */
export function open(path: string, shim?: string): Native {
  const decls: Record<string, Deno.ForeignFunction> = {};
  for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
    decls[name] = declaration(name, def, false);
    if (def.blocking) decls[`${name}$async`] = declaration(name, def, true);
  }
  const lib = permission("--allow-ffi", `load ${path}`, () => Deno.dlopen(path, decls));
  const raw = { ...lib.symbols } as Record<string, Any>;
  // A missing optional symbol is null; its nonblocking twin is a wrapper that throws when called.
  const missing = Object.keys(decls).filter((name) => raw[name.replace(/\$async$/, "")] == null);
  let shimLib: Deno.DynamicLibrary<Record<string, Deno.ForeignFunction>> | undefined;
  if (shim !== undefined && missing.length > 0) {
    const shimDecls = Object.fromEntries(missing.map((name) => [name, decls[name]]));
    shimLib = permission("--allow-ffi", `load ${shim}`, () => Deno.dlopen(shim, shimDecls));
    for (const name of missing) raw[name] = (shimLib.symbols as Record<string, Any>)[name];
  }
  const bound: Record<string, Any> = {};
  const async: Record<string, Any> = {};
  for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
    const f = raw[name];
    const convert = converter(def.result);
    // Unconverted symbols are bound as they are: no wrapper on the hot path.
    bound[name] = f == null ? undefined : convert ? (...a: Any[]) => convert(f(...a)) : f;
    if (def.blocking) {
      const g = raw[`${name}$async`];
      async[name] = f == null ? undefined : convert ? async (...a: Any[]) => convert(await g(...a)) : g;
    }
  }
  return {
    path,
    shim: shimLib && missing.some((name) => raw[name] != null) ? shim : undefined,
    runtime,
    wordType: "bigint",
    symbols: bound as Native["symbols"],
    async: async as Native["async"],
    alloc(size: number): NativeMemory {
      const buffer = new ArrayBuffer(size);
      const address = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
      return { buffer, address, utf8: textEncoderInto(buffer), utf16: utf16Loop(buffer) };
    },
    free() {},
    read(address, length) {
      if (length === 0) return new Uint8Array(0);
      const p = Deno.UnsafePointer.create(BigInt(address));
      return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p!, length)).slice();
    },
    cstring(address) {
      return Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(BigInt(address))!);
    },
    close() {
      shimLib?.close();
      lib.close();
    },
  };
}
