/**
 * `npm start` (and `npm run start:bun`, `npm run start:deno`): a real
 * instrumented HTTP service. It starts the test agent and a `node:http`
 * service, sends it a few hundred requests with `fetch`; each request makes a
 * trace (a server span, a simulated database query and a render span) that
 * goes TypeScript → libdatadog's C ABI → msgpack v0.4 over HTTP → the agent,
 * which decodes it. Prints what arrived; exits non-zero if a trace is missing.
 */
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { type Span, TraceExporter } from "../mod.ts";
import { TestAgent } from "../testing.ts";

const REQUESTS = 300;
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

const agent = await TestAgent.start();
const exporter = new TraceExporter({ url: agent.url, service: "demo-shop", env: "demo", version: "1.0.0" });

const origin = performance.timeOrigin;
/** Now, in nanoseconds since the epoch (sub-millisecond resolution). */
const nowNs = () => BigInt(Math.round((origin + performance.now()) * 1e6));
const randomId = () => randomBytes(8).readBigUInt64BE() & ((1n << 63n) - 1n) || 1n;

/** Finished traces waiting to be exported, flushed in batches. */
let queue: Span[][] = [];
const sends: Promise<unknown>[] = [];
function flush() {
  if (queue.length === 0) return;
  const batch = queue;
  queue = [];
  sends.push(exporter.send(batch).catch((e) => console.error("export failed:", e)));
}
const timer = setInterval(flush, 50);

const server = createServer(async (req, res) => {
  const traceId = (BigInt(`0x${randomBytes(16).toString("hex")}`)) || 1n;
  const rootId = randomId();
  const start = nowNs();
  const spans: Span[] = [];

  // A simulated database query.
  const dbStart = nowNs();
  await new Promise((r) => setTimeout(r, Math.random() * 3));
  const productId = Number(new URL(req.url ?? "/", "http://x").searchParams.get("id") ?? 0);
  spans.push({
    name: "postgres.query", service: "demo-shop-db", resource: "SELECT * FROM products WHERE id = $1", type: "sql",
    traceId, spanId: randomId(), parentId: rootId, start: dbStart, duration: nowNs() - dbStart,
    meta: { "db.system": "postgresql", "db.name": "shop", "span.kind": "client", component: "demo" },
    metrics: { "db.row_count": 1 },
  });

  // Rendering the answer.
  const renderStart = nowNs();
  const body = JSON.stringify({ id: productId, name: `Product ${productId}`, price: productId * 1.25 });
  spans.push({
    name: "template.render", service: "demo-shop", resource: "product.json",
    traceId, spanId: randomId(), parentId: rootId, start: renderStart, duration: nowNs() - renderStart,
  });

  const status = productId % 50 === 49 ? 500 : 200;
  res.writeHead(status, { "content-type": "application/json" });
  res.end(body);
  spans.unshift({
    name: "http.request", service: "demo-shop", resource: `${req.method} /products`, type: "web",
    traceId, spanId: rootId, start, duration: nowNs() - start, error: status >= 500 ? 1 : 0,
    meta: {
      "http.method": req.method ?? "GET", "http.url": `http://localhost${req.url}`, "http.route": "/products",
      "http.status_code": String(status), "span.kind": "server", "runtime.name": runtime,
    },
    metrics: { "_sampling_priority_v1": 1, "_dd.top_level": 1 },
  });
  queue.push(spans);
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const port = (server.address() as { port: number }).port;

const began = performance.now();
let failures = 0;
for (let i = 0; i < REQUESTS; i += 10) {
  await Promise.all(Array.from({ length: 10 }, async (_, k) => {
    const r = await fetch(`http://127.0.0.1:${port}/products?id=${i + k}`);
    await r.arrayBuffer();
    if (r.status !== 200 && r.status !== 500) failures++;
  }));
}
clearInterval(timer);
flush();
await Promise.all(sends);
server.close();

let ok = true;
try {
  await agent.waitForTraces(REQUESTS, 10_000);
} catch (e) {
  console.error(String(e));
  ok = false;
}
const traces = agent.traces();
const spans = traces.flat();
console.log(`runtime:            ${runtime}`);
console.log(`requests served:    ${REQUESTS} in ${Math.round(performance.now() - began)} ms (${failures} failed)`);
console.log(`payloads received:  ${agent.requests.filter((r) => r.path === "/v0.4/traces").length}`);
console.log(`traces received:    ${traces.length} of ${REQUESTS}`);
console.log(`spans received:     ${spans.length} of ${REQUESTS * 3}`);
console.log(`errors flagged:     ${spans.filter((s) => s.error).length} (every 50th request answers 500)`);
const sample = traces.find((t) => t.some((s) => s.error)) ?? traces[0];
if (sample) {
  console.log("\none trace, as the agent decoded it:");
  for (const s of sample) {
    const indent = s.parent_id === 0n ? "" : "  ";
    console.log(`${indent}${s.name} [${s.service}] ${s.resource}  ${(Number(s.duration) / 1e6).toFixed(3)} ms${s.error ? "  ERROR" : ""}`);
    console.log(`${indent}  trace_id=${s.trace_id} span_id=${s.span_id} parent_id=${s.parent_id}${s.meta["_dd.p.tid"] ? ` _dd.p.tid=${s.meta["_dd.p.tid"]}` : ""}`);
    for (const [k, v] of Object.entries(s.meta)) if (k !== "_dd.p.tid") console.log(`${indent}  meta ${k}=${v}`);
    for (const [k, v] of Object.entries(s.metrics)) console.log(`${indent}  metric ${k}=${v}`);
  }
}
await exporter.close();
await agent.close();
if (!ok || traces.length !== REQUESTS || spans.length !== REQUESTS * 3) {
  console.error("\nFAILED: traces are missing");
  (globalThis as unknown as { process: { exitCode: number } }).process.exitCode = 1;
} else {
  console.log(`\nOK: all ${REQUESTS} traces arrived`);
}
