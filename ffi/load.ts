/**
 * The loader: picks the adapter for the running runtime and the library
 * file, and opens it once per process.
 *
 * The library file, first found wins:
 * 1. `DD_LIBDATADOG_PATH`: a real libdatadog build (e.g. `libdatadog_profiling.so`
 *    from a libdatadog release) or any library with the same ABI;
 * 2. the bundled build, `lib/build/libdd_trace_ffi.so` in this package.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Native, RuntimeInfo } from "./native.ts";

interface Adapter {
  runtime: RuntimeInfo;
  open(path: string): Native;
}

/** The bundled library, relative to this file. */
export const BUNDLED_LIBRARY = fileURLToPath(new URL("../lib/build/libdd_trace_ffi.so", import.meta.url));

async function adapter(): Promise<Adapter> {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return await import("./bun.ts");
  if (g.Deno !== undefined) return await import("./deno.ts");
  return await import("./node.ts");
}

/** Finds the library file for `runtime`, or throws saying how to get one. */
export function findLibrary(runtime: RuntimeInfo): string {
  const configured = runtime.env("DD_LIBDATADOG_PATH");
  if (configured) {
    if (!existsSync(configured)) {
      throw new Error(`DD_LIBDATADOG_PATH is ${configured}, but no file is there.`);
    }
    return configured;
  }
  if (existsSync(BUNDLED_LIBRARY)) return BUNDLED_LIBRARY;
  throw new Error(
    "No libdatadog library found. Build the bundled one with `npm run build` " +
      "(needs a C compiler), or set DD_LIBDATADOG_PATH to a libdatadog build " +
      `(e.g. libdatadog_profiling.so). Looked for ${BUNDLED_LIBRARY}.`,
  );
}

const runtimeAdapter = await adapter();

/** The running runtime, available without loading the library. */
export const runtime: RuntimeInfo = runtimeAdapter.runtime;

let loaded: Native | undefined;

/** Opens the native library on first use and returns it; throws if none is found. */
export function native(): Native {
  loaded ??= runtimeAdapter.open(findLibrary(runtime));
  return loaded;
}
