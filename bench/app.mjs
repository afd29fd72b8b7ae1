// `npm run bench:app`: what tracing costs an application, on Node, Bun and Deno.
//
//   node bench/app.mjs [node,bun,deno] [--reps N] [--rate R] [--requests N] [--parts app,micro] [--no-write]
//
// 1. app: bench/app-server.ts (node:http, Bun.serve, Deno.serve) untraced,
//    traced by this package and traced by dd-trace-js, one server process at
//    a time, under load from autocannon in this process at a fixed rate over
//    keep-alive connections on loopback; the traced servers send to
//    bench/agent.mjs. The measure is the server process's CPU time (every
//    thread, its `process.cpuUsage()`) per request, over the measured requests
//    after a warm-up. The modes take turns within each repetition (the order
//    rotating), so that the machine's drift reaches them alike; the overhead
//    ratio is (ours - untraced) / (dd-trace-js - untraced) per repetition,
//    and the figures are medians over the repetitions.
// 2. micro: bench/tracer-micro.ts, the Tracer API against dd-trace-js's.
//
// With every runtime and part it writes the "What tracing costs an
// application" section of bench/RESULTS.md and the README's summary of it.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import autocannon from "autocannon";
import { root, runtimeCommands } from "../scripts/runtimes.mjs";

const ALL = ["node", "bun", "deno"];
const args = process.argv.slice(2);
const value = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const only = args.find((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--")));
const runtimes = only ? only.split(",") : ALL;
const REPS = Number(value("--reps", 3));
/** Requests per second, over every connection. */
const RATE = Number(value("--rate", 2000));
/** Measured requests per server, after three times as many for the warm-up. */
const REQUESTS = Number(value("--requests", 10_000));
/**
 * Warm-up requests per server, at twice the measured rate: enough that the
 * JIT compiling of every server is over before its CPU is measured, as it
 * is in a long-running application. With as many as are measured, Bun's
 * JIT threads still spent about 10 µs per measured request on this
 * package's code (JavaScriptCore's top tier compiles late), none after
 * 40,000 (per-thread CPU from /proc).
 */
const WARMUP = 3 * REQUESTS;
const WARMUP_RATE = 2 * RATE;
const CONNECTIONS = 10;
const PARTS = value("--parts", "app,micro").split(",");
const write = runtimes.length === ALL.length && PARTS.length === 2 && !args.includes("--no-write");
const MODES = ["untraced", "ours", "ddtrace"];
const require = createRequire(import.meta.url);
const DD_TRACE_VERSION = JSON.parse(readFileSync(require.resolve("dd-trace/package.json"), "utf8")).version;

/** Targets of the issue: overhead per request ≤ 0.25× dd-trace-js's; the Tracer API ≤ 0.25× dd-trace-js's. */
const OVERHEAD_TARGET = 0.25;
const MICRO_TARGET = 0.25;

const median = (xs) => {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

function startAgent() {
  const child = spawn(process.execPath, [join(root, "bench", "agent.mjs")], { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) resolve({ url: JSON.parse(buf.split("\n")[0]).url, stop: () => child.stdin.end() });
    });
    child.on("error", reject);
  });
}

/**
 * The package's entry as npm users get it on Node: the TypeScript compiled by
 * tsc (tsconfig.build.json, as `build.ts --pack` compiles it), under
 * node_modules/.cache so that its imports resolve as in the checkout, its
 * `lib/` the checkout's. Not the sources through tsx, which runs Node here:
 * tsx's esbuild transform keeps function names (`keepNames`), an
 * `Object.defineProperty` call for every closure created, which npm users
 * never run. Bun and Deno run the TypeScript sources themselves. Returns the
 * `--module` arguments of the runtime's bench processes.
 */
