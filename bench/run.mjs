// `npm run bench`: bench/main.ts on Node, Bun and Deno, one after the other,
// against one local agent (bench/agent.mjs); then bench/RESULTS.md and
// bench/chart.svg from what they measured.
//
//   node bench/run.mjs [node,bun,deno] [--reps N] [--no-write] [--parts …] [--sample-ms N] [--e2e-spans N]
//
// With a subset of runtimes it prints their tables and writes nothing.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root, runtimeCommands } from "../scripts/runtimes.mjs";

const ALL = ["node", "bun", "deno"];
const args = process.argv.slice(2);
const only = args.find((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--")));
const runtimes = only ? only.split(",") : ALL;
const repsAt = args.indexOf("--reps");
const reps = repsAt >= 0 ? args[repsAt + 1] : "7";
const write = runtimes.length === ALL.length && !args.includes("--no-write");
/** Passed on to bench/main.ts as they are. */
const forward = [];
for (const flag of ["--parts", "--sample-ms", "--e2e-spans"]) {
  const i = args.indexOf(flag);
  if (i >= 0) forward.push(flag, args[i + 1]);
}

/** Main-thread ns/span over dd-trace-js's encoder, on the batch path: ≤ 0.3 on every runtime (issue 9). */
const TARGETS = { bun: 0.3, deno: 0.3, node: 0.3 };
/** End to end: total process CPU per span ≤ 0.7× dd-trace-js + node:http (≤ 0.9× with computeStats), spans/s ≥ 1.2× (issue 20). */
const CPU_TARGET = 0.7;
const STATS_CPU_TARGET = 0.9;
/** Each platform's library, gzipped: 3 MB (issue 20), in bytes. */
const GZIP_TARGET_BYTES = 3_000_000;
const RATE_TARGET = 1.2;
/** Ours within 3× of the floor, on Bun. */
const FLOOR_TARGET = 3;
/** RSS growth from 100k to 1M spans that still counts as noise: 5 % or 16 MiB, whichever is more. */
const noise = (rss) => Math.max(0.05 * rss, 16 * 2 ** 20);

/** A bench/agent.mjs, `decode`: "walk" (the end-to-end targets) or "full" (@msgpack/msgpack objects). */
function startAgent(decode) {
  const child = spawn(process.execPath, [join(root, "bench", "agent.mjs"), "--decode", decode], { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) resolve({ url: JSON.parse(buf.split("\n")[0]).url, stop: () => child.stdin.end() });
    });
    child.on("error", reject);
  });
}

function run(cmd, argv, env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: root, stdio: "inherit", env });
    child.on("close", (code) => resolve(code ?? 1));
  });
}

/** An end-to-end table (`key`: "e2e" or "e2eFull" of each runtime's results), with its heading and notes. */
function e2eTables(all, key, title, intro) {
  const L = [];
  const any = Object.values(all)[0];
  if (!Object.values(all).some((r) => r[key])) return [];
  L.push(`## ${title}`);
  L.push("");
  L.push(intro + "`IN_FLIGHT` = 4 sends at a time; dd-trace-js's encoder + `node:http` (PUT /v0.4/traces, keep-alive) on the same runtime.");
  L.push("");
  L.push("| runtime | set | path | @dd-ffi/trace spans/s | dd-trace-js + node:http spans/s | ratio | ≥ 1.2 | sender CPU µs/span: ours | dd-trace-js | ratio | target | main thread µs/span in send: ours | dd-trace-js | agent CPU µs/span: ours | dd-trace-js |");
  L.push("|---|---|---|---:|---:|---:|:-:|---:|---:|---:|:-:|---:|---:|---:|---:|");
  for (const [rt, r] of Object.entries(all)) {
    for (const set of SETS) {
      const e = r[key]?.[set];
      if (!e) continue;
      for (const [path, rate, ratio, cpu, main, agent, target] of [
        ["batch", e.ours, e.ratio, e.cpu.ours, e.main?.ours, e.cpu.oursAgent, CPU_TARGET],
        ["batch, computeStats", e.stats, e.statsRatio, e.statsCpu, undefined, undefined, STATS_CPU_TARGET],
        ["per-field", e.fields, e.fieldsRatio, e.cpu.fields, e.main?.fields, e.cpu.fieldsAgent, undefined],
      ]) {
        if (!rate) continue;
        const cpuRatio = cpu.median / e.cpu.ddtrace.median;
        const met = target === undefined ? "" : cpuRatio <= target ? `yes (≤ ${target})` : `no (≤ ${target})`;
        L.push(`| ${RT_TEXT[rt]} | ${set} | ${path} | ${n0(rate.median)} | ${n0(e.ddtrace.median)} | ${f(ratio.median)} | ${ratio.median >= RATE_TARGET ? "yes" : "no"} | ` +
          `${f(cpu.median)} | ${f(e.cpu.ddtrace.median)} | ${f(cpuRatio)} | ${met} | ${f(main?.median)} | ${f(e.main?.ddtrace.median)} | ` +
          `${f(agent?.median)} | ${f(e.cpu.ddtraceAgent.median)} |`);
      }
    }
  }
  L.push("");
  L.push(`Sender CPU is every thread of the sending process (for ours: the main thread plus the send thread, which on the ` +
    `batch path decodes the batch and builds the spans, and on both paths encodes the msgpack, sends it and frees the spans); ` +
    `"main thread in send" is the time inside the synchronous part of each send call (dd-trace-js: encode, makePayload and ` +
    `http.request); agent CPU is the agent process's. This machine has ` +
    `${any.runtime.cpus} CPUs, shared by the sender and the agent, so end to end throughput follows total CPU per span.`);
  L.push("");
  return L;
}

