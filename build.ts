/**
 * Builds the bundled native library, the C implementation of libdatadog's
 * trace-exporter ABI in `lib/`, with the system C compiler (every library of
 * {@link LIBRARIES}).
 *
 * For Deno users of the JSR package (which carries no prebuilt library):
 *
 * ```sh
 * deno run -A jsr:@dd-ffi/trace/build
 * ```
 *
 * compiles it into the per-user cache the loader searches,
 * `~/.cache/dd-ffi-trace/<version>/<platform>/libdd_trace_ffi.so`
 * (`$XDG_CACHE_HOME` if set). npm users run `npx @dd-ffi/trace build`, which
 * does the same. Flags: `--force` rebuilds an existing library.
 *
 * In a source checkout, `node --import tsx build.ts`, `bun build.ts` or
 * `deno run -A build.ts` builds `lib/build/libdd_trace_ffi.so` instead
 * (`--user` for the per-user cache), and `--dist` the npm package's `dist/`
 * (the root package's `prepack` script), with the prebuilt libraries of
 * {@link PREBUILT_TARGETS} cross-compiled by `zig cc`, and puts the published
 * package.json (no `scripts`, no `devDependencies`) in place until
 * `--postpack` (the `postpack` script) restores the checkout's.
 * `--prebuilds DIR` cross-compiles the prebuilt libraries alone, into
 * `DIR/<platform>/`. Uses only `node:` built-ins, so it runs from JSR without
 * Node tooling.
 *
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { cHeader } from "./ffi/batch.ts";
import { BUNDLED_LIBRARY, LIBRARY_NAME, libraryFileName, localPath, PLATFORM, SHIM_LIBRARY, userCacheLibrary } from "./ffi/paths.ts";

/**
 * The native libraries this package builds, each from its `lib/` C sources:
 * name → sources. The file of library `name` is `lib<name>.so` (`.dylib` on
 * macOS, `libraryFileName` in `ffi/paths.ts`). Every build below (the
 * checkout's, the per-user one, the npm package's prebuilt ones for each
 * platform) builds every library of this table.
 */
export const LIBRARIES: Readonly<Record<string, readonly string[]>> = {
  // The bundled implementation of libdatadog's ABI (`BUNDLED_LIBRARY`).
  [BUNDLED_LIBRARY]: [
    "batch.c", "common.c", "config.c", "decode.c", "exporter.c", "http.c", "log.c", "msgpack.c", "otlp.c", "shared_runtime.c", "span.c",
    "structured_value.c",
  ],
  // The batch decoder alone (`SHIM_LIBRARY`), loaded next to a real libdatadog that lacks it.
  [SHIM_LIBRARY]: ["batch.c"],
};

/** The headers the C sources include. */
const C_HEADERS = ["data-pipeline.h", "exporter.h", "http.h", "internal.h", "log.h", "msgpack.h", "span.h"];

/**
 * The files of `lib/` that the libraries are compiled from. A copy loaded
 * over the network (from JSR) fetches exactly these; a test keeps the list
 * equal to the directory.
 */
export const C_SOURCES: readonly string[] = [...new Set([...Object.values(LIBRARIES).flat(), ...C_HEADERS])];

/** Where a source checkout's build of the bundled library goes, relative to the package root. */
export const LIBRARY_FILE: string = `lib/build/${LIBRARY_NAME}`;

/**
 * The platforms the npm package carries prebuilt libraries for
 * (`dist/prebuilds/<platform>/`), each with the `zig cc -target` that
 * cross-compiles them at pack time: glibc 2.17 (as manylinux2014) and
 * macOS 11.
 */
export const PREBUILT_TARGETS: Readonly<Record<string, string>> = {
  "linux-x64": "x86_64-linux-gnu.2.17",
  "linux-arm64": "aarch64-linux-gnu.2.17",
  "darwin-x64": "x86_64-macos.11.0",
  "darwin-arm64": "aarch64-macos.11.0",
};

/** The package root when this file is on disk; undefined when loaded over the network. */
const localRoot = localPath(".", import.meta.url);

