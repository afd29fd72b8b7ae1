/**
 * Runs the boundary fuzz (`boundary.ts`) in this process and exits non-zero
 * on a counterexample: `test/fuzz.test.ts` starts it with an ASan + UBSan
 * build of lib/ (DD_LIBDATADOG_PATH, LD_PRELOAD of libasan). Arguments:
 * the time budget in ms, and optionally a seed.
 *
 * On Bun, ArrayBuffers live in JavaScriptCore's own heap, which ASan does
 * not see; so that an over-read of the scratch buffer is caught there too,
 * the adapter's `alloc` is pointed at libasan's `calloc` first.
 */
import process from "node:process";
import { native } from "../../ffi/load.ts";
import { type NativeMemory, textEncoderInto } from "../../ffi/native.ts";
import { runFuzz } from "./boundary.ts";

const [ms = "8000", seed] = process.argv.slice(2);

const asan = process.env.LD_PRELOAD;
if ("Bun" in globalThis && asan) {
  const { dlopen, FFIType, toArrayBuffer } = await import("bun:ffi");
  const lib = dlopen(asan, {
    calloc: { args: [FFIType.u64, FFIType.u64], returns: FFIType.ptr },
    free: { args: [FFIType.ptr], returns: FFIType.void },
  });
  const n = native();
  n.alloc = (size: number): NativeMemory => {
    const address = lib.symbols.calloc(1, size) as unknown as number;
    if (!address) throw new Error(`calloc(${size}) failed`);
    const buffer = toArrayBuffer(address as never, 0, size);
    return { buffer, address, utf8: textEncoderInto(buffer) };
  };
  n.free = (memory: NativeMemory) => lib.symbols.free(memory.address as never);
}

const result = await runFuzz(Number(ms), seed === undefined ? undefined : Number(seed));
console.log(`fuzz: ${result.runs} batches, ${result.sent} sent and checked, ${result.refused} refused`);
if (result.failure) {
  console.log(result.failure);
  process.exit(1);
}
process.exit(0);
