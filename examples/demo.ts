/**
 * `npm start` (and `npm run start:bun`, `npm run start:deno`): a real
 * instrumented HTTP service. It starts the test agent and a `node:http`
 * service whose fetch-style handler is wrapped by `traceHandler`, sends it a
 * few hundred requests with `fetch`; each request makes a trace (a server
 * span, a simulated database query and a render span) that goes
 * TypeScript → libdatadog's C ABI → msgpack v0.4 over HTTP → the agent,
 * which decodes it. Prints what arrived; exits non-zero if a trace is missing.
 *
 * With `DD_TRACE_AGENT_URL` set, the traces go to that agent instead (e.g.
 * Datadog's test agent, with `DD_TEST_SESSION_TOKEN`), which then checks
 * them; the demo exits non-zero unless the tracer sent every trace.
 */
import { createServer } from "node:http";
import { nodeListener, traceHandler, Tracer } from "../mod.ts";
import { TestAgent } from "../testing.ts";

const REQUESTS = 300;
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
const external = env.DD_TRACE_AGENT_URL;
const agent = external ? undefined : await TestAgent.start();
const tracer = new Tracer({ url: external ?? agent!.url, service: "demo-shop", env: "demo", version: "1.0.0", flushIntervalMs: 50 });

/** The service: a fetch-style handler, as `Deno.serve` or `Bun.serve` would take it. */
async function handle(request: Request): Promise<Response> {
  const productId = Number(new URL(request.url).searchParams.get("id") ?? 0);
  tracer.activeSpan()?.setTag("runtime.name", runtime);

  // A simulated database query.
  await tracer.trace("postgres.query", {
    service: "demo-shop-db",
    resource: "SELECT * FROM products WHERE id = $1",
    type: "sql",
    tags: { "db.system": "postgresql", "db.name": "shop", "span.kind": "client", component: "demo" },
  }, async (span) => {
    await new Promise((r) => setTimeout(r, Math.random() * 3));
    span.setTag("db.row_count", 1);
  });

  // Rendering the answer.
  const body = tracer.trace("template.render", { resource: "product.json" }, () =>
    JSON.stringify({ id: productId, name: `Product ${productId}`, price: productId * 1.25 }));

  const status = productId % 50 === 49 ? 500 : 200;
  return new Response(body, { status, headers: { "content-type": "application/json" } });
}

const server = createServer(nodeListener(traceHandler(tracer, handle, { route: () => "/products" })));
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
await tracer.flush();
server.close();

if (!agent) {
  await tracer.shutdown();
  const counters = tracer.counters;
  console.log(`runtime:            ${runtime}`);
  console.log(`requests served:    ${REQUESTS} (${failures} failed)`);
  console.log(`sent to ${external}: ${counters.tracesSent} traces, ${counters.tracesDropped} dropped, ${counters.tracesFailed} failed`);
  if (counters.tracesSent !== REQUESTS || failures > 0) {
    console.error("\nFAILED: traces were not sent");
    (globalThis as unknown as { process: { exitCode: number } }).process.exitCode = 1;
  }
} else {
  let ok = true;
  try {
    await agent.waitForTraces(REQUESTS, 10_000);
  } catch (e) {
    console.error(String(e));
    ok = false;
  }
  const traces = agent.traces();
  const spans = traces.flat();
  const counters = tracer.counters;
  console.log(`runtime:            ${runtime}`);
  console.log(`requests served:    ${REQUESTS} in ${Math.round(performance.now() - began)} ms (${failures} failed)`);
  console.log(`payloads received:  ${agent.requests.filter((r) => r.path === "/v0.4/traces").length}`);
  console.log(`traces received:    ${traces.length} of ${REQUESTS}`);
  console.log(`spans received:     ${spans.length} of ${REQUESTS * 3}`);
  console.log(`errors flagged:     ${spans.filter((s) => s.error).length} (every 50th request answers 500)`);
  console.log(`tracer counters:    ${counters.tracesSent} sent, ${counters.tracesDropped} dropped, ${counters.tracesFailed} failed, ~${counters.bytesSent} bytes`);
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
  await tracer.shutdown();
  await agent.close();
  if (!ok || traces.length !== REQUESTS || spans.length !== REQUESTS * 3) {
    console.error("\nFAILED: traces are missing");
    (globalThis as unknown as { process: { exitCode: number } }).process.exitCode = 1;
  } else {
    console.log(`\nOK: all ${REQUESTS} traces arrived`);
  }
}
