/**
 * The benchmark, on the runtime running it (Node, Bun or Deno):
 *
 *   node scripts/runtimes.mjs node|bun|deno bench/main.ts [--json FILE] [--parts micro,library,e2e,e2e-full,memory] [--reps N]
 *
 * 1. micro:   main-thread ns per span to turn plain span objects into a
 *             native trace chunks handle (`buildTraceChunks` + freeing the
 *             handle, everything up to the send), against dd-trace-js's v0.4
 *             `AgentEncoder` (`encode(chunk)` per chunk, then `makePayload()`)
 *             and @msgpack/msgpack on the same spans, in this process; and
 *             the floor: UTF-8-encoding every string of the spans into one
 *             buffer. Also the binding with one lever off at a time.
 * 2. library: the native library's own work for the same calls, replayed from C
 *             (bench/replay.c) with no FFI: what no binding can go under.
 * 3. e2e:     spans per second from `send` to checked at a local agent
 *             (bench/agent.mjs, its own Node process), against dd-trace-js's
 *             encoder + node:http to the same agent. `e2e`: the agent walks
 *             every msgpack item of each payload without building objects;
 *             `e2e-full`: it decodes each payload into objects with
 *             @msgpack/msgpack, which makes the agent the bottleneck of both
 *             senders on 2 CPUs.
 * 4. memory:  RSS after 1,000,000 spans sent in chunks of 100 against RSS
 *             after the first 100,000, in child processes: exporters closed
 *             explicitly, and exporters only dropped (finalizers free them).
 *
 * Every ratio divides by the dd-trace-js figure of the same repetition in
 * the same process (in the micro part, by a dd-trace-js sample taken right
 * next to the variant's); medians over the repetitions. Prints a table; `--json`
 * writes everything for bench/run.mjs.
 *
 * @module
 */
import process from "node:process";
import { spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { Agent as HttpAgent, request } from "node:http";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Encoder } from "@msgpack/msgpack";
import { native as loadNative } from "../ffi/load.ts";
import type { Native } from "../ffi/native.ts";
import { Binding, type BindingOptions, encodeUtf8, getBinding } from "../src/binding.ts";
import { buildTraceChunks } from "../src/build.ts";
import { TraceExporter } from "../src/exporter.ts";
import { BatchWriter } from "../src/batch/writer.ts";
import { type Fixture, forEachString, makeFixture, SET_NAMES, type SetName } from "./fixtures.ts";
import { recordTape } from "./tape.ts";

// dd-trace's encoder reads its config when constructed: native span events
// (the `span_events` field, as this package sends them) instead of a JSON
// string in meta, and no telemetry or remote configuration.
process.env.DD_TRACE_NATIVE_SPAN_EVENTS = "true";
process.env.DD_INSTRUMENTATION_TELEMETRY_ENABLED = "false";
process.env.DD_REMOTE_CONFIGURATION_ENABLED = "false";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
// deno-lint-ignore no-explicit-any
type Any = any;
const { AgentEncoder } = require("dd-trace/packages/dd-trace/src/encode/0.4.js");
const DD_TRACE_VERSION: string = JSON.parse(readFileSync(require.resolve("dd-trace/package.json"), "utf8")).version;

const runtimeName = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

// ---- arguments ---------------------------------------------------------------

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const PARTS = (argValue("--parts") ?? "micro,library,e2e,e2e-full,memory,footprint").split(",");
const REPS = Number(argValue("--reps") ?? 7);
const JSON_OUT = argValue("--json");
/** Minimum time of one micro sample, ms. */
const SAMPLE_MS = Number(argValue("--sample-ms") ?? 150);
/** Spans per end-to-end repetition. */
const E2E_SPANS = Number(argValue("--e2e-spans") ?? 60_000);
/** Sends in flight at once, end to end (ours and dd-trace's alike). */
const IN_FLIGHT = 4;

// ---- statistics ----------------------------------------------------------------

