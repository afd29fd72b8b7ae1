/**
 * Fuzzes the batch decoder (lib/batch, Rust): seeds it with batches the
 * writer made from the corpus, and runs its proptest fuzz
 * (lib/batch/tests/fuzz.rs) with `cargo test`: every seed decodes, and
 * random mutations of them are refused (InvalidArgument), never a panic.
 * `BATCH_FUZZ_CASES` mutations (default 2000). On Node only (one run is
 * enough: the decoder is the same).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { BatchWriter } from "../src/batch/writer.ts";
import { getBinding } from "../src/binding.ts";
import { assertNoLeaks } from "./helpers.ts";
import { corpus } from "./batch-corpus.ts";

test.after.each(assertNoLeaks);

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const isNode = !("Bun" in globalThis) && !("Deno" in globalThis);

if (isNode && !process.env.DD_LIBDATADOG_PATH) {
  test("the batch decoder decodes every seed and refuses random mutations of them, never a panic (proptest)", () => {
    const dir = mkdtempSync(join(tmpdir(), "ddffi-fuzz-"));
    try {
      const b = getBinding();
      let seeds = 0;
      for (const [i, traces] of Object.values(corpus).entries()) {
        const w = new BatchWriter(b.native, 64);
        try {
          const n = w.write(traces);
          if (n > 1 << 16) continue; // keep the cases fast
          writeFileSync(join(dir, `seed${i}.bin`), b.native.read(w.address, n));
          seeds++;
        } finally {
          w.free();
        }
      }
      assert.ok(seeds > 10, `${seeds} seeds`);
      const run = spawnSync("cargo", ["test", "--release", "--locked", "-p", "ddffi-batch", "--test", "fuzz"], {
        cwd: join(root, "lib"),
        encoding: "utf8",
        env: { ...process.env, BATCH_FUZZ_SEEDS: dir },
        timeout: 600_000,
      });
      assert.is(run.status, 0, `the fuzz failed:\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /test result: ok\. 2 passed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
