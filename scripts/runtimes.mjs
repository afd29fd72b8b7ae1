// The three runtimes the suite, the demo and the benchmarks run on, found in
// node_modules (the `bun` and `deno` npm packages) without relying on their
// postinstall scripts: the platform package's binary is used directly when
// the postinstall did not put it in place.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nm = join(root, "node_modules");
const arch = process.arch === "arm64" ? "aarch64" : "x64";
const denoArch = process.arch === "arm64" ? "arm64" : "x64";

function works(bin) {
  return existsSync(bin) && spawnSync(bin, ["--version"], { stdio: "ignore" }).status === 0;
}

function first(name, candidates) {
  const found = candidates.find(works);
  if (!found) throw new Error(`${name} not found in node_modules: run \`npm install\` (looked in ${candidates.join(", ")})`);
  return found;
}

/** The Bun binary. */
export function bunBinary() {
  return first("bun", [
    join(nm, "bun", "bin", "bun.exe"),
    join(nm, "@oven", `bun-${process.platform}-${arch}`, "bin", "bun"),
    join(nm, "@oven", `bun-${process.platform}-${arch}-baseline`, "bin", "bun"),
  ]);
}

/** The Deno binary. */
export function denoBinary() {
  return first("deno", [
    join(nm, "deno", "deno"),
    join(nm, "@deno", `${process.platform}-${denoArch}-glibc`, "deno"),
    join(nm, "@deno", `${process.platform}-${denoArch}`, "deno"),
  ]);
}

/** How to run a TypeScript file on each runtime: [command, ...args before the file]. The GC is exposed so tests can prove finalizers free native handles. */
export function runtimeCommands() {
  return {
    node: [process.execPath, "--expose-gc", "--import", "tsx"],
    bun: [bunBinary()],
    deno: [denoBinary(), "run", "-A", "--v8-flags=--expose-gc"],
  };
}

// `node scripts/runtimes.mjs <runtime> file.ts args…` runs a file on one runtime.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [runtime, ...rest] = process.argv.slice(2);
  const cmd = runtimeCommands()[runtime];
  if (!cmd) {
    console.error("usage: node scripts/runtimes.mjs node|bun|deno file.ts [args…]");
    process.exit(2);
  }
  const r = spawnSync(cmd[0], [...cmd.slice(1), ...rest], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