export interface Stat {
  median: number;
  samples: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function stat(samples: number[]): Stat {
  return { median: median(samples), samples };
}

/** Runs `f` for at least `ms`; returns ns per span. */
function sample(f: () => void, spans: number, ms: number): number {
  // A full collection first, so that no variant pays for the garbage of the one before it (measured on Bun: the
  // writer ran about 15% slower right after dd-trace-js's encoder than after a collection).
  gc();
  let n = 0;
  const t0 = performance.now();
  let t: number;
  do {
    f();
    n++;
  } while ((t = performance.now()) - t0 < ms);
  return ((t - t0) * 1e6) / (n * spans);
}

// ---- 1. micro ------------------------------------------------------------------

type Variant = { name: string; label: string; run: () => void };

function variants(fx: Fixture, native: Native): Variant[] {
  const ours = (b: Binding) => () => {
    const chunks = buildTraceChunks(b, fx.ours);
    b.symbols.ddog_tracer_trace_chunks_free(chunks);
  };
  const ablation = (options: BindingOptions) => ours(new Binding(native, options));
  const encoder = new AgentEncoder({ flush() {} });
  const msgpack = new Encoder({ useBigInt64: true });
  const buffer = new Uint8Array(1 << 22);
  const textEncoder = new TextEncoder();
  let pos = 0;
  const viaLoop = (s: string) => {
    pos += encodeUtf8(buffer, pos, s);
  };
  const viaEncodeInto = (s: string) => {
    pos += textEncoder.encodeInto(s, buffer.subarray(pos)).written;
  };
  const floor = (visit: (s: string) => void) => () => {
    pos = 0;
    for (const chunk of fx.ours) for (const span of chunk) forEachString(span, visit);
  };
  const writer = new BatchWriter(native);
  const list: Variant[] = [
    // What `send` does on the JS thread on the batch path: write the batch (the decode and the span building run on the send thread).
    { name: "batch", label: "@dd-ffi/trace, batch path", run: () => void writer.write(fx.ours) },
    { name: "ours", label: "@dd-ffi/trace, per-field path", run: ours(getBinding()) },
    { name: "ddtrace", label: "dd-trace-js AgentEncoder", run: () => {
      for (const chunk of fx.ddtrace) encoder.encode(chunk);
      encoder.makePayload();
    } },
    { name: "msgpack", label: "@msgpack/msgpack", run: () => msgpack.encode(fx.msgpack) },
    { name: "floorLoop", label: "floor (charCodeAt loop)", run: floor(viaLoop) },
    { name: "floorEncodeInto", label: "floor (TextEncoder.encodeInto)", run: floor(viaEncodeInto) },
    { name: "noStringCache", label: "lever off: no string cache", run: ablation({ stringCache: false }) },
    { name: "cacheValues", label: "lever on: meta values cached too", run: ablation({ cacheValues: true }) },
  ];
  return list;
}

/**
 * Variants measured in a second phase, after all the others: number words
 * reach the same call sites with numbers instead of bigints, which would
 * change what the JIT does for the shipped binding if they took turns.
 */
function lateVariants(fx: Fixture, native: Native): Variant[] {
  if (native.wordType !== "bigint") return [];
  const b = new Binding(native, { wordType: "number" });
  return [{ name: "numberWords", label: "lever off: number words (Deno slow calls)", run: () => {
    const chunks = buildTraceChunks(b, fx.ours);
    b.symbols.ddog_tracer_trace_chunks_free(chunks);
  } }];
}

interface MicroSet {
  spans: number;
  labels: Record<string, string>;
  /** ns per span. */
  ns: Record<string, Stat>;
  /** Each variant's ns divided by dd-trace's of the same repetition. */
  ratio: Record<string, Stat>;
}

function micro(fx: Fixture, native: Native, late: boolean): MicroSet {
  const list = late ? [variants(fx, native).find((v) => v.name === "ddtrace")!, ...lateVariants(fx, native)] : variants(fx, native);
  for (const v of list) sample(v.run, fx.spans, 400); // warm up every path first
  const ns: Record<string, number[]> = {};
  const ratio: Record<string, number[]> = {};
  for (const v of list) (ns[v.name] = []), (ratio[v.name] = []);
  if (!late) (ns.floor = []), (ratio.floor = []);
  const dd = list.find((v) => v.name === "ddtrace")!;
  for (let r = 0; r < REPS; r++) {
    const got: Record<string, number> = {};
    const ddNext: Record<string, number> = {};
    // Rotate the order, so no variant always runs right after another; each variant is paired with a
    // dd-trace-js sample taken right next to it (before it on even repetitions, after it on odd ones), and
    // its ratio divides by that one: this machine's speed drifts within seconds, so the ratio of two
    // samples far apart in time measures the drift as much as the code.
    for (let k = 0; k < list.length; k++) {
      const v = list[(k + r) % list.length];
      if (v === dd) continue;
      if (r % 2 === 0) ddNext[v.name] = sample(dd.run, fx.spans, SAMPLE_MS);
      got[v.name] = sample(v.run, fx.spans, SAMPLE_MS);
      if (r % 2 === 1) ddNext[v.name] = sample(dd.run, fx.spans, SAMPLE_MS);
    }
    const ddSamples = Object.values(ddNext);
    got.ddtrace = median(ddSamples);
    if (!late) {
      const loop = got.floorLoop < got.floorEncodeInto;
      got.floor = loop ? got.floorLoop : got.floorEncodeInto;
      ddNext.floor = loop ? ddNext.floorLoop : ddNext.floorEncodeInto;
    }
    for (const name of Object.keys(got)) {
      ns[name].push(got[name]);
      ratio[name].push(name === "ddtrace" ? 1 : got[name] / ddNext[name]);
    }
  }
  const labels: Record<string, string> = late ? {} : { floor: "floor (UTF-8 of every string)" };
  for (const v of list) labels[v.name] = v.label;
  const out: MicroSet = { spans: fx.spans, labels, ns: {}, ratio: {} };
  for (const name of Object.keys(ns)) {
    out.ns[name] = stat(ns[name]);
    out.ratio[name] = stat(ratio[name]);
  }
  return out;
}

// ---- 2. the library's own work, replayed from C -------------------------------

interface LibrarySet {
  ns: Stat;
  /** Divided by this run's dd-trace median. */
  ratio?: number;
}

function libraryFloor(fixtures: Fixture[], native: Native): Record<string, LibrarySet> | { error: string } {
  const dir = mkdtempSync(join(tmpdir(), "ddffi-bench-"));
  const exe = join(dir, "replay");
  const cc = process.env.CC || "cc";
  const built = spawnSync(cc, ["-O2", "-o", exe, join(here, "replay.c"), "-ldl"], { encoding: "utf8" });
  if (built.status !== 0) return { error: `could not compile bench/replay.c with ${cc}: ${built.stderr || built.error}` };
  const out: Record<string, LibrarySet> = {};
  for (const fx of fixtures) {
    const tape = join(dir, `${fx.name}.tape`);
    writeFileSync(tape, recordTape(native, fx.ours));
    const run = spawnSync(exe, [native.path, tape, String(fx.spans), String(REPS), String(SAMPLE_MS)], { encoding: "utf8" });
    if (run.status !== 0) return { error: `replay failed: ${run.stderr}` };
    const r = JSON.parse(run.stdout);
    out[fx.name] = { ns: { median: r.median, samples: r.samples } };
  }
  return out;
}

// ---- 3. end to end --------------------------------------------------------------

/**
 * An agent's URL: $BENCH_AGENT_URL (`decode` "walk": it walks every msgpack item without building
 * objects) or $BENCH_AGENT_FULL_URL ("full": it decodes into objects), else a fresh bench/agent.mjs
 * under Node.
 */
async function startAgent(decode: "walk" | "full"): Promise<{ url: string; stop: () => void }> {
  const given = decode === "walk" ? process.env.BENCH_AGENT_URL : process.env.BENCH_AGENT_FULL_URL;
  if (given) return { url: given, stop: () => {} };
  const node = runtimeName === "node" ? process.execPath : process.env.NODE ?? "node";
  const child = spawn(node, [join(here, "agent.mjs"), "--decode", decode], { stdio: ["pipe", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Uint8Array) => {
      buf += new TextDecoder().decode(d);
      const line = buf.split("\n")[0];
      if (buf.includes("\n")) resolve(JSON.parse(line).url);
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`bench agent exited with ${code}`)));
  });
  return { url, stop: () => child.stdin!.end() };
}

