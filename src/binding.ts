/**
 * The core's view of the loaded library: its symbols, one reusable scratch
 * buffer in non-moving native memory (for out-params, structs and strings),
 * and the one error path (`unwrap`).
 *
 * Every call writes its arguments into the scratch buffer from offset
 * `SCRATCH_START` on, after `reserve`-ing room for them; the library copies
 * what it keeps before returning, so the next call may reuse the space.
 *
 * @module
 */
import { errorCodes, layouts } from "../ffi/abi.ts";
import { native as loadNative } from "../ffi/load.ts";
import type { Native, NativeMemory, NativeSymbols } from "../ffi/native.ts";
import { TraceExporterError } from "./errors.ts";

/** Out-param slot (`T**`) at offset 0; arguments start after it. */
const OUT = 0;
const SCRATCH_START = 16;

const TWO_32 = 2 ** 32;

/** The loaded library and its scratch buffer. */
export class Binding {
  readonly native: Native;
  readonly symbols: NativeSymbols;
  #memory!: NativeMemory;
  /** Base address of the scratch buffer. */
  base = 0;
  u8!: Uint8Array;
  view!: DataView;
  #u32!: Uint32Array;
  /** Next free offset in the scratch buffer. */
  pos = SCRATCH_START;

  constructor(native: Native) {
    this.native = native;
    this.symbols = native.symbols;
    this.#map(native.alloc(1 << 16));
  }

  #map(memory: NativeMemory) {
    this.#memory = memory;
    this.base = memory.address;
    this.u8 = new Uint8Array(memory.buffer);
    this.view = new DataView(memory.buffer);
    this.#u32 = new Uint32Array(memory.buffer, 0, 4);
  }

  /** Starts a call's arguments: rewinds the scratch buffer and makes room for `bytes`. */
  reserve(bytes: number): void {
    this.pos = SCRATCH_START;
    const need = SCRATCH_START + bytes;
    if (need > this.u8.length) {
      let size = this.u8.length;
      while (size < need) size *= 2;
      const old = this.#memory;
      this.#map(this.native.alloc(size));
      this.native.free(old);
    }
  }

  /** Writes `s` as UTF-8 at `pos` (room reserved: 3 bytes per UTF-16 unit); returns its byte length. */
  writeString(s: string): number {
    const u8 = this.u8;
    const start = this.pos;
    let p = start;
    const n = s.length;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      u8[p++] = c;
    }
    if (i < n) p += encoder.encodeInto(i === 0 ? s : s.slice(i), u8.subarray(p)).written;
    this.pos = p;
    return p - start;
  }

  /** Writes bytes at `pos` (room reserved); returns their length. */
  writeBytes(b: Uint8Array): number {
    this.u8.set(b, this.pos);
    this.pos += b.length;
    return b.length;
  }

  /** Aligns `pos` to 8 bytes and returns it. */
  align8(): number {
    this.pos = (this.pos + 7) & ~7;
    return this.pos;
  }

  /** Address of the out-param slot. */
  get out(): number {
    return this.base + OUT;
  }

  /** Reads the pointer an out-param call wrote into the slot, and clears the slot. */
  takeOut(): number {
    const u32 = this.#u32;
    const p = readAddress(u32);
    u32[0] = 0;
    u32[1] = 0;
    return p;
  }

  /** Throws the `ddog_TraceExporterError` at `error` (after freeing it), if any. */
  unwrap(error: number | null, fn: string): void {
    if (error) throw this.takeError(error, fn);
  }

  /** Reads and frees a `ddog_TraceExporterError`, returning it as a `TraceExporterError`. */
  takeError(error: number, fn: string): TraceExporterError {
    const L = layouts.TraceExporterError;
    const raw = new DataView(this.native.read(error, L.size).buffer);
    const code = raw.getInt32(L.code, true);
    const msgPtr = raw.getUint32(L.msg, true) + raw.getUint32(L.msg + 4, true) * TWO_32;
    const message = msgPtr ? this.native.cstring(msgPtr) : "";
    this.symbols.ddog_trace_exporter_error_free(error);
    return new TraceExporterError(errorCodes[code] ?? "Internal", message, fn);
  }

  /** Live native objects, from the bundled library's debug symbol (undefined with a real libdatadog). */
  liveObjects(): number | undefined {
    const f = this.symbols.ddffi_debug_live_objects;
    return f ? Number(f()) : undefined;
  }
}

const encoder = new TextEncoder();

/** A 64-bit address stored little-endian in `u32[0..1]`, as a number. */
export function readAddress(u32: Uint32Array): number {
  return u32[0] + u32[1] * TWO_32;
}

let binding: Binding | undefined;

/** The process's binding, loading the library on first use. */
export function getBinding(): Binding {
  binding ??= new Binding(loadNative());
  return binding;
}
