/**
 * The batch's native memory: one block that grows (a new block, the bytes
 * copied), and the primitive writes into it (u32 words, 64-bit values,
 * float64s, blobs). Every write checks room first (`_ensure`): the buffer
 * grows, never overflows.
 *
 * The base of the batch writer (src/batch/writer.ts), under its string table
 * (src/batch/strings.ts) and its records (src/batch/records.ts).
 *
 * @module
 */
import { records } from "../../ffi/batch.ts";
import type { Native, NativeMemory, Utf16Writer, Utf8Encoder } from "../../ffi/native.ts";
import { TWO_32 } from "../span.ts";

/**
 * One growing block of native memory and its typed views, written from
 * `_pos` on.
 *
 * Its members are TypeScript-private or protected (`_x`), not `#x`:
 * JavaScriptCore (Bun) runs the writer's hot path slower with `#` fields and
 * methods (see bench/RESULTS.md, "Why the writer is written as it is").
 */
export class BatchMemory {
  protected readonly _native: Native;
  private _memory: NativeMemory;
  protected _u8!: Uint8Array;
  /** The same memory as UTF-16 code units (`utf16` strings). */
  protected _u16!: Uint16Array;
  /** The buffer's size in bytes (`_u8.length`, kept as a number for `_ensure`). */
  private _capacity = 0;
  /** The same memory as u32 words: every item of the format is 4-aligned. */
  protected _w32!: Uint32Array;
  protected _view!: DataView;
  /** The memory's UTF-8 encoder and UTF-16 writer (`NativeMemory`), for the batch's text. */
  protected _utf8Encoder!: Utf8Encoder;
  protected _utf16Writer: Utf16Writer | undefined;
  /** The write position, in bytes; the batch's header comes first. */
  protected _pos: number = records.header.size;
  /** Whether the engine is JavaScriptCore (see `_put64`). */
  private readonly _jsc: boolean;

  constructor(native: Native, size: number) {
    this._native = native;
    this._jsc = native.runtime.interpreter === "JavaScriptCore";
    this._memory = native.alloc(size);
    this._map();
  }

  private _map(): void {
    this._u8 = new Uint8Array(this._memory.buffer);
    this._w32 = new Uint32Array(this._memory.buffer, 0, this._u8.length >> 2);
    this._u16 = new Uint16Array(this._memory.buffer, 0, this._u8.length >> 1);
    this._capacity = this._u8.length;
    this._view = new DataView(this._memory.buffer);
    this._utf8Encoder = this._memory.utf8;
    this._utf16Writer = this._memory.utf16;
  }

  /** The batch's native address. */
  get address(): number {
    return this._memory.address;
  }

  /** The buffer's size in bytes. */
  get capacity(): number {
    return this._u8.length;
  }

  /** Frees the memory (the writer is not used again). */
  free(): void {
    this._native.free(this._memory);
  }

  /** Makes room for `n` more bytes at `_pos` (the check, small enough to be inlined everywhere; `_grow` does the rest). */
  protected _ensure(n: number): void {
    const end = this._pos + n;
    if (end > this._capacity) this._grow(end);
  }

  /** A bigger block of at least `need` bytes, the bytes so far copied over. */
  private _grow(need: number): void {
    let size = this._u8.length * 2;
    while (size < need) size *= 2;
    const old = this._memory;
    const oldU8 = this._u8;
    this._memory = this._native.alloc(size);
    this._map();
    this._u8.set(oldU8.subarray(0, this._pos));
    this._native.free(old);
  }

  /** Zeros from byte `end` to the next multiple of 4, and moves the write position there. */
  protected _padTo(end: number): void {
    const u8 = this._u8;
    while (end & 3) u8[end++] = 0;
    this._pos = end;
  }

  /**
   * Writes `v` (a u32, or an i32) at byte offset `at` (4-aligned). A method,
   * as the writer's other writes, not a function the other modules import:
   * V8 finds a method's target from the receiver's map, and checks an
   * imported function's at each call.
   */
  protected _put32(at: number, v: number): void {
    this._w32[at >> 2] = v;
  }

  /**
   * Writes the low 64 bits of `v` (two's complement) at byte offset `at`: through the DataView on
   * JavaScriptCore (Bun), where it is faster than a BigUint64Array store; as two words on V8,
   * where the DataView is the slower.
   */
  protected _put64(at: number, v: bigint): void {
    if (this._jsc) this._view.setBigUint64(at, v, true);
    else put64(this._w32, at, v);
  }

  /**
   * One u32 word: a kind, a count, a bool, a string reference. The room
   * check is written out here, not through `_ensure`: V8 inlines by bytecode
   * size, with a budget per optimized function that callees' inlined callees
   * share, and this is the most-inlined write.
   */
  protected _word(n: number): void {
    const at = this._pos;
    if (at + 4 > this._capacity) this._grow(at + 4);
    this._w32[at >> 2] = n;
    this._pos = at + 4;
  }

  protected _f64(n: number): void {
    this._ensure(8);
    putF64(this._w32, this._pos, n);
    this._pos += 8;
  }

  /** An i64 or a u64 given as a bigint: its low 64 bits (two's complement). */
  protected _big64(n: bigint): void {
    this._ensure(8);
    this._put64(this._pos, n);
    this._pos += 8;
  }

  /** Writes an i64 given as a safe-integer number: two's complement, as two words. */
  protected _int(v: number): void {
    this._ensure(8);
    const i = this._pos >> 2;
    this._w32[i] = v >>> 0;
    this._w32[i + 1] = Math.floor(v / TWO_32) >>> 0;
    this._pos += 8;
  }

  protected _blob(b: Uint8Array): void {
    this._ensure(4 + b.length + 3);
    this._put32(this._pos, b.length);
    this._u8.set(b, this._pos + 4);
    this._padTo(this._pos + 4 + b.length);
  }
}

const scratch = new ArrayBuffer(8);
const scratch32 = new Uint32Array(scratch);
const scratchU64 = new BigUint64Array(scratch);
const scratchF64 = new Float64Array(scratch);

// Word stores instead of DataView: JavaScriptCore (Bun) does not inline DataView's setters. Typed
// arrays are in the host's byte order: little-endian on every supported platform (LP64 x86_64, aarch64).

/** Writes the low 64 bits of `v` (two's complement) at byte offset `at` (4-aligned). */
function put64(w32: Uint32Array, at: number, v: bigint): void {
  scratchU64[0] = v;
  const i = at >> 2;
  w32[i] = scratch32[0];
  w32[i + 1] = scratch32[1];
}

/** Writes a float64 at byte offset `at` (4-aligned). */
function putF64(w32: Uint32Array, at: number, v: number): void {
  scratchF64[0] = v;
  const i = at >> 2;
  w32[i] = scratch32[0];
  w32[i + 1] = scratch32[1];
}
