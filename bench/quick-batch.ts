// Quick main-thread comparison while iterating: batch writer vs per-field vs AgentEncoder,
// CPU time, fastest of 15 repetitions. "perSpan" writes each span as its own batch, as
// writing at span finish would (the Tracer writes at flush, through send):
//   node scripts/runtimes.mjs node|bun|deno bench/quick-batch.ts
import process from "node:process";
import { createRequire } from "node:module";
import { getBinding } from "../src/binding.ts";
import { buildTraceChunks } from "../src/build.ts";
import { BatchWriter } from "../src/batch/writer.ts";
import { makeFixture, SET_NAMES } from "./fixtures.ts";
process.env.DD_TRACE_NATIVE_SPAN_EVENTS = "true";
process.env.DD_INSTRUMENTATION_TELEMETRY_ENABLED = "false";
const require = createRequire(import.meta.url);
const { AgentEncoder } = require("dd-trace/packages/dd-trace/src/encode/0.4.js");
const b = getBinding();
function sample(f: () => void, spans: number, ms: number): number {
  let n = 0; const c0 = process.cpuUsage(); const t0 = performance.now();
  do { f(); n++; } while (performance.now() - t0 < ms);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1e3) / (n * spans);
}
for (const name of SET_NAMES) {
  const fx = makeFixture(name);
  const w = new BatchWriter(b.native);
  const enc = new AgentEncoder({ flush() {} });
  const v = {
    batch: () => { w.write(fx.ours); },
    perSpan: () => { for (const c of fx.ours) for (const sp of c) w.write([[sp]]); },
    fields: () => { b.symbols.ddog_tracer_trace_chunks_free(buildTraceChunks(b, fx.ours)); },
    dd: () => { for (const c of fx.ddtrace) enc.encode(c); enc.makePayload(); },
  };
  for (const f of Object.values(v)) sample(f, fx.spans, 300);
  const r: Record<string, number[]> = { batch: [], perSpan: [], fields: [], dd: [] };
  for (let i = 0; i < 15; i++) for (const [k, f] of Object.entries(v)) r[k].push(sample(f, fx.spans, 100));
  // The fastest repetition: the least disturbed by other processes on a shared machine.
  const med = (x: number[]) => Math.min(...x);
  const dd = med(r.dd);
  console.log(`${name.padEnd(9)} batch ${med(r.batch).toFixed(0)} ns (${(med(r.batch) / dd).toFixed(2)}x)  per span ${med(r.perSpan).toFixed(0)} ns (${(med(r.perSpan) / dd).toFixed(2)}x)  fields ${med(r.fields).toFixed(0)} ns (${(med(r.fields) / dd).toFixed(2)}x)  dd ${dd.toFixed(0)} ns`);
}
process.exit(0);