/** The summary table, for RESULTS.md and the README: a row per runtime and send path. */
function summary(all) {
  const L = [];
  L.push("| runtime | send path | main thread per span vs dd-trace-js: basic | extended | unicode | target | total CPU per span end to end vs dd-trace-js + node:http (basic) | spans/s vs dd-trace-js (basic) | RSS growth 100k → 1M spans (explicit / finalizers) |");
  L.push("|---|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const [rt, r] of Object.entries(all)) {
    const m = r.micro;
    const e = r.e2e?.basic;
    const grow = (r.memory ?? []).map((x) => `${mib(x.checkpoints[x.checkpoints.length - 1].rss - x.checkpoints[0].rss)} MiB`).join(" / ");
    L.push(`| ${RT_TEXT[rt]} | batch | **${f(m.basic.ratio.batch?.median)}** | **${f(m.extended.ratio.batch?.median)}** | **${f(m.unicode?.ratio.batch?.median)}** | ≤ ${f(TARGETS[rt], 1)} | ` +
      `${e ? f(e.cpu.ours.median / e.cpu.ddtrace.median) : "n/a"} (≤ ${CPU_TARGET}) | ${f(e?.ratio.median)} (≥ ${RATE_TARGET}) | ${grow || "n/a"} |`);
    L.push(`| ${RT_TEXT[rt]} | per-field | ${f(m.basic.ratio.ours.median)} | ${f(m.extended.ratio.ours.median)} | ${f(m.unicode?.ratio.ours.median)} | | ` +
      `${e?.cpu.fields ? f(e.cpu.fields.median / e.cpu.ddtrace.median) : "n/a"} | ${f(e?.fieldsRatio?.median)} | |`);
  }
  return L;
}

// ---- RESULTS.md ------------------------------------------------------------------

function f(x, digits = 2) {
  return Number.isFinite(x) ? x.toFixed(digits) : "n/a";
}
function n0(x) {
  return Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a";
}
function mib(x) {
  return (x / 2 ** 20).toFixed(1);
}
const SETS = ["basic", "extended", "unicode"];
const SET_TEXT = {
  basic: "basic: 64-bit ids, 4 string fields, 10 meta, 3 metrics",
  extended: "extended: + 128-bit trace id, a span link, a span event",
  unicode: "unicode: basic with every meta value unique to its span and non-ASCII",
};
const RT_TEXT = { node: "Node (koffi)", bun: "Bun (bun:ffi)", deno: "Deno (Deno.dlopen)" };

function lib(r, set) {
  return r.library && !r.library.error ? r.library[set] : undefined;
}