async function agentStats(url: string): Promise<{ spans: number; errors: number; cpuMicros: number }> {
  const res = await fetch(`${url}/stats`);
  return await res.json();
}

/** Keeps up to IN_FLIGHT sends going until `sends` were made. */
async function pump(sends: number, send: () => Promise<unknown>): Promise<void> {
  const pending = new Set<Promise<unknown>>();
  for (let i = 0; i < sends; i++) {
    while (pending.size >= IN_FLIGHT) await Promise.race(pending);
    const p: Promise<unknown> = send().finally(() => pending.delete(p));
    pending.add(p);
  }
  await Promise.all(pending);
}

interface E2eSample {
  /** Spans per second. */
  rate: number;
  /** Main-thread time inside the synchronous part of the send calls per span, µs. */
  main: number;
  /** CPU time of this process (every thread) per span, µs. */
  cpu: number;
  /** CPU time of the agent per span, µs. */
  agentCpu: number;
}

/** Sends `fx` (E2E_SPANS in all) with `send`; spans per second, and CPU per span here and at the agent. */
async function e2eRun(url: string, fx: Fixture, send: () => Promise<unknown>): Promise<E2eSample> {
  const sends = Math.ceil(E2E_SPANS / fx.spans);
  const spans = sends * fx.spans;
  const a0 = await agentStats(url);
  let main = 0;
  const timed = () => {
    const t = performance.now();
    const p = send();
    main += performance.now() - t;
    return p;
  };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await pump(sends, timed);
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const a1 = await agentStats(url);
  return { rate: spans / seconds, main: (main * 1000) / spans, cpu: (c.user + c.system) / spans, agentCpu: (a1.cpuMicros - a0.cpuMicros) / spans };
}

