/** The spans both send paths must agree on: every input of golden.test.ts and span-data.test.ts (which sends its good inputs from here), and more. */
import { encode } from "@msgpack/msgpack";
import { double, type TraceChunk } from "../mod.ts";
import { span } from "./helpers.ts";

export const nest = (n: number): unknown => (n === 0 ? "leaf" : [nest(n - 1)]);
const sp = { name: "o", service: "s", resource: "r", traceId: 1n, spanId: 1n, start: 0n, duration: 0n };

/** Every input of golden.test.ts and span-data.test.ts, and more that exercises the batch format. */
export const corpus: Record<string, TraceChunk[]> = {
  "golden: minimal": [[{ name: "op", service: "svc", resource: "res", traceId: 1n, spanId: 2n, start: 3n, duration: 200n }]],
  "golden: meta and metrics": [[{
    name: "op", service: "svc", resource: "res", type: "web",
    traceId: 0xffffffffffffffffn, spanId: 2n, parentId: 1n, start: 1_700_000_000_000_000_000n, duration: 1_000_000n,
    error: 1, meta: { a: "1", b: "2" }, metrics: { m: 1.5 },
  }]],
  "golden: 128-bit, meta_struct, link, event": [[{
    name: "op", service: "svc", resource: "res", type: "web",
    traceId: (0x1112131415161718n << 64n) | 0x0102030405060708n,
    spanId: 0x2122232425262728n, parentId: 0x3132333435363738n,
    start: 1_700_000_000_000_000_000n, duration: 1_000_000n, error: 1,
    meta: { k: "v" }, metrics: { m: 1.5 }, metaStruct: { ms: { a: 1 } },
    links: [{ traceId: (2n << 64n) | 1n, spanId: 3n, attributes: { lk: "lv" }, tracestate: "ts=1", flags: 0x80000001 }],
    events: [{ name: "ev", time: 42n, attributes: { s: "x", arr: [1, -1] } }],
  }]],
  "golden: two chunks": [[sp], [sp, sp]],
  "span-data: links": [[span({
    links: [
      { traceId: (0xaaaan << 64n) | 0xbbbbn, spanId: 2n ** 64n - 1n, attributes: { "link.kind": "follows", "é": "🚀" }, tracestate: "dd=s:1", flags: 0x80000001 },
      { traceId: 5n, spanId: 6n },
    ],
  })]],
  "span-data: events": [[span({
    events: [
      {
        name: "exception",
        time: 1_700_000_000_123_456_789n,
        attributes: {
          str: "boom", yes: true, int: 42, big: -(2n ** 63n), dbl: 2.5, forced: double(3),
          strs: ["a", "b"], bools: [true, false], ints: [1, -2, 3n], dbls: [1.5, 2], forcedDbls: double([1, 2]),
        },
      },
      { name: "bare", time: 1 },
    ],
  })]],
  "span-data: meta_struct": [[span({
    metaStruct: {
      blob: encode({ pre: ["encoded", 1] }),
      value: {
        str: "s", emoji: "🎉", int: -5, float: 1.25, big: 2n ** 64n - 1n, neg: -(2n ** 63n), yes: false, nil: null,
        bytes: new Uint8Array([0, 1, 255]), list: [1, "two", [3]], nested: { deeper: { deepest: true } }, empty: {}, none: [],
      },
      scalar: "just a string",
      arr: [1, 2],
    },
  })]],
  "span-data: meta_struct 64 deep": [[span({ metaStruct: { deep: nest(64) } })]],
  "numbers as ids and times, error true, repeated and duplicate keys": [[
    span({ traceId: 7 as never, spanId: 8 as never, parentId: 9 as never, start: 1_700_000_000_000_000, duration: 5, error: true }),
    span({ meta: { a: "1", b: "2", "_dd.p.tid": "user" }, metrics: { a: 1, b: -0.5, c: 1e300 } }),
    span({ meta: { a: "1", b: "2" }, metrics: { a: 1 }, traceId: (1n << 127n) | 3n }),
  ]],
  "unicode and empty strings, unique non-ASCII values": [[
    span({ name: "", service: "sérvice", resource: "", type: "", meta: { "": "", "ключ": "значение 🚀", "k": "\u{1F600}\u00e9\u4e2d" } }),
    span({ meta: { "ключ": "другое значение ✓", "lone": "\ud800" } }),
  ]],
  "many spans and chunks: the string table refers back": Array.from({ length: 20 }, (_, c) =>
    Array.from({ length: 10 }, (_, i) =>
      span({ spanId: BigInt(c * 100 + i + 1), meta: { "http.method": "GET", "http.url": `/users/${c}/${i}`, "component": "http" }, metrics: { "_sampling_priority_v1": 1 } }))),
  "a meta value over 64 KiB: the buffer grows": [[span({ meta: { big: "x".repeat(70_000), big2: "é".repeat(40_000) }, metaStruct: { b: new Uint8Array(100_000).fill(7) } })]],
  // On Node and Bun (NativeMemory.utf8) strings of 16 UTF-16 units or more go as `text`, joined by "\0" and encoded
  // at the end of the batch; shorter ones, and all of them on Deno, as `define` or `utf16`.
  "strings at and over the native UTF-8 encoder's threshold (16 units)": [[
    span({
      service: "service-of-16-ch", name: "nâme über sixteen units", resource: "r".repeat(15),
      meta: {
        "fifteen-chars-k": "a".repeat(15), "sixteen-chars-ke": "b".repeat(16), "seventeen-chars-k": "c".repeat(17),
        "clé non-ASCII over 16": "значение · é ✓ 🚀 and then some ASCII",
        "lone surrogates": "x".repeat(14) + "\uD800y\uDC00z\uDBFF",
        "a pair at the end": "y".repeat(15) + "\uD83D\uDE80",
        // Two text strings in a row, a high surrogate ending the first and a low one starting the second: lone, not a pair.
        "ends high": "x".repeat(15) + "\uD83D",
        "\uDE80 starts low, after it": "v",
      },
      links: [{ traceId: 1n, spanId: 2n, tracestate: "dd=s:1;o:rum,othervendor=t61rcWkgMzE", attributes: { "link.attribute.k": "ünïcödé value, long enough" } }],
      events: [{ name: "an event name past sixteen", time: 1n, attributes: { "attribute-key-long": "ASCII value of some length", xs: ["ß".repeat(20), ""] } }],
    }),
    // More text than the buffer has room for: it grows first (at the end, for the text), then the encoder writes into the new block.
    span({ meta: { grow: "ö".repeat(60_000), after: "written into the new block, too" } }),
  ]],
  "no chunks": [],
  "an empty chunk": [[]],
};

