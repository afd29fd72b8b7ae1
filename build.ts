/**
 * Builds the bundled native library, `lib/`: a Rust crate over libdatadog's
 * published crates that implements libdatadog's trace-export ABI (every
 * library of {@link LIBRARIES}), with cargo.
 *
 * In a source checkout, `node --import tsx build.ts`, `bun build.ts` or
 * `deno run -A build.ts` builds `lib/build/libdd_trace_ffi.so` (cargo's
 * output, `lib/target/`, copied there; `--user` for the per-user cache).
 * `--pack DIR` (`npm run dist`: `dist/`) makes every published artifact into `DIR`
 * ({@link pack}): the prebuilt libraries of {@link PREBUILT_TARGETS},
 * cross-compiled by cargo-zigbuild; the main npm package, which holds no
 * library, and one npm package per platform (`PLATFORM_PACKAGES` in
 * `ffi/paths.ts`), each staged in `DIR/stage/` with its published
 * package.json and packed there, so that the checkout's files are never
 * rewritten; the release's files (one library per platform and their
 * `SHA256SUMS`), which Deno from JSR downloads; and the JSR package to
 * `deno publish`, with those digests. `--prebuilds DIR` cross-compiles the
 * prebuilt libraries alone, into `DIR/<platform>/`, which `--pack DIR
 * --prebuilt PREBUILDS` then takes instead of building. `npm pack` in the
 * checkout refuses (`prepack`: `--refuse-pack`).
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
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { cChecks, rustModule as abiModule } from "./ffi/abi.ts";
import { rustModule as batchModule } from "./ffi/batch.ts";
import {
  BUNDLED_LIBRARY,
  LIBRARY_NAME,
  libraryFileName,
  localPath,
  PLATFORM,
  PLATFORM_PACKAGES,
  releaseFileName,
  SHIM_LIBRARY,
  userCacheLibrary,
} from "./ffi/paths.ts";

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
  "build.rs",
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
  "shim/build.rs",
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

/** The oldest macOS the macOS prebuilts load on (`MACOSX_DEPLOYMENT_TARGET`). */
export const MACOS_MIN = "11.0";

/**
 * The platforms with a prebuilt library, each in its npm package
 * (`PLATFORM_PACKAGES` in `ffi/paths.ts`, the same keys): the Rust target cargo-zigbuild builds
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
 * or `dist`: lib/Cargo.toml's profile of the prebuilds: fat LTO, one codegen unit), and
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
  return Object.entries(PREBUILT_TARGETS).flatMap(([platform, { target, https }]) => {
    // The oldest macOS the library loads on (rustc and zig otherwise take their own default).
    const macos: Record<string, string> = platform.startsWith("darwin-") ? { MACOSX_DEPLOYMENT_TARGET: MACOS_MIN } : {};
    const args = ["--target", target, ...(https ? [] : ["--no-default-features"])];
    return cargo(command, join(root, "lib"), join(outDir, platform), platform, args, target, { ...withCargo, ...macos }, "dist");
  });
}

/** The cargo binary's path (for cargo-zigbuild, which runs `cargo`). */
function findCargoPath(): string {
  const cargo = findCargo();
  if (cargo.includes("/")) return cargo;
  const which = spawnSync("sh", ["-c", `command -v ${cargo}`], { encoding: "utf8" });
  return which.stdout.trim() || cargo;
}

/**
 * The main npm package's contents, staged in `dir` (`build.ts --pack`):
 * the TypeScript compiled to JavaScript and `.d.ts` in `dir/dist/`
 * (`tsconfig.build.json`, `.ts` specifiers rewritten to `.js`), the Rust
 * sources of `lib/` for `npx @dd-ffi/trace build`, Bun's trampoline source,
 * README.md, LICENSE and the published package.json
 * ({@link publishedManifest}). No library: those are in the platform
 * packages. The `.d.ts` that use `Disposable` reference TypeScript's
 * `esnext.disposable` lib, so they type-check without `@types/node` (which
 * declares it too) whatever the user's `lib`.
 */
function stageMain(root: string, dir: string): void {
  const dist = join(dir, "dist");
  const localTsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const [cmd, args] = existsSync(localTsc) ? [process.execPath, [localTsc]] : ["tsc", []];
  const tsc = spawnSync(cmd, [...args, "-p", join(root, "tsconfig.build.json"), "--outDir", dist], { stdio: "inherit" });
  if (tsc.status !== 0) throw new Error(`tsc failed (exit ${tsc.status ?? tsc.error})`);
  // tsc rewrites the specifiers of the .js files; .d.ts keep ".ts": rewrite those too.
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
  for (const file of ["README.md", "LICENSE"]) copyFileSync(join(root, file), join(dir, file));
  writeJson(join(dir, "package.json"), publishedManifest(readJson(join(root, "package.json"))));
}

