/**
 * Builds the bundled native library, `lib/`: a Rust crate over libdatadog's
 * published crates that implements libdatadog's trace-export ABI (every
 * library of {@link LIBRARIES}), with cargo.
 *
 * In a source checkout, `node --import tsx build.ts`, `bun build.ts` or
 * `deno run -A build.ts` builds `lib/build/libdd_trace_ffi.so` (cargo's
 * output, `lib/target/`, copied there; `--user` for the per-user cache),
 * and `--dist` the npm package's `dist/` (the root package's `prepack`
 * script), with the prebuilt libraries of {@link PREBUILT_TARGETS}
 * cross-compiled by cargo-zigbuild, and puts the published package.json (no
 * `scripts`, no `devDependencies`) in place until `--postpack` (the
 * `postpack` script) restores the checkout's. `--prebuilds DIR`
 * cross-compiles the prebuilt libraries alone, into `DIR/<platform>/`.
 *
 * For a platform without a prebuilt library, `npx @dd-ffi/trace build`
 * (Node, Bun) or `deno run -A jsr:@dd-ffi/trace/build` compiles it with
 * cargo into the per-user cache the loader searches,
 * `~/.cache/dd-ffi-trace/<version>/<platform>/libdd_trace_ffi.so`
 * (`$XDG_CACHE_HOME` if set). Flags: `--force` rebuilds an existing library.
 * Uses only `node:` built-ins, so it runs from JSR without Node tooling.
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
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { cChecks, rustModule as abiModule } from "./ffi/abi.ts";
import { rustModule as batchModule } from "./ffi/batch.ts";
import { BUNDLED_LIBRARY, LIBRARY_NAME, libraryFileName, localPath, PLATFORM, SHIM_LIBRARY, userCacheLibrary } from "./ffi/paths.ts";

/**
 * The native libraries this package builds: library name → the cargo
 * package of `lib/` that makes it. The file of library `name` is
 * `lib<name>.so` (`.dylib` on macOS, `libraryFileName` in `ffi/paths.ts`).
 * Every build (the checkout's, the per-user one, the npm package's prebuilt
 * ones) builds every library of this table.
 */
export const LIBRARIES: Readonly<Record<string, string>> = {
  // The engine: libdatadog's ABI over libdatadog's crates (`BUNDLED_LIBRARY`).
  [BUNDLED_LIBRARY]: "dd-trace-ffi",
  // The batch decoder alone (`SHIM_LIBRARY`), loaded next to a libdatadog release build, which lacks it.
  [SHIM_LIBRARY]: "ddffi-batch-shim",
};

/**
 * The files of `lib/` that the libraries are built from (the workspace, its
 * lock file and its members' sources). A copy loaded over the network (from
 * JSR) fetches exactly these; a test keeps the list equal to the directory.
 */
export const LIB_SOURCES: readonly string[] = [
  "Cargo.toml",
  "Cargo.lock",
  "src/lib.rs",
  "src/batch.rs",
  "src/config.rs",
  "src/exporter.rs",
  "src/ffi.rs",
  "src/log.rs",
  "src/runtime.rs",
  "src/span.rs",
  "src/value.rs",
  "batch/Cargo.toml",
  "batch/src/lib.rs",
  "batch/tests/fuzz.rs",
  "shim/Cargo.toml",
  "shim/src/lib.rs",
];

/**
 * The files `build.ts` generates into `lib/build/` before cargo runs, from
 * the tables of `ffi/` (one source of truth for the ABI's layouts and error
 * codes, and for the batch format): the Rust modules lib/ includes, and the
 * C layout checks of test/fixtures/data-pipeline.h.
 */
export const GENERATED: Readonly<Record<string, () => string>> = {
  "abi.rs": abiModule,
  "batch_format.rs": batchModule,
  // for the C header of test/fixtures/data-pipeline.h
  "abi-checks.h": cChecks,
};

/** Where a source checkout's build of the bundled library goes, relative to the package root. */
export const LIBRARY_FILE: string = `lib/build/${LIBRARY_NAME}`;

/**
 * The platforms the npm package carries prebuilt libraries for
 * (`dist/prebuilds/<platform>/`): the Rust target cargo-zigbuild builds
 * (glibc 2.17, as manylinux2014), and the cargo features. macOS goes
 * without `https`: rustls' platform verifier needs the macOS SDK's Security
 * framework, which zig cannot link; an https URL there is refused at
 * `new TraceExporter` with InvalidArgument naming it.
 */
export const PREBUILT_TARGETS: Readonly<Record<string, { target: string; https: boolean }>> = {
  "linux-x64": { target: "x86_64-unknown-linux-gnu.2.17", https: true },
  "linux-arm64": { target: "aarch64-unknown-linux-gnu.2.17", https: true },
  "darwin-x64": { target: "x86_64-apple-darwin", https: false },
  "darwin-arm64": { target: "aarch64-apple-darwin", https: false },
};

