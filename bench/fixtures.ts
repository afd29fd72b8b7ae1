/**
 * The benchmark's spans: one fixed, realistic set, built deterministically
 * (seeded), in three equivalent shapes:
 *
 * - `ours`: this package's plain `Span` objects (`TraceChunk[]`);
 * - `ddtrace`: dd-trace-js's formatted spans, the input of its v0.4
 *   `AgentEncoder` (`trace_id`/`span_id`/`parent_id` as its `Identifier`,
 *   `start`/`duration` as numbers of ns, `meta`, `metrics`, `span_events`,
 *   links pre-serialized in meta `_dd.span_links` as its formatter does);
 * - `msgpack`: plain objects shaped like the v0.4 wire, for `@msgpack/msgpack`.
 *
 * Set "basic": 64-bit ids, 4 string fields (service, name, resource, type),
 * 10 meta, 3 metrics. Set "extended": the same plus a 128-bit trace id
 * (meta `_dd.p.tid`), one span link (2 attributes, a tracestate) and one span
 * event (3 typed attributes) on every span. Set "unicode": "basic" with
 * every meta value unique to its span and non-ASCII (Cyrillic, accents, an
 * emoji), so no encoder can cache any of them.
 *
 * @module
 */
import { createRequire } from "node:module";
import type { Span, TraceChunk } from "../src/span.ts";

const require = createRequire(import.meta.url);

/** The three span sets. */
export type SetName = "basic" | "extended" | "unicode";
export const SET_NAMES: readonly SetName[] = ["basic", "extended", "unicode"];

/** One span set in every shape the benchmark needs. */
export interface Fixture {
  readonly name: SetName;
  /** Spans per batch (chunks × spans per chunk). */
  readonly spans: number;
  /** This package's input. */
  readonly ours: TraceChunk[];
  /** dd-trace-js's AgentEncoder input: one array of formatted spans per chunk. */
  readonly ddtrace: unknown[][];
  /** v0.4-shaped plain objects for @msgpack/msgpack. */
  readonly msgpack: unknown[][];
}

/** mulberry32: a small seeded PRNG, so every run uses the same spans (the boundary fuzz uses it too). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex16 = (v: bigint) => v.toString(16).padStart(16, "0");

/** Span templates of a typical web service trace: a request, then database, cache, HTTP client and render spans. */
const KINDS = [
  { service: "shop-web", name: "express.request", type: "web", component: "express", kind: "server" },
  { service: "shop-db", name: "pg.query", type: "sql", component: "pg", kind: "client" },
  { service: "shop-cache", name: "redis.command", type: "redis", component: "redis", kind: "client" },
  { service: "shop-web", name: "http.request", type: "http", component: "http", kind: "client" },
  { service: "shop-web", name: "template.render", type: "template", component: "pug", kind: "internal" },
] as const;
const ROUTES = ["/products/:id", "/cart", "/checkout", "/users/:id/orders", "/search", "/health"];
const SQL = [
  "SELECT id, name, price FROM products WHERE id = $1",
  "SELECT * FROM carts WHERE user_id = $1 ORDER BY updated_at DESC LIMIT 20",
  "UPDATE carts SET items = $1 WHERE id = $2",
  "INSERT INTO orders (user_id, total, currency) VALUES ($1, $2, $3)",
];
const REDIS = ["GET", "SET", "HGETALL", "EXPIRE"];
const HOSTS = ["payments.internal", "inventory.internal", "recommendations.internal"];

/**
 * Builds a set: `chunks` traces of `perChunk` spans each (default 100 × 10
 * = 1,000 spans).
 */