/** Every file under `dir`, as paths. */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]);
}

const readJson = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, "utf8"));
const writeJson = (file: string, value: unknown): void => writeFileSync(file, JSON.stringify(value, null, 2) + "\n");

/**
 * The published package.json: the checkout's without what only the checkout
 * uses, its `scripts` (`prepare` would make npm list the package as one with
 * an install script) and `devDependencies`; with the platform packages of
 * {@link PLATFORM_PACKAGES} as `optionalDependencies`, at this version
 * exactly (the versions are locked together).
 */
export function publishedManifest(manifest: Record<string, unknown>): Record<string, unknown> {
  const { scripts: _scripts, devDependencies: _devDependencies, ...published } = manifest;
  const optionalDependencies = Object.fromEntries(Object.values(PLATFORM_PACKAGES).map((p) => [p.name, String(manifest.version)]));
  return { ...published, optionalDependencies };
}

/**
 * The package.json of `platform`'s package (one of
 * {@link PLATFORM_PACKAGES}): its `os`, `cpu` and `libc`, the main
 * package's version, license and repository, and its files, the libraries.
 */
export function platformManifest(manifest: Record<string, unknown>, platform: string): Record<string, unknown> {
  const { name, os, cpu, libc } = PLATFORM_PACKAGES[platform];
  return {
    name,
    version: manifest.version,
    description: `The ${platform} native library of ${manifest.name} (libdatadog's trace exporter)`,
    license: manifest.license,
    repository: manifest.repository,
    homepage: manifest.homepage,
    os: [os],
    cpu: [cpu],
    ...(libc ? { libc: [libc] } : {}),
    files: [...Object.keys(LIBRARIES).map((lib) => libraryFileName(lib, platform)), "README.md", "LICENSE"],
  };
}

/**
 * `ffi/release_sha256.ts`: the release's URL (the GitHub release of
 * package.json's repository, at its version) and the sha256 of each release
 * file, `sha256` (empty in the checkout's copy; a test keeps that copy equal
 * to this).
 */
export function releaseModule(manifest: Record<string, unknown>, sha256: Record<string, string>): string {
  const repository = String((manifest.repository as { url: string }).url).replace(/^git\+/, "").replace(/\.git$/, "");
  const url = `${repository}/releases/download/v${manifest.version}/`;
  const entries = Object.entries(sha256).sort().map(([file, digest]) => `\n  "${file}": "${digest}",`).join("");
  return `/**
 * The release's prebuilt libraries: where they are and their digests.
 * Generated: \`build.ts --pack\` writes this file, with the digests of the
 * libraries it built, into the copy it stages for \`deno publish\`; the
 * checkout's copy (written by \`releaseModule\` in \`build.ts\` too) has none.
 *
 * @module
 */

/** The release's folder: the GitHub release of package.json's repository, at this version. \`DD_FFI_TRACE_RELEASE_URL\` replaces it. */
export const RELEASE_URL: string = "${url}";

/** The sha256 (hex) of each release file, by name (\`releaseFileName\` in \`paths.ts\`); empty outside a published copy. */
export const RELEASE_SHA256: Readonly<Record<string, string>> = {${entries}${entries ? "\n" : ""}};
`;
}

/** The files of the checkout that `deno publish` may take (deno.json's `publish.include` picks among them), and package.json for its dependencies. */
const JSR_FILES = ["deno.json", "package.json", "README.md", "LICENSE", "mod.ts", "testing.ts", "build.ts", "opentelemetry.ts", "src", "ffi"];

/** What {@link pack} made. */
export interface Packed {
  /** The main package's tarball. */
  main: string;
  /** Each platform's package tarball, by platform. */
  platforms: Record<string, string>;
  /** The release's folder: one library per platform ({@link releaseFileName}) and `SHA256SUMS`. */
  release: string;
  /** The folder to run `deno publish` in: the JSR package, with the release's digests. */
  jsr: string;
}

/**
 * Makes every published artifact into `outDir`, and writes nothing into the
 * checkout but cargo's and build.ts's ignored outputs (`lib/target/`,
 * `lib/build/`): the prebuilt libraries ({@link buildPrebuilds}, into
 * `outDir/prebuilds/`; a second run with the same `CARGO_TARGET_DIR` only
 * copies them), the main package and one package per platform, staged in
 * `outDir/stage/` and packed there by `npm pack` into `outDir/`, the
 * release's files in `outDir/release/`, and the JSR package in `outDir/jsr/`.
 * `prebuilt`: a folder of libraries `--prebuilds` made before, used instead
 * of building them (a release job that built them in another step).
 */
