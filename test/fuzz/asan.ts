/**
 * An ASan + UBSan build of lib/ for the boundary fuzz: `lib/build-asan/`
 * (git-ignored), rebuilt when a source is newer. Needs gcc and its libasan
 * (LD_PRELOADed into the runtime, which is not built with ASan).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ASAN_LIBRARY = join(root, "lib", "build-asan", "libdd_trace_ffi.so");

/** gcc's libasan (absolute path), or undefined when there is no gcc or no libasan. */
export function libasan(): string | undefined {
  if (process.platform !== "linux") return undefined;
  const r = spawnSync("gcc", ["-print-file-name=libasan.so"], { encoding: "utf8" });
  const path = r.status === 0 ? r.stdout.trim() : "";
  return path.startsWith("/") && existsSync(path) ? realpathSync(path) : undefined;
}

/** Builds `lib/build-asan/libdd_trace_ffi.so` unless it is newer than every lib/ source; returns its path. */
export function buildAsanLibrary(): string {
  const lib = join(root, "lib");
  const inputs = readdirSync(lib).filter((f) => /\.[ch]$/.test(f)).map((f) => join(lib, f));
  const built = existsSync(ASAN_LIBRARY) ? statSync(ASAN_LIBRARY).mtimeMs : 0;
  if (inputs.every((f) => statSync(f).mtimeMs <= built)) return ASAN_LIBRARY;
  mkdirSync(dirname(ASAN_LIBRARY), { recursive: true });
  const tmp = `${ASAN_LIBRARY}.${process.pid}.tmp`;
  execFileSync("gcc", [
    "-O1", "-g", "-std=c11", "-D_GNU_SOURCE", "-fPIC", "-shared", "-fvisibility=hidden", "-pthread",
    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
    "-o", tmp, ...inputs.filter((f) => f.endsWith(".c")).sort(),
  ], { stdio: "inherit" });
  renameSync(tmp, ASAN_LIBRARY);
  return ASAN_LIBRARY;
}