function ddTraceSender(url: string): (fx: Fixture) => Promise<void> {
  const { hostname, port } = new URL(url);
  const agent = new HttpAgent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const encoder = new AgentEncoder({ flush() {} });
  return (fx) => {
    for (const chunk of fx.ddtrace) encoder.encode(chunk);
    const payload: Uint8Array = encoder.makePayload();
    return new Promise<void>((resolve, reject) => {
      const req = request({
        hostname, port, agent, method: "PUT", path: "/v0.4/traces",
        headers: {
          "Content-Type": "application/msgpack",
          "Content-Length": String(payload.length),
          "X-Datadog-Trace-Count": String(fx.ddtrace.length),
          "Datadog-Meta-Lang": "nodejs",
          "Datadog-Meta-Lang-Version": process.version,
          "Datadog-Meta-Lang-Interpreter": runtimeName,
          "Datadog-Meta-Tracer-Version": DD_TRACE_VERSION,
        },
      }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`agent answered ${res.statusCode}`))));
      });
      req.on("error", reject);
      req.end(payload);
    });
  };
}

interface E2eSet {
  /** Spans per second: the batch path (`ours`), the per-field path, dd-trace-js. */
  ours: Stat;
  fields: Stat;
  ddtrace: Stat;
  /** ours / dd-trace, per repetition (and the per-field path's). */
  ratio: Stat;
  fieldsRatio: Stat;
  /** The batch path with libdatadog's client-side stats (`computeStats`): spans/s, over dd-trace-js's. */
  stats: Stat;
  statsRatio: Stat;
  /** Its CPU µs per span (this process, every thread), and over dd-trace-js's + node:http's. */
  statsCpu: Stat;
  statsCpuRatio: Stat;
  /** CPU µs per span: this process (all threads) and the agent. */
  cpu: { ours: Stat; fields: Stat; ddtrace: Stat; oursAgent: Stat; fieldsAgent: Stat; ddtraceAgent: Stat };
  /** Main-thread µs per span inside the send calls (dd-trace-js: encode, makePayload, http.request). */
  main: { ours: Stat; fields: Stat; ddtrace: Stat };
}

