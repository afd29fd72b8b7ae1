/**
 * Builds the bundled native library, the C implementation of libdatadog's
 * trace-exporter ABI in `lib/`, with the system C compiler.
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
 * (the root package's `prepack` script). Uses only `node:` built-ins, so it
 * runs from JSR without Node tooling.
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
import { LIBRARY_NAME, localPath, PLATFORM, SHIM_NAME, userCacheLibrary } from "./ffi/paths.ts";

/** Where a source checkout's build goes, relative to the package root. */
export const LIBRARY_FILE = "lib/build/libdd_trace_ffi.so";

/**
 * The files of `lib/` that the library is compiled from. A copy loaded over
 * the network (from JSR) fetches exactly these; a test keeps the list equal
 * to the directory.
 */
export const C_SOURCES: readonly string[] = [
  "batch.c",
  "common.c",
  "config.c",
  "decode.c",
  "exporter.c",
  "http.c",
  "msgpack.c",
  "otlp.c",
  "span.c",
  "structured_value.c",
  "data-pipeline.h",
  "exporter.h",
  "http.h",
  "internal.h",
  "msgpack.h",
  "span.h",
];

/** The package root when this file is on disk; undefined when loaded over the network. */
const localRoot = localPath(".", import.meta.url);

/** Options of {@link buildLibrary}. */
export interface BuildOptions {
  /** The package root whose `lib/*.c` are compiled; default: this file's directory. */
  packageRoot?: string;
  /** The library file to write; default `<packageRoot>/lib/build/libdd_trace_ffi.so`. */
  outFile?: string;
  /** Compile even when the library is newer than every source. */
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
 * Compiles the `.c` files of `dir` into `outFile` (written atomically), and
 * the batch decoder alone (`batch.c`) into the shim next to it
 * (`libddffi_batch.so`, for a real libdatadog at `DD_LIBDATADOG_PATH`).
 * `batch-format.h`, generated from `ffi/batch.ts`, is written next to them.
 */
function compile(dir: string, outFile: string): void {
  const sources = readdirSync(dir).filter((f) => f.endsWith(".c")).sort().map((f) => join(dir, f));
  const cc = findCompiler();
  const outDir = dirname(outFile);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, BATCH_HEADER), cHeader());
  const flags = [
    "-O2", "-g", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror=implicit-function-declaration",
    "-fPIC", "-shared", "-fvisibility=hidden", "-pthread", "-I", outDir,
  ];
  const products: [string, string[]][] = [[outFile, sources], [join(outDir, SHIM_NAME), [join(dir, "batch.c"), "-ldl"]]];
  for (const [out, inputs] of products) {
    const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
    execFileSync(cc, [...flags, "-o", tmp, ...inputs], { stdio: "inherit" });
    renameSync(tmp, out);
  }
}

/** The C header of the batch format, generated from `ffi/batch.ts` into the build directory. */
export const BATCH_HEADER = "batch-format.h";

/**
 * Compiles the library into `outFile` (default: the checkout's
 * `lib/build/libdd_trace_ffi.so` under `packageRoot`) unless it is newer
 * than every source. Returns its path.
 */
export function buildLibrary({ packageRoot, outFile, force = false }: BuildOptions = {}): string {
  const root = packageRoot ?? localRoot;
  if (root === undefined) throw new Error(`buildLibrary needs packageRoot: ${import.meta.url} is not a local file`);
  const out = outFile ?? join(root, LIBRARY_FILE);
  const libDir = join(root, "lib");
  const inputs = readdirSync(libDir).filter((f) => /\.[ch]$/.test(f)).map((f) => join(libDir, f));
  inputs.push(join(root, "ffi", "batch.ts"));
  if (!force && isNewer(out, inputs) && isNewer(join(dirname(out), SHIM_NAME), inputs)) return out;
  compile(libDir, out);
  return out;
}

/**
 * Compiles the library into the per-user cache the loader searches
 * (`~/.cache/dd-ffi-trace/<version>/<platform>/libdd_trace_ffi.so`) and
 * returns its path; an existing one is kept unless `force`. The C sources
 * come from this package: read from disk, or fetched next to this module
 * when it was loaded over the network (JSR).
 */
export async function buildUserLibrary({ force = false }: { force?: boolean } = {}): Promise<string> {
  const out = userCacheLibrary((name) => process.env[name]);
  if (out === undefined) throw new Error("Neither XDG_CACHE_HOME nor HOME is set: no per-user cache to build into");
  if (localRoot !== undefined) return buildLibrary({ packageRoot: localRoot, outFile: out, force });
  if (!force && existsSync(out)) return out;
  const dir = mkdtempSync(join(tmpdir(), "dd-ffi-trace-"));
  try {
    for (const file of C_SOURCES) {
      const url = new URL(`./lib/${file}`, import.meta.url);
      const response = await fetch(url);
      if (!response.ok) throw new Error(`fetching ${url}: ${response.status} ${response.statusText}`);
      writeFileSync(join(dir, file), new Uint8Array(await response.arrayBuffer()));
    }
    compile(dir, out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
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
 * `npx @dd-ffi/trace build`, Bun's trampoline source, and this platform's
 * prebuilt library in `dist/prebuilds/<platform>/`.
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
    writeFileSync(file, text.replace(/(["'])(\.\.?\/[^"']*)\.ts\1/g, "$1$2.js$1"));
  }
  mkdirSync(join(dist, "lib"), { recursive: true });
  for (const file of C_SOURCES) copyFileSync(join(root, "lib", file), join(dist, "lib", file));
  copyFileSync(join(root, "ffi", "bun_slice_return.c"), join(dist, "ffi", "bun_slice_return.c"));
  chmodSync(join(dist, "cli.js"), 0o755);
  const prebuilt = join(dist, "prebuilds", PLATFORM, LIBRARY_NAME);
  mkdirSync(dirname(prebuilt), { recursive: true });
  const built = buildLibrary({ packageRoot: root });
  copyFileSync(built, prebuilt);
  copyFileSync(join(dirname(built), SHIM_NAME), join(dirname(prebuilt), SHIM_NAME));
  for (const file of [prebuilt, join(dirname(prebuilt), SHIM_NAME)]) {
    spawnSync("strip", ["--strip-debug", file], { stdio: "ignore" }); // smaller; best effort
  }
  return dist;
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
  if (flags.includes("--dist")) {
    console.log(`built ${buildDist(localRoot!)}`);
  } else if (flags.includes("--user") || localRoot === undefined) {
    console.log(`built ${await buildUserLibrary({ force })}`);
  } else {
    console.log(`built ${buildLibrary({ force })}`);
  }
}