/** Options of {@link buildLibrary}. */
export interface BuildOptions {
  /** The package root whose `lib/*.c` are compiled; default: this file's directory. */
  packageRoot?: string;
  /** The folder the libraries are written to; default `<packageRoot>/lib/build`. */
  outDir?: string;
  /** Compile even when the libraries are newer than every source. */
  force?: boolean;
}

/** The C compiler: `$CC`, else the first of cc, gcc, clang on the PATH. */
function findCompiler(): string {
  const candidates = process.env.CC ? [process.env.CC] : ["cc", "gcc", "clang"];
  for (const cc of candidates) {
    const probe = spawnSync(cc, ["--version"], { stdio: "ignore" });
    if (probe.status === 0) return cc;
  }
  throw new Error(
    "No C compiler found (tried " + candidates.join(", ") + "). " +
      "Install one (Debian/Ubuntu: `apt-get install gcc`, macOS: `xcode-select --install`), " +
      "or set DD_LIBDATADOG_PATH to a libdatadog build instead.",
  );
}

/**
 * `zig` (for `zig cc`, the npm package's cross-compiler) as a command line:
 * `$ZIG`, else `zig` on the PATH, else the `ziglang` package (PyPI) of the
 * checkout's `.venv` (`.ci/requirements.txt`).
 */
function findZig(root: string): string[] {
  const candidates = [
    ...(process.env.ZIG ? [[process.env.ZIG]] : []),
    ["zig"],
    [join(root, ".venv", "bin", "python"), "-m", "ziglang"],
  ];
  for (const zig of candidates) {
    const probe = spawnSync(zig[0], [...zig.slice(1), "version"], { stdio: "ignore" });
    if (probe.status === 0) return zig;
  }
  throw new Error(
    "Packing needs zig to cross-compile the prebuilt libraries, and none was found ($ZIG, zig on the PATH, " +
      `${join(root, ".venv")}). Install it: python3 -m venv .venv && .venv/bin/pip install -r .ci/requirements.txt`,
  );
}

/** The compiler flags of every build (the target and the debug info vary). */
const CFLAGS = [
  "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror=implicit-function-declaration",
  "-fPIC", "-shared", "-fvisibility=hidden", "-pthread",
];

/**
 * Compiles every library of {@link LIBRARIES} from the C files in `dir` into
 * `outDir` for `platform` (its file names), running `cc` (a command line)
 * with `flags` added. Each file is written atomically. `batch-format.h`,
 * generated from `ffi/batch.ts`, is written into `outDir` first (batch.c
 * includes it). Returns their paths, in the table's order.
 */
function compile(cc: readonly string[], dir: string, outDir: string, platform: string, flags: readonly string[]): string[] {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, BATCH_HEADER), cHeader());
  // dlopen and dlsym (batch.c) are in libdl before glibc 2.34.
  const libs = platform.startsWith("linux-") ? ["-ldl"] : [];
  return Object.entries(LIBRARIES).map(([name, sources]) => {
    const file = libraryFileName(name, platform);
    const out = join(outDir, file);
    const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
    const linkName = platform.startsWith("darwin-") ? `-Wl,-install_name,@rpath/${file}` : `-Wl,-soname,${file}`;
    execFileSync(cc[0], [
      ...cc.slice(1), ...CFLAGS, ...flags, "-I", outDir, linkName, "-o", tmp, ...sources.map((f) => join(dir, f)), ...libs,
    ], { stdio: "inherit" });
    renameSync(tmp, out);
    return out;
  });
}

/** Compiles the libraries for this machine with the system C compiler (with debug info). */
function compileHost(dir: string, outDir: string): string[] {
  return compile([findCompiler()], dir, outDir, PLATFORM, ["-g"]);
}

/** The C header of the batch format, generated from `ffi/batch.ts` into the build directory. */
export const BATCH_HEADER = "batch-format.h";