function markdown(all, minutes) {
  const L = [];
  const any = Object.values(all)[0];
  L.push("# Benchmark results");
  L.push("");
  L.push(`Written by \`npm run bench\` (bench/run.mjs) on ${new Date().toISOString().slice(0, 10)}: ` +
    Object.values(all).map((r) => `${r.runtime.name} ${r.runtime.version}`).join(", ") +
    `, dd-trace ${any.ddTraceVersion}, ${any.reps} repetitions, ${minutes.toFixed(1)} minutes. ` +
    "The machine is shared and noisy, so every figure is a ratio to dd-trace-js's v0.4 `AgentEncoder` " +
    "measured in the same process, in the same repetition (main-thread figures: each variant's sample divided by a " +
    "dd-trace-js sample taken right next to it, each sample after a full garbage collection); the median over the repetitions. Which library was measured, and how it was built: " +
    "\"The engine, its build profiles, and a libdatadog release build\" below.");
  L.push("");
  L.push("![main-thread time per span, relative to dd-trace-js's encoder](chart.svg)");
  L.push("");
  L.push(...summary(all));
  L.push("");
  L.push("## Main-thread time per span, relative to dd-trace-js's encoder");
  L.push("");
  L.push("Lower is better; 1.00 is dd-trace-js's `AgentEncoder` (`encode(chunk)` per chunk, then `makePayload()`) on the same spans.");
  L.push("");
  L.push("| runtime | span set | batch path | target | met | per-field path | @msgpack/msgpack | floor: UTF-8 only | library's own work (C, no FFI) | the per-field binding's share |");
  L.push("|---|---|---:|---:|:-:|---:|---:|---:|---:|---:|");
  for (const [rt, r] of Object.entries(all)) {
    for (const set of SETS) {
      const m = r.micro[set];
      if (!m) continue;
      const batch = m.ratio.batch?.median;
      const ours = m.ratio.ours.median;
      const l = lib(r, set);
      const target = TARGETS[rt];
      const share = l ? (m.ns.ours.median - l.ns.median) / m.ns.ddtrace.median : NaN;
      L.push(`| ${RT_TEXT[rt]} | ${set} | **${f(batch)}** | ≤ ${f(target, 1)} | ${batch <= target ? "yes" : "no"} | ${f(ours)} | ${f(m.ratio.msgpack.median)} | ${f(m.ratio.floor.median)} | ${l ? f(l.ratio) : "n/a"} | ${f(share)} |`);
    }
  }
  L.push("");
  L.push("The batch path's main-thread work is writing the batch (src/batch/); decoding it and building the spans " +
    "through the C ABI run on the send thread, with the send. The per-field path builds every span through the C ABI " +
    "on the main thread. \"The per-field binding's share\" is the per-field path minus the library's own work (the same C " +
    "calls replayed from C by bench/replay.c, no FFI): what that binding adds, the FFI crossings and the JavaScript.");
  L.push("");
  if (all.bun) {
    const m = all.bun.micro.basic;
    const x = m.ns.batch.median / m.ns.floor.median;
    L.push(`Bun, the batch path over the floor (basic set): **${f(x, 1)}×** (target ≤ ${FLOOR_TARGET}×: ${x <= FLOOR_TARGET ? "met" : "not met"}); ` +
      `extended set: ${f(all.bun.micro.extended.ns.batch.median / all.bun.micro.extended.ns.floor.median, 1)}×.`);
    L.push("");
  }
  L.push("### Nanoseconds per span (medians; for scale only, the machine is noisy)");
  L.push("");
  const names = Object.keys(any.micro.basic.ns);
  L.push(`| | ${Object.keys(all).flatMap((rt) => SETS.map((s) => `${rt} ${s}`)).join(" | ")} |`);
  L.push(`|---|${Object.keys(all).flatMap(() => SETS.map(() => "---:")).join("|")}|`);
  const allNames = [...new Set(Object.values(all).flatMap((r) => Object.keys(r.micro.basic.ns)))];
  for (const name of allNames) {
    const label = Object.values(all).map((r) => r.micro.basic.labels[name]).find(Boolean) ?? name;
    L.push(`| ${label} | ${Object.values(all).flatMap((r) => SETS.map((s) => n0(r.micro[s].ns[name]?.median))).join(" | ")} |`);
  }
  L.push(`| library's own work (C replay) | ${Object.values(all).flatMap((r) => SETS.map((s) => n0(lib(r, s)?.ns.median))).join(" | ")} |`);
  L.push("");
  void names;
  if (all.node) {
    L.push("Against dd-trace-js on Node from the same `npm run bench` (its usual home), instead of in-process:");
    L.push("");
    L.push("| runtime (batch path) | basic | extended | unicode |");
    L.push("|---|---:|---:|---:|");
    for (const [rt, r] of Object.entries(all)) {
      L.push(`| ${RT_TEXT[rt]} | ${SETS.map((s) => f(r.micro[s].ns.batch.median / all.node.micro[s].ns.ddtrace.median)).join(" | ")} |`);
    }
    L.push("");
  }
  L.push("## Levers: the binding with one of them off (or on), same runs");
  L.push("");
  L.push("Ratio to dd-trace-js's encoder, and the change against the shipped per-field binding (positive = slower).");
  L.push("");
  L.push("| runtime | set | shipped | no string cache | meta values cached too | number words instead of bigints (Deno) |");
  L.push("|---|---|---:|---:|---:|---:|");
  for (const [rt, r] of Object.entries(all)) {
    for (const set of SETS) {
      const m = r.micro[set];
      const cell = (name) => {
        const v = m.ratio[name];
        if (!v) return "—";
        return `${f(v.median)} (${v.median >= m.ratio.ours.median ? "+" : ""}${f((v.median / m.ratio.ours.median - 1) * 100, 0)} %)`;
      };
      L.push(`| ${rt} | ${set} | ${f(m.ratio.ours.median)} | ${cell("noStringCache")} | ${cell("cacheValues")} | ${cell("numberWords")} |`);
    }
  }
  L.push("");
  L.push(...e2eTables(all, "e2e", "End to end: spans per second from send to checked at a local agent",
    "The agent (bench/agent.mjs `--decode walk`) runs in its own Node process and walks every msgpack item of each payload " +
      "(types, lengths, every span a map with a string `name`) before it answers, without building objects, so that on " +
      "this 2-CPU machine the agent is not what limits either sender (its CPU per span is in the last two columns). "));
  L.push(...e2eTables(all, "e2eFull", "End to end against an agent that decodes into objects",
    "The same, but the agent (`--decode full`) decodes each payload into objects with @msgpack/msgpack, about 10 µs of its " +
      "CPU per span: on 2 CPUs it is then the bottleneck of both senders, and spans/s measure the agent. "));
  L.push("## Memory: 1,000,000 spans in chunks of 100");
  L.push("");
  L.push("Each variant in a fresh process: sends of 10 trace chunks × 100 spans, 4 in flight at a time, a new `TraceExporter` " +
    "per 100,000 spans; \"explicit\" closes each one, \"finalizers\" only drops it (its `FinalizationRegistry` frees it). " +
    "RSS after a GC and a pause for finalizers; growth counts as noise up to 5 % or 16 MiB.");
  L.push("");
  L.push("| runtime | variant | RSS at 100k (MiB) | RSS at 1M (MiB) | growth (MiB) | beyond noise | live native objects at the end |");
  L.push("|---|---|---:|---:|---:|:-:|---:|");
  for (const [rt, r] of Object.entries(all)) {
    for (const m of r.memory ?? []) {
      const a = m.checkpoints[0].rss;
      const b = m.checkpoints[m.checkpoints.length - 1].rss;
      L.push(`| ${RT_TEXT[rt]} | ${m.variant} | ${mib(a)} | ${mib(b)} | ${mib(b - a)} | ${b - a > noise(a) ? "**yes**" : "no"} | ${m.liveObjects ?? "n/a"} |`);
    }
  }
  L.push("");
  L.push("RSS at each 100,000 spans (MiB):");
  L.push("");
  for (const [rt, r] of Object.entries(all)) {
    for (const m of r.memory ?? []) L.push(`- ${rt} ${m.variant}: ${m.checkpoints.map((c) => mib(c.rss)).join(", ")}`);
  }
  L.push("");
  L.push("## The library's footprint");
  L.push("");
  L.push("bench/footprint.ts in a fresh process of each runtime, median of 3: the time from `new TraceExporter` (which loads " +
    "the library) to the agent's answer to a one-span send; the process's threads and RSS before the library is loaded " +
    "and with one exporter idle for 2 s after that send (libdatadog's runtime and agent-info poller); the library file " +
    `(target: ≤ 3 MB gzipped, ${GZIP_TARGET_BYTES.toLocaleString("en-US")} bytes).`);
  L.push("");
  L.push("| runtime | load (ms) | load + first send (ms) | threads: before → idle | RSS MiB: before → idle | file (MiB) | gzip -9 (bytes) | ≤ 3 MB |");
  L.push("|---|---:|---:|---:|---:|---:|---:|:-:|");
  for (const [rt, r] of Object.entries(all)) {
    const p = r.footprint;
    if (!p) continue;
    const gz = p.libraryGzipBytes;
    L.push(`| ${RT_TEXT[rt]} | ${f(p.loadMs, 1)} | ${f(p.firstSendMs, 1)} | ${p.threadsBefore} → ${p.threadsIdle} | ` +
      `${mib(p.rssBefore)} → ${mib(p.rssIdle)} | ${f(p.libraryBytes / 2 ** 20, 1)} | ${gz.toLocaleString("en-US")} | ${gz <= GZIP_TARGET_BYTES ? "yes" : "no"} |`);
  }
  L.push("");
  L.push("## How it is measured");
  L.push("");
  L.push("- Spans: bench/fixtures.ts builds 100 traces of 10 spans, seeded, in three equal shapes: this package's `Span` objects, " +
    "dd-trace-js's formatted spans (its `Identifier` ids, numbers of ns, links already serialized into meta `_dd.span_links` " +
    "as its formatter does, so dd-trace-js's formatter cost is not counted), and v0.4-shaped objects for @msgpack/msgpack. " +
    SETS.map((s) => SET_TEXT[s]).join("; ") + ". 7 of the 10 meta values repeat across spans, 3 are unique.");
  L.push("- Ours, batch path: `BatchWriter.write(traces)`, what `send` runs on the main thread (then one " +
    "`ddffi_batch_send` call off it). Per-field path: `buildTraceChunks(binding, traces)` (every `ddog_tracer_*` call up to, " +
    "not including, the send) plus `ddog_tracer_trace_chunks_free`; dd-trace-js: `encode(chunk)` per chunk then `makePayload()`; @msgpack/msgpack: " +
    "`Encoder.encode(traces)`; floor: every string of the spans UTF-8-encoded into one buffer (the faster of a " +
    "`charCodeAt` loop and `TextEncoder.encodeInto`). Each sample runs one for ≥ 150 ms after a process-wide warm-up; " +
    "the variants take turns within a repetition.");
  L.push("- dd-trace-js's encoder loads and runs on all three runtimes, so every runtime's ratios use dd-trace-js measured in " +
    "that same process (`DD_TRACE_NATIVE_SPAN_EVENTS=true`, so span events go to `span_events` as ours do). The table " +
    "above also divides by Node's dd-trace-js figure from the same invocation.");
  L.push("- The library's own work: bench/tape.ts records the exact calls and bytes of `buildTraceChunks` for the span set; " +
    "bench/replay.c replays them from C against the same library, so that figure has no FFI and no JavaScript in it.");
  L.push("");
  return L.join("\n");
}

