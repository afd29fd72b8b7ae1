/**
 * The boundary fuzz (test/fuzz/boundary.ts: random spans, hostile getters
 * and Proxies, huge and odd strings, through a TraceExporter to a
 * TestAgent) run against an ASan + UBSan build of lib/, in a child process
 * of this same runtime: DD_LIBDATADOG_PATH points at the build and gcc's
 * libasan is LD_PRELOADed. Fails on a counterexample, or on any sanitizer
 * report. Bounded: FUZZ_MS (default 6000) of fuzzing per runtime.
 *
 * Without gcc's libasan (not Linux, no gcc) it fuzzes in this process,
 * against the library the suite uses, and says so.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { buildAsanLibrary, libasan } from "./fuzz/asan.ts";
import { runFuzz } from "./fuzz/boundary.ts";
import { assertNoLeaks } from "./helpers.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const child = join(root, "test", "fuzz", "child.ts");
const ms = Number(process.env.FUZZ_MS ?? 6000);
const seed = process.env.FUZZ_SEED;

/** This runtime's command for a TypeScript file. */
function command(file: string): string[] {
  const self = process.execPath;
  if ("Deno" in globalThis) return [self, "run", "-A", file];
  if ("Bun" in globalThis) return [self, file];
  return [self, "--import", "tsx", file];
}

function run(cmd: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd[0], cmd.slice(1), { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout!.on("data", (d) => (out += d));
    p.stderr!.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), ms + 90_000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

const asan = libasan();

test(`boundary fuzz against an ASan + UBSan build of lib/ (${ms} ms)`, async () => {
  if (!asan) {
    console.log("  (no gcc libasan here: fuzzing in-process against the regular library)");
    const r = await runFuzz(ms, seed === undefined ? undefined : Number(seed));
    assert.ok(!r.failure, r.failure);
    assert.ok(r.sent > 0, "no batch was sent");
    return;
  }
  const library = buildAsanLibrary();
  const args = [...command(child), String(ms), ...(seed === undefined ? [] : [seed])];
  const { code, out, err } = await run(args, {
    DD_LIBDATADOG_PATH: library,
    LD_PRELOAD: asan,
    // Leaks are the live-object count's business (runtimes leak by design at exit).
    ASAN_OPTIONS: "detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86",
    UBSAN_OPTIONS: "halt_on_error=1:print_stacktrace=1",
  });
  const report = /ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|Undefined)/.exec(err);
  const tail = (s: string) => s.slice(-6000);
  assert.ok(!report, `sanitizer report:\n${err.slice(Math.max(0, (report?.index ?? 0) - 200), (report?.index ?? 0) + 6000)}`);
  assert.is(code, 0, `fuzz child exited ${code}:\n${tail(out)}\n${tail(err)}`);
  const summary = /fuzz: (\d+) batches, (\d+) sent/.exec(out);
  assert.ok(summary && Number(summary[2]) > 0, `no batch was sent:\n${tail(out)}`);
  console.log(`  ${summary![0]} (ASan + UBSan)`);
});

test.after.each(assertNoLeaks);

test.run();
