/**
 * The boundary fuzz (test/fuzz/boundary.ts: random spans, hostile getters
 * and Proxies, huge and odd strings, through a TraceExporter to a
 * TestAgent) in a child process of this same runtime, against the library
 * the suite uses: a crash of the library fails this test, not the suite.
 * Fails on a counterexample. Bounded: FUZZ_MS (default 6000) of fuzzing per
 * runtime. (lib/ is Rust: its unsafe code is the boundary's pointer and
 * slice helpers, each checked; Rust's sanitizers need a nightly toolchain,
 * so there is no ASan build of it.)
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
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

test(`boundary fuzz in a child process (${ms} ms)`, async () => {
  const args = [...command(child), String(ms), ...(seed === undefined ? [] : [seed])];
  const { code, out, err } = await run(args, {});
  const tail = (s: string) => s.slice(-6000);
  assert.is(code, 0, `fuzz child exited ${code}:\n${tail(out)}\n${tail(err)}`);
  const summary = /fuzz: (\d+) batches, (\d+) sent/.exec(out);
  assert.ok(summary && Number(summary[2]) > 0, `no batch was sent:\n${tail(out)}`);
  console.log(`  ${summary![0]}`);
});

test.after.each(assertNoLeaks);

test.run();
