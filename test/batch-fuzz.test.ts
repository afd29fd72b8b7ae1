/**
 * Fuzzes the batch decoder (lib/batch.c) under ASan and UBSan: compiles
 * test/batch_fuzz.c with the bundled library's sources, seeds it with
 * batches the writer made from the corpus, and runs it for a bounded time
 * (`BATCH_FUZZ_SECONDS`, default 5). On Node only (one run is enough: the C is the same).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { cHeader } from "../ffi/batch.ts";
import { BatchWriter } from "../src/batch.ts";
import { getBinding } from "../src/binding.ts";
import { assertNoLeaks } from "./helpers.ts";
import { corpus } from "./batch-corpus.ts";

test.after.each(assertNoLeaks);

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const isNode = !("Bun" in globalThis) && !("Deno" in globalThis);
const seconds = Number(process.env.BATCH_FUZZ_SECONDS ?? 5);

if (isNode && !process.env.DD_LIBDATADOG_PATH) {
  test("the batch decoder survives random mutations under ASan and UBSan, nothing leaks", () => {
    const dir = mkdtempSync(join(tmpdir(), "ddffi-fuzz-"));
    try {
      writeFileSync(join(dir, "batch-format.h"), cHeader());
      const b = getBinding();
      const seeds: string[] = [];
      for (const [i, traces] of Object.values(corpus).entries()) {
        const w = new BatchWriter(b.native, 64);
        try {
          const n = w.write(traces);
          if (n > 1 << 16) continue; // keep the rounds fast
          const file = join(dir, `seed${i}.bin`);
          writeFileSync(file, b.native.read(w.address, n));
          seeds.push(file);
        } finally {
          w.free();
        }
      }
      const lib = join(root, "lib");
      const sources = readdirSync(lib).filter((f) => f.endsWith(".c")).map((f) => join(lib, f));
      const exe = join(dir, "batch_fuzz");
      const cc = spawnSync(process.env.CC ?? "cc", [
        "-O1", "-g", "-std=c11", "-D_GNU_SOURCE", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
        "-fno-omit-frame-pointer", "-rdynamic", "-pthread", "-I", lib, "-I", dir,
        "-o", exe, join(root, "test", "batch_fuzz.c"), ...sources, "-ldl",
      ], { encoding: "utf8" });
      assert.is(cc.status, 0, `compiling the fuzzer: ${cc.stderr}`);
      const run = spawnSync(exe, [String(seconds), ...seeds], {
        encoding: "utf8",
        env: { ...process.env, ASAN_OPTIONS: "detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS: "print_stacktrace=1" },
        timeout: (seconds + 60) * 1000,
      });
      assert.is(run.status, 0, `the fuzzer failed:\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /\d+ rounds, \d+ decoded/);
      if (process.env.BATCH_FUZZ_VERBOSE) console.log(run.stdout.trim());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