export function makeFixture(name: SetName, chunks = 100, perChunk = 10, seed = 42): Fixture {
  const id: (hex: string) => unknown = require("dd-trace/packages/dd-trace/src/id.js");
  const rnd = prng(seed + (name === "extended" ? 1 : name === "unicode" ? 2 : 0));
  let unique = 0;
  const int = (n: number) => Math.floor(rnd() * n);
  const u64 = () => (BigInt(int(2 ** 31)) << 32n) | BigInt(int(2 ** 32)) | 1n;
  const runtimeId = "c9b7a1d4-3f5e-4e2a-9b1c-7d6e5f4a3b2c";
  const extended = name === "extended";
  const ours: TraceChunk[] = [];
  const ddtrace: unknown[][] = [];
  const msgpack: unknown[][] = [];
  let now = 1_700_000_000_000_000_000n;
  for (let c = 0; c < chunks; c++) {
    const low = u64();
    const high = extended ? (0x65a1b2c3n << 32n) | BigInt(int(2 ** 32)) : 0n;
    const traceId = (high << 64n) | low;
    const route = ROUTES[int(ROUTES.length)];
    const method = int(4) === 0 ? "POST" : "GET";
    const requestId = `${int(1e9).toString(36)}-${int(1e9).toString(36)}`;
    const rootId = u64();
    const oursChunk: Span[] = [];
    const ddChunk: unknown[] = [];
    const mpChunk: unknown[] = [];
    for (let i = 0; i < perChunk; i++) {
      const k = i === 0 ? KINDS[0] : KINDS[1 + int(KINDS.length - 1)];
      const spanId = i === 0 ? rootId : u64();
      const parentId = i === 0 ? 0n : rootId;
      const start = now + BigInt(i * 150_000 + int(50_000));
      const duration = BigInt(20_000 + int(5_000_000));
      const error = int(50) === 0 ? 1 : 0;
      const resource = k.type === "web"
        ? `${method} ${route}`
        : k.type === "sql"
        ? SQL[int(SQL.length)]
        : k.type === "redis"
        ? REDIS[int(REDIS.length)]
        : k.type === "http"
        ? `GET ${HOSTS[int(HOSTS.length)]}/v1/items`
        : "views/product.pug";
      const objectId = int(1e6);
      // 10 meta: 7 repeat from span to span, 3 are unique to the span.
      const meta: Record<string, string> = {
        "env": "prod",
        "version": "4.12.0",
        "language": "javascript",
        "runtime-id": runtimeId,
        "component": k.component,
        "span.kind": k.kind,
        "_dd.p.dm": "-0",
        "http.url": `https://shop.example.com${route.replace(":id", String(objectId))}?page=${int(20)}`,
        "request.id": requestId,
        "db.row_count": String(int(500)),
      };
      if (name === "unicode") {
        for (const key in meta) meta[key] = `${meta[key]} · значение ${++unique} é ✓ 🚀`;
      }
      const metrics: Record<string, number> = {
        "_sampling_priority_v1": 1,
        "_dd.measured": 1,
        "process_id": 4242,
      };
      const span: Span = {
        name: k.name, service: k.service, resource, type: k.type,
        traceId, spanId, parentId, start, duration, error, meta, metrics,
      };
      const ddMeta: Record<string, string> = { ...meta };
      const mpMeta: Record<string, string> = { ...meta };
      let ddEvents: unknown[] | undefined;
      let mpLinks: unknown[] | undefined;
      let mpEvents: unknown[] | undefined;
      if (extended) {
        const tid = hex16(high);
        ddMeta["_dd.p.tid"] = tid;
        mpMeta["_dd.p.tid"] = tid;
        const link = {
          traceId: (BigInt(0x65a1b2c3 + int(1000)) << 96n) | u64(),
          spanId: u64(),
          attributes: { "link.reason": "batch", "messaging.system": "kafka" },
          tracestate: "dd=s:1;t.dm:-0,vendor=abc",
          flags: 1,
        };
        const eventTime = start + 1_000n;
        const event = {
          name: "exception",
          time: eventTime,
          attributes: { "exception.type": "TimeoutError", "retry.count": 2, "handled": true },
        };
        span.links = [link];
        span.events = [event];
        // dd-trace's formatter builds this JSON from span._links (span_format.js); the encoder sends it as a string.
        ddMeta["_dd.span_links"] = JSON.stringify([{
          trace_id: link.traceId.toString(16).padStart(32, "0"),
          span_id: hex16(link.spanId),
          attributes: link.attributes,
          tracestate: link.tracestate,
          flags: link.flags,
        }]);
        // dd-trace keeps events raw ({ name, startTime in ms, attributes }) for its native span_events encoding.
        ddEvents = [{ name: event.name, startTime: Number(eventTime) / 1e6, attributes: event.attributes }];
        mpLinks = [{
          trace_id: link.traceId & ((1n << 64n) - 1n),
          trace_id_high: link.traceId >> 64n,
          span_id: link.spanId,
          attributes: link.attributes,
          tracestate: link.tracestate,
          flags: link.flags,
        }];
        mpEvents = [{
          time_unix_nano: eventTime,
          name: event.name,
          attributes: {
            "exception.type": { type: 0, string_value: "TimeoutError" },
            "retry.count": { type: 2, int_value: 2 },
            "handled": { type: 1, bool_value: true },
          },
        }];
      }
      oursChunk.push(span);
      ddChunk.push({
        trace_id: id(hex16(low)),
        span_id: id(hex16(spanId)),
        parent_id: id(hex16(parentId)),
        name: k.name,
        resource,
        service: k.service,
        type: k.type,
        error,
        meta: ddMeta,
        metrics: { ...metrics },
        start: Number(start),
        duration: Number(duration),
        span_events: ddEvents,
      });
      const mp: Record<string, unknown> = {
        service: k.service, name: k.name, resource,
        trace_id: low, span_id: spanId, parent_id: parentId,
        start, duration, error, meta: mpMeta, metrics: { ...metrics }, type: k.type,
      };
      if (mpLinks) mp.span_links = mpLinks;
      if (mpEvents) mp.span_events = mpEvents;
      mpChunk.push(mp);
    }
    now += 10_000_000n;
    ours.push(oursChunk);
    ddtrace.push(ddChunk);
    msgpack.push(mpChunk);
  }
  return { name, spans: chunks * perChunk, ours, ddtrace, msgpack };
}

/** Every string of a span, visited as any encoder must read it (the floor's work). */
export function forEachString(span: Span, f: (s: string) => void): void {
  f(span.service);
  f(span.name);
  f(span.resource ?? span.name);
  f(span.type ?? "");
  const meta = span.meta;
  if (meta) for (const k in meta) (f(k), f(meta[k]));
  const metrics = span.metrics;
  if (metrics) for (const k in metrics) f(k);
  if (span.links) {
    for (const l of span.links) {
      if (l.tracestate) f(l.tracestate);
      const a = l.attributes;
      if (a) for (const k in a) (f(k), f(a[k]));
    }
  }
  if (span.events) {
    for (const e of span.events) {
      f(e.name);
      const a = e.attributes;
      if (a) {
        for (const k in a) {
          f(k);
          const v = a[k];
          if (typeof v === "string") f(v);
        }
      }
    }
  }
}