function packageModule(runtime) {
  if (runtime !== "node") return [];
  if (!compiled) {
    const dir = join(root, "node_modules", ".cache", "dd-ffi-bench-app");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json"), "--outDir", dir], { stdio: "inherit" });
    if (tsc.status !== 0) throw new Error(`tsc failed (exit ${tsc.status})`);
    symlinkSync(join(root, "lib"), join(dir, "lib"));
    compiled = pathToFileURL(join(dir, "mod.js")).href;
  }
  return ["--module", compiled];
}
let compiled;

/** Starts bench/app-server.ts; resolves with its pid and port, and a `stop`. */
function startServer(runtime, mode, agent) {
  const [cmd, ...pre] = runtimeCommands()[runtime];
  const child = spawn(cmd, [...pre, join(root, "bench", "app-server.ts"), "--mode", mode, "--agent", agent, ...packageModule(runtime)], {
    cwd: root,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.on("close", resolve));
  /** Waiting for the server's lines on stdout. */
  const waiting = [];
  let buf = "";
  child.stdout.on("data", (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      waiting.shift()?.(line);
    }
  });
  const next = () => new Promise((resolve) => waiting.push(resolve));
  return new Promise((resolve, reject) => {
    next().then((info) => {
      resolve({
        ...info,
        /** The server process's CPU time so far (every thread, µs, from getrusage: `process.cpuUsage()`). */
        cpu: () => (child.stdin.write("\n"), next().then((x) => x.cpu)),
        stop: () => (child.stdin.end(), exited),
      });
    });
    child.on("error", reject);
    exited.then((code) => reject(new Error(`the ${runtime} ${mode} server exited (${code}) before listening`)));
  });
}

