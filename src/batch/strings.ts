/**
 * The batch's string table: every string of a batch is a `str` word that
 * defines it (`define`: UTF-8 bytes; `utf16`: UTF-16 code units; `text`:
 * its characters in the batch's text, after the records) or refers to one
 * defined before (`ref`), in the format of `ffi/batch.ts`.
 *
 * Repeats are found two ways: keys and names through a `Map` of the batch's
 * strings; values through the slots, the string each position of the
 * previous span had (a span like the last one refers to those with one
 * comparison each: no lookup, no encoding).
 *
 * @module
 */
import {
  batchFlags,
  MAX_STRING_BYTES,
  STRING_TAG_BITS,
  stringTags,
  TEXT_MAX_UNITS,
  TEXT_MIN_UNITS,
} from "../../ffi/batch.ts";
import { copyUtf16, type Native } from "../../ffi/native.ts";
import { ValidationError } from "../errors.ts";
import { BatchMemory } from "./memory.ts";

/**
 * A `str` word is `n * TAG + tag`. A shift, not `2 ** STRING_TAG_BITS`: JavaScriptCore (Bun) keeps the
 * result of `**` as a double, and every word computed from it then took a slow store into the
 * Uint32Array (bench/RESULTS.md, "Why the writer is written as it is").
 */
const TAG = 1 << STRING_TAG_BITS;
const REF = stringTags.ref;
const DEFINE = stringTags.define;
const TEXT = stringTags.text;
const UTF16 = stringTags.utf16;
/** Strings longer than this (UTF-16 units) are never looked up in, nor added to, the string table's `Map`. */
const KEEP_MAX_CHARS = 256;
/** A character beyond U+00FF: a string with one is two-byte in V8 (and in JavaScriptCore). */
const BEYOND_LATIN1 = /[^\0-\xff]/;

/** The string table of one batch, written into the batch's memory as its records refer to strings. */
export class StringTable extends BatchMemory {
  /** The `text` strings of this batch so far, and their UTF-16 code units with a separator each. */
  protected readonly _texts: string[] = [];
  protected _textUnits = 0;
  private _strings = new Map<string, number>();
  /** How many strings the table has (the `define`s, `text`s and `utf16`s so far). */
  protected _defined = 0;
  /**
   * The string at each slot position of the previous span, and its table
   * index (-1: none). The records say which positions there are (their
   * `SLOTS`).
   */
  private readonly _slotStrings: string[];
  private readonly _slotIndex: Int32Array;

  constructor(native: Native, size: number, slots: number) {
    super(native, size);
    this._slotStrings = new Array<string>(slots).fill("");
    this._slotIndex = new Int32Array(slots).fill(-1);
  }

  /** Empties the table, for a new batch. */
  protected _clearStrings(): void {
    this._texts.length = 0;
    this._textUnits = 0;
    if (this._defined > 0) {
      this._strings = new Map();
      this._defined = 0;
      this._slotIndex.fill(-1);
    }
  }

  /** Drops the strings defined from table index `defined` on (a chunk that failed): from the lookup and the slots. */
  protected _forget(defined: number): void {
    this._defined = defined;
    for (const [s, index] of this._strings) if (index >= defined) this._strings.delete(s);
    for (let k = 0; k < this._slotIndex.length; k++) if (this._slotIndex[k] >= defined) this._slotIndex[k] = -1;
  }

  /** Writes `s`, the string at slot position `at`: a reference when the previous span had it there too. */
  protected _slot(at: number, s: string, keep: boolean): void {
    const index = this._slotIndex[at];
    if (index >= 0 && this._slotStrings[at] === s) this._word(index * TAG + REF);
    else {
      this._slotStrings[at] = s;
      this._slotIndex[at] = this._str(s, keep);
    }
  }

  /**
   * `_slot` for a property key (`keep`), written apart for its own `===`:
   * property keys are internalized strings, and while a comparison sees only
   * those, V8 compiles it to a pointer comparison; `_slot`'s, which values
   * reach too, calls the `StringEqual` builtin even for the same string.
   */
  protected _keySlot(at: number, k: string): void {
    const index = this._slotIndex[at];
    if (index >= 0 && this._slotStrings[at] === k) this._word(index * TAG + REF);
    else {
      this._slotStrings[at] = k;
      this._slotIndex[at] = this._str(k, true);
    }
  }

