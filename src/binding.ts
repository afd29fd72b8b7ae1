/**
 * The core's view of the loaded library: its symbols, one reusable scratch
 * buffer in non-moving native memory (for out-params, structs and strings),
 * a cache of the UTF-8 bytes of repeated strings, and the one error path
 * (`unwrap`).
 *
 * Every call writes its arguments into the scratch buffer from offset
 * `SCRATCH_START` on, after `reserve`-ing room for them; the library copies
 * what it keeps before returning, so the next call may reuse the space.
 *
 * Arguments of pointer size are passed as the adapter's words (numbers, or
 * bigints on Deno, see `Native.wordType`): the words of the fixed scratch
 * addresses, of small lengths and of cached strings are made once, so the
 * hot path converts nothing.
 *
 * @module
 */
import { errorCodes, layouts } from "../ffi/abi.ts";
import { native as loadNative } from "../ffi/load.ts";
import type { Native, NativeMemory, NativeSymbols, Word } from "../ffi/native.ts";
import { TraceExporterError } from "./errors.ts";

/** Out-param slot (`T**`) at offset 0. */
const OUT = 0;
/** The `ddog_TracerSpanFields` of `ddog_tracer_span_new`, at a fixed offset. */
export const FIELDS = 16;
/** Where each call's strings and structs start (8-aligned). */
const SCRATCH_START = (FIELDS + layouts.TracerSpanFields.size + 7) & ~7;

/** The string cache: its size in bytes, most entries, longest string (UTF-16 units) it takes. */
const CACHE_BYTES = 1 << 18;
const CACHE_ENTRIES = 8192;
export const CACHE_MAX_CHARS = 256;
/** Lengths below this have a ready-made word. */
const LEN_WORDS = 4096;

const TWO_32 = 2 ** 32;

const encoder = new TextEncoder();

/**
 * Writes `s` as UTF-8 into `u8` from `at`, never past `end` (default: the
 * array's end); returns the byte length, or -1 when it does not fit (then
 * the bytes from `at` to `end` may have been written). Lone surrogates
 * become U+FFFD (TextEncoder's rule). Callers reserve 3 bytes per UTF-16
 * unit, the most one can take.
 */
export function encodeUtf8(u8: Uint8Array, at: number, s: string, end: number = u8.length): number {
  let p = at;
  const n = s.length;
  const ascii = n < end - at ? n : end - at;
  let i = 0;
  for (; i < ascii; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    u8[p++] = c;
  }
  if (i < n) {
    const r = encoder.encodeInto(i === 0 ? s : s.slice(i), u8.subarray(p, end > p ? end : p));
    if (r.read !== n - i) return -1;
    p += r.written;
  }
  return p - at;
}

/**
 * A write into the scratch buffer that would pass the room reserved for the
 * call, or a call that needs more scratch than `MAX_SCRATCH`. Nothing is
 * written past the end; the span builder turns it into a `ValidationError`
 * naming the field.
 */
export class ScratchOverflow extends Error {
  override name = "ScratchOverflow";
}

/** Out of line, so that the hot writers stay small enough to inline. */
function doesNotFit(s: string): ScratchOverflow {
  return new ScratchOverflow(`a string of ${s.length} UTF-16 units does not fit the room reserved`);
}

/** The most scratch memory one call may use (1 GiB). */
export const MAX_SCRATCH = 2 ** 30;
/** The scratch buffer's first size, and what `settle` shrinks it back to. */
const SCRATCH_BYTES = 1 << 16;
/** `settle` gives back a scratch buffer grown past this. */
const SCRATCH_KEEP = 1 << 20;

/** %TypedArray%.prototype's own `length` and tag getters: user code (a subclass, a Proxy) cannot override them. */
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
const typedLength = Object.getOwnPropertyDescriptor(typedArrayProto, "length")!.get!;
const typedTag = Object.getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag)!.get!;

/** Whether `v` is really a Uint8Array (or a subclass such as Buffer), asked without running user code. */
export function isBytes(v: unknown): v is Uint8Array {
  return typeof v === "object" && v !== null && typedTag.call(v) === "Uint8Array";
}

/** The current length of a Uint8Array, read without running user code (0 when detached). */
export function byteLength(v: Uint8Array): number {
  return typedLength.call(v) as number;
}

/** Knobs of a `Binding`, for benchmarks; the defaults are the fast choices. */
export interface BindingOptions {
  /** Cache the UTF-8 of keys, names, services, types and resources (default true). */
  stringCache?: boolean;
  /** Cache meta values too (default false: they are often unique to a span). */
  cacheValues?: boolean;
  /** Pass words as numbers even where the adapter prefers bigints (default: the adapter's `wordType`). */
  wordType?: "number" | "bigint";
}

