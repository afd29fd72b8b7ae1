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

/** The npm and JSR name of this package; its platform packages are named after it ({@link PLATFORM_PACKAGES}). */
export const PACKAGE_NAME = "@dd-ffi/trace";

/** A platform package's npm fields: the values npm, Bun and Deno match against the machine to install it or not. */
export interface PlatformPackage {
  /** The package's name, e.g. `@dd-ffi/trace-linux-x64-gnu`. */
  name: string;
  /** `os`: `process.platform`. */
  os: string;
  /** `cpu`: `process.arch`. */
  cpu: string;
  /** `libc` on Linux: the prebuilt library links glibc (2.17 or newer). */
  libc?: "glibc";
}

/**
 * The npm packages that hold one platform's prebuilt libraries each, by
 * {@link PLATFORM} key; the main package lists them all in its
 * `optionalDependencies`, at its own version, so that npm, Bun and Deno
 * install the one matching the machine (the esbuild, `@swc/core` and napi-rs
 * convention; the `-gnu` suffix is napi-rs's name for a glibc build).
 * `build.ts --pack` makes them; the loader (`load.ts`) looks for them.
 */
export const PLATFORM_PACKAGES: Readonly<Record<string, PlatformPackage>> = {
  "linux-x64": { name: `${PACKAGE_NAME}-linux-x64-gnu`, os: "linux", cpu: "x64", libc: "glibc" },
  "linux-arm64": { name: `${PACKAGE_NAME}-linux-arm64-gnu`, os: "linux", cpu: "arm64", libc: "glibc" },
  "darwin-x64": { name: `${PACKAGE_NAME}-darwin-x64`, os: "darwin", cpu: "x64" },
  "darwin-arm64": { name: `${PACKAGE_NAME}-darwin-arm64`, os: "darwin", cpu: "arm64" },
};

/**
 * The release's file name of library `name` for `platform`, e.g.
 * `linux-x64-libdd_trace_ffi.so`: the release's files sit in one folder
 * (a GitHub release's assets are flat).
 */
export function releaseFileName(name: string, platform: string = PLATFORM): string {
  return `${platform}-${libraryFileName(name, platform)}`;
}

/** This machine's platform key, e.g. `linux-x64`: the prebuilt's folder and the cache's. */
export const PLATFORM: string = `${process.platform}-${process.arch}`;

/** The bundled library's name (`build.ts`'s `LIBRARIES` builds it). */
export const BUNDLED_LIBRARY = "dd_trace_ffi";

/**
 * The file name of library `name` on `platform` (a {@link PLATFORM} key):
 * `lib<name>.dylib` on macOS, `lib<name>.so` elsewhere.
 */
export function libraryFileName(name: string, platform: string = PLATFORM): string {
  return `lib${name}${platform.startsWith("darwin-") ? ".dylib" : ".so"}`;
}

/** The bundled library's file name on this machine, in every location. */
export const LIBRARY_NAME: string = libraryFileName(BUNDLED_LIBRARY);

/**
 * The batch decoder alone (lib/shim, `build.ts`'s `LIBRARIES`), next to the
 * library in every location: the loader opens it too when the library lacks
 * `ddffi_batch_send` (a real libdatadog).
 */
export const SHIM_LIBRARY = "ddffi_batch";

/** The shim's file name on this machine. */
export const SHIM_NAME: string = libraryFileName(SHIM_LIBRARY);

/**
 * Why the bindings cannot run on `platform` and `arch` (`process.platform`,
 * `process.arch`), or undefined when they can. `ffi/abi.ts` passes each
 * 16-byte slice (`ddog_CharSlice`, …) as two pointer-sized integers, which is
 * how System V x86_64 and AAPCS64 pass such a struct by value; on Windows x64
 * it is passed by reference instead, and 32-bit targets are not LP64.
 */
export function unsupportedPlatform(platform: string, arch: string): string | undefined {
  if (platform === "win32") {
    return `@dd-ffi/trace does not run on Windows (${platform}-${arch}): the Windows x64 calling convention ` +
      "passes libdatadog's 16-byte slices (ddog_CharSlice) by reference, not in two integer registers " +
      "as the bindings do, so every call would pass garbage. Use Linux (or WSL) or macOS.";
  }
  if (arch !== "x64" && arch !== "arm64") {
    return `@dd-ffi/trace runs on x64 and arm64 only, not on ${platform}-${arch}: the bindings pass ` +
      "libdatadog's 16-byte slices (ddog_CharSlice) as two 64-bit integer registers, as System V x86_64 " +
      "and AAPCS64 do.";
  }
  return undefined;
}

/**
 * The per-user build of the library, which `npx @dd-ffi/trace build` and
 * `deno run -A jsr:@dd-ffi/trace/build` write:
 * `$XDG_CACHE_HOME/dd-ffi-trace/<version>/<platform>/libdd_trace_ffi.so`
 * (`.dylib` on macOS),
 * `$XDG_CACHE_HOME` defaulting to `~/.cache`. `env` reads an environment
 * variable; `platform` defaults to this machine's. Undefined when neither
 * `XDG_CACHE_HOME` nor `HOME` is set.
 */
export function userCacheLibrary(
  env: (name: string) => string | undefined,
  platform: string = PLATFORM,
): string | undefined {
  const home = env("HOME");
  const cache = env("XDG_CACHE_HOME") || (home ? `${home}/.cache` : undefined);
  return cache && `${cache}/dd-ffi-trace/${VERSION}/${platform}/${libraryFileName(BUNDLED_LIBRARY, platform)}`;
}

/**
 * Where the loader keeps the release's library it downloaded (Deno from JSR,
 * `release.ts`):
 * `$XDG_CACHE_HOME/dd-ffi-trace/<version>/release/<platform>/libdd_trace_ffi.so`,
 * next to the per-user build's folder but apart from it, since only the
 * release's files match the published digests. Undefined as
 * {@link userCacheLibrary} is.
 */
export function releaseCacheLibrary(
  env: (name: string) => string | undefined,
  platform: string = PLATFORM,
): string | undefined {
  const user = userCacheLibrary(env, platform);
  return user && user.replace(`/${VERSION}/${platform}/`, `/${VERSION}/release/${platform}/`);
}

/**
 * The path of a file at `relative` to the module at `base`, or undefined when
 * that module is not a local file (a module loaded from JSR is `https:`).
 */
export function localPath(relative: string, base: string): string | undefined {
  const url = new URL(relative, base);
  return url.protocol === "file:" ? fileURLToPath(url) : undefined;
}
