/**
 * Runs the boundary fuzz (`boundary.ts`) in this process and exits non-zero
 * on a counterexample: `test/fuzz.test.ts` starts it, so that a crash of the
 * library fails that test alone. Arguments: the time budget in ms, and
 * optionally a seed.
 */
import process from "node:process";
import { runFuzz } from "./boundary.ts";

const [ms = "8000", seed] = process.argv.slice(2);

const result = await runFuzz(Number(ms), seed === undefined ? undefined : Number(seed));
console.log(`fuzz: ${result.runs} batches, ${result.sent} sent and checked, ${result.refused} refused`);
if (result.failure) {
  console.log(result.failure);
  process.exit(1);
}
process.exit(0);