/** The loaded library and its scratch buffer. */
export class Binding {
  readonly native: Native;
  readonly symbols: NativeSymbols;
  /** A number as the adapter's word (identity, or `BigInt` on Deno). */
  readonly word: (n: number) => Word;
  /** Reads the pointer an out-param call wrote into the slot, as a word, and clears the slot. */
  readonly takeOut: () => Word;
  #memory!: NativeMemory;
  /** Base address of the scratch buffer. */
  base = 0;
  u8!: Uint8Array;
  view!: DataView;
  u32!: Uint32Array;
  i32!: Int32Array;
  big64!: BigUint64Array;
  i64!: BigInt64Array;
  /** Next free offset in the scratch buffer. */
  pos = SCRATCH_START;
  /** End of the room the last `reserve` made: no write goes past it. */
  end = SCRATCH_START;
  /** Words of the out-param slot, of the span fields and of the first string of a call. */
  outWord!: Word;
  fieldsWord!: Word;
  startWord!: Word;
  #lenWords: Word[] = [];

  /** Where the last `arg` put its string: address and byte length, as numbers and as words. */
  argPtr = 0;
  argLen = 0;
  argPtrWord: Word = 0;
  argLenWord: Word = 0;

  #cache: NativeMemory;
  #cacheBase: number;
  #cacheU8: Uint8Array;
  #cacheUsed = 0;
  #cacheFull = false;
  #cacheIndex = new Map<string, number>();
  #cachePtr: number[] = [];
  #cacheLen: number[] = [];
  #cachePtrWord: Word[] = [];
  #cacheLenWord: Word[] = [];

  /** Whether words are bigints (then 64-bit integer arguments go as bigints too). */
  readonly bigWords: boolean;
  /** Whether meta values go through the string cache (see `BindingOptions`). */
  readonly cacheValues: boolean;
  readonly #stringCache: boolean;

  constructor(native: Native, options: BindingOptions = {}) {
    this.native = native;
    this.symbols = native.symbols;
    this.#stringCache = options.stringCache ?? true;
    this.cacheValues = this.#stringCache && (options.cacheValues ?? false);
    const big = (options.wordType ?? native.wordType) === "bigint";
    this.bigWords = big;
    this.word = big ? (n) => BigInt(n) : (n) => n;
    for (let i = 0; i < LEN_WORDS; i++) this.#lenWords.push(this.word(i));
    this.takeOut = big
      ? () => {
        const p = this.big64[0];
        this.big64[0] = 0n;
        return p;
      }
      : () => {
        const u32 = this.u32;
        const p = readAddress(u32);
        u32[0] = 0;
        u32[1] = 0;
        return p;
      };
    this.#map(native.alloc(SCRATCH_BYTES));
    this.#cache = native.alloc(CACHE_BYTES);
    this.#cacheBase = this.#cache.address;
    this.#cacheU8 = new Uint8Array(this.#cache.buffer);
  }

