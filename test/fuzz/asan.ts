/**
 * An ASan + UBSan build of lib/ for the boundary fuzz: `lib/build-asan/`
 * (git-ignored), rebuilt when a source is newer. Needs gcc and its libasan
 * (LD_PRELOADed into the runtime, which is not built with ASan).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, realpathSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { BATCH_HEADER, C_SOURCES, LIBRARIES } from "../../build.ts";
import { cHeader } from "../../ffi/batch.ts";
import { BUNDLED_LIBRARY } from "../../ffi/paths.ts";

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
  const inputs = [...C_SOURCES.map((f) => join(lib, f)), join(root, "ffi", "batch.ts")];
  const built = existsSync(ASAN_LIBRARY) ? statSync(ASAN_LIBRARY).mtimeMs : 0;
  if (inputs.every((f) => statSync(f).mtimeMs <= built)) return ASAN_LIBRARY;
  mkdirSync(dirname(ASAN_LIBRARY), { recursive: true });
  writeFileSync(join(dirname(ASAN_LIBRARY), BATCH_HEADER), cHeader());
  const tmp = `${ASAN_LIBRARY}.${process.pid}.tmp`;
  execFileSync("gcc", [
    "-O1", "-g", "-std=c11", "-D_GNU_SOURCE", "-fPIC", "-shared", "-fvisibility=hidden", "-pthread",
    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
    "-I", dirname(ASAN_LIBRARY), "-o", tmp, ...LIBRARIES[BUNDLED_LIBRARY].map((f) => join(lib, f)), "-ldl",
  ], { stdio: "inherit" });
  renameSync(tmp, ASAN_LIBRARY);
  return ASAN_LIBRARY;
}
