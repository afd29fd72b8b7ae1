/**
 * What the native library costs before any span: run by bench/main.ts's
 * `footprint` part in a fresh process of each runtime.
 *
 * - cold load + first send: from just before `new TraceExporter` (the first
 *   one loads the library) to the agent's answer to a one-span send, ms;
 * - idle: the process's threads and RSS (Linux `/proc/self/status`) before
 *   the library is loaded, and with one exporter open and idle for 2 s after
 *   its first send (libdatadog's runtime threads, its agent-info poller);
 * - the library file: its size and its gzip -9 size, bytes.
 *
 * Prints one JSON line.
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { gzipSync } from "node:zlib";
import { TraceExporter } from "../mod.ts";
import { native } from "../ffi/load.ts";

function status(): { threads: number; rss: number } {
  const text = readFileSync("/proc/self/status", "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return { threads: field("Threads"), rss: field("VmRSS") * 1024 };
}

const url = process.env.BENCH_AGENT_URL!;
const before = status();
const t0 = performance.now();
const exporter = new TraceExporter({ url });
const loaded = performance.now();
await exporter.send([[{ name: "first", service: "footprint", resource: "r", traceId: 1n, spanId: 1n, start: 1n, duration: 1n }]]);
const sent = performance.now();
await new Promise((r) => setTimeout(r, 2000));
const idle = status();
const file = readFileSync(native().path);
await exporter.close();
console.log(JSON.stringify({
  loadMs: loaded - t0,
  firstSendMs: sent - t0,
  threadsBefore: before.threads,
  threadsIdle: idle.threads,
  rssBefore: before.rss,
  rssIdle: idle.rss,
  libraryBytes: file.length,
  libraryGzipBytes: gzipSync(file, { level: 9 }).length,
}));
process.exit(0);
