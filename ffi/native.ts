/**
 * The adapter interface: what the runtime-agnostic core (`src/`) may ask of
 * a runtime's FFI. Each adapter (`bun.ts`, `deno.ts`, `node.ts`) builds one
 * from the symbol table in `abi.ts`.
 *
 * @module
 */
import { type CType, layouts, type SymbolDef, type Symbols } from "./abi.ts";

/**
 * A pointer-sized integer as the runtime's FFI takes it fastest (see
 * `Native.wordType`): a number, or a bigint where only bigints stay on the
 * runtime's fast call path (Deno). Adapters accept both kinds.
 */
export type Word = number | bigint;

/** JS argument(s) for one C parameter type; a slice takes two (`ptr, len`). */
type Arg<T> = T extends "slice" ? [ptr: Word, len: Word]
  : T extends "CardinalityLimitConfig" ? [bytes: Uint8Array]
  : T extends "pointer" | "usize" ? [Word]
  : T extends "u64" | "i64" ? [bigint | number]
  : T extends "bool" ? [boolean]
  : [number];

/** JS arguments for a C parameter list. */
type Args<P> = P extends readonly [infer H, ...infer R] ? [...Arg<H>, ...Args<R>] : [];

/** JS value of a C result type. `pointer` results are words; NULL is 0, 0n or null (all falsy). */
type Result<T extends CType> = T extends "void" ? void
  : T extends "slice" ? [ptr: number, len: number]
  : T extends "CardinalityLimitConfig" ? Uint8Array
  : T extends "pointer" ? Word | null
  : T extends "bool" ? boolean
  : number;

/** A bound C function. */
export type NativeFunction<S extends SymbolDef> = (...args: Args<S["parameters"]>) => Result<S["result"]>;

/** The bound functions, by C name; optional symbols may be missing. */
export type NativeSymbols = {
  [K in keyof Symbols]: Symbols[K] extends { optional: true } ? NativeFunction<Symbols[K]> | undefined
    : NativeFunction<Symbols[K]>;
};

/** The symbols marked `blocking`. */
export type BlockingName = {
  [K in keyof Symbols]: Symbols[K] extends { blocking: true } ? K : never;
}[keyof Symbols];

/** A blocking C function called off the JS thread; resolves to its result. */
export type AsyncNativeFunction<S extends SymbolDef> = (
  ...args: Args<S["parameters"]>
) => Promise<Result<S["result"]>>;

/** Native memory that does not move, with its address. */
export interface NativeMemory {
  /** The memory, as seen from JS. */
  readonly buffer: ArrayBuffer;
  /** Its native address. */
  readonly address: number;
  /**
   * A UTF-8 encoder into this memory ({@link textEncoderInto}): the batch writer encodes its long
   * strings with it, in one call per batch (the batch's `text`, ffi/batch.ts).
   */
  readonly utf8: Utf8Encoder;
  /**
   * A UTF-16 writer into this memory, where the runtime's UTF-8 encoder is slow on strings with
   * characters beyond U+00FF (V8: Node and Deno): the writer then copies such a text's code units
   * instead, and the send thread transcodes them. Absent on Bun, whose encoder is fast on them.
   */
  readonly utf16?: Utf16Writer;
}

/** A UTF-16 writer into one block of memory. */
export interface Utf16Writer {
  /** Writes the `s.length` UTF-16 code units of `s`, little-endian, at byte offset `at` (even). */
  utf16Write(s: string, at: number): void;
}

/** A UTF-8 encoder into one block of memory. */
export interface Utf8Encoder {
  /**
   * Writes `s` as UTF-8 at byte offset `at`, never past `at + max` nor the memory's end, whole
   * characters only, a lone surrogate as U+FFFD (TextEncoder's rule); returns the bytes written.
   */
  utf8Write(s: string, at: number, max: number): number;
}

const textEncoder = new TextEncoder();

/** A {@link Utf8Encoder} into `buffer` through `TextEncoder#encodeInto`. */
export function textEncoderInto(buffer: ArrayBuffer): Utf8Encoder {
  const bytes = new Uint8Array(buffer);
  return { utf8Write: (s, at, max) => textEncoder.encodeInto(s, bytes.subarray(at, at + max)).written };
}