async function e2e(url: string, fixtures: Fixture[]): Promise<Record<string, E2eSet>> {
  const exporter = new TraceExporter({ url });
  const fieldsExporter = new TraceExporter({ url, sendPath: "fields" });
  // libdatadog's client-side stats: on once the agent's /info (bench/agent.mjs) lists /v0.6/stats.
  const statsExporter = new TraceExporter({ url, computeStats: true });
  if (exporter.sendPath !== "batch") throw new Error("the batch path is not available: is lib/build current (npm run build)?");
  const ddSend = ddTraceSender(url);
  const out: Record<string, E2eSet> = {};
  const before = await agentStats(url);
  let expected = 0;
  for (const fx of fixtures) {
    const runners = [
      () => e2eRun(url, fx, () => exporter.send(fx.ours)),
      () => e2eRun(url, fx, () => fieldsExporter.send(fx.ours)),
      () => e2eRun(url, fx, () => ddSend(fx)),
      () => e2eRun(url, fx, () => statsExporter.send(fx.ours)),
    ];
    const per = Math.ceil(E2E_SPANS / fx.spans) * fx.spans;
    // Warm up every path (and the agent) first.
    for (const run of runners) await run();
    expected += runners.length * per;
    const got: E2eSample[][] = runners.map(() => []);
    for (let r = 0; r < Math.max(5, Math.min(REPS, 7)); r++) {
      // Rotate the order, so no path always runs right after another.
      for (let k = 0; k < runners.length; k++) {
        const i = (k + r) % runners.length;
        got[i].push(await runners[i]());
      }
      expected += runners.length * per;
    }
    const [a, f, b, st] = got;
    out[fx.name] = {
      stats: stat(st.map((x) => x.rate)),
      statsRatio: stat(st.map((x, i) => x.rate / b[i].rate)),
      statsCpu: stat(st.map((x) => x.cpu)),
      statsCpuRatio: stat(st.map((x, i) => x.cpu / b[i].cpu)),
      ours: stat(a.map((x) => x.rate)),
      fields: stat(f.map((x) => x.rate)),
      ddtrace: stat(b.map((x) => x.rate)),
      ratio: stat(a.map((x, i) => x.rate / b[i].rate)),
      fieldsRatio: stat(f.map((x, i) => x.rate / b[i].rate)),
      cpu: {
        ours: stat(a.map((x) => x.cpu)),
        fields: stat(f.map((x) => x.cpu)),
        ddtrace: stat(b.map((x) => x.cpu)),
        oursAgent: stat(a.map((x) => x.agentCpu)),
        fieldsAgent: stat(f.map((x) => x.agentCpu)),
        ddtraceAgent: stat(b.map((x) => x.agentCpu)),
      },
      main: { ours: stat(a.map((x) => x.main)), fields: stat(f.map((x) => x.main)), ddtrace: stat(b.map((x) => x.main)) },
    };
  }
  await exporter.close();
  await fieldsExporter.close();
  await statsExporter.close();
  const after = await agentStats(url);
  if (after.errors !== before.errors || after.spans - before.spans !== expected) {
    throw new Error(`the agent decoded ${after.spans - before.spans} spans (${after.errors - before.errors} errors), expected ${expected}`);
  }
  return out;
}