/** `amount` requests at `rate` per second; throws unless every answer was a 200. */
async function load(port, amount, rate = RATE) {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/orders`,
    connections: CONNECTIONS,
    overallRate: rate,
    amount,
    timeout: 10,
  });
  const bad = r.non2xx + r.errors + r.timeouts;
  if (bad > 0 || r.requests.total < amount) throw new Error(`${bad} failed requests of ${r.requests.total}`);
  return r;
}

/** The agent's span count so far. */
async function agentSpans(agent) {
  return (await (await fetch(`${agent}/stats`)).json()).spans;
}

/** Spans each request makes: the server span and three children. */
const SPANS_PER_REQUEST = 4;

/** One server, warmed up, then measured: its CPU µs per request. Throws unless a traced server's spans all reached the agent. */
async function measure(runtime, mode, agent) {
  const spans0 = await agentSpans(agent);
  const server = await startServer(runtime, mode, agent);
  let total = 0;
  try {
    await load(server.port, WARMUP, WARMUP_RATE);
    const c0 = await server.cpu();
    const t0 = performance.now();
    const r = await load(server.port, REQUESTS);
    const c1 = await server.cpu();
    const seconds = (performance.now() - t0) / 1e3;
    total = WARMUP + r.requests.total;
    return { cpu: (c1 - c0) / r.requests.total, rate: r.requests.total / seconds, latencyP99: r.latency.p99 };
  } finally {
    await server.stop();
    const got = (await agentSpans(agent)) - spans0;
    const want = mode === "untraced" ? 0 : total * SPANS_PER_REQUEST;
    if (total && got !== want) console.warn(`${runtime} ${mode}: the agent got ${got} spans, ${want} expected`);
  }
}

async function app(runtime, agent) {
  const runs = { untraced: [], ours: [], ddtrace: [] };
  const ratio = [];
  for (let rep = 0; rep < REPS; rep++) {
    const got = {};
    for (let k = 0; k < MODES.length; k++) {
      const mode = MODES[(k + rep) % MODES.length];
      got[mode] = await measure(runtime, mode, agent);
      runs[mode].push(got[mode]);
    }
    ratio.push((got.ours.cpu - got.untraced.cpu) / (got.ddtrace.cpu - got.untraced.cpu));
    console.log(`${runtime} rep ${rep + 1}: CPU µs/request untraced ${f(got.untraced.cpu, 1)}, ours ${f(got.ours.cpu, 1)}, ` +
      `dd-trace-js ${f(got.ddtrace.cpu, 1)}; overhead ratio ${f(ratio[rep])}`);
  }
  const m = (mode, key) => median(runs[mode].map((x) => x[key]));
  return {
    cpu: Object.fromEntries(MODES.map((mode) => [mode, { median: m(mode, "cpu"), samples: runs[mode].map((x) => x.cpu) }])),
    overhead: {
      ours: median(runs.ours.map((x, i) => x.cpu - runs.untraced[i].cpu)),
      ddtrace: median(runs.ddtrace.map((x, i) => x.cpu - runs.untraced[i].cpu)),
    },
    ratio: { median: median(ratio), samples: ratio },
    p99: Object.fromEntries(MODES.map((mode) => [mode, m(mode, "latencyP99")])),
  };
}

function micro(runtime, agent) {
  const dir = mkdtempSync(join(tmpdir(), "bench-app-"));
  const out = join(dir, `${runtime}.json`);
  const [cmd, ...pre] = runtimeCommands()[runtime];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...pre, join(root, "bench", "tracer-micro.ts"), "--agent", agent, "--json", out, "--reps", String(Math.max(REPS, 5)), ...packageModule(runtime)], {
      cwd: root,
      stdio: "inherit",
    });
    child.on("close", (code) => (code === 0 ? resolve(JSON.parse(readFileSync(out, "utf8"))) : reject(new Error(`tracer-micro on ${runtime}: exit ${code}`))));
  });
}

const RT_TEXT = { node: "Node (node:http)", bun: "Bun (Bun.serve)", deno: "Deno (Deno.serve)" };

/** The summary table, for RESULTS.md and the README. */
function summary(all) {
  const L = [];
  L.push("| runtime | server CPU µs/request: untraced | @dd-ffi/trace | dd-trace-js | tracing overhead vs dd-trace-js's | ≤ 0.25 | Tracer API (start, 5 tags, finish, flush) vs dd-trace-js's: main thread | process CPU | ≤ 0.25 |");
  L.push("|---|---:|---:|---:|---:|:-:|---:|---:|:-:|");
  for (const [rt, r] of Object.entries(all)) {
    const a = r.app;
    const mi = r.micro;
    L.push(`| ${RT_TEXT[rt]} | ${f(a?.cpu.untraced.median, 1)} | ${f(a?.cpu.ours.median, 1)} | ${f(a?.cpu.ddtrace.median, 1)} | **${f(a?.ratio.median)}** | ` +
      `${a ? (a.ratio.median <= OVERHEAD_TARGET ? "yes" : "no") : ""} | **${f(mi?.ratio.main.median)}** | ${f(mi?.ratio.cpu.median)} | ` +
      `${mi ? (mi.ratio.main.median <= MICRO_TARGET ? "yes" : "no") : ""} |`);
  }
  return L;
}

function section(all, minutes) {
  const L = [];
  L.push("## What tracing costs an application");
  L.push("");
  L.push(`Written by \`npm run bench:app\` (bench/app.mjs) on ${new Date().toISOString().slice(0, 10)}, dd-trace ${DD_TRACE_VERSION}, ` +
    `${REPS} repetitions, ${minutes.toFixed(1)} minutes; medians over the repetitions.`);
  L.push("");
  L.push(...summary(all));
  L.push("");
  L.push(`The server (bench/app-server.ts) answers a small JSON body after three child spans, one of them database-like with ` +
    `five tags. Load: autocannon ${CONNECTIONS} keep-alive connections at ${RATE} requests/s from another process on loopback; ` +
    `${WARMUP} warm-up requests (at ${WARMUP_RATE} requests/s), then ${REQUESTS} measured. CPU is the server process's, every thread ` +
    `(for the traced ones: the tracer, its encoding and its sends), its \`process.cpuUsage()\` (getrusage). @dd-ffi/trace: \`instrumentNodeHttp\` on Node, ` +
    "`traceHandler` on Bun and Deno, children with `tracer.trace`. dd-trace-js: `init()` with its http plugin on Node; its " +
    "plugin does not see `Bun.serve` or `Deno.serve`, so there its server span comes from its `tracer.trace` with the tags the " +
    "plugin sets. Both send to bench/agent.mjs. On Node this package runs as npm users get it, its TypeScript compiled by tsc " +
    "(not through tsx, whose transform adds a `defineProperty` call to every closure made); Bun and Deno run its sources. The " +
    "library is the one in `lib/build` at the time of the run. The overhead ratio is (traced - untraced) / (dd-trace-js - untraced), per " +
    "repetition, then the median.");
  L.push("");
  L.push("| runtime | overhead µs/request: @dd-ffi/trace | dd-trace-js | ratio per repetition | p99 latency ms: untraced | ours | dd-trace-js |");
  L.push("|---|---:|---:|---|---:|---:|---:|");
  for (const [rt, r] of Object.entries(all)) {
    const a = r.app;
    if (!a) continue;
    L.push(`| ${RT_TEXT[rt]} | ${f(a.overhead.ours, 1)} | ${f(a.overhead.ddtrace, 1)} | ${a.ratio.samples.map((x) => f(x)).join(", ")} | ` +
      `${f(a.p99.untraced, 0)} | ${f(a.p99.ours, 0)} | ${f(a.p99.ddtrace, 0)} |`);
  }
  L.push("");
  L.push("The Tracer API (bench/tracer-micro.ts): per span, `startSpan`, five `setTag` (three strings, two numbers), `finish`, " +
    "each span a trace of its own; 5,000 spans per sample, then a flush to the agent, awaited. dd-trace-js's tracer (`init()`, " +
    "no plugins, its exporter's `flush`) in the same process, its samples in turn with ours. Main thread: the CPU time of the " +
    "API calls and the synchronous part of the flush (the process's, while no send is in flight); process CPU: every " +
    "thread, to the flush's end. ns per span:");
  L.push("");
  L.push("| runtime | main thread: ours | dd-trace-js | ratio | process CPU: ours | dd-trace-js | ratio |");
  L.push("|---|---:|---:|---:|---:|---:|---:|");
  for (const [rt, r] of Object.entries(all)) {
    const m = r.micro;
    if (!m) continue;
    L.push(`| ${rt} | ${f(m.ns.ours.main.median, 0)} | ${f(m.ns.ddtrace.main.median, 0)} | ${f(m.ratio.main.median)} | ` +
      `${f(m.ns.ours.cpu.median, 0)} | ${f(m.ns.ddtrace.cpu.median, 0)} | ${f(m.ratio.cpu.median)} |`);
  }
  L.push("");
  return L;
}

