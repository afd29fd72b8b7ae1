/**
 * The batch format's `utf16` and `text` string tags, with batches written by
 * hand (not by the writer): the decoder transcodes UTF-16 code units to
 * UTF-8 exactly as TextEncoder does (a lone surrogate becomes U+FFFD), finds
 * each `text` string in the batch's text by its UTF-16 length (in a UTF-8
 * text and in a UTF-16 one, header flag text_utf16), the
 * strings join the table as a `define` would, and a truncated or
 * out-of-range one is InvalidArgument with nothing sent and nothing leaked.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TestAgent } from "../testing.ts";
import { BATCH_MAGIC, BATCH_VERSION, batchFlags, records, STRING_TAG_BITS, stringTags } from "../ffi/batch.ts";
import { assertNoLeaks, sentOrder } from "./helpers.ts";
import { assertRefused, sendRaw } from "./batch-helpers.ts";

test.after.each(assertNoLeaks);

/** The UTF-16 code units of `s`, little-endian, as bytes. */
const utf16le = (s: string) => Array.from({ length: s.length }, (_, i) => s.charCodeAt(i)).flatMap((c) => [c & 0xff, c >> 8]);

/** A batch written word by word. */
class Hand {
  bytes: number[] = [];
  /** The `text` strings, for the batch's text. */
  texts: string[] = [];
  /** Bytes for the batch's text instead of the `text` strings joined by "\0" and encoded. */
  textBytes?: number[];
  /** The text as UTF-16 code units (header flag text_utf16), else UTF-8. */
  textUtf16 = false;
  /** The header's flags, when not the text's. */
  flags?: number;
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.bytes.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v: bigint): this {
    return this.u32(Number(v & 0xffffffffn)).u32(Number(v >> 32n));
  }
  f64(v: number): this {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    this.bytes.push(...b);
    return this;
  }
  private pad(): void {
    while (this.bytes.length % 4) this.bytes.push(0);
  }
  ref(i: number): this {
    return this.u32((i << STRING_TAG_BITS) | stringTags.ref);
  }
  define(s: string): this {
    const b = new TextEncoder().encode(s);
    this.u32((b.length << STRING_TAG_BITS) | stringTags.define);
    this.bytes.push(...b);
    this.pad();
    return this;
  }
  /** A `text` string: its length here, its characters in the batch's text. */
  text(s: string): this {
    this.texts.push(s);
    return this.u32(((s.length << STRING_TAG_BITS) | stringTags.text) >>> 0);
  }
  utf16(s: string): this {
    this.u32(((s.length << STRING_TAG_BITS) | stringTags.utf16) >>> 0);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      this.bytes.push(c & 0xff, c >> 8);
    }
    this.pad();
    return this;
  }
  /** A span's fixed part (ids 1, 2; no parent; times 3, 4) with these counts. */
  span(meta: number, metrics: number): this {
    const f = new Uint8Array(records.span.size);
    const v = new DataView(f.buffer);
    v.setBigUint64(records.span.trace_id_low, 1n, true);
    v.setBigUint64(records.span.span_id, 2n, true);
    v.setBigInt64(records.span.start, 3n, true);
    v.setBigInt64(records.span.duration, 4n, true);
    v.setUint32(records.span.meta_count, meta, true);
    v.setUint32(records.span.metric_count, metrics, true);
    this.bytes.push(...f);
    return this;
  }
  /** The whole batch: a header for one chunk of `spans` spans, then the body, then the text. */
  batch(spans: number, strings: number): Uint8Array {
    const h = new Uint8Array(records.header.size);
    const v = new DataView(h.buffer);
    const textOffset = h.length + 4 + this.bytes.length;
    const joined = this.texts.join("\0");
    const text = this.textBytes ?? (this.textUtf16 ? utf16le(joined) : [...new TextEncoder().encode(joined)]);
    v.setUint32(records.header.magic, BATCH_MAGIC, true);
    v.setUint16(records.header.version, BATCH_VERSION, true);
    v.setUint32(records.header.chunk_count, 1, true);
    v.setUint32(records.header.span_count, spans, true);
    v.setUint32(records.header.string_count, strings, true);
    v.setUint32(records.header.text_offset, textOffset, true);
    v.setUint16(records.header.flags, this.flags ?? (this.textUtf16 ? batchFlags.text_utf16 : 0), true);
    const out = new Uint8Array(textOffset + text.length);
    out.set(h);
    new DataView(out.buffer).setUint32(h.length, spans, true);
    out.set(this.bytes, h.length + 4);
    out.set(text, textOffset);
    return out;
  }
}


