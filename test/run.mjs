// `npm test`: the whole suite on Node, Bun and Deno, one process each; ends
// with `N passed, N failed` over all three. Arguments filter test files.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { root, runtimeCommands } from "../scripts/runtimes.mjs";

const only = process.env.TEST_RUNTIMES?.split(",");
const commands = Object.entries(runtimeCommands()).filter(([name]) => !only || only.includes(name));
const filters = process.argv.slice(2);
let passed = 0, failed = 0;
const broken = [];

for (const [name, cmd] of commands) {
  console.log(`\n=== ${name} ===`);
  const child = spawn(cmd[0], [...cmd.slice(1), join(root, "test", "all.ts"), ...filters], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    process.stdout.write(d);
    out += d;
  });
  const code = await new Promise((resolve) => child.on("close", (c) => resolve(c ?? 1)));
  // deno-lint-ignore no-control-regex
  const plain = out.replace(/\x1b\[[0-9;]*m/g, "");
  const total = Number(plain.match(/Total:\s+(\d+)/)?.[1] ?? NaN);
  const ok = Number(plain.match(/Passed:\s+(\d+)/)?.[1] ?? NaN);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    broken.push(`${name}: exited ${code} before uvu's summary`);
    failed += 1;
    continue;
  }
  passed += ok;
  failed += total - ok;
  if (code !== 0 && total === ok) {
    broken.push(`${name}: exited ${code}`);
    failed += 1;
  }
  console.log(`${name}: ${ok} passed, ${total - ok} failed`);
}

for (const b of broken) console.log(b);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && broken.length === 0 ? 0 : 1);
