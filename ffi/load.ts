/**
 * The loader: picks the adapter for the running runtime and the library
 * file, and opens it once per process.
 *
 * The library file, first found wins:
 * 1. `DD_LIBDATADOG_PATH`: a real libdatadog build (e.g. `libdatadog_profiling.so`
 *    from a libdatadog release) or any library with the same ABI;
 * 2. the prebuilt library of the npm package, `prebuilds/<platform>/libdd_trace_ffi.so`;
 * 3. a source checkout's build, `lib/build/libdd_trace_ffi.so` (`npm run build`);
 * 4. the per-user build that `npx @dd-ffi/trace build` or
 *    `deno run -A jsr:@dd-ffi/trace/build` compiles:
 *    `~/.cache/dd-ffi-trace/<version>/<platform>/libdd_trace_ffi.so`.
 *
 * Paths 2 and 3 are relative to this file, so only exist when the package is
 * on disk (npm, a checkout), not when Deno loads it from JSR.
 *
 * On Windows, and on 32-bit or other architectures than x64 and arm64, the
 * loader refuses with an error saying why (`unsupportedPlatform` in
 * `paths.ts`) instead of loading a library the bindings would call wrongly.
 *
 * @module
 */
import { existsSync } from "node:fs";
import process from "node:process";
import type { Native, RuntimeInfo } from "./native.ts";
import { BUNDLED_LIBRARY, LIBRARY_NAME, libraryFileName, localPath, PLATFORM, SHIM_NAME, unsupportedPlatform, userCacheLibrary } from "./paths.ts";

interface Adapter {
  runtime: RuntimeInfo;
  open(path: string, shim?: string): Native;
}

/** The npm package's prebuilt library for `platform` (undefined when this module is not a local file). */
export function prebuiltLibrary(platform: string = PLATFORM): string | undefined {
  return localPath(`../prebuilds/${platform}/${libraryFileName(BUNDLED_LIBRARY, platform)}`, import.meta.url);
}

/** A source checkout's build for `platform` (undefined when this module is not a local file). */
export function checkoutLibrary(platform: string = PLATFORM): string | undefined {
  return localPath(`../lib/build/${libraryFileName(BUNDLED_LIBRARY, platform)}`, import.meta.url);
}

/** The npm package's prebuilt library for this platform. */
export const PREBUILT_LIBRARY: string | undefined = prebuiltLibrary();

/** A source checkout's build. */
export const CHECKOUT_LIBRARY: string | undefined = checkoutLibrary();

async function adapter(): Promise<Adapter> {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return await import("./bun.ts");
  if (g.Deno !== undefined) return await import("./deno.ts");
  return await import("./node.ts");
}

/** Whether `path` exists; "denied" when Deno's permissions forbid looking. */
function exists(path: string): boolean | "denied" {
  try {
    return existsSync(path);
  } catch (e) {
    if (e instanceof Error && (e.name === "NotCapable" || e.name === "PermissionDenied")) return "denied";
    throw e;
  }
}

const readFlag = (path: string) => `Deno's --allow-read (or --allow-read=${path})`;

/**
 * Finds the library file for `runtime`, or throws saying where it looked and
 * how to get one. Throws first when `host` (default: this process's
 * `process.platform` and `process.arch`) is a platform the bindings do not
 * support (Windows: see `unsupportedPlatform`); the prebuilt, checkout and
 * per-user paths are those of `host`'s platform.
 */
export function findLibrary(
  runtime: RuntimeInfo,
  host: { platform: string; arch: string } = { platform: process.platform, arch: process.arch },
): string {
  const unsupported = unsupportedPlatform(host.platform, host.arch);
  if (unsupported !== undefined) throw new Error(unsupported);
  const configured = runtime.env("DD_LIBDATADOG_PATH");
  if (configured) {
    const found = exists(configured);
    if (found === "denied") throw new Error(`@dd-ffi/trace needs ${readFlag(configured)} to load DD_LIBDATADOG_PATH`);
    if (!found) throw new Error(`DD_LIBDATADOG_PATH is ${configured}, but no file is there.`);
    return configured;
  }
  const platform = `${host.platform}-${host.arch}`;
  const candidates: [string | undefined, string][] = [
    [prebuiltLibrary(platform), "the npm package's prebuilt library"],
    [checkoutLibrary(platform), "a source checkout's build"],
  ];
  candidates.push([userCacheLibrary(runtime.env, platform), "the per-user build"]);
  const denied: string[] = [];
  for (const [path] of candidates) {
    if (path === undefined) continue;
    const found = exists(path);
    if (found === true) return path;
    if (found === "denied") denied.push(path);
  }
  if (denied.length > 0) {
    throw new Error(`@dd-ffi/trace needs ${readFlag(denied.join(","))} to look for its native library`);
  }
  const looked = candidates.filter(([path]) => path !== undefined).map(([path, what]) => `\n  ${path} (${what})`);
  throw new Error(
    `No libdatadog library found for ${platform}. Looked at DD_LIBDATADOG_PATH (not set) and:${looked.join("")}\n` +
      "Either build the bundled one with a C compiler (cc, gcc or clang) into the per-user cache: " +
      "`npx @dd-ffi/trace build` (Node, Bun) or `deno run -A jsr:@dd-ffi/trace/build` (Deno); " +
      "or set DD_LIBDATADOG_PATH to a libdatadog build (e.g. libdatadog_profiling.so).",
  );
}

const runtimeAdapter = await adapter();

/** The running runtime, available without loading the library. */
export const runtime: RuntimeInfo = runtimeAdapter.runtime;

let loaded: Native | undefined;

/**
 * The batch decoder's shim (`libddffi_batch.so`) for a library that lacks it
 * (a real libdatadog): next to the library, else in the package's prebuilds,
 * the checkout's build or the per-user build; undefined when none is there
 * (then the core sends field by field).
 */
export function findShim(library: string): string | undefined {
  const dir = library.slice(0, library.lastIndexOf("/") + 1);
  const user = userCacheLibrary(runtime.env);
  const candidates = [
    dir + SHIM_NAME,
    PREBUILT_LIBRARY && PREBUILT_LIBRARY.replace(LIBRARY_NAME, SHIM_NAME),
    CHECKOUT_LIBRARY && CHECKOUT_LIBRARY.replace(LIBRARY_NAME, SHIM_NAME),
    user && user.replace(LIBRARY_NAME, SHIM_NAME),
  ];
  return candidates.find((path) => path !== undefined && exists(path) === true);
}

/** Opens the native library (and the batch decoder's shim, if it needs one) on first use and returns it; throws if none is found. */
export function native(): Native {
  if (loaded) return loaded;
  const library = findLibrary(runtime);
  loaded = runtimeAdapter.open(library, runtime.env("DD_LIBDATADOG_PATH") ? findShim(library) : undefined);
  return loaded;
}