/** Writes the UTF-16 code units of `s` into `units` from index `at`, with a `charCodeAt` loop. */
export function copyUtf16(units: Uint16Array, at: number, s: string): void {
  const n = s.length;
  for (let i = 0; i < n; i++) units[at + i] = s.charCodeAt(i);
}

/** A {@link Utf16Writer} into `buffer` through {@link copyUtf16} (for a runtime without a native one). */
export function utf16Loop(buffer: ArrayBuffer): Utf16Writer {
  const units = new Uint16Array(buffer, 0, buffer.byteLength >> 1);
  return { utf16Write: (s, at) => copyUtf16(units, at >> 1, s) };
}

/** What the running JS runtime is. */
export interface RuntimeInfo {
  /** "nodejs", "bun" or "deno". */
  readonly name: string;
  /** The runtime's version, e.g. "20.20.2". */
  readonly version: string;
  /** The JS engine: "v8" or "JavaScriptCore". */
  readonly interpreter: string;
  /** Reads an environment variable (undefined if unset or not permitted). */
  env(name: string): string | undefined;
  /** The process id. */
  readonly pid: number;
  /** The working directory, where the application's own modules are resolved from; undefined on Deno without `--allow-read` of everything (reading modules there would need it). */
  cwd(): string | undefined;
  /**
   * Calls `callback` each time the event loop has run out of work and the
   * process is about to exit (Node and Bun: `process` `beforeExit`; Deno: the
   * `beforeunload` event). When the callback returns true it has started
   * asynchronous work (e.g. a flush) and the process keeps running until that
   * work is done; the hook fires again then. Not called on `process.exit()`,
   * `Deno.exit()` or a signal. Returns a function that removes the hook.
   */
  onBeforeExit(callback: () => boolean): () => void;
  /**
   * Where a blocking call still running would hold up `process.exit()` (Node joins the worker threads
   * that run them), calls `callback` synchronously as the process exits, so that it can cancel them.
   * Absent where exiting does not wait for those threads (Bun, Deno).
   */
  onExit?(callback: () => void): void;
  /**
   * The object whose `serve` method starts the runtime's own HTTP server (`Deno` on Deno, `Bun` on Bun),
   * for the `deno-serve` and `bun-serve` integrations to patch; absent on Node.
   */
  readonly nativeServer?: { serve: unknown };
}

/** One loaded library, as one runtime's adapter presents it. */
export interface Native {
  /** The library file that was loaded. */
  readonly path: string;
  /** The runtime this adapter runs on. */
  readonly runtime: RuntimeInfo;
  /**
   * How `pointer`, `usize` and slice arguments are passed fastest, and how
   * `pointer` results come back: `"number"` (bun:ffi, koffi) or `"bigint"`
   * (Deno, whose fast calls take 64-bit integers only as bigints).
   */
  readonly wordType: "number" | "bigint";
  /** Every symbol of `abi.ts`, called synchronously on the JS thread. */
  readonly symbols: NativeSymbols;
  /**
   * The blocking symbols, called on another thread; the JS thread stays free, and so does libuv's
   * thread pool (the app's file system, DNS and zlib work). While a call runs, the process stays alive.
   */
  readonly async: {
    [K in BlockingName]: Symbols[K] extends { optional: true } ? AsyncNativeFunction<Symbols[K]> | undefined
      : AsyncNativeFunction<Symbols[K]>;
  };
  /** The shim that supplied the optional symbols the library lacks (the batch decoder), if one was opened. */
  readonly shim?: string;
  /** Allocates `size` bytes of zeroed, non-moving memory. */
  alloc(size: number): NativeMemory;
  /** Releases memory from `alloc` (a no-op where the GC owns it). */
  free(memory: NativeMemory): void;
  /** Copies `length` bytes at `address` into a new array. */
  read(address: number, length: number): Uint8Array;
  /** Reads the NUL-terminated UTF-8 string at `address`. */
  cstring(address: number): string;
  /** Unloads the library: only when nothing uses it any more. */
  close(): void;
}