/** What TextEncoder makes of `s`, read back as a JS string (lone surrogates become U+FFFD). */
const utf8 = (s: string) => new TextDecoder("utf-8", { ignoreBOM: true }).decode(new TextEncoder().encode(s));

const service = "sérvice";
const name = "日本語 🚀 ok"; // a surrogate pair
const resource = "a\uD800b\uDC00c\uDBFF"; // lone surrogates, one at the very end
const key = "clé";
const value = "\u00ff\u0100\u07ff\u0800\uffff\uD83D\uDE00"; // the 1-2-3-4 byte boundaries
const long = "ü".repeat(300) + "x".repeat(70000); // a long string: str16/str32 headers

function good(): Uint8Array {
  const h = new Hand();
  // span 1: fields as utf16 (table 0, 1, 2), type a ref to one
  h.span(4, 1).utf16(service).utf16(name).utf16(resource).ref(0);
  h.utf16(key).utf16(value); // table 3, 4
  h.text("k").utf16(""); // table 5, 6: empty
  h.define("d").ref(1); // table 7
  h.ref(3).utf16(long); // a rewrite of `key` (last write wins); table 8
  h.ref(3).f64(1.5);
  // span 2: everything by reference
  h.span(1, 0).ref(2).ref(1).ref(0).ref(6).ref(7).ref(8);
  return h.batch(2, 9);
}

test("utf16 strings transcode as TextEncoder does and join the string table", async () => {
  const agent = await TestAgent.start({});
  try {
    assert.equal(await sendRaw(agent.url, [good()]), ["ok"]);
    const [[a, b]] = await agent.waitForTraces(1);
    assert.is(a.service, utf8(service));
    assert.is(a.name, utf8(name));
    assert.is(a.resource, "a\uFFFDb\uFFFDc\uFFFD");
    assert.is(a.resource, utf8(resource));
    assert.is(a.type, utf8(service));
    assert.equal(a.meta, { [utf8(key)]: utf8(long), k: "", d: utf8(name) });
    assert.equal(Object.keys(a.meta), sentOrder(["k", "d", utf8(key)])); // key's last write is the newest
    assert.equal(a.metrics, { [utf8(key)]: 1.5 });
    assert.is(b.service, utf8(resource));
    assert.is(b.name, utf8(name));
    assert.is(b.resource, utf8(service));
    assert.ok(!b.type); // the empty string
    assert.equal(b.meta, { d: utf8(long) });
  } finally {
    await agent.close();
  }
});

test("a truncated or out-of-range utf16 string is InvalidArgument; nothing is sent", async () => {
  const agent = await TestAgent.start({});
  try {
    const cases: Uint8Array[] = [];
    const one = (units: number, payload: number[]) => {
      const h = new Hand().span(0, 0);
      h.u32(((units << STRING_TAG_BITS) | stringTags.utf16) >>> 0);
      h.bytes.push(...payload);
      h.ref(0).ref(0).ref(0);
      return h.batch(1, 1);
    };
    cases.push(one(3, [0x41, 0, 0x42, 0])); // 3 units, 2 there (then the refs' words)
    cases.push(one(0x3fffffff, [0x41, 0, 0x42, 0])); // the longest count
    cases.push(one(2, [0x41, 0])); // cut inside the units
    const g = good();
    for (let n = records.header.size + 4 + records.span.size; n < 400; n += 7) cases.push(g.slice(0, n));
    // The table holds 9 strings: a header that says otherwise is wrong.
    for (const count of [8, 10]) {
      const c = g.slice();
      new DataView(c.buffer).setUint32(records.header.string_count, count, true);
      cases.push(c);
    }
    await assertRefused(agent, cases);
  } finally {
    await agent.close();
  }
});

/** A span whose four fields and one meta entry are `text` strings. */
function texts(fields: string[], key: string, value: string): Hand {
  const h = new Hand().span(1, 0);
  for (const f of fields) h.text(f);
  return h.text(key).text(value);
}