/**
 * Compiles the libraries (default: into the checkout's `lib/build/` under
 * `packageRoot`) unless they are newer than every source. Returns the path
 * of the bundled library, `libdd_trace_ffi.so` (`.dylib` on macOS).
 */
export function buildLibrary({ packageRoot, outDir, force = false }: BuildOptions = {}): string {
  const root = packageRoot ?? localRoot;
  if (root === undefined) throw new Error(`buildLibrary needs packageRoot: ${import.meta.url} is not a local file`);
  const dir = outDir ?? join(root, dirname(LIBRARY_FILE));
  const libDir = join(root, "lib");
  const inputs = [...C_SOURCES.map((f) => join(libDir, f)), join(root, "ffi", "batch.ts")];
  const outputs = Object.keys(LIBRARIES).map((name) => join(dir, libraryFileName(name)));
  if (force || !outputs.every((out) => isNewer(out, inputs))) compileHost(libDir, dir);
  return join(dir, LIBRARY_NAME);
}

/**
 * Compiles the libraries into the per-user cache the loader searches
 * (`~/.cache/dd-ffi-trace/<version>/<platform>/libdd_trace_ffi.so`, `.dylib`
 * on macOS) and returns the bundled library's path; existing ones are kept
 * unless `force`. The C sources come from this package: read from disk, or
 * fetched next to this module when it was loaded over the network (JSR).
 */
