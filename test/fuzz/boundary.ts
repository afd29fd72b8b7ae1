/**
 * A property-based fuzz of the TypeScript → C boundary (fast-check): random
 * batches of spans (huge and odd strings, lone surrogates, getters and
 * Proxies whose answers change after the first read, deep metaStruct,
 * links, events, now and then one invalid field) go through a
 * `TraceExporter` to a `TestAgent`. Each batch either arrives exactly as
 * given — as first read; strings as their UTF-8 (lone surrogates U+FFFD);
 * maps de-duplicated, last write wins — or `send` throws a `ValidationError`
 * and nothing is sent. The live native object count is back to its
 * baseline after every batch.
 *
 * `test/fuzz.test.ts` runs it against an ASan + UBSan build of lib/.
 */
import fc from "fast-check";
import { decode } from "@msgpack/msgpack";
import { double, type Span, TraceExporter, ValidationError } from "../../mod.ts";
import { type DecodedSpan, liveNativeObjects, TestAgent } from "../../testing.ts";
import { Binding, getBinding } from "../../src/binding.ts";
import { buildTraceChunks } from "../../src/build.ts";
import { prng } from "../../bench/fixtures.ts";

type Raw = Record<string, unknown>;

/** A string as it arrives: its UTF-8, decoded (lone surrogates become U+FFFD). */
function wire(s: string): string {
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(new TextEncoder().encode(s));
}

const LONGER = "L".repeat(70_000);

// ---- arbitraries -----------------------------------------------------------

/** UTF-16 units of every kind: ASCII, 2- and 3-byte UTF-8, surrogates (paired by chance, mostly lone). */
const unit = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x1f }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0x7ff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x800, max: 0xffff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }) },
);
const units = (min: number, max: number) =>
  fc.array(unit, { minLength: min, maxLength: max }).map((u) => {
    let s = "";
    for (let i = 0; i < u.length; i += 4096) s += String.fromCharCode(...u.slice(i, i + 4096));
    return s;
  });
/** Short strings mostly; some around the string cache's 256-unit limit; a few past the 64 KiB scratch buffer. */
const str = fc.oneof(
  { weight: 20, arbitrary: units(0, 12) },
  { weight: 2, arbitrary: units(250, 262) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom("k", "é", "€", "🎉", "\ud800", "\udc00x"), fc.integer({ min: 22_000, max: 70_000 }))
      .map(([c, n]) => c.repeat(Math.ceil(n / c.length))),
  },
);
const key = str.filter((k) => k !== "__proto__");
const dict = <T>(value: fc.Arbitrary<T>, maxKeys = 6) => fc.dictionary(key, value, { maxKeys });

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const nanos = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

/** metaStruct values: plain JS values (numbers of every kind, i64/u64 bigints, bytes), nested. */
const { value: structValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    str,
    fc.double(),
    fc.integer(),
    fc.constantFrom(2 ** 53, -(2 ** 53), 2 ** 63, -0, 0.5),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie("value"), { maxLength: 4 }),
    dict(tie("value"), 4),
  ),
}));
/** A chain `depth` containers deep (64 is the most allowed). */
const deep = fc.integer({ min: 58, max: 66 }).chain((depth) =>
  fc.array(fc.boolean(), { minLength: depth, maxLength: depth }).map((kinds) =>
    kinds.reduce<unknown>((inner, isMap) => (isMap ? { k: inner } : [inner]), "leaf")
  )
);

const eventAttr = fc.oneof(
  str,
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => double(d)),
  fc.array(str, { maxLength: 4 }),
  fc.array(fc.boolean(), { maxLength: 4 }),
  fc.array(fc.integer(), { maxLength: 4 }),
  fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 4 }),
);

const link = fc.record({
  traceId: fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  spanId: u64,
  attributes: dict(str),
  tracestate: str,
  flags: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
}, { requiredKeys: ["traceId", "spanId"] });

