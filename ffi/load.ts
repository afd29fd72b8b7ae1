/**
 * The loader: picks the adapter for the running runtime and the library
 * file, and opens it once per process.
 *
 * The library file, first found wins:
 * 1. `DD_LIBDATADOG_PATH`: a real libdatadog build (e.g. `libdatadog_profiling.so`
 *    from a libdatadog release) or any library with the same ABI;
 * 2. the platform package's library (npm, Bun, Deno's npm support): the one
 *    of `PLATFORM_PACKAGES` (`paths.ts`) matching the machine, which the
 *    package manager installed from the main package's
 *    `optionalDependencies`, found with `require.resolve`;
 * 3. a source checkout's build, `lib/build/libdd_trace_ffi.so` (`npm run build`);
 * 4. the per-user build that `npx @dd-ffi/trace build` or
 *    `deno run -A jsr:@dd-ffi/trace/build` compiles with cargo:
 *    `~/.cache/dd-ffi-trace/<version>/<platform>/libdd_trace_ffi.so`;
 * 5. on Deno from JSR only: the release's library, downloaded once into
 *    `~/.cache/dd-ffi-trace/<version>/release/<platform>/` and checked
 *    against its published sha256 (`release.ts`), when this module is
 *    imported.
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
import { createRequire } from "node:module";
import process from "node:process";
import type { Native, RuntimeInfo } from "./native.ts";
import {
  BUNDLED_LIBRARY,
  LIBRARY_NAME,
  libraryFileName,
  localPath,
  PLATFORM,
  PLATFORM_PACKAGES,
  SHIM_NAME,
  unsupportedPlatform,
  userCacheLibrary,
} from "./paths.ts";
import { releaseLibrary } from "./release.ts";
import { VERSION } from "../src/version.ts";

interface Adapter {
  runtime: RuntimeInfo;
  open(path: string, shim?: string): Native;
}

/**
 * The library of `platform`'s package (`PLATFORM_PACKAGES`) as installed
 * next to this package; undefined when it is not installed, when no package
 * is made for the platform, or when this module is not a local file (JSR).
 */
export function prebuiltLibrary(platform: string = PLATFORM): string | undefined {
  const pkg = PLATFORM_PACKAGES[platform];
  if (pkg === undefined || localPath(".", import.meta.url) === undefined) return undefined;
  let manifest: string;
  try {
    manifest = createRequire(import.meta.url).resolve(`${pkg.name}/package.json`);
  } catch (e) {
    if (e instanceof Error && (e.name === "NotCapable" || e.name === "PermissionDenied")) throw e;
    return undefined; // not installed
  }
  return manifest.slice(0, manifest.length - "package.json".length) + libraryFileName(BUNDLED_LIBRARY, platform);
}

/** A source checkout's build for `platform` (undefined when this module is not a local file). */
export function checkoutLibrary(platform: string = PLATFORM): string | undefined {
  return localPath(`../lib/build/${libraryFileName(BUNDLED_LIBRARY, platform)}`, import.meta.url);
}

/** The platform package's library for this platform, if that package is installed. */
export const PREBUILT_LIBRARY: string | undefined = prebuilt();

function prebuilt(): string | undefined {
  try {
    return prebuiltLibrary();
  } catch {
    return undefined; // Deno without --allow-read: findLibrary names the flag
  }
}

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
 * how to get one: which platform package to add (naming the platform it
 * saw), `DD_LIBDATADOG_PATH`, or a source build. Throws first when `host`
 * (default: this process's `process.platform` and `process.arch`) is a
 * platform the bindings do not support (Windows: see `unsupportedPlatform`);
 * the package, checkout and per-user paths are those of `host`'s platform.
 * `release` is what {@link prepareRelease} gave (Deno from JSR): the
 * downloaded library, or why there is none.
 */
export function findLibrary(
  runtime: RuntimeInfo,
  host: { platform: string; arch: string } = { platform: process.platform, arch: process.arch },
  release?: string | Error,
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
  const pkg = PLATFORM_PACKAGES[platform];
  let packaged: string | undefined;
  try {
    packaged = prebuiltLibrary(platform);
  } catch {
    throw new Error(`@dd-ffi/trace needs Deno's --allow-read to look for its platform package, ${pkg?.name}`);
  }
  const candidates: [string | undefined, string][] = [
    [packaged, `the package ${pkg?.name}`],
    [checkoutLibrary(platform), "a source checkout's build"],
    [userCacheLibrary(runtime.env, platform), "the per-user build"],
  ];
  const denied: string[] = [];
  for (const [path] of candidates) {
    if (path === undefined) continue;
    const found = exists(path);
    if (found === true) return path;
    if (found === "denied") denied.push(path);
  }
  // The release's library was read and checked already: --allow-read of that file alone is enough.
  if (typeof release === "string") return release;
  if (denied.length > 0) {
    throw new Error(`@dd-ffi/trace needs ${readFlag(denied.join(","))} to look for its native library`);
  }
  if (release !== undefined) throw release;
  throw new Error(notFound(platform, candidates.filter(([path]) => path !== undefined) as [string, string][]));
}

/**
 * The loader's error when it found no library for `platform`, having looked
 * at `looked` (path, what it is): the platform package to add (or that there
 * is none for the platform), `DD_LIBDATADOG_PATH`, and the source build.
 */
export function notFound(platform: string, looked: [string, string][]): string {
  const pkg = PLATFORM_PACKAGES[platform];
  const add = pkg === undefined
    ? `There is no prebuilt package for ${platform}: `
    : `Its prebuilt library is the package ${pkg.name}, which is not installed (the package manager skips it when ` +
      "optional dependencies are omitted, or when the lockfile was made on another platform" +
      (pkg.libc ? `; it needs ${pkg.libc}, not musl` : "") + `): add it, \`npm install ${pkg.name}@${VERSION}\`; or `;
  return `No libdatadog library found for ${platform}. Looked at DD_LIBDATADOG_PATH (not set)` +
    (looked.length > 0 ? ` and:${looked.map(([path, what]) => `\n  ${path} (${what})`).join("")}` : "") + "\n" + add +
    "set DD_LIBDATADOG_PATH to a libdatadog release build (e.g. libdatadog_profiling.so); " +
    "or build it from source with cargo into the per-user cache: " +
    "`npx @dd-ffi/trace build` (Node, Bun) or `deno run -A jsr:@dd-ffi/trace/build` (Deno).";
}

/**
 * On Deno from JSR (this module is not a local file), when no library is
 * set or built: the release's library, downloaded and checked
 * (`release.ts`), or the error why not; undefined elsewhere, or when a
 * library is set or built (nothing is downloaded then).
 */
async function prepareRelease(runtime: RuntimeInfo): Promise<string | Error | undefined> {
  if (runtime.name !== "deno" || localPath(".", import.meta.url) !== undefined) return undefined;
  if (unsupportedPlatform(process.platform, process.arch) !== undefined) return undefined;
  try {
    if (runtime.env("DD_LIBDATADOG_PATH")) return undefined;
    const user = userCacheLibrary(runtime.env);
    if (user !== undefined && exists(user) === true) return undefined;
    return await releaseLibrary(runtime.env);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

const runtimeAdapter = await adapter();

/** The running runtime, available without loading the library. */
export const runtime: RuntimeInfo = runtimeAdapter.runtime;

/** The release's library on Deno from JSR (see {@link prepareRelease}). */
const release = await prepareRelease(runtime);

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
  const library = findLibrary(runtime, undefined, release);
  loaded = runtimeAdapter.open(library, runtime.env("DD_LIBDATADOG_PATH") ? findShim(library) : undefined);
  return loaded;
}