// ---- chart.svg ---------------------------------------------------------------------

function chart(all) {
  const bars = [
    { key: "batch", label: "batch path", color: "#632ca6" },
    { key: "ours", label: "per-field path", color: "#8f5fd0" },
    { key: "library", label: "library's own work (C)", color: "#b48ee0" },
    { key: "msgpack", label: "@msgpack/msgpack", color: "#3d8ecf" },
    { key: "floor", label: "floor: UTF-8 only", color: "#9aa5b1" },
  ];
  const rts = Object.keys(all);
  const value = (r, set, key) => key === "library" ? lib(r, set)?.ratio : r.micro[set].ratio[key]?.median;
  const max = Math.max(2, ...rts.flatMap((rt) => SETS.flatMap((s) => bars.map((b) => value(all[rt], s, b.key) ?? 0)))) * 1.08;
  const barH = 11, gap = 2, setGap = 10, groupGap = 26, left = 190, width = 800, plotW = width - left - 40;
  const top = 58;
  const groupH = SETS.length * (bars.length * (barH + gap) + setGap);
  const height = top + rts.length * (groupH + groupGap) + 40;
  const x = (v) => Math.round((left + (v / max) * plotW) * 10) / 10;
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  o.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  o.push(`<text x="${left}" y="18" font-size="14" font-weight="bold">Main-thread time per span, relative to dd-trace-js's AgentEncoder (lower is better)</text>`);
  bars.forEach((b, i) => {
    o.push(`<rect x="${left + i * 115}" y="30" width="10" height="10" fill="${b.color}"/><text x="${left + i * 115 + 14}" y="39">${b.label}</text>`);
  });
  for (let t = 0; t <= max; t += 0.5) {
    o.push(`<line x1="${x(t)}" y1="${top - 6}" x2="${x(t)}" y2="${height - 34}" stroke="${t === 1 ? "#333" : "#e3e3e3"}" stroke-width="${t === 1 ? 1.5 : 1}"/>`);
    o.push(`<text x="${x(t)}" y="${height - 20}" text-anchor="middle" fill="#555">${t.toFixed(1)}</text>`);
  }
  o.push(`<text x="${x(1) + 4}" y="${top - 10}" fill="#333">dd-trace-js = 1.0</text>`);
  let y = top;
  for (const rt of rts) {
    o.push(`<text x="8" y="${y + 12}" font-weight="bold" font-size="12">${RT_TEXT[rt]}</text>`);
    const target = TARGETS[rt];
    o.push(`<line x1="${x(target)}" y1="${y}" x2="${x(target)}" y2="${y + groupH - setGap}" stroke="#d9534f" stroke-dasharray="4 3" stroke-width="1.5"/>`);
    o.push(`<text x="${x(target) + 3}" y="${y + groupH - setGap - 2}" fill="#d9534f">target ${target}</text>`);
    for (const set of SETS) {
      o.push(`<text x="${left - 8}" y="${y + 2 * (barH + gap)}" text-anchor="end" fill="#333">${set}</text>`);
      for (const b of bars) {
        const v = value(all[rt], set, b.key);
        if (v !== undefined) {
          o.push(`<rect x="${left}" y="${y}" width="${Math.max(1, Math.round((x(v) - left) * 10) / 10)}" height="${barH}" fill="${b.color}"/>`);
          o.push(`<text x="${x(v) + 4}" y="${y + barH - 3}" fill="#333">${v.toFixed(2)}</text>`);
        }
        y += barH + gap;
      }
      y += setGap;
    }
    y += groupGap;
  }
  o.push(`</svg>`);
  return o.join("\n") + "\n";
}

