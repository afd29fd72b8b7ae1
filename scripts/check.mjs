// `npm run check` (part of `npm test`): the static checks. tsc --noEmit
// --strict over every TypeScript file (tsconfig.json), then Deno's: check,
// lint, doc --lint of the JSR entry points, and `deno publish --dry-run`,
// which must print no warning (slow types included). Exits non-zero on the
// first failure.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { denoBinary, root } from "./runtimes.mjs";

const deno = denoBinary();
const ts = (dir) => readdirSync(join(root, dir)).filter((f) => f.endsWith(".ts")).map((f) => `${dir}/${f}`);
const entries = ["mod.ts", "testing.ts", "build.ts", "opentelemetry.ts"];
const checks = [
  ["tsc --noEmit --strict", process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json", "--noEmit", "--strict"]],
  ["deno check", deno, ["check", "--quiet", ...entries, "cli.ts", ...ts("test"), ...ts("examples")]],
  ["deno lint", deno, ["lint", "--quiet"]],
  ["deno doc --lint", deno, ["doc", "--lint", ...entries]],
  ["deno publish --dry-run", deno, ["publish", "--dry-run", "--allow-dirty"], { noWarnings: true }],
];

for (const [name, cmd, args, opts = {}] of checks) {
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  const warned = opts.noWarnings && /\bwarning\b/i.test(output);
  if (r.status !== 0 || warned) {
    process.stdout.write(output);
    console.log(`check failed: ${name}${warned ? " (warnings)" : ` (exit ${r.status ?? r.error})`}`);
    process.exit(1);
  }
  console.log(`check ok: ${name} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
}