/** Replaces the text between `<!-- name -->` and `<!-- /name -->` in `file`. */
function replaceMarked(file, name, lines) {
  const text = readFileSync(file, "utf8");
  const marked = new RegExp(`(<!-- ${name} -->\\n)[\\s\\S]*?(<!-- /${name} -->)`);
  if (!marked.test(text)) throw new Error(`${file} has no <!-- ${name} --> section`);
  writeFileSync(file, text.replace(marked, (_, a, b) => `${a}${lines.join("\n")}\n${b}`));
}

const t0 = performance.now();
const agent = await startAgent();
const results = {};
try {
  for (const rt of runtimes) {
    results[rt] = {};
    if (PARTS.includes("app")) results[rt].app = await app(rt, agent.url);
    if (PARTS.includes("micro")) results[rt].micro = await micro(rt, agent.url);
  }
} finally {
  agent.stop();
}
const minutes = (performance.now() - t0) / 60_000;
const lines = section(results, minutes);
console.log("\n" + lines.join("\n"));
if (write) {
  replaceMarked(join(root, "bench", "RESULTS.md"), "bench:app", lines);
  replaceMarked(join(root, "README.md"), "bench:app-summary", summary(results));
  console.log("wrote the app section of bench/RESULTS.md and its summary in README.md");
}
