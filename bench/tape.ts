/**
 * Records the exact C calls `buildTraceChunks` makes for a span set (and the
 * bytes behind every pointer), as a "tape" that `replay.c` replays from C
 * with no FFI in between: the library's own main-thread work per span, a
 * floor that no binding can go under.
 *
 * @module
 */
import { layouts } from "../ffi/abi.ts";
import type { Native } from "../ffi/native.ts";
import { Binding } from "../src/binding.ts";
import { buildTraceChunks } from "../src/build.ts";
import type { TraceChunk } from "../src/span.ts";

/** Op codes, shared with replay.c. */
const OP = {
  chunks_new: 1,
  begin_chunk: 2,
  span_new: 3,
  set_meta: 4,
  set_metric: 5,
  push_span: 6,
  set_links: 7,
  event_new: 8,
  event_set_string: 9,
  event_set_int: 10,
  event_set_bool: 11,
  event_set_double: 12,
  add_event: 13,
  chunks_free: 14,
} as const;

class Writer {
  bytes: number[] = [];
  u8(v: number) {
    this.bytes.push(v & 0xff);
  }
  u32(v: number) {
    for (let i = 0; i < 4; i++) this.bytes.push((v >>> (8 * i)) & 0xff);
  }
  u64(v: bigint) {
    for (let i = 0n; i < 8n; i++) this.bytes.push(Number((BigInt.asUintN(64, v) >> (8n * i)) & 0xffn));
  }
  f64(v: number) {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    for (const x of b) this.bytes.push(x);
  }
  raw(b: Uint8Array) {
    this.u32(b.length);
    for (const x of b) this.bytes.push(x);
  }
}

const n = (v: unknown) => Number(v);

/** Runs `buildTraceChunks(traces)` against a recording view of `native`; returns the tape. */
export function recordTape(native: Native, traces: TraceChunk[]): Uint8Array {
  const w = new Writer();
  const read = (p: unknown, len: unknown) => native.read(n(p), n(len));
  const u64At = (addr: number) => new DataView(native.read(addr, 8).buffer).getBigUint64(0, true);
  const slice = (addr: number) => {
    const dv = new DataView(native.read(addr, 16).buffer);
    return read(dv.getBigUint64(0, true), dv.getBigUint64(8, true));
  };
  const real = native.symbols as unknown as Record<string, (...a: unknown[]) => unknown>;
  const rec: Record<string, (...a: unknown[]) => unknown> = { ...real };
  const on = (name: string, write: (a: unknown[]) => void) => {
    rec[name] = (...a: unknown[]) => {
      write(a);
      return real[name](...a);
    };
  };
  on("ddog_tracer_trace_chunks_new", (a) => (w.u8(OP.chunks_new), w.u32(n(a[0]))));
  on("ddog_tracer_trace_chunks_begin_chunk", (a) => (w.u8(OP.begin_chunk), w.u32(n(a[1]))));
  on("ddog_tracer_span_new", (a) => {
    const F = layouts.TracerSpanFields;
    const at = n(a[1]);
    w.u8(OP.span_new);
    for (const o of [F.service, F.name, F.resource, F.span_type]) w.raw(slice(at + o));
    for (const o of [F.trace_id_low, F.trace_id_high, F.span_id, F.parent_id, F.start, F.duration]) w.u64(u64At(at + o));
    w.u32(new DataView(native.read(at + F.error, 4).buffer).getInt32(0, true));
  });
  on("ddog_tracer_span_set_meta", (a) => (w.u8(OP.set_meta), w.raw(read(a[1], a[2])), w.raw(read(a[3], a[4]))));
  on("ddog_tracer_span_set_metric", (a) => (w.u8(OP.set_metric), w.raw(read(a[1], a[2])), w.f64(n(a[3]))));
  on("ddog_tracer_trace_chunks_push_span", () => w.u8(OP.push_span));
  on("ddog_tracer_span_set_links", (a) => {
    const L = layouts.TracerSpanLink;
    const A = layouts.TracerSpanLinkAttribute;
    w.u8(OP.set_links);
    const count = n(a[2]);
    w.u32(count);
    for (let i = 0; i < count; i++) {
      const at = n(a[1]) + i * L.size;
      for (const o of [L.trace_id_low, L.trace_id_high, L.span_id]) w.u64(u64At(at + o));
      w.u32(new DataView(native.read(at + L.flags, 4).buffer).getUint32(0, true));
      w.raw(slice(at + L.tracestate));
      const attrs = n(u64At(at + L.attributes));
      const nAttrs = n(u64At(at + L.attributes + 8));
      w.u32(nAttrs);
      for (let j = 0; j < nAttrs; j++) {
        w.raw(slice(attrs + j * A.size + A.key));
        w.raw(slice(attrs + j * A.size + A.value));
      }
    }
  });
  on("ddog_tracer_span_event_new", (a) => (w.u8(OP.event_new), w.raw(read(a[1], a[2])), w.u64(BigInt(a[3] as bigint))));
  on("ddog_tracer_span_event_set_string", (a) => (w.u8(OP.event_set_string), w.raw(read(a[1], a[2])), w.raw(read(a[3], a[4]))));
  on("ddog_tracer_span_event_set_int", (a) => (w.u8(OP.event_set_int), w.raw(read(a[1], a[2])), w.u64(BigInt(a[3] as bigint))));
  on("ddog_tracer_span_event_set_bool", (a) => (w.u8(OP.event_set_bool), w.raw(read(a[1], a[2])), w.u8(a[3] ? 1 : 0)));
  on("ddog_tracer_span_event_set_double", (a) => (w.u8(OP.event_set_double), w.raw(read(a[1], a[2])), w.f64(n(a[3]))));
  on("ddog_tracer_span_add_event", () => w.u8(OP.add_event));
  for (const name of Object.keys(real)) {
    if (rec[name] === real[name] && /^ddog_tracer_(span|trace_chunks|encode)/.test(name) && name !== "ddog_tracer_trace_chunks_free") {
      rec[name] = () => {
        throw new Error(`tape: ${name} is not recorded`);
      };
    }
  }
  const recording: Native = { ...native, symbols: rec as unknown as Native["symbols"] };
  const b = new Binding(recording);
  const chunks = buildTraceChunks(b, traces);
  native.symbols.ddog_tracer_trace_chunks_free(chunks);
  w.u8(OP.chunks_free);
  return new Uint8Array(w.bytes);
}