/** The package root when this file is on disk; undefined when loaded over the network. */
const localRoot = localPath(".", import.meta.url);

/** Options of {@link buildLibrary}. */
export interface BuildOptions {
  /** The package root whose `lib/` is built; default: this file's directory. */
  packageRoot?: string;
  /** The folder the libraries are copied to; default `<packageRoot>/lib/build`. */
  outDir?: string;
  /** Build even when the libraries are there (cargo rebuilds only what changed). */
  force?: boolean;
}

/** cargo: `$CARGO`, else cargo on the PATH, else `~/.cargo/bin/cargo`. */
function findCargo(): string {
  const candidates = [process.env.CARGO, "cargo", join(homedir(), ".cargo", "bin", "cargo")].filter((c): c is string => !!c);
  for (const cargo of candidates) {
    if (spawnSync(cargo, ["--version"], { stdio: "ignore" }).status === 0) return cargo;
  }
  throw new Error(
    "No cargo found (tried " + candidates.join(", ") + "): building the native library needs Rust " +
      "(https://rustup.rs, or your system's rust and cargo packages). " +
      "Or set DD_LIBDATADOG_PATH to a libdatadog release build instead.",
  );
}

/** Writes the generated sources into `<libDir>/build/`, each only when it changed (cargo rebuilds on a newer file). */
function generate(libDir: string): void {
  mkdirSync(join(libDir, "build"), { recursive: true });
  for (const [file, make] of Object.entries(GENERATED)) {
    const path = join(libDir, "build", file);
    const text = make();
    if (!existsSync(path) || readFileSync(path, "utf8") !== text) writeFileSync(path, text);
  }
}

/**
 * Runs cargo (`command`, e.g. `["cargo", "build"]`) in `libDir` for every
 * library of {@link LIBRARIES}, with `args` added, in `profile` (`release`,
 * or `dist`: lib/Cargo.toml's size-optimized profile of the prebuilds), and
 * copies the libraries from `<targetDir>/<triple?>/<profile>/` into `outDir`
 * for `platform` (its file names), each atomically. Returns their paths, in
 * the table's order.
 */
function cargo(
  command: readonly string[],
  libDir: string,
  outDir: string,
  platform: string,
  args: readonly string[],
  triple?: string,
  env: Record<string, string> = {},
  profile: "release" | "dist" = "release",
): string[] {
  generate(libDir);
  const targetDir = env.CARGO_TARGET_DIR ?? process.env.CARGO_TARGET_DIR ?? join(libDir, "target");
  const packages = Object.values(LIBRARIES).flatMap((p) => ["-p", p]);
  execFileSync(command[0], [...command.slice(1), "--profile", profile, "--locked", ...packages, ...args], {
    cwd: libDir,
    stdio: "inherit",
    env: { ...process.env, ...env, CARGO_TARGET_DIR: targetDir },
  });
  // cargo-zigbuild's glibc suffix is not part of the output folder's name.
  const release = join(targetDir, ...(triple ? [triple.replace(/\.\d+\.\d+$/, "")] : []), profile);
  mkdirSync(outDir, { recursive: true });
  return Object.keys(LIBRARIES).map((name) => {
    const file = libraryFileName(name, platform);
    const out = join(outDir, file);
    const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
    copyFileSync(join(release, file), tmp);
    renameSync(tmp, out);
    return out;
  });
}

/** Builds the libraries for this machine with cargo into `outDir`. */
function buildHost(libDir: string, outDir: string): string[] {
  return cargo([findCargo(), "build"], libDir, outDir, PLATFORM, []);
}

/**
 * Builds the libraries with cargo (default: into the checkout's `lib/build/`
 * under `packageRoot`); cargo rebuilds only what changed. Returns the path
 * of the bundled library, `libdd_trace_ffi.so` (`.dylib` on macOS).
 */
export function buildLibrary({ packageRoot, outDir }: BuildOptions = {}): string {
  const root = packageRoot ?? localRoot;
  if (root === undefined) throw new Error(`buildLibrary needs packageRoot: ${import.meta.url} is not a local file`);
  const dir = outDir ?? join(root, dirname(LIBRARY_FILE));
  buildHost(join(root, "lib"), dir);
  return join(dir, LIBRARY_NAME);
}

/**
 * Builds the libraries into the per-user cache the loader searches
 * (`~/.cache/dd-ffi-trace/<version>/<platform>/libdd_trace_ffi.so`, `.dylib`
 * on macOS) and returns the bundled library's path; existing ones are kept
 * unless `force`. The sources come from this package: read from disk, or
 * fetched next to this module when it was loaded over the network (JSR);
 * cargo's output goes to `<cache>/target`.
 */