export function pack(root: string, outDir: string, prebuilt?: string): Packed {
  const manifest = readJson(join(root, "package.json"));
  const prebuilds = prebuilt ?? join(outDir, "prebuilds");
  const stage = join(outDir, "stage");
  for (const dir of [stage, join(outDir, "release"), join(outDir, "jsr")]) rmSync(dir, { recursive: true, force: true });
  if (prebuilt === undefined) buildPrebuilds(root, prebuilds);
  const npmPack = (dir: string): string => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_")));
    const out = execFileSync("npm", ["pack", "--json", "--pack-destination", outDir], { cwd: dir, env, encoding: "utf8" });
    return join(outDir, JSON.parse(out.slice(out.indexOf("[")))[0].filename);
  };
  stageMain(root, join(stage, "main"));
  const packed: Packed = { main: npmPack(join(stage, "main")), platforms: {}, release: join(outDir, "release"), jsr: join(outDir, "jsr") };
  const sha256: Record<string, string> = {};
  mkdirSync(packed.release, { recursive: true });
  for (const platform of Object.keys(PLATFORM_PACKAGES)) {
    const dir = join(stage, platform);
    mkdirSync(dir, { recursive: true });
    for (const lib of Object.keys(LIBRARIES)) {
      copyFileSync(join(prebuilds, platform, libraryFileName(lib, platform)), join(dir, libraryFileName(lib, platform)));
    }
    copyFileSync(join(root, "LICENSE"), join(dir, "LICENSE"));
    const { name } = PLATFORM_PACKAGES[platform];
    writeFileSync(
      join(dir, "README.md"),
      `# ${name}\n\nThe ${platform} native library of [${manifest.name}](${manifest.homepage}), which installs it as an ` +
        "optional dependency on that platform. Not for direct use.\n",
    );
    writeJson(join(dir, "package.json"), platformManifest(manifest, platform));
    packed.platforms[platform] = npmPack(dir);
    const file = releaseFileName(BUNDLED_LIBRARY, platform);
    const bytes = readFileSync(join(dir, libraryFileName(BUNDLED_LIBRARY, platform)));
    writeFileSync(join(packed.release, file), bytes);
    sha256[file] = createHash("sha256").update(bytes).digest("hex");
  }
  writeFileSync(join(packed.release, "SHA256SUMS"), Object.entries(sha256).map(([f, d]) => `${d}  ${f}\n`).join(""));
  for (const file of JSR_FILES) cpSync(join(root, file), join(packed.jsr, file), { recursive: true });
  for (const file of LIB_SOURCES) {
    mkdirSync(dirname(join(packed.jsr, "lib", file)), { recursive: true });
    copyFileSync(join(root, "lib", file), join(packed.jsr, "lib", file));
  }
  writeFileSync(join(packed.jsr, "ffi", "release_sha256.ts"), releaseModule(manifest, sha256));
  // deno.json's nodeModulesDir is "manual": deno publish resolves the npm dependencies from the checkout's.
  if (existsSync(join(root, "node_modules"))) symlinkSync(join(root, "node_modules"), join(packed.jsr, "node_modules"), "dir");
  return packed;
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
  const dirFlag = (flag: string): string => {
    const out = flags[flags.indexOf(flag) + 1];
    if (!out || localRoot === undefined) throw new Error(`usage: build.ts ${flag} DIR (in a checkout)`);
    return out;
  };
  if (flags.includes("--pack")) {
    const packed = pack(localRoot!, dirFlag("--pack"), flags.includes("--prebuilt") ? dirFlag("--prebuilt") : undefined);
    for (const file of [packed.main, ...Object.values(packed.platforms)]) console.log(`packed ${file}`);
    console.log(`release files in ${packed.release}; deno publish in ${packed.jsr}`);
  } else if (flags.includes("--refuse-pack")) {
    console.error("The checkout is not the npm package: `npm run dist` makes the packages (build.ts --pack DIR).");
    process.exit(1);
  } else if (flags.includes("--prebuilds")) {
    for (const file of buildPrebuilds(localRoot!, dirFlag("--prebuilds"))) console.log(`built ${file}`);
  } else if (flags.includes("--user") || localRoot === undefined) {
    console.log(`built ${await buildUserLibrary({ force })}`);
  } else {
    console.log(`built ${buildLibrary({ force })}`);
  }
}