  /**
   * Writes a `str` for `s`; returns its string table index. A reference is
   * written as `_word(index * TAG + REF)` here and in the slots, not through
   * a method of its own: one inlining level less, so more of the writer is
   * inlined. `keep`: look it
   * up, and add it to the lookup when new (keys, names: they repeat); else
   * it is only defined (values: their `Slots` find repeats).
   */
  protected _str(s: string, keep: boolean): number {
    if (keep && s.length <= KEEP_MAX_CHARS) {
      const index = this._strings.get(s);
      if (index !== undefined) {
        this._word(index * TAG + REF);
        return index;
      }
      const defined = this._bytes(s);
      this._strings.set(s, defined);
      return defined;
    }
    return this._bytes(s);
  }

  /**
   * Defines `s`; returns its string table index. A string of
   * `TEXT_MIN_UNITS` or more goes as `text` (`_text`), up to
   * `TEXT_MAX_UNITS` a batch. Else its characters follow: UTF-8
   * (`define`) while they are ASCII; from its first character beyond U+007F
   * the whole string again as UTF-16 code units (`utf16`), which the send
   * thread transcodes.
   */
  private _bytes(s: string): number {
    const length = s.length;
    if (length > MAX_STRING_BYTES) throw tooLong(length);
    if (length >= TEXT_MIN_UNITS && this._textUnits + length < TEXT_MAX_UNITS) {
      return this._text(s);
    }
    this._ensure(4 + 2 * length + 3);
    const at = this._pos;
    const start = at + 4;
    let end: number;
    if (ascii(this._u8, start, s)) {
      this._put32(at, length * TAG + DEFINE);
      end = start + length;
    } else {
      copyUtf16(this._u16, start >> 1, s);
      this._put32(at, length * TAG + UTF16);
      end = start + 2 * length;
    }
    this._padTo(end);
    return this._defined++;
  }

  /** Defines `s` as `text`: its characters go with the batch's text (`_endText`); as `_bytes`, which checked its length. */
  private _text(s: string): number {
    this._ensure(4);
    this._put32(this._pos, s.length * TAG + TEXT);
    this._pos += 4;
    this._texts.push(s);
    this._textUnits += s.length + 1;
    return this._defined++;
  }

  /**
   * Writes the batch's text, if it has any: the `text` strings joined by "\0"
   * (so that no surrogate pair forms across two of them), UTF-8-encoded in
   * one call; or its UTF-16 code units, where the memory has a `utf16`
   * writer and the text has a character beyond U+00FF. Returns the header's
   * flags.
   */
  protected _endText(): number {
    if (this._texts.length === 0) return 0;
    const text = this._texts.join("\0");
    this._texts.length = 0;
    // V8 answers this at once for a one-byte string, whatever its length (its regexp knows no such character fits).
    if (this._utf16Writer !== undefined && BEYOND_LATIN1.test(text)) {
      this._ensure(2 * text.length);
      // After `_ensure`, which may have moved the batch to a new block, with its own writer.
      this._utf16Writer!.utf16Write(text, this._pos);
      this._pos += 2 * text.length;
      return batchFlags.text_utf16;
    }
    this._ensure(3 * text.length);
    // After `_ensure`, which may have moved the batch to a new block, with its own encoder.
    const written = this._utf8Encoder.utf8Write(text, this._pos, 3 * text.length);
    // `| 0`: Deno's encodeInto gives a double, and `_pos` holding one made every access to it slower (the
    // field changes representation); the count is below 3 * TEXT_MAX_UNITS, in int32 range.
    this._pos += written | 0;
    return 0;
  }
}

/** The `ValidationError` for a string of `length` units, longer than a `str` can carry. */
function tooLong(length: number): ValidationError {
  return new ValidationError("traces", `a string of ${length} characters: at most ${MAX_STRING_BYTES} bytes`);
}

/** Writes `s` as ASCII bytes into `u8` from `at` while it is ASCII; whether it all was. */
function ascii(u8: Uint8Array, at: number, s: string): boolean {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return false;
    u8[at + i] = c;
  }
  return true;
}