export async function buildUserLibrary({ force = false }: { force?: boolean } = {}): Promise<string> {
  const out = userCacheLibrary((name) => process.env[name]);
  if (out === undefined) throw new Error("Neither XDG_CACHE_HOME nor HOME is set: no per-user cache to build into");
  const outputs = Object.keys(LIBRARIES).map((name) => join(dirname(out), libraryFileName(name)));
  if (!force && outputs.every((f) => existsSync(f))) return out;
  const targetDir = join(dirname(dirname(out)), "target");
  const env = { CARGO_TARGET_DIR: process.env.CARGO_TARGET_DIR ?? targetDir };
  if (localRoot !== undefined && existsSync(join(localRoot, "lib", "Cargo.toml"))) {
    // A checkout or an npm package: a copy of lib/ outside the package, so that nothing is written into it.
    const dir = mkdtempSync(join(tmpdir(), "dd-ffi-trace-"));
    try {
      for (const file of LIB_SOURCES) {
        mkdirSync(dirname(join(dir, file)), { recursive: true });
        copyFileSync(join(localRoot, "lib", file), join(dir, file));
      }
      cargo([findCargo(), "build"], dir, dirname(out), PLATFORM, [], undefined, env);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return out;
  }
  const dir = mkdtempSync(join(tmpdir(), "dd-ffi-trace-"));
  try {
    for (const file of LIB_SOURCES) {
      const url = new URL(`./lib/${file}`, import.meta.url);
      const response = await fetch(url);
      if (!response.ok) throw new Error(`fetching ${url}: ${response.status} ${response.statusText}`);
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      writeFileSync(join(dir, file), new Uint8Array(await response.arrayBuffer()));
    }
    cargo([findCargo(), "build"], dir, dirname(out), PLATFORM, [], undefined, env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/**
 * cargo-zigbuild as a command line, and the PATH it needs: `cargo-zigbuild`
 * on the PATH, else the one of the checkout's `.venv` (PyPI's
 * `cargo-zigbuild` and `ziglang`, `.ci/requirements.txt`), whose bin folder
 * then comes first on the PATH so that it finds that zig.
 */
function findZigbuild(root: string): { command: string[]; env: Record<string, string> } {
  const venvBin = join(root, ".venv", "bin");
  const path = `${venvBin}:${process.env.PATH ?? ""}`;
  for (const [command, env] of [[["cargo-zigbuild"], {}], [[join(venvBin, "cargo-zigbuild")], { PATH: path }]] as const) {
    const probe = spawnSync(command[0], ["--version"], { stdio: "ignore", env: { ...process.env, ...env } });
    if (probe.status === 0) return { command: [command[0], "zigbuild"], env: { ...env } };
  }
  throw new Error(
    "Packing needs cargo-zigbuild and zig to cross-compile the prebuilt libraries, and none was found " +
      `(cargo-zigbuild on the PATH, ${venvBin}). Install them: python3 -m venv .venv && .venv/bin/pip install -r .ci/requirements.txt; ` +
      "and the Rust targets: rustup target add " + Object.values(PREBUILT_TARGETS).map((t) => t.target.replace(/\.\d+\.\d+$/, "")).join(" "),
  );
}

/**
 * Cross-compiles the libraries for every platform of
 * {@link PREBUILT_TARGETS} with cargo-zigbuild, into `<outDir>/<platform>/`.
 * Returns the files.
 */
function buildPrebuilds(root: string, outDir: string): string[] {
  const { command, env } = findZigbuild(root);
  const cargoBin = dirname(findCargoPath());
  const withCargo = { ...env, PATH: `${env.PATH ?? process.env.PATH ?? ""}:${cargoBin}` };
  return Object.entries(PREBUILT_TARGETS).flatMap(([platform, { target, https }]) =>
    cargo(command, join(root, "lib"), join(outDir, platform), platform, ["--target", target, ...(https ? [] : ["--no-default-features"])], target, withCargo, "dist")
  );
}

/** The cargo binary's path (for cargo-zigbuild, which runs `cargo`). */
function findCargoPath(): string {
  const cargo = findCargo();
  if (cargo.includes("/")) return cargo;
  const which = spawnSync("sh", ["-c", `command -v ${cargo}`], { encoding: "utf8" });
  return which.stdout.trim() || cargo;
}

/**
 * The npm package's contents, in `dist/` (the `prepack` script): the
 * TypeScript compiled to JavaScript and `.d.ts` (`tsconfig.build.json`,
 * `.ts` specifiers rewritten to `.js`), the Rust sources of `lib/` for
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
  for (const file of LIB_SOURCES) {
    mkdirSync(dirname(join(dist, "lib", file)), { recursive: true });
    copyFileSync(join(root, "lib", file), join(dist, "lib", file));
  }
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