// ---- 4. memory ------------------------------------------------------------------

const MEMORY_SPANS = 1_000_000;
const MEMORY_CHECKPOINT = 100_000;

interface MemoryRun {
  variant: string;
  /** RSS in bytes after each 100,000 spans (after a GC and a pause for finalizers). */
  checkpoints: { spans: number; rss: number; rssBeforeGc: number }[];
  /** Native objects alive at the end (bundled library only). */
  liveObjects?: number;
  seconds: number;
}

function gc(): void {
  const g = globalThis as Any;
  if (typeof g.Bun?.gc === "function") g.Bun.gc(true);
  else if (typeof g.gc === "function") g.gc();
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 30));
  }
}

/** The child process of one memory variant: "explicit" closes each exporter, "finalizers" only drops it. */
async function memoryChild(variant: string, url: string): Promise<MemoryRun> {
  const fx = makeFixture("basic", 10, 100); // 10 trace chunks of 100 spans per send
  const checkpoints: MemoryRun["checkpoints"] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < MEMORY_SPANS) {
    // A new exporter per 100,000 spans: closed explicitly, or only dropped.
    let exporter: TraceExporter | undefined = new TraceExporter({ url });
    await pump(MEMORY_CHECKPOINT / fx.spans, () => exporter!.send(fx.ours));
    if (variant === "explicit") await exporter.close();
    exporter = undefined;
    sent += MEMORY_CHECKPOINT;
    const rssBeforeGc = process.memoryUsage().rss;
    await settle();
    checkpoints.push({ spans: sent, rss: process.memoryUsage().rss, rssBeforeGc });
  }
  return { variant, checkpoints, liveObjects: getBinding().liveObjects(), seconds: (performance.now() - t0) / 1000 };
}

function selfCommand(): string[] {
  const file = fileURLToPath(import.meta.url);
  if (runtimeName === "deno") return [process.execPath, "run", "-A", "--v8-flags=--expose-gc", file];
  if (runtimeName === "bun") return [process.execPath, file];
  return [process.execPath, "--expose-gc", "--import", "tsx", file];
}

/**
 * End to end in a fresh process of this runtime: the micro phase's levers (number words on
 * Deno, no string cache) run the shipped binding's code with other argument types, which
 * deoptimizes its call sites for the rest of a process (measured: Deno's per-field path spent
 * 16 µs of CPU per span end to end after the micro phase, 5.5 µs in a fresh process), and the
 * order of the phases changed the micro ratios too.
 */
/** What bench/footprint.ts measures, in a fresh process of this runtime (median of 3 runs). */
interface Footprint {
  loadMs: number;
  firstSendMs: number;
  threadsBefore: number;
  threadsIdle: number;
  rssBefore: number;
  rssIdle: number;
  libraryBytes: number;
  libraryGzipBytes: number;
}

function footprint(url: string): Footprint {
  const [cmd, ...args] = selfCommand();
  const file = new URL("./footprint.ts", import.meta.url).pathname;
  const runs: Footprint[] = [];
  for (let i = 0; i < 3; i++) {
    const r = spawnSync(cmd, [...args.slice(0, -1), file], { encoding: "utf8", env: { ...process.env, BENCH_AGENT_URL: url } });
    if (r.status !== 0) throw new Error(`footprint child failed: ${r.stderr}`);
    runs.push(JSON.parse(r.stdout.trim().split("\n").pop()!));
  }
  const med = (k: keyof Footprint) => median(runs.map((x) => x[k]));
  return Object.fromEntries(Object.keys(runs[0]).map((k) => [k, med(k as keyof Footprint)])) as unknown as Footprint;
}

