/**
 * The Tracer API microbenchmark of `npm run bench:app` (bench/app.mjs), on
 * the runtime running it:
 *
 *   node scripts/runtimes.mjs node|bun|deno bench/tracer-micro.ts --agent URL [--reps N] [--spans N] [--json FILE] [--module URL]
 *
 * One sample: `--spans` times `startSpan`, five `setTag` (three strings, two
 * numbers), `finish` (each span a trace of its own), then a flush to the
 * local agent (bench/agent.mjs), awaited. The same with dd-trace-js's tracer
 * (`init()` without plugins; its exporter's `flush`) in the same process,
 * its samples taken in turn with ours (the order alternating by
 * repetition). Per span: the CPU time of the API calls and of the
 * synchronous part of the flush ("main thread": the process's CPU time
 * while no send is in flight, so the main thread's and the collector's;
 * CPU time, not wall time, so that other processes on a busy machine do
 * not count), and the process's CPU time (every thread: ours encodes and
 * sends off the main thread) up to the flush's end. No forced collection
 * between samples: on Node one made the next sample several times slower
 * (for ours and dd-trace-js alike), which is not what an application sees.
 *
 * @module
 */
import process from "node:process";
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const AGENT = argValue("--agent") ?? "http://127.0.0.1:8126";
/** The package's entry: its sources, or (`--module`, bench/app.mjs on Node) the compiled JavaScript npm users get. */
const { Tracer }: typeof import("../mod.ts") = await import(argValue("--module") ?? "../mod.ts");
const REPS = Number(argValue("--reps") ?? 7);
const SPANS = Number(argValue("--spans") ?? 5000);
const JSON_OUT = argValue("--json");
const runtimeName = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

process.env.DD_INSTRUMENTATION_TELEMETRY_ENABLED = "false";
process.env.DD_REMOTE_CONFIGURATION_ENABLED = "false";
process.env.DD_TRACE_STARTUP_LOGS = "false";
// deno-lint-ignore no-explicit-any
type Any = any;
const require = createRequire(import.meta.url);
const dd: Any = require("dd-trace").init({ url: AGENT, service: "bench", env: "bench", plugins: false, flushInterval: 3_600_000 });
const ours = new Tracer({ url: AGENT, service: "bench", env: "bench", flushIntervalMs: 3_600_000, flushOnExit: false, maxQueuedTraces: 1_000_000, maxQueuedBytes: 1 << 30, flushThresholdBytes: 1 << 30 });

/** The API calls every variant makes on its tracer. */
interface Api {
  startSpan(name: string, options: { resource: string; type: string }): { setTag(k: string, v: unknown): unknown; finish(): void };
  flush(): Promise<void>;
}
const variants: Record<string, Api> = {
  ours: { startSpan: (n, o) => ours.startSpan(n, o), flush: () => ours.flush() },
  ddtrace: {
    startSpan: (n, o) => dd.startSpan(n, { tags: { "resource.name": o.resource, "span.type": o.type } }),
    flush: () => new Promise<void>((resolve) => dd._tracer._exporter.flush(() => resolve())),
  },
};

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** One sample of `api`: ns per span on the main thread, and process CPU ns per span to the flush's end. */
async function sample(api: Api, spans: number): Promise<{ main: number; cpu: number }> {
  const c0 = cpuUs();
  for (let i = 0; i < spans; i++) {
    const span = api.startSpan("db.query", { resource: "SELECT * FROM orders WHERE id = ?", type: "sql" });
    span.setTag("db.system", "postgresql");
    span.setTag("db.name", "shop");
    span.setTag("out.host", "127.0.0.1");
    span.setTag("db.row_count", i & 7);
    span.setTag("out.port", 5432);
    span.finish();
  }
  const flushed = api.flush();
  const c1 = cpuUs();
  await flushed;
  const c2 = cpuUs();
  return { main: ((c1 - c0) * 1e3) / spans, cpu: ((c2 - c0) * 1e3) / spans };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Warm up both (the JIT, the connections to the agent): on Deno our hot
// functions reach V8's top tier only after about 20,000 spans.
const WARMUP = 6;
for (let i = 0; i < WARMUP; i++) for (const api of Object.values(variants)) await sample(api, SPANS);

const got: Record<string, { main: number[]; cpu: number[] }> = { ours: { main: [], cpu: [] }, ddtrace: { main: [], cpu: [] } };
const ratio = { main: [] as number[], cpu: [] as number[] };
for (let r = 0; r < REPS; r++) {
  const order = r % 2 ? ["ddtrace", "ours"] : ["ours", "ddtrace"];
  const s: Record<string, { main: number; cpu: number }> = {};
  for (const name of order) s[name] = await sample(variants[name], SPANS);
  for (const name of order) got[name].main.push(s[name].main), got[name].cpu.push(s[name].cpu);
  ratio.main.push(s.ours.main / s.ddtrace.main);
  ratio.cpu.push(s.ours.cpu / s.ddtrace.cpu);
}
const counters = ours.counters;
if (counters.spansSent < SPANS * (REPS + WARMUP)) throw new Error(`the agent got ${counters.spansSent} of our spans: ${JSON.stringify(counters)}`);
await ours.shutdown();

const stat = (xs: number[]) => ({ median: median(xs), samples: xs });
const result = {
  runtime: runtimeName,
  spans: SPANS,
  reps: REPS,
  ns: {
    ours: { main: stat(got.ours.main), cpu: stat(got.ours.cpu) },
    ddtrace: { main: stat(got.ddtrace.main), cpu: stat(got.ddtrace.cpu) },
  },
  ratio: { main: stat(ratio.main), cpu: stat(ratio.cpu) },
};
console.log(
  `${runtimeName}: tracer API, ns per span (median of ${REPS}): main thread ours ${result.ns.ours.main.median.toFixed(0)}, ` +
    `dd-trace-js ${result.ns.ddtrace.main.median.toFixed(0)}, ratio ${result.ratio.main.median.toFixed(2)}; process CPU ours ` +
    `${result.ns.ours.cpu.median.toFixed(0)}, dd-trace-js ${result.ns.ddtrace.cpu.median.toFixed(0)}, ratio ${result.ratio.cpu.median.toFixed(2)}`,
);
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(result));
process.exit(0);