/** The parameters of `def` as the adapters declare them: each slice as two pointer-sized integers (a struct stays one). */
export function flatParameters(def: SymbolDef): Exclude<CType, "slice" | "void">[] {
  return def.parameters.flatMap((t) => t === "slice" ? ["usize", "usize"] as const : [t as Exclude<CType, "slice" | "void">]);
}

/** The `uintptr_t` fields of a by-value struct type, in memory order (from `layouts`). */
export function structFields(t: "CardinalityLimitConfig"): string[] {
  const { size: _, ...fields } = layouts[t];
  return Object.entries(fields).sort((a, b) => a[1] - b[1]).map(([name]) => name);
}

/** One worker thread of a {@link WorkerPool}, as an adapter makes it. */
export interface PoolThread {
  /** Posts a call `{ id, name, args }` to the thread. */
  post(message: { id: number; name: string; args: unknown[] }): void;
  /** Keeps the process alive (a call is running) or lets it exit. */
  ref(): void;
  unref(): void;
  terminate(): void;
}

/** What a thread answers: the call's id and its result or error text. */
export interface PoolReply {
  id: number;
  result?: unknown;
  error?: string;
}

/**
 * The worker threads that run the blocking symbols (the sends) off the JS
 * thread on Node and Bun (Deno has its own nonblocking FFI calls): at most
 * {@link WorkerPool.size} threads, each running one call at a time; further
 * calls wait in order (FIFO) for a free one. A thread that dies fails its
 * call and is replaced when a call waits. A thread keeps the process alive
 * only while it runs a call.
 */
export class WorkerPool {
  /** Most threads at once: a hung agent can hold one per send in flight. */
  static readonly size = 8;
  #threads: { thread: PoolThread; call: PoolCall | undefined }[] = [];
  #queue: PoolCall[] = [];
  #next = 1;

  /**
   * `spawn(onReply, onExit)` starts a thread that calls `onReply` with each
   * answer, and `onExit` when it dies.
   */
  constructor(readonly spawn: (onReply: (reply: PoolReply) => void, onExit: (error: unknown) => void) => PoolThread) {}

  /** Runs symbol `name` with `args` on a thread; resolves with its result. */
  call(name: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const call = { id: this.#next++, name, args, resolve, reject };
      const t = this.#threads.find((t) => !t.call) ?? (this.#threads.length < WorkerPool.size ? this.#start() : undefined);
      if (t) this.#run(t, call);
      else this.#queue.push(call);
    });
  }

  #run(t: { thread: PoolThread; call: PoolCall | undefined }, call: PoolCall) {
    t.call = call;
    t.thread.ref();
    t.thread.post({ id: call.id, name: call.name, args: call.args });
  }

  #start() {
    const t: { thread: PoolThread; call: PoolCall | undefined } = { thread: undefined!, call: undefined };
    const reply = (data: PoolReply) => {
      const call = t.call;
      if (!call || call.id !== data.id) return;
      t.call = undefined;
      if (data.error !== undefined) call.reject(new Error(data.error));
      else call.resolve(data.result);
      const next = this.#queue.shift();
      if (next) this.#run(t, next);
      else t.thread.unref();
    };
    const exit = (error: unknown) => {
      if (!this.#threads.includes(t)) return;
      this.#threads = this.#threads.filter((x) => x !== t);
      const call = t.call;
      t.call = undefined;
      call?.reject(error instanceof Error ? error : new Error(`the FFI worker thread exited (${String(error)})`));
      const next = this.#queue.shift();
      if (next) this.#run(this.#start(), next);
    };
    t.thread = this.spawn(reply, exit);
    t.thread.unref();
    this.#threads.push(t);
    return t;
  }

  /** Stops every thread (the library is being closed). */
  terminate() {
    const threads = this.#threads;
    this.#threads = [];
    for (const t of threads) t.thread.terminate();
  }
}

interface PoolCall {
  id: number;
  name: string;
  args: unknown[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}
