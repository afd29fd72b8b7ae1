// Per-thread CPU of an end-to-end run (Linux /proc): which threads spend what per span.
//   node scripts/runtimes.mjs node|bun|deno bench/threads.ts batch|fields [basic|extended|unicode]
// Env: W and N, the warm-up and measured sends (20 and 60; Bun's JIT threads need W=100 to go quiet);
// IN, the sends in flight (4); STATS=1 turns on libdatadog's client-side stats (computeStats);
// BYTID=1 lists each thread alone (Node names its pool threads "node", as its main thread).
import process from "node:process";
import { readdirSync, readFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { TraceExporter } from "../src/exporter.ts";
import { makeFixture, type SetName } from "./fixtures.ts";
const path = (process.argv[2] ?? "batch") as "batch" | "fields";
const child = spawn("node", ["bench/agent.mjs"], { stdio: ["pipe", "pipe", "inherit"] });
const url: string = await new Promise((r) => child.stdout!.once("data", (d) => r(JSON.parse(String(d).split("\n")[0]).url)));
function threads(): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of readdirSync("/proc/self/task")) {
    try {
      const st = readFileSync(`/proc/self/task/${t}/stat`, "utf8");
      const comm = st.slice(st.indexOf("(") + 1, st.lastIndexOf(")"));
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      const ticks = Number(f[11]) + Number(f[12]);
      m.set(`${comm}#${t}`, ticks);
    } catch { /* gone */ }
  }
  return m;
}
const fx = makeFixture((process.argv[3] ?? "basic") as SetName);
const ex = new TraceExporter({ url, sendPath: path, computeStats: process.env.STATS === "1" });
const inFlight = Number(process.env.IN ?? 4);
const pump = async (n: number) => { const pend = new Set<Promise<unknown>>(); for (let i = 0; i < n; i++) { while (pend.size >= inFlight) await Promise.race(pend); const p: Promise<unknown> = ex.send(fx.ours).finally(() => pend.delete(p)); pend.add(p); } await Promise.all(pend); };
await pump(Number(process.env.W ?? 20));
const a = threads();
const c0 = process.cpuUsage();
const N = Number(process.env.N ?? 60);
await pump(N);
const c = process.cpuUsage(c0);
const b = threads();
const spans = N * fx.spans;
const rows: [string, number][] = [];
for (const [k, v] of b) rows.push([k, ((v - (a.get(k) ?? 0)) * 10000) / spans]);
const byName = new Map<string, number>();
for (const [k, v] of rows) { const n = process.env.BYTID ? k : k.split("#")[0]; byName.set(n, (byName.get(n) ?? 0) + v); }
console.log(path, "total µs/span", ((c.user + c.system) / spans).toFixed(2));
for (const [k, v] of [...byName].sort((x, y) => y[1] - x[1])) if (v > 0.005) console.log(`  ${k.padEnd(20)} ${v.toFixed(2)}`);
await ex.close();
child.stdin!.end();
process.exit(0);