const event = fc.record({
  name: str,
  time: fc.oneof(u64, fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  attributes: dict(eventAttr),
}, { requiredKeys: ["name", "time"] });

const spanModel = fc.record({
  name: str,
  service: str,
  resource: str,
  type: str,
  traceId: fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  spanId: u64,
  parentId: u64,
  start: nanos,
  duration: nanos,
  error: fc.constantFrom(0, 1, true, false, -5, 2 ** 31 - 1),
  meta: dict(str),
  metrics: dict(fc.double({ noNaN: true, noDefaultInfinity: true })),
  metaStruct: dict(fc.oneof({ weight: 30, arbitrary: structValue }, { weight: 1, arbitrary: deep }), 4),
  links: fc.array(link, { maxLength: 3 }),
  events: fc.array(event, { maxLength: 3 }),
}, { requiredKeys: ["name", "service", "traceId", "spanId", "start", "duration"] }) as fc.Arbitrary<Span>;

/** One invalid field, put into one span of the batch. */
const invalid = fc.constantFrom<[string, (s: Span) => void]>(
  ["meta value", (s) => void (s.meta = { ...s.meta, bad: 5 as never })],
  ["metric NaN", (s) => void (s.metrics = { ...s.metrics, bad: NaN })],
  ["start", (s) => void (s.start = -1n)],
  ["span id", (s) => void (s.spanId = 1n << 64n)],
  ["link flags", (s) => void (s.links = [...(s.links ?? []), { traceId: 1n, spanId: 1n, flags: 2 ** 32 }])],
  ["event attribute", (s) => void (s.events = [{ name: "e", time: 1n, attributes: { o: {} as never } }])],
  ["metaStruct function", (s) => void (s.metaStruct = { f: [() => 1] })],
  ["metaStruct cycle", (s) => {
    const o: Raw = {};
    o.self = o;
    s.metaStruct = { o };
  }],
  ["mixed array", (s) => void (s.events = [{ name: "e", time: 1n, attributes: { m: ["a", 1] as never } }])],
);

const batch = fc.record({
  chunks: fc.array(fc.array(spanModel, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 }),
  /** 0: plain objects; 1: every object and array a Proxy whose answers change after the first read; 2: some. */
  hostility: fc.constantFrom(0, 1, 2),
  seed: fc.integer(),
  /** About one batch in six has an invalid field. */
  invalid: fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(invalid, fc.nat(), fc.nat()) }),
});

// ---- hostile presentations -----------------------------------------------

/** What a second read returns instead: longer strings, other types, more elements. */
function changed(v: unknown): unknown {
  if (typeof v === "string") return v + LONGER;
  if (typeof v === "number") return "now a string " + LONGER;
  if (typeof v === "bigint") return -v - 1n;
  return LONGER;
}

/**
 * `v` as the exporter sees it: with `hostile()` true, each object or array
 * (not bytes) is a Proxy that answers like `v` on the first read of each
 * property (and of its key list), and differently after: longer strings,
 * other types, extra keys, a longer length.
 */
function present(v: unknown, hostile: () => boolean, done = new Map<object, unknown>()): unknown {
  if (typeof v !== "object" || v === null || v instanceof Uint8Array) return v;
  if (done.has(v)) return done.get(v); // a cycle
  const target: Raw = Array.isArray(v) ? [] : Object.create(Object.getPrototypeOf(v));
  done.set(v, target);
  for (const k of Object.keys(v)) target[k] = present((v as Raw)[k], hostile, done);
  if (Array.isArray(v)) (target as unknown as unknown[]).length = v.length;
  if (!hostile()) return target;
  const seen = new Set<PropertyKey>();
  let listed = false;
  return new Proxy(target, {
    get(t, k, r) {
      const value = Reflect.get(t, k, r);
      if (typeof k === "symbol") return value;
      if (seen.has(k)) return k === "length" ? (value as number) + 5 : changed(value);
      seen.add(k);
      return value;
    },
    ownKeys(t) {
      if (!listed) {
        listed = true;
        return Reflect.ownKeys(t);
      }
      if (!Array.isArray(t)) t[`extra${Object.keys(t).length}`] = LONGER;
      return Reflect.ownKeys(t);
    },
  });
}

// ---- what the agent must decode ------------------------------------------

/** Numbers and bigints the way they compare after a msgpack round trip; bytes as arrays. */
function norm(v: unknown): unknown {
  if (typeof v === "bigint") return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v;
  if (v === undefined) return null;
  if (Object.is(v, -0)) return 0;
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === "object" && v !== null) {
    const o: Raw = {};
    for (const [k, x] of Object.entries(v)) o[k] = norm(x);
    return o;
  }
  return v;
}

/** A map as the agent decodes it: wire keys, last write wins, values mapped. */
function wireMap<T>(m: Record<string, T> | undefined, f: (v: T) => unknown): Raw {
  const o: Raw = {};
  for (const k of Object.keys(m ?? {})) o[wire(k)] = f(m![k]);
  return o;
}

function structValueWire(v: unknown): unknown {
  if (typeof v === "string") return wire(v);
  if (Array.isArray(v)) return v.map(structValueWire);
  if (typeof v === "object" && v !== null && !(v instanceof Uint8Array)) return wireMap(v as Raw, structValueWire);
  return v;
}