  #map(memory: NativeMemory) {
    this.#memory = memory;
    const buffer = memory.buffer;
    this.base = memory.address;
    this.u8 = new Uint8Array(buffer);
    this.view = new DataView(buffer);
    this.u32 = new Uint32Array(buffer);
    this.i32 = new Int32Array(buffer);
    this.big64 = new BigUint64Array(buffer);
    this.i64 = new BigInt64Array(buffer);
    this.outWord = this.word(this.base + OUT);
    this.fieldsWord = this.word(this.base + FIELDS);
    this.startWord = this.word(this.base + SCRATCH_START);
  }

  /**
   * Starts a call's arguments: rewinds the scratch buffer and makes room for
   * `bytes` (growing the buffer: addresses taken before are stale then).
   * Every later write of the call is checked against that room.
   *
   * @throws {ScratchOverflow} when more than `MAX_SCRATCH` is asked for, or the memory cannot be had.
   */
  reserve(bytes: number): void {
    this.pos = SCRATCH_START;
    const need = SCRATCH_START + bytes;
    if (!(need <= MAX_SCRATCH)) {
      this.end = SCRATCH_START;
      throw new ScratchOverflow(`too large: needs ${bytes} bytes of scratch memory, more than ${MAX_SCRATCH}`);
    }
    if (need > this.u8.length) {
      let size = this.u8.length;
      while (size < need) size *= 2;
      this.#resize(Math.min(size, MAX_SCRATCH));
    }
    this.end = need;
  }

  #resize(size: number): void {
    let memory: NativeMemory;
    try {
      memory = this.native.alloc(size);
    } catch (e) {
      this.end = SCRATCH_START;
      throw new ScratchOverflow(`too large: ${size} bytes of scratch memory could not be allocated (${e})`);
    }
    const old = this.#memory;
    this.#map(memory);
    this.native.free(old);
  }

  /** Takes `n` bytes of the reserved room at `pos`; returns their offset. */
  claim(n: number): number {
    const p = this.pos;
    const q = p + n;
    if (!(q <= this.end)) throw new ScratchOverflow(`a write of ${n} bytes at scratch offset ${p} passes the ${this.end} reserved`);
    this.pos = q;
    return p;
  }

  /** A length (or any small count) as a word. */
  lenWord(n: number): Word {
    return n < LEN_WORDS ? this.#lenWords[n] : this.word(n);
  }

  /** The address of scratch offset `offset`, as a word. */
  addrWord(offset: number): Word {
    return offset === SCRATCH_START ? this.startWord : this.word(this.base + offset);
  }

  /**
   * Puts `s` where the library can read it for the next call and sets
   * `argPtr`/`argLen` (numbers) and `argPtrWord`/`argLenWord` (words). With
   * `cache`, a string seen before is not encoded again: its bytes stay in
   * the string cache. Otherwise (or when it does not fit) it is written at
   * `pos` (room reserved).
   */
  arg(s: string, cache: boolean): void {
    if (cache && s.length <= CACHE_MAX_CHARS && this.#stringCache) {
      let i = this.#cacheIndex.get(s);
      if (i === undefined) i = this.#add(s);
      if (i >= 0) {
        this.argPtr = this.#cachePtr[i];
        this.argLen = this.#cacheLen[i];
        this.argPtrWord = this.#cachePtrWord[i];
        this.argLenWord = this.#cacheLenWord[i];
        return;
      }
    }
    const p = this.pos;
    const n = encodeUtf8(this.u8, p, s, this.end);
    if (n < 0) throw doesNotFit(s);
    this.pos = p + n;
    this.argPtr = this.base + p;
    this.argLen = n;
    this.argPtrWord = p === SCRATCH_START ? this.startWord : this.word(this.base + p);
    this.argLenWord = n < LEN_WORDS ? this.#lenWords[n] : this.word(n);
  }

  /** Caches `s`; returns its entry, or -1 when the cache is full (it starts over at the next `settle`). */
  #add(s: string): number {
    if (this.#cacheFull || this.#cacheUsed + 3 * s.length > CACHE_BYTES || this.#cachePtr.length >= CACHE_ENTRIES) {
      this.#cacheFull = true;
      return -1;
    }
    const at = this.#cacheUsed;
    const n = encodeUtf8(this.#cacheU8, at, s, CACHE_BYTES);
    if (n < 0) {
      this.#cacheFull = true;
      return -1;
    }
    this.#cacheUsed = at + n;
    const i = this.#cachePtr.length;
    this.#cachePtr.push(this.#cacheBase + at);
    this.#cacheLen.push(n);
    this.#cachePtrWord.push(this.word(this.#cacheBase + at));
    this.#cacheLenWord.push(this.lenWord(n));
    this.#cacheIndex.set(s, i);
    return i;
  }

  /** Between calls (no cached address held): empties the string cache if it filled up. */
  settle(): void {
    if (this.u8.length > SCRATCH_KEEP) this.#resize(SCRATCH_BYTES);
    if (!this.#cacheFull) return;
    this.#cacheFull = false;
    this.#cacheUsed = 0;
    this.#cacheIndex = new Map();
    this.#cachePtr = [];
    this.#cacheLen = [];
    this.#cachePtrWord = [];
    this.#cacheLenWord = [];
  }

  /** Writes `s` as UTF-8 at `pos`, within the room reserved; returns its byte length. */
  writeString(s: string): number {
    const n = encodeUtf8(this.u8, this.pos, s, this.end);
    if (n < 0) throw doesNotFit(s);
    this.pos += n;
    return n;
  }

  /**
   * Writes the `n` bytes of `b` at `pos`, within the room reserved; `n` is
   * the length the call planned with. Returns false (writing nothing) when
   * `b`'s length is no longer `n` (its buffer was resized or detached since).
   */
  writeBytes(b: Uint8Array, n: number): boolean {
    if (byteLength(b) !== n) return false;
    const p = this.claim(n);
    this.u8.set(b, p);
    return true;
  }

  /** Aligns `pos` to 8 bytes, within the room reserved, and returns it. */
  align8(): number {
    const p = this.pos + (-this.pos & 7);
    if (p > this.end) throw new ScratchOverflow(`aligning scratch offset ${this.pos} passes the ${this.end} reserved`);
    this.pos = p;
    return p;
  }

  /** Address of the out-param slot, as a word. */
  get out(): Word {
    return this.outWord;
  }

  /** Writes a `{ptr, len}` slice of the last `arg` at scratch offset `offset` (8-aligned). */
  putArg(offset: number): void {
    const u32 = this.u32;
    const o = offset >> 2;
    const p = this.argPtr;
    u32[o] = p >>> 0;
    u32[o + 1] = (p / TWO_32) >>> 0;
    u32[o + 2] = this.argLen;
    u32[o + 3] = 0;
  }

  /** Writes an address (a number) at scratch offset `offset` (4-aligned). */
  putAddress(offset: number, address: number): void {
    const u32 = this.u32;
    const o = offset >> 2;
    u32[o] = address >>> 0;
    u32[o + 1] = (address / TWO_32) >>> 0;
  }

  /** Throws the `ddog_TraceExporterError` at `error` (after freeing it), if any. */
  unwrap(error: Word | null, fn: string): void {
    if (error) throw this.takeError(error, fn);
  }

  /** Reads and frees a `ddog_TraceExporterError`, returning it as a `TraceExporterError`. */
  takeError(error: Word, fn: string): TraceExporterError {
    const L = layouts.TraceExporterError;
    const raw = new DataView(this.native.read(Number(error), L.size).buffer);
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