function e2eInChild(url: string): Record<string, E2eSet> {
  const [cmd, ...args] = selfCommand();
  const r = spawnSync(cmd, [...args, "--e2e-child", "--reps", String(REPS), "--e2e-spans", String(E2E_SPANS)], {
    encoding: "utf8",
    env: { ...process.env, BENCH_AGENT_URL: url },
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`end to end child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

function memory(url: string): MemoryRun[] {
  const runs: MemoryRun[] = [];
  for (const variant of ["explicit", "finalizers"]) {
    const [cmd, ...args] = selfCommand();
    const r = spawnSync(cmd, [...args, "--memory-child", variant], {
      encoding: "utf8",
      env: { ...process.env, BENCH_AGENT_URL: url },
      maxBuffer: 1 << 24,
    });
    if (r.status !== 0) throw new Error(`memory child (${variant}) failed: ${r.stderr}`);
    const line = r.stdout.trim().split("\n").pop()!;
    runs.push(JSON.parse(line));
  }
  return runs;
}

// ---- report ---------------------------------------------------------------------

export interface Results {
  runtime: { name: string; version: string; ffi: string; cpus: number };
  ddTraceVersion: string;
  reps: number;
  micro?: Record<string, MicroSet>;
  library?: Record<string, LibrarySet> | { error: string };
  /** End to end against the walking agent (the targets) and against the agent that decodes into objects. */
  e2e?: Record<string, E2eSet>;
  e2eFull?: Record<string, E2eSet>;
  footprint?: Footprint;
  memory?: MemoryRun[];
}

const f0 = (x: number) => x.toFixed(0);
const f2 = (x: number) => x.toFixed(2);
const mib = (x: number) => (x / 2 ** 20).toFixed(1);

function print(r: Results): void {
  const out: string[] = [];
  out.push(`\n${r.runtime.name} ${r.runtime.version} (${r.runtime.ffi}), dd-trace ${r.ddTraceVersion}, ${r.reps} repetitions, medians`);
  if (r.micro) {
    out.push("\nmain thread per span          " + SET_NAMES.map((s) => `${s.padStart(9)} ns   ratio`).join("   "));
    const names = Object.keys(r.micro.basic.ns);
    for (const name of names) {
      const row = SET_NAMES.map((s) => `${f0(r.micro![s].ns[name].median).padStart(12)} ${f2(r.micro![s].ratio[name].median).padStart(7)}`);
      out.push(`${r.micro.basic.labels[name].padEnd(30).slice(0, 30)}${row.join("   ")}`);
    }
    if (r.library && !("error" in r.library)) {
      const lib = r.library as Record<string, LibrarySet>;
      const row = SET_NAMES.map((s) => `${f0(lib[s].ns.median).padStart(12)} ${f2(lib[s].ratio ?? NaN).padStart(7)}`);
      out.push(`${"library's own work (C replay)".padEnd(30)}${row.join("   ")}`);
    }
  }
  if (r.library && "error" in r.library) out.push(`library floor: ${r.library.error}`);
  for (const [title, e2e] of [["walking agent", r.e2e], ["decoding agent", r.e2eFull]] as const) {
    if (!e2e) continue;
    out.push(`\nend to end (${title}), spans/s  ours      dd-trace+node:http   ratio   CPU µs/span here (ours, dd) agent (ours, dd)`);
    for (const s of SET_NAMES) {
      const e = e2e[s];
      if (e) {
        out.push(`${s.padEnd(24)}${f0(e.ours.median).padStart(10)} ${f0(e.ddtrace.median).padStart(20)} ${f2(e.ratio.median).padStart(7)}   ` +
          `${f2(e.cpu.ours.median)}, ${f2(e.cpu.ddtrace.median)}   ${f2(e.cpu.oursAgent.median)}, ${f2(e.cpu.ddtraceAgent.median)}`);
        out.push(`${(s + " per-field").padEnd(24)}${f0(e.fields.median).padStart(10)} ${"".padStart(20)} ${f2(e.fieldsRatio.median).padStart(7)}   ` +
          `${f2(e.cpu.fields.median)}        ${f2(e.cpu.fieldsAgent.median)}      main thread µs/span: batch ${f2(e.main.ours.median)}, per-field ${f2(e.main.fields.median)}, dd ${f2(e.main.ddtrace.median)}`);
      }
    }
  }
  if (r.footprint) {
    const p = r.footprint;
    out.push(`\nfootprint: load ${f2(p.loadMs)} ms, load + first send ${f2(p.firstSendMs)} ms; idle: threads ${p.threadsBefore} → ${p.threadsIdle}, ` +
      `RSS ${mib(p.rssBefore)} → ${mib(p.rssIdle)} MiB; library ${(p.libraryBytes / 2 ** 20).toFixed(1)} MiB, gzip ${(p.libraryGzipBytes / 2 ** 20).toFixed(2)} MiB`);
  }
  if (r.memory) {
    out.push("\nmemory, RSS MiB        at 100k   at 1M   growth   live native objects");
    for (const m of r.memory) {
      const a = m.checkpoints[0].rss, b = m.checkpoints[m.checkpoints.length - 1].rss;
      out.push(`${m.variant.padEnd(20)}${mib(a).padStart(10)}${mib(b).padStart(8)}${mib(b - a).padStart(9)}   ${m.liveObjects ?? "n/a"}`);
    }
  }
  console.log(out.join("\n"));
}

// ---- main -----------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.argv.includes("--e2e-child")) {
    const fixtures = SET_NAMES.map((name) => makeFixture(name));
    console.log(JSON.stringify(await e2e(process.env.BENCH_AGENT_URL!, fixtures)));
    process.exit(0);
  }
  const childVariant = argValue("--memory-child");
  if (childVariant) {
    const run = await memoryChild(childVariant, process.env.BENCH_AGENT_URL!);
    console.log(JSON.stringify(run));
    process.exit(0);
  }
  const native = loadNative();
  const results: Results = {
    runtime: {
      name: runtimeName,
      version: native.runtime.version,
      ffi: runtimeName === "node" ? "koffi" : runtimeName === "bun" ? "bun:ffi" : "Deno.dlopen",
      cpus: cpus().length,
    },
    ddTraceVersion: DD_TRACE_VERSION,
    reps: REPS,
  };
  const fixtures = SET_NAMES.map((name) => makeFixture(name));
  if (PARTS.includes("micro")) {
    results.micro = {};
    for (const fx of fixtures) results.micro[fx.name] = micro(fx, native, false);
    // The second phase; its dd-trace figures are its own denominators, the first phase's are kept.
    for (const fx of fixtures) {
      const m = micro(fx, native, true);
      for (const name of Object.keys(m.ns)) {
        if (name === "ddtrace") continue;
        results.micro[fx.name].ns[name] = m.ns[name];
        results.micro[fx.name].ratio[name] = m.ratio[name];
        results.micro[fx.name].labels[name] = m.labels[name];
      }
    }
  }
  if (PARTS.includes("e2e") || PARTS.includes("memory") || PARTS.includes("footprint")) {
    const agent = await startAgent("walk");
    try {
      if (PARTS.includes("footprint")) results.footprint = footprint(agent.url);
      if (PARTS.includes("e2e")) results.e2e = e2eInChild(agent.url);
      if (PARTS.includes("memory")) results.memory = await memory(agent.url);
    } finally {
      agent.stop();
    }
  }
  if (PARTS.includes("e2e-full")) {
    const agent = await startAgent("full");
    try {
      results.e2eFull = e2eInChild(agent.url);
    } finally {
      agent.stop();
    }
  }
  if (PARTS.includes("library")) {
    const lib = libraryFloor(fixtures, native);
    if (!("error" in lib) && results.micro) {
      for (const s of SET_NAMES) (lib as Record<string, LibrarySet>)[s].ratio = (lib as Record<string, LibrarySet>)[s].ns.median / results.micro[s].ns.ddtrace.median;
    }
    results.library = lib;
  }
  print(results);
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(results, null, 1));
  process.exit(0);
}

await main();

export type { SetName };
