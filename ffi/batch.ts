/**
 * The batch format: how the core hands a whole `send` to native code in one
 * FFI crossing (`ddffi_batch_send`, lib/src/batch.rs). This table is the only
 * source of the format's offsets, sizes and tags: the writer (src/batch/)
 * reads them from here, and the decoder (lib/batch) includes `batch_format.rs`, which
 * `build.ts` generates from it ({@link rustModule}).
 *
 * Little-endian, in 4-byte units: every item starts at a multiple of 4 (the
 * writer stores whole u32 words; the decoder reads them little-endian). A u64, i64
 * or f64 is two words, low first. The grammar, in write order:
 *
 * ```text
 * batch      := header chunk{header.chunk_count} text
 * text       := from header.text_offset (a multiple of 4, where the chunks end) to the end: the characters
 *               of the `text` strings, in the order they come, each after the first following a 0 (joined
 *               by "\0"); as UTF-8, or as UTF-16 code units (2 bytes each) when header.flags has text_utf16
 * chunk      := u32 span_count  span{span_count}
 * span       := span-fixed str(service) str(name) str(resource) str(type)
 *               meta{meta_count} metric{metric_count} meta_struct{meta_struct_count}
 *               link{link_count} event{event_count}
 * meta       := str(key) str(value)
 * metric     := str(key) f64
 * meta_struct:= str(key) u32 kind  ( blob: bytes  |  tokens: u32 count, token{count} )
 * token      := u32 valueKinds(abi.ts)  then by kind: nil: -; bool: u32; i64: i64; u64: u64; f64: f64;
 *               string: str; binary: bytes; array, map: u32 child_count
 * bytes      := u32 len, len bytes, zeros to a multiple of 4
 * link       := link-fixed str(tracestate) (str(key) str(value)){attribute_count}
 * event      := event-fixed str(name) attribute{attribute_count}
 * attribute  := str(key) u32 eventAttributeKinds  then: string: str; bool: u32; int: i64; double: f64;
 *               *_array: u32 n, then n elements of that kind
 * str        := u32 w; tag = w & 3 (stringTags):
 *               ref:     the string of index w >>> 2 of the string table
 *               define:  w >>> 2 bytes of UTF-8 follow (then zeros to a multiple of 4); it becomes the table's next index
 *               text:    the next w >>> 2 UTF-16 code units of the batch's text (in UTF-8: 4 bytes for a
 *                        surrogate pair, 1 to 3 for any other unit, a lone surrogate as U+FFFD; in UTF-16,
 *                        transcoded as utf16 is); it becomes the table's next index, as with define
 *               utf16:   w >>> 2 UTF-16 code units follow (2 bytes each, then zeros to a multiple of 4); the
 *                        decoder transcodes them to UTF-8 (a lone surrogate becomes U+FFFD) and the string
 *                        becomes the table's next index, as with define
 * ```
 *
 * The string table is built as the batch is read: each distinct service,
 * name, resource, type and key is UTF-8-encoded once, at its first use
 * (`define`, `text` or `utf16`), and referred to by index from then on; a
 * meta value is defined, and referred to when the next span has it at the
 * same position (most repeated values do: env, version, component).
 * `header.string_count` is the number of `define`s, `text`s and `utf16`s.
 *
 * Strings of `TEXT_MIN_UNITS` units or more go as `text`: the writer joins
 * them and encodes them in one call at the end of the batch, instead of one
 * call (or one JavaScript loop) per string: UTF-8 through
 * `NativeMemory.utf8`, or, where the memory has a `utf16` writer (Node,
 * Deno) and the joined text has a character beyond U+00FF, its UTF-16 code
 * units, which the send thread transcodes (V8's UTF-8 encoder is slow on
 * such strings). Shorter strings go as `define` while they are ASCII; a
 * string with a character beyond U+007F goes as `utf16`: copying UTF-16
 * code units costs the application's thread about half of encoding UTF-8.
 *
 * @module
 */