for (const utf16 of [false, true]) {
  test(`text strings (${utf16 ? "UTF-16" : "UTF-8"}): each one found by its UTF-16 length; no pair forms across two of them`, async () => {
    const agent = await TestAgent.start({});
    try {
      // A high surrogate ending one string and a low one starting the next stay lone (U+FFFD each).
      const fields = [service, name, "x\uD83D", "\uDE00y"];
      const h = texts(fields, "", value + long);
      h.textUtf16 = utf16;
      // Span 2 refers to them, and brings one more text string after a define.
      h.span(1, 0).ref(4).ref(3).define("d").ref(0).ref(1).text("🚀🚀 ok ✓");
      assert.equal(await sendRaw(agent.url, [h.batch(2, 8)]), ["ok"]);
      const [[a, b]] = await agent.waitForTraces(1);
      assert.is(a.service, utf8(service));
      assert.is(a.name, utf8(name));
      assert.is(a.resource, "x\uFFFD");
      assert.is(a.type, "\uFFFDy");
      assert.equal(a.meta, { "": utf8(value + long) });
      assert.ok(!b.service); // the empty string
      assert.is(b.name, "\uFFFDy");
      assert.is(b.resource, "d");
      assert.is(b.type, utf8(service));
      assert.equal(b.meta, { [utf8(name)]: "🚀🚀 ok ✓" });
    } finally {
      await agent.close();
    }
  });
}

test("a text that is short, long, or not split where the lengths say is InvalidArgument; nothing is sent", async () => {
  const agent = await TestAgent.start({});
  try {
    const cases: Uint8Array[] = [];
    /** Fields "a" to "d" and meta { k: "🚀" } as text strings, over these bytes of text (UTF-8, or UTF-16). */
    const with_ = (bytes: number[], utf16 = false) => {
      const h = texts(["a", "b", "c", "d"], "k", "🚀");
      h.textBytes = bytes;
      h.textUtf16 = utf16;
      return h.batch(1, 6);
    };
    const enc = (s: string) => [...new TextEncoder().encode(s)];
    const rocket = enc("🚀");
    cases.push(with_(enc("a\0b\0c\0d\0k\0").concat(rocket.slice(0, 3)))); // cut inside the last character
    cases.push(with_(enc("a\0b\0c\0d\0k\0").concat(rocket, [0x41]))); // a byte too many
    cases.push(with_(enc("a\0b\0c\0d\0k").concat(rocket))); // no separator before the last one
    cases.push(with_(enc("a\0b\0c\0d\0k\0\0").concat(rocket))); // two
    cases.push(with_(enc("a\0b\0c\0d\0"))); // the last two missing
    cases.push(with_(enc("a\0b\0c\0d\0").concat(rocket, [0], rocket))); // a pair (2 units) where "k" (1 unit) is
    // A UTF-16 text: an odd byte, a missing or non-zero separator, a unit short; and a flag the decoder does not know.
    cases.push(with_(utf16le("a\0b\0c\0d\0k\0🚀").concat([0]), true));
    cases.push(with_(utf16le("a\0b\0c\0d\0k🚀"), true));
    cases.push(with_(utf16le("a\0b\0c\0d\0k\u0001🚀"), true));
    cases.push(with_(utf16le("a\0b\0c\0d\0k\0\uD83D"), true));
    const unknownFlag = texts(["a", "b", "c", "d"], "k", "🚀");
    unknownFlag.flags = 2;
    cases.push(unknownFlag.batch(1, 6));
    const g = with_(enc("a\0b\0c\0d\0k\0").concat(rocket));
    const end = records.header.size + 4 + records.span.size + 6 * 4; // where the chunks end
    for (const offset of [0, records.header.size - 4, end - 4, end + 4, end + 2, g.length + 4, 0xfffffffc]) {
      const c = g.slice();
      new DataView(c.buffer).setUint32(records.header.text_offset, offset, true);
      cases.push(c);
    }
    await assertRefused(agent, cases);
    // The unchanged one goes out.
    assert.equal(await sendRaw(agent.url, [g]), ["ok"]);
    const [[s]] = await agent.waitForTraces(1);
    assert.equal(s.meta, { k: "🚀" });
  } finally {
    await agent.close();
  }
});

test.run();
