/**
 * The batch decoder hands links and event attributes it knows valid to the
 * bundled library's own spans, borrowed (lib/src/batch.rs): the same spans as
 * the per-field path for link lists and attribute counts past what the
 * decoder keeps on its stack, key indexes (16 keys and more), empty and
 * non-ASCII strings, and runs of one- and two-byte characters in utf16.
 */
import { test } from "uvu";
import type { TraceChunk } from "../mod.ts";
import { assertNoLeaks, span } from "./helpers.ts";
import { assertBothPathsAgree } from "./batch-helpers.ts";

test.after.each(assertNoLeaks);

const attrs = (n: number, v: (i: number) => string) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, v(i)]));
const link = (i: number, n: number) => ({ traceId: BigInt(i + 1), spanId: BigInt(i + 7), attributes: attrs(n, (k) => `v${k}-é${i}`), tracestate: i % 2 ? "" : `dd=s:${i}`, flags: i });

const cases: Record<string, TraceChunk[]> = {
  "links: 4 with 16 attributes in all (all on the stack)": [[span({ links: [link(0, 5), link(1, 5), link(2, 6), link(3, 0)] })]],
  "links: 3 with 17 attributes in all (the last on the heap)": [[span({ links: [link(0, 8), link(1, 8), link(2, 1)] })]],
  "links: 9, one with 40 attributes (a key index)": [[span({ links: Array.from({ length: 9 }, (_, i) => link(i, i === 4 ? 40 : i)) })]],
  "links: empty attributes and strings": [[span({ links: [{ traceId: 1n, spanId: 2n, attributes: { "": "" } }, { traceId: 3n, spanId: 4n }] })]],
  "events: 20 scalar attributes (a key index), non-ASCII names": [[span({
    events: [
      { name: "ошибка 🚀", time: 5n, attributes: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`a${i}`, i % 4 === 0 ? `s${i}é` : i % 4 === 1 ? i % 8 === 1 : i % 4 === 2 ? i : i + 0.5])) },
      { name: "", time: 0n, attributes: { "": "", "ключ": "значение", arr: ["x", "é"] } },
    ],
  })]],
  "utf16: one- and two-byte runs of every length, at both ends": [[span({
    meta: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`m${i}`, "é".repeat(i) + "abcdefghi".slice(0, i) + "жж".repeat(i % 3) + "\u4e2d" + "x".repeat(i)])),
    events: [{ name: "e", time: 1n, attributes: { s: "aé", t: "éa", u: "\ud83d\ude00é", w: "é\udc00" } }],
  })]],
};

for (const [name, traces] of Object.entries(cases)) {
  test(`both paths, the same bytes: ${name}`, async () => {
    await assertBothPathsAgree(traces);
  });
}

test.run();
