/**
 * Runs every `test/*.test.ts` (or those named on the command line) as one
 * uvu run on the current runtime, ending with uvu's Total/Passed lines.
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const g = globalThis as unknown as { UVU_DEFER: number; UVU_QUEUE: unknown[][]; UVU_INDEX: number };
g.UVU_DEFER = 1;
g.UVU_QUEUE = [];

const dir = dirname(fileURLToPath(import.meta.url));
const args = (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.ts"))
  .filter((f) => args.length === 0 || args.some((a) => f.includes(a)))
  .sort();

// Which library the run tests: the bundled one, or DD_LIBDATADOG_PATH's.
const { native } = await import("../ffi/load.ts");
const { liveNativeObjects } = await import("../testing.ts");
const which = liveNativeObjects() === undefined ? "a real libdatadog (DD_LIBDATADOG_PATH)" : "the bundled library";
console.log(`library: ${native().path}: ${which}`);

for (const [i, f] of files.entries()) {
  g.UVU_INDEX = i;
  g.UVU_QUEUE.push([f]);
  await import(pathToFileURL(join(dir, f)).href);
}
const { exec } = await import("uvu");
await exec();