import { valueKinds } from "./abi.ts";

/** `"DDB1"` as a little-endian u32: the first 4 bytes of every batch. */
export const BATCH_MAGIC = 0x31424444;
/** The format's version; the decoder rejects any other. */
export const BATCH_VERSION = 3;

/** Fixed-width records: total size and field offsets in bytes. */
export const records = {
  /** At offset 0 of the batch. */
  header: { size: 24, magic: 0, version: 4, flags: 6, chunk_count: 8, span_count: 12, string_count: 16, text_offset: 20 },
  /** The fixed part of a span (ids and times u64/i64, error i32, counts u32). */
  span: {
    size: 72,
    trace_id_low: 0,
    trace_id_high: 8,
    span_id: 16,
    parent_id: 24,
    start: 32,
    duration: 40,
    error: 48,
    meta_count: 52,
    metric_count: 56,
    meta_struct_count: 60,
    link_count: 64,
    event_count: 68,
  },
  /** The fixed part of a span link (ids u64, flags u32, count u32). */
  link: { size: 32, trace_id_low: 0, trace_id_high: 8, span_id: 16, flags: 24, attribute_count: 28 },
  /** The fixed part of a span event (time u64, count u32). */
  event: { size: 12, time: 0, attribute_count: 8 },
} as const;

/** Bits of `header.flags`. */
export const batchFlags = { text_utf16: 1 } as const;

/** The tag in the low 2 bits of a `str` word. */
export const stringTags = { ref: 0, define: 1, text: 2, utf16: 3 } as const;
/** Bits of a `str` word below the index or length. */
export const STRING_TAG_BITS = 2;
/** The longest string a `str` can carry, in bytes. */
export const MAX_STRING_BYTES = 2 ** (32 - STRING_TAG_BITS) - 1;

/** The shortest string, in UTF-16 code units, that goes as `text`. */
export const TEXT_MIN_UNITS = 16;
/** The most UTF-16 code units a batch's text holds (separators included); strings past it go as `define` or `utf16`. */
export const TEXT_MAX_UNITS = 2 ** 26;

/** A meta_struct value's kind. */
export const metaStructKinds = { blob: 0, tokens: 1 } as const;

/** A span event attribute's kind. */
export const eventAttributeKinds = {
  string: 0,
  bool: 1,
  int: 2,
  double: 3,
  string_array: 4,
  bool_array: 5,
  int_array: 6,
  double_array: 7,
} as const;

/**
 * The Rust module of the batch decoder (lib/batch), generated from this table
 * and `valueKinds` of abi.ts: `MAGIC`, `VERSION`, `STRING_TAG_BITS`,
 * `<RECORD>_<FIELD>` and `<RECORD>_SIZE` for each record (byte offsets, usize),
 * `<ENUM>_<NAME>` for each tag (u32). `build.ts` writes it to
 * `lib/build/batch_format.rs`.
 */
export function rustModule(): string {
  const lines = [
    "// Generated by build.ts from ffi/batch.ts and ffi/abi.ts: do not edit.",
    `pub const MAGIC: u32 = 0x${BATCH_MAGIC.toString(16)};`,
    `pub const VERSION: u16 = ${BATCH_VERSION};`,
    `pub const STRING_TAG_BITS: u32 = ${STRING_TAG_BITS};`,
  ];
  const define = (prefix: string, table: Record<string, number>, type: string) => {
    for (const [name, value] of Object.entries(table)) {
      lines.push(`pub const ${prefix}_${name.toUpperCase()}: ${type} = ${value};`);
    }
  };
  for (const [record, fields] of Object.entries(records)) define(record.toUpperCase(), fields, "usize");
  define("FLAG", batchFlags, "u32");
  define("STR", stringTags, "u32");
  define("META_STRUCT", metaStructKinds, "u32");
  define("ATTR", eventAttributeKinds, "u32");
  define("VALUE", valueKinds, "u32");
  lines.push("");
  return lines.join("\n");
}