export async function buildUserLibrary({ force = false }: { force?: boolean } = {}): Promise<string> {
  const out = userCacheLibrary((name) => process.env[name]);
  if (out === undefined) throw new Error("Neither XDG_CACHE_HOME nor HOME is set: no per-user cache to build into");
  if (localRoot !== undefined) return buildLibrary({ packageRoot: localRoot, outDir: dirname(out), force });
  const outputs = Object.keys(LIBRARIES).map((name) => join(dirname(out), libraryFileName(name)));
  if (!force && outputs.every((f) => existsSync(f))) return out;
  const dir = mkdtempSync(join(tmpdir(), "dd-ffi-trace-"));
  try {
    for (const file of C_SOURCES) {
      const url = new URL(`./lib/${file}`, import.meta.url);
      const response = await fetch(url);
      if (!response.ok) throw new Error(`fetching ${url}: ${response.status} ${response.statusText}`);
      writeFileSync(join(dir, file), new Uint8Array(await response.arrayBuffer()));
    }
    compileHost(dir, dirname(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/**
 * Cross-compiles the libraries for every platform of
 * {@link PREBUILT_TARGETS} with `zig cc`, into `<outDir>/<platform>/`,
 * stripped. Returns the files.
 */
function buildPrebuilds(root: string, outDir: string): string[] {
  const zig = findZig(root);
  return Object.entries(PREBUILT_TARGETS).flatMap(([platform, target]) =>
    compile([...zig, "cc"], join(root, "lib"), join(outDir, platform), platform, ["-target", target, "-s"])
  );
}

function isNewer(file: string, inputs: string[]): boolean {
  try {
    const built = statSync(file).mtimeMs;
    return inputs.every((f) => statSync(f).mtimeMs <= built);
  } catch {
    return false;
  }
}

/**
 * The npm package's contents, in `dist/` (the `prepack` script): the
 * TypeScript compiled to JavaScript and `.d.ts` (`tsconfig.build.json`,
 * `.ts` specifiers rewritten to `.js`), the C sources for
 * `npx @dd-ffi/trace build`, Bun's trampoline source, and the prebuilt
 * libraries of every platform of {@link PREBUILT_TARGETS} in
 * `dist/prebuilds/<platform>/`. The `.d.ts` that use `Disposable` reference
 * TypeScript's `esnext.disposable` lib, so they type-check without
 * `@types/node` (which declares it too) whatever the user's `lib`.
 */
function buildDist(root: string): string {
  const dist = join(root, "dist");
  rmSync(dist, { recursive: true, force: true });
  const localTsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const [cmd, args] = existsSync(localTsc) ? [process.execPath, [localTsc]] : ["tsc", []];
  const tsc = spawnSync(cmd, [...args, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
  if (tsc.status !== 0) throw new Error(`tsc failed (exit ${tsc.status ?? tsc.error})`);
  // tsc rewrites the specifiers of the .js files; .d.ts keep ".ts": rewrite those too.
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]
    );
  for (const file of walk(dist).filter((f) => f.endsWith(".d.ts"))) {
    const text = readFileSync(file, "utf8");
    const rewritten = text.replace(/(["'])(\.\.?\/[^"']*)\.ts\1/g, "$1$2.js$1");
    const disposable = /\b(Async)?Disposable\b|Symbol\.(asyncDispose|dispose)\b/.test(rewritten);
    writeFileSync(file, (disposable ? '/// <reference lib="esnext.disposable" />\n' : "") + rewritten);
  }
  mkdirSync(join(dist, "lib"), { recursive: true });
  for (const file of C_SOURCES) copyFileSync(join(root, "lib", file), join(dist, "lib", file));
  copyFileSync(join(root, "ffi", "bun_slice_return.c"), join(dist, "ffi", "bun_slice_return.c"));
  chmodSync(join(dist, "cli.js"), 0o755);
  buildPrebuilds(root, join(dist, "prebuilds"));
  return dist;
}

/** Where `--dist` keeps the checkout's package.json while `npm pack` packs the published one. */
const MANIFEST_BACKUP = ".cache/prepack-package.json";

/**
 * The published package.json: the checkout's without what only the checkout
 * uses, its `scripts` (`prepare` would make npm list the package as one with
 * an install script) and `devDependencies`.
 */
function publishedManifest(manifest: Record<string, unknown>): Record<string, unknown> {
  const { scripts: _scripts, devDependencies: _devDependencies, ...published } = manifest;
  return published;
}

/**
 * Puts the published package.json in place for `npm pack` to pack (it packs
 * the file on disk after `prepack`), keeping the checkout's in
 * {@link MANIFEST_BACKUP}; `postpack` ({@link restoreManifest}) puts it back.
 */
function stripManifest(root: string): void {
  restoreManifest(root);
  const file = join(root, "package.json");
  const text = readFileSync(file, "utf8");
  mkdirSync(dirname(join(root, MANIFEST_BACKUP)), { recursive: true });
  writeFileSync(join(root, MANIFEST_BACKUP), text);
  writeFileSync(file, JSON.stringify(publishedManifest(JSON.parse(text)), null, 2) + "\n");
}

/** Puts the checkout's package.json back after a pack (also one that was interrupted); true if it did. */
function restoreManifest(root: string): boolean {
  const backup = join(root, MANIFEST_BACKUP);
  if (!existsSync(backup)) return false;
  writeFileSync(join(root, "package.json"), readFileSync(backup));
  rmSync(backup);
  return true;
}

/** True when this module is the program being run. */
function isMain(): boolean {
  if ((import.meta as { main?: boolean }).main) return true;
  const script = process.argv[1];
  if (!script || localRoot === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const flags = process.argv.slice(2);
  const force = flags.includes("--force");
  if (localRoot !== undefined && restoreManifest(localRoot) && !flags.includes("--postpack")) {
    console.log(`restored package.json from ${MANIFEST_BACKUP} (an interrupted npm pack left the published one)`);
  }
  if (flags.includes("--dist")) {
    console.log(`built ${buildDist(localRoot!)}`);
    stripManifest(localRoot!);
  } else if (flags.includes("--postpack")) {
    // restored above
  } else if (flags.includes("--prebuilds")) {
    const out = flags[flags.indexOf("--prebuilds") + 1];
    if (!out || localRoot === undefined) throw new Error("usage: build.ts --prebuilds DIR (in a checkout)");
    for (const file of buildPrebuilds(localRoot, out)) console.log(`built ${file}`);
  } else if (flags.includes("--user") || localRoot === undefined) {
    console.log(`built ${await buildUserLibrary({ force })}`);
  } else {
    console.log(`built ${buildLibrary({ force })}`);
  }
}
