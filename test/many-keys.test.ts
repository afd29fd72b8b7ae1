/**
 * Key insertion is linear (issue 11, item 5): libdatadog's spans append
 * meta, metrics and meta_struct keys and de-duplicate them once, by hash,
 * before sending, in libdatadog's wire order (`sentOrder`).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertNoLeaks, sentOrder, span, withExporter } from "./helpers.ts";

test.after.each(assertNoLeaks);
// These tests leave a big heap behind: collect it now, not in the middle of the next file's timing test.
test.after(() => {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
});

const N = 100_000;

test("one span with 100,000 meta keys and 100,000 metric keys builds in well under a second, all on the wire", () =>
  withExporter(async (exporter, agent) => {
    const meta: Record<string, string> = {};
    const metrics: Record<string, number> = {};
    for (let i = 0; i < N; i++) {
      meta[`meta.key.${i}`] = `v${i}`;
      metrics[`metric.key.${i}`] = i;
    }
    const t0 = performance.now();
    const sent = exporter.send([[span({ meta, metrics })]]); // the span is built before send returns
    const built = performance.now() - t0;
    await sent;
    const total = performance.now() - t0;
    // Quadratic insertion took 6.4-7.1 s to build; linear builds in ~0.5 s here. Generous: the machine is shared.
    assert.ok(built < 3000, `building took ${built.toFixed(0)} ms`);
    // The round trip includes the test agent decoding 200,000 keys in this same process (~1.3 s when idle).
    assert.ok(total < 30_000, `building and sending took ${total.toFixed(0)} ms`);
    const [[s]] = await agent.waitForTraces(1, 20_000);
    const metaKeys = Object.keys(s.meta);
    const metricKeys = Object.keys(s.metrics);
    assert.is(metaKeys.length, N);
    assert.is(metricKeys.length, N);
    // The library's order of the writes.
    const [first, last] = [sentOrder(["meta.key.0", `meta.key.${N - 1}`]), sentOrder(["metric.key.0", `metric.key.${N - 1}`])];
    assert.is(metaKeys[0], first[0]);
    assert.is(metaKeys[N - 1], first[1]);
    assert.is(metricKeys[0], last[0]);
    for (let i = 0; i < N; i += 997) {
      assert.is(s.meta[`meta.key.${i}`], `v${i}`);
      assert.is(s.metrics[`metric.key.${i}`], i);
    }
  }));

test("a rewritten key (past the index threshold; its hole squeezed out at push) keeps its last value, in the place of its last write", () =>
  withExporter(async (exporter, agent) => {
    // 200 meta keys, one of them _dd.p.tid: the exporter writes it again for
    // a 128-bit trace id, after the others, so it is the last write.
    const keys = Array.from({ length: 200 }, (_, i) => (i === 50 ? "_dd.p.tid" : `k${i}`));
    const meta = Object.fromEntries(keys.map((k) => [k, "given"]));
    await exporter.send([[span({ traceId: (0xabcn << 64n) | 1n, meta })]]);
    const [[s]] = await agent.waitForTraces(1);
    assert.equal(Object.keys(s.meta), sentOrder([...keys, "_dd.p.tid"]));
    assert.is(s.meta["_dd.p.tid"], "0000000000000abc");
  }));

test("one event with 50,000 attributes and one link with 50,000 attributes", () =>
  withExporter(async (exporter, agent) => {
    const attrs: Record<string, string> = {};
    for (let i = 0; i < 50_000; i++) attrs[`a${i}`] = `${i}`;
    const t0 = performance.now();
    const sent = exporter.send([[span({ links: [{ traceId: 1n, spanId: 2n, attributes: attrs }], events: [{ name: "e", time: 1n, attributes: attrs }] })]]);
    const built = performance.now() - t0;
    await sent;
    assert.ok(built < 3000, `building took ${built.toFixed(0)} ms`);
    const [[s]] = await agent.waitForTraces(1, 20_000);
    assert.is(Object.keys((s.span_links[0] as Record<string, object>).attributes).length, 50_000);
    assert.is(Object.keys((s.span_events[0] as Record<string, object>).attributes).length, 50_000);
  }));

test.run();
