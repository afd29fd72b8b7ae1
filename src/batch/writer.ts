/**
 * The batch writer: turns a `send`'s trace chunks into one batch buffer (the
 * format of `ffi/batch.ts`) in native memory, on the calling thread, for
 * `ddffi_batch_send` to decode and build off it. One FFI crossing per send.
 *
 * Its parts, each class over the one before:
 * - src/batch/memory.ts: the native memory, its growth, the primitive writes;
 * - src/batch/strings.ts: the string table;
 * - src/batch/records.ts: the records (chunks, spans, meta, metrics,
 *   meta_struct, links, events) and the validation of untrusted input;
 * - here: a batch from `begin` to `end`, its header.
 *
 * Validation is the per-field path's (src/span.ts, src/build.ts): the same
 * `ValidationError`s naming `traces[c][i].field`, and nothing is sent. The
 * writer reads each user value once, and checks room before every write
 * (`_ensure`): the buffer grows (a new block, the bytes copied), never
 * overflows.
 *
 * @module
 */
import { BATCH_MAGIC, BATCH_VERSION, records } from "../../ffi/batch.ts";
import type { Native, NativeMemory } from "../../ffi/native.ts";
import type { Binding } from "../binding.ts";
import { ValidationError } from "../errors.ts";
import { describe, hasEnumerableKey, type TraceChunk } from "../span.ts";
import { RecordWriter } from "./records.ts";

const H = records.header;

/** Whether the loaded library (or its shim) has a bound batch decoder; checked once per binding. */
const ready = new WeakMap<Binding, boolean>();

/**
 * Whether `ddffi_batch_send` can be used: present in the library or the
 * shim, and `ddffi_batch_bind` resolved every ddog_* function it calls from
 * the loaded library.
 */
export function batchAvailable(b: Binding): boolean {
  let ok = ready.get(b);
  if (ok === undefined) {
    const bind = b.symbols.ddffi_batch_bind;
    ok = false;
    if (bind && b.native.async.ddffi_batch_send) {
      const path = b.native.path;
      b.reserve(3 * path.length);
      b.arg(path, false);
      ok = bind(b.argPtrWord, b.argLenWord) === 0;
    }
    ready.set(b, ok);
  }
  return ok;
}

/**
 * One batch buffer and its string table. Reused send after send (a pool in
 * the exporter); the memory lives until the send that reads it completes.
 */
export class BatchWriter extends RecordWriter {
  /** Where the send's response pointer goes (`response_out`). */
  readonly slot: NativeMemory;

  constructor(native: Native, size = 1 << 16) {
    super(native, size);
    this.slot = native.alloc(8);
  }

  /** Frees the memory (the writer is not used again). */
  override free(): void {
    super.free();
    this._native.free(this.slot);
  }

  /**
   * Writes the whole batch for `traces`; returns its length in bytes.
   * @throws {ValidationError} naming `traces[c][i].field`; the batch is then unusable until the next `write`.
   */
  write(traces: readonly TraceChunk[]): number {
    if (!Array.isArray(traces)) throw new ValidationError("traces", `expected an array of trace chunks, got ${describe(traces)}`);
    this.begin();
    const chunks = traces.length;
    for (let c = 0; c < chunks; c++) this._chunk(traces[c], c);
    if (this._forInPrototype !== null && hasEnumerableKey(Object.prototype)) throw prototypeChanged();
    return this.end();
  }

  /** Starts a batch that `append` fills chunk by chunk and `end` closes. */
  begin(): void {
    this._pos = H.size;
    this._spans = 0;
    this._chunks = 0;
    this._forInPrototype = hasEnumerableKey(Object.prototype) ? null : Object.prototype;
    this._clearStrings();
  }

  /**
   * Writes one more trace chunk into the batch `begin` started, as chunk `c`
   * of the batch for error paths. A chunk that fails leaves the batch as it
   * was before it.
   * @throws {ValidationError} naming `traces[c][i].field`.
   */
  append(chunk: TraceChunk, c: number): void {
    // The application runs between appends: `for…in` is trusted only as it is now (see `_forIn`).
    this._forInPrototype = hasEnumerableKey(Object.prototype) ? null : Object.prototype;
    const pos = this._pos, spans = this._spans, chunks = this._chunks, defined = this._defined;
    const texts = this._texts.length, textUnits = this._textUnits;
    try {
      this._chunk(chunk, c);
      if (this._forInPrototype !== null && hasEnumerableKey(Object.prototype)) throw prototypeChanged();
    } catch (e) {
      this._pos = pos;
      this._spans = spans;
      this._chunks = chunks;
      this._texts.length = texts;
      this._textUnits = textUnits;
      if (this._defined > defined) this._forget(defined);
      throw e;
    }
  }

  /** Trace chunks in the batch so far. */
  get chunks(): number {
    return this._chunks;
  }

  /** Closes the batch: its text and header. Returns its length in bytes. */
  end(): number {
    const textOffset = this._pos;
    const flags = this._endText();
    const v = this._view;
    v.setUint32(H.magic, BATCH_MAGIC, true);
    v.setUint16(H.version, BATCH_VERSION, true);
    v.setUint16(H.flags, flags, true);
    v.setUint32(H.chunk_count, this._chunks, true);
    v.setUint32(H.span_count, this._spans, true);
    v.setUint32(H.string_count, this._defined, true);
    v.setUint32(H.text_offset, textOffset, true);
    return this._pos;
  }
}

// Out of line, as the records' errors (see src/batch/records.ts).
/** The `ValidationError` for an enumerable property added to `Object.prototype` while a batch was written. */
function prototypeChanged(): ValidationError {
  return new ValidationError("traces", "Object.prototype gained an enumerable property while the batch was written");
}
