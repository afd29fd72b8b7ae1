/**
 * The optional symbols of a libdatadog release build: the shared runtime
 * (one runtime for all the exporters of a process) and the stats cardinality
 * limits (a 40-byte struct passed and returned by value, on each adapter).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  ClosedError,
  defaultStatsCardinalityLimit,
  SharedRuntime,
  TraceExporter,
  ValidationError,
} from "../mod.ts";
import { TestAgent } from "../testing.ts";
import { getBinding } from "../src/binding.ts";
import { assertNoLeaks, bundledOnly, rejects, span } from "./helpers.ts";

test.after.each(assertNoLeaks);

const s = getBinding().symbols;
const hasLimits = !!s.ddog_trace_exporter_config_set_stats_cardinality_limit;

if (hasLimits) {
  test("defaultStatsCardinalityLimit: libdatadog's defaults, a struct returned by value", () => {
    assert.equal(defaultStatsCardinalityLimit(), {
      wholeKey: 7000,
      resource: 1024,
      httpEndpoint: 512,
      peerTags: 512,
      additionalTags: 100,
    });
  });

  test("statsCardinalityLimit: accepted, partial or whole; the exporter sends", async () => {
    await using agent = await TestAgent.start();
    for (const limits of [{ resource: 10 }, { wholeKey: 1, resource: 2, httpEndpoint: 3, peerTags: 4, additionalTags: 5 }, {}]) {
      const exporter = new TraceExporter({ url: agent.url, statsCardinalityLimit: limits });
      await exporter.send([[span()]]);
      await exporter.close();
    }
    assert.is(agent.spans().length, 3);
  });
} else {
  console.log("skipped (the loaded library lacks ddog_trace_exporter_config_set_stats_cardinality_limit): stats cardinality limits");
}

test("statsCardinalityLimit: each limit is checked before any native call", async () => {
  await rejects(() => new TraceExporter({ statsCardinalityLimit: { resource: -1 } }), ValidationError, /options\.statsCardinalityLimit\.resource/);
  await rejects(() => new TraceExporter({ statsCardinalityLimit: { peerTags: 1.5 } }), ValidationError, /options\.statsCardinalityLimit\.peerTags/);
  await rejects(() => new TraceExporter({ statsCardinalityLimit: "x" as never }), ValidationError, /options\.statsCardinalityLimit/);
});

bundledOnly("the 40-byte struct arrives by value, field by field", "reads it back with the bundled library's debug symbol", () =>
  test("the 40-byte struct arrives by value, field by field", () => {
    const b = getBinding();
    s.ddog_trace_exporter_config_new(b.out);
    const config = b.takeOut();
    try {
      const bytes = new Uint8Array(40);
      const v = new DataView(bytes.buffer);
      const values = [7n, 2n ** 40n + 3n, 0n, 2n ** 63n + 1n, 12345n];
      values.forEach((x, i) => v.setBigUint64(8 * i, x, true));
      b.unwrap(s.ddog_trace_exporter_config_set_stats_cardinality_limit!(config, bytes), "set_stats_cardinality_limit");
      const back = s.ddffi_debug_config_stats_cardinality_limit!(config);
      const w = new DataView(back.buffer, back.byteOffset, back.byteLength);
      assert.equal(values.map((_, i) => w.getBigUint64(8 * i, true)), values);
    } finally {
      s.ddog_trace_exporter_config_free(config);
    }
  }));

if (SharedRuntime.available) {
  test("one shared runtime for several exporters; they send before and after its shutdown", async () => {
    await using agent = await TestAgent.start();
    const runtime = new SharedRuntime();
    const a = new TraceExporter({ url: agent.url, sharedRuntime: runtime });
    const b = new TraceExporter({ url: agent.url, sharedRuntime: runtime, service: "other" });
    try {
      await a.send([[span({ spanId: 1n })]]);
      await b.send([[span({ spanId: 2n })]]);
      await runtime.shutdown({ timeoutMs: 2000 });
      assert.ok(runtime.closed);
      await runtime.shutdown(); // no-op
      await a.send([[span({ spanId: 3n })]]);
    } finally {
      await a.close();
      await b.close();
    }
    assert.equal(agent.spans().map((x) => x.span_id).sort(), [1n, 2n, 3n]);
  });

  test("the exporters keep the runtime: disposing the handle first does not stop them", async () => {
    await using agent = await TestAgent.start();
    let exporter: TraceExporter;
    {
      using runtime = new SharedRuntime();
      exporter = new TraceExporter({ url: agent.url, sharedRuntime: runtime });
    }
    await exporter.send([[span()]]);
    await exporter.close();
    assert.is(agent.spans().length, 1);
  });

  test("a closed shared runtime is refused; a wrong value too; a bad timeout", async () => {
    const runtime = new SharedRuntime();
    await rejects(() => runtime.shutdown({ timeoutMs: -1 }), TypeError, /timeoutMs/);
    await runtime.shutdown();
    await rejects(() => new TraceExporter({ sharedRuntime: runtime }), ClosedError, /sharedRuntime/);
    await rejects(() => new TraceExporter({ sharedRuntime: {} as never }), ValidationError, /options\.sharedRuntime/);
  });
} else {
  test("without a shared runtime in the library, new SharedRuntime() says so", async () => {
    await rejects(() => new SharedRuntime(), Error, /no shared runtime \(ddog_shared_runtime_new\)/);
  });
}

test.run();