function eventAttrWire(v: unknown): unknown {
  let forceDouble = false;
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    v = (v as { double: unknown }).double;
    forceDouble = true;
  }
  const scalar = (x: unknown, kind: string) =>
    kind === "string" ? { type: 0, string_value: wire(x as string) }
    : kind === "bool" ? { type: 1, bool_value: x }
    : kind === "int" ? { type: 2, int_value: norm(x) }
    : { type: 3, double_value: Number(x) };
  if (Array.isArray(v)) {
    let kind = v.length === 0 ? (forceDouble ? "double" : "string")
      : typeof v[0] === "string" ? "string" : typeof v[0] === "boolean" ? "bool" : forceDouble ? "double" : "int";
    if (kind === "int" && v.some((x) => typeof x === "number" && !Number.isSafeInteger(x))) kind = "double";
    return { type: 4, array_value: { values: v.map((x) => scalar(x, kind)) } };
  }
  if (typeof v === "string") return scalar(v, "string");
  if (typeof v === "boolean") return scalar(v, "bool");
  if (typeof v === "bigint" || (Number.isSafeInteger(v) && !forceDouble)) return scalar(v, "int");
  return scalar(v, "double");
}

/** Checks one decoded span against its model; throws an Error naming the first difference. */
function checkSpan(got: DecodedSpan, m: Span, where: string): void {
  const eq = (what: string, a: unknown, b: unknown) => {
    const x = JSON.stringify(norm(a), big), y = JSON.stringify(norm(b), big);
    if (x !== y) throw new Error(`${where}.${what}: got ${x.slice(0, 300)}, expected ${y.slice(0, 300)}`);
  };
  const traceId = m.traceId;
  eq("name", got.name, wire(m.name));
  eq("service", got.service, wire(m.service));
  eq("resource", got.resource, wire(m.resource ?? m.name));
  eq("type", got.type, wire(m.type ?? ""));
  eq("trace_id", got.trace_id, traceId & ((1n << 64n) - 1n));
  eq("span_id", got.span_id, m.spanId);
  eq("parent_id", got.parent_id, m.parentId ?? 0n);
  eq("start", got.start, BigInt(m.start));
  eq("duration", got.duration, BigInt(m.duration));
  eq("error", got.error, m.error === true ? 1 : m.error === false || m.error === undefined ? 0 : m.error);
  const meta = wireMap(m.meta, (v) => wire(v));
  if (traceId >= 1n << 64n) meta["_dd.p.tid"] = (traceId >> 64n).toString(16).padStart(16, "0");
  eq("meta", sorted(got.meta), sorted(meta));
  eq("metrics", sorted(got.metrics), sorted(wireMap(m.metrics, (v) => v)));
  const ms: Raw = {};
  for (const k of Object.keys(m.metaStruct ?? {})) {
    const v = (m.metaStruct as Raw)[k];
    ms[wire(k)] = v instanceof Uint8Array ? v : structValueWire(v);
  }
  const gotMs: Raw = {};
  for (const [k, v] of Object.entries(got.meta_struct)) gotMs[k] = ms[k] instanceof Uint8Array ? v : decode(v, { useBigInt64: true });
  eq("meta_struct", sorted(gotMs), sorted(ms));
  const links = (m.links ?? []).map((l) => {
    const o: Raw = { trace_id: l.traceId & ((1n << 64n) - 1n), trace_id_high: l.traceId >> 64n, span_id: l.spanId };
    const attrs = wireMap(l.attributes, (v) => wire(v));
    if (Object.keys(attrs).length) o.attributes = sorted(attrs);
    if (l.tracestate) o.tracestate = wire(l.tracestate);
    if (l.flags) o.flags = l.flags;
    return o;
  });
  eq("span_links", got.span_links.map((l) => sortedDeep(l)), links.map(sortedDeep));
  const events = (m.events ?? []).map((e) => {
    const o: Raw = { time_unix_nano: BigInt(e.time), name: wire(e.name) };
    const attrs = wireMap(e.attributes, eventAttrWire);
    if (Object.keys(attrs).length) o.attributes = attrs;
    return o;
  });
  eq("span_events", got.span_events.map(sortedDeep), events.map(sortedDeep));
}

function big(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? `${v}n` : typeof v === "number" && !Number.isFinite(v) ? String(v) : v;
}

function sorted(o: Raw): Raw {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}

function sortedDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedDeep);
  if (typeof v === "object" && v !== null && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortedDeep((v as Raw)[k])]));
  }
  return v;
}

// ---- the property ----------------------------------------------------------

/** What {@link runFuzz} did. */
export interface FuzzResult {
  runs: number;
  sent: number;
  refused: number;
  failure?: string;
}

/**
 * Runs the property for about `timeMs` milliseconds (`seed` for a replay;
 * fast-check prints it with any counterexample).
 */
export async function runFuzz(timeMs: number, seed?: number): Promise<FuzzResult> {
  const agent = await TestAgent.start();
  // Both send paths: the batch writer (one crossing) and the reference path, field by field.
  const exporters = [new TraceExporter({ url: agent.url, sendPath: "batch" }), new TraceExporter({ url: agent.url, sendPath: "fields" })];
  const baseline = liveNativeObjects();
  // The same spans are also built with the string cache off (every string through the scratch buffer), then freed.
  const uncached = new Binding(getBinding().native, { stringCache: false });
  let sent = 0, refused = 0;
  try {
    const property = fc.asyncProperty(batch, async (b) => {
      agent.reset();
      const models = b.chunks.map((c) => c.map((s) => ({ ...s })));
      let expectInvalid = false;
      if (b.invalid) {
        const [[, put], ci, si] = b.invalid;
        const chunk = models[ci % models.length];
        put(chunk[si % chunk.length]);
        expectInvalid = true;
      }
      // A deep chain past 64 levels is invalid too.
      const tooDeep = models.some((c) => c.some((s) => Object.values(s.metaStruct ?? {}).some((v) => depthOf(v) > 64)));
      expectInvalid ||= tooDeep;
      const random = prng(b.seed);
      const hostile = () => (b.hostility === 0 ? false : b.hostility === 1 ? true : random() < 0.5);
      const traces = models.map((c) => present(c, hostile)) as Span[][];
      let error: unknown;
      try {
        await exporters[b.seed & 1].send(traces);
      } catch (e) {
        error = e;
      }
      if (expectInvalid) {
        if (!(error instanceof ValidationError)) throw new Error(`expected a ValidationError, got ${error ?? "a send"}`);
        if (agent.requests.length !== 0) throw new Error("a refused batch was sent");
        refused++;
      } else {
        if (error) throw error;
        const got = await agent.waitForTraces(models.length, 20_000);
        if (got.length !== models.length) throw new Error(`${got.length} chunks arrived, ${models.length} sent`);
        got.forEach((chunk, c) => {
          if (chunk.length !== models[c].length) throw new Error(`chunk ${c}: ${chunk.length} spans, ${models[c].length} sent`);
          chunk.forEach((s, i) => checkSpan(s, models[c][i], `traces[${c}][${i}]`));
        });
        sent++;
      }
      let handle: unknown;
      try {
        handle = buildTraceChunks(uncached, models.map((c) => present(c, hostile)) as Span[][]);
      } catch (e) {
        if (!expectInvalid || !(e instanceof ValidationError)) throw e;
      }
      if (handle !== undefined) {
        if (expectInvalid) throw new Error("the uncached binding built an invalid batch");
        uncached.symbols.ddog_tracer_trace_chunks_free(handle as never);
      }
      const live = liveNativeObjects();
      if (live !== baseline) throw new Error(`live native objects: ${live}, ${baseline} before`);
    });
    const details = await fc.check(property, {
      interruptAfterTimeLimit: timeMs,
      markInterruptAsFailure: false,
      numRuns: 1_000_000,
      seed,
      endOnFailure: true,
    });
    const result: FuzzResult = { runs: details.numRuns, sent, refused };
    if (details.failed) {
      // The counterexample itself can be megabytes of strings: the error, and how to replay it.
      const error = details.errorInstance instanceof Error ? details.errorInstance.stack ?? String(details.errorInstance) : String(details.errorInstance);
      result.failure = `counterexample after ${details.numRuns} runs (replay: seed ${details.seed}, path "${details.counterexamplePath}"):\n${error.slice(0, 4000)}`;
    }
    return result;
  } finally {
    for (const exporter of exporters) await exporter.close();
    await agent.close();
  }
}

/** How many containers deep `v` is (a cycle counts as deep: stops at 66). */
function depthOf(v: unknown, limit = 66): number {
  if (typeof v !== "object" || v === null || v instanceof Uint8Array || limit === 0) return 0;
  let d = 0;
  for (const x of Object.values(v)) d = Math.max(d, depthOf(x, limit - 1));
  return d + 1;
}