// ---- main --------------------------------------------------------------------------

const started = Date.now();
const agent = await startAgent("walk");
const fullAgent = await startAgent("full");
const dir = mkdtempSync(join(tmpdir(), "ddffi-bench-"));
const results = {};
const commands = runtimeCommands();
try {
  for (const rt of runtimes) {
    console.log(`\n=== ${rt} ===`);
    const out = join(dir, `${rt}.json`);
    const [cmd, ...pre] = commands[rt];
    const code = await run(cmd, [...pre, join(root, "bench", "main.ts"), "--json", out, "--reps", reps, ...forward], {
      ...process.env,
      BENCH_AGENT_URL: agent.url,
      BENCH_AGENT_FULL_URL: fullAgent.url,
    });
    if (code !== 0) throw new Error(`bench/main.ts failed on ${rt} (exit ${code})`);
    results[rt] = JSON.parse(readFileSync(out, "utf8"));
  }
} finally {
  agent.stop();
  fullAgent.stop();
}
const minutes = (Date.now() - started) / 60000;
console.log(`\n${runtimes.join(", ")}: ${minutes.toFixed(1)} min`);
if (write) {
  // Kept as they are: what follows the section `npm run bench:app` writes (bench/app.mjs), that section
  // included; and the hand-written section on the engine's builds (<!-- engine -->), before the footprint.
  const resultsFile = join(root, "bench", "RESULTS.md");
  const old = readFileSync(resultsFile, "utf8");
  const app = /<!-- bench:app -->\n[\s\S]*$/.exec(old)?.[0] ?? "<!-- bench:app -->\n<!-- /bench:app -->\n";
  const engine = /<!-- engine -->\n[\s\S]*?<!-- \/engine -->\n/.exec(old)?.[0];
  let md = markdown(results, minutes);
  if (engine) md = md.replace("## The library's footprint", `${engine}\n## The library's footprint`);
  writeFileSync(resultsFile, `${md}\n${app}`);
  writeFileSync(join(root, "bench", "chart.svg"), chart(results));
  const readme = join(root, "README.md");
  const text = readFileSync(readme, "utf8");
  const marked = /(<!-- bench:summary -->\n)[\s\S]*?(<!-- \/bench:summary -->)/;
  if (marked.test(text)) writeFileSync(readme, text.replace(marked, (_, a, b) => `${a}${summary(results).join("\n")}\n${b}`));
  console.log("wrote bench/RESULTS.md, bench/chart.svg and the summary in README.md");
}
