/**
 * Builds the bundled native library: every `lib/*.c` compiled with the
 * system C compiler into `lib/build/libdd_trace_ffi.so`.
 *
 * Runs under Node (through tsx), Bun and Deno:
 *   node --import tsx build.ts | bun build.ts | deno run -A build.ts
 * `npm install` runs it through the root package's `prepare` script.
 *
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));

/** Where the bundled library is built, relative to the package root. */
export const LIBRARY_FILE = "lib/build/libdd_trace_ffi.so";

/** The C compiler: `$CC`, else the first of cc, gcc, clang on the PATH. */
function findCompiler(): string {
  const env = globalThis.process?.env ?? {};
  const candidates = env.CC ? [env.CC] : ["cc", "gcc", "clang"];
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
 * Compiles the library into `outFile` (default: the bundled location under
 * `packageRoot`) unless it is newer than every source. Returns its path.
 */
export function buildLibrary(
  { packageRoot = root, outFile = join(packageRoot, LIBRARY_FILE), force = false } = {},
): string {
  const libDir = join(packageRoot, "lib");
  const sources = readdirSync(libDir).filter((f) => f.endsWith(".c")).map((f) => join(libDir, f));
  const inputs = [...sources, ...readdirSync(libDir).filter((f) => f.endsWith(".h")).map((f) => join(libDir, f))];
  if (!force && isNewer(outFile, inputs)) return outFile;
  const cc = findCompiler();
  mkdirSync(dirname(outFile), { recursive: true });
  const tmp = `${outFile}.${Date.now()}.tmp`;
  execFileSync(cc, [
    "-O2", "-g", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror=implicit-function-declaration",
    "-fPIC", "-shared", "-fvisibility=hidden", "-pthread",
    "-o", tmp, ...sources,
  ], { stdio: "inherit" });
  renameSync(tmp, outFile);
  return outFile;
}

function isNewer(file: string, inputs: string[]): boolean {
  try {
    const built = statSync(file).mtimeMs;
    return inputs.every((f) => statSync(f).mtimeMs <= built);
  } catch {
    return false;
  }
}

if (import.meta.url === `file://${globalThis.process?.argv?.[1] ?? ""}` || (import.meta as { main?: boolean }).main) {
  const out = buildLibrary({ force: globalThis.process?.argv?.includes("--force") });
  console.log(`built ${out}`);
}
