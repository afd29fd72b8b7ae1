/**
 * Where the native library may be, shared by the loader (`load.ts`) and the
 * builder (`build.ts`). Uses only `node:` built-ins: `build.ts` runs this
 * file under plain Deno from JSR too.
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { VERSION } from "../src/version.ts";

/** The library's file name, in every location. */
export const LIBRARY_NAME = "libdd_trace_ffi.so";

/**
 * The batch decoder alone (lib/batch.c), next to the library in every
 * location: the loader opens it too when the library lacks `ddffi_batch_send`
 * (a real libdatadog).
 */
export const SHIM_NAME = "libddffi_batch.so";

/** This machine's platform key, e.g. `linux-x64`: the prebuilt's folder and the cache's. */
export const PLATFORM: string = `${process.platform}-${process.arch}`;

/**
 * The per-user build of the library, which `npx @dd-ffi/trace build` and
 * `deno run -A jsr:@dd-ffi/trace/build` write:
 * `$XDG_CACHE_HOME/dd-ffi-trace/<version>/<platform>/libdd_trace_ffi.so`,
 * `$XDG_CACHE_HOME` defaulting to `~/.cache`. `env` reads an environment
 * variable; undefined when neither `XDG_CACHE_HOME` nor `HOME` is set.
 */
export function userCacheLibrary(env: (name: string) => string | undefined): string | undefined {
  const home = env("HOME");
  const cache = env("XDG_CACHE_HOME") || (home ? `${home}/.cache` : undefined);
  return cache && `${cache}/dd-ffi-trace/${VERSION}/${PLATFORM}/${LIBRARY_NAME}`;
}

/**
 * The path of a file at `relative` to the module at `base`, or undefined when
 * that module is not a local file (a module loaded from JSR is `https:`).
 */
export function localPath(relative: string, base: string): string | undefined {
  const url = new URL(relative, base);
  return url.protocol === "file:" ? fileURLToPath(url) : undefined;
}
