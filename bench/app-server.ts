/**
 * The application of `npm run bench:app` (bench/app.mjs): an HTTP server as a
 * new user would write one, traced three ways.
 *
 *   node scripts/runtimes.mjs node|bun|deno bench/app-server.ts --mode untraced|ours|ddtrace --agent URL [--module URL]
 *
 * The server is `node:http` on Node, `Bun.serve` on Bun and `Deno.serve` on
 * Deno. Each request runs the same handler: three child spans (`auth.check`,
 * a database-like `db.query` with five tags, `render`) around a little work,
 * then a small JSON body. Modes:
 *
 * - `untraced`: the handler's `span()` only calls its function.
 * - `ours`: this package's `Tracer`; on Node, `instrumentNodeHttp` makes the
 *   server span, on Bun and Deno `traceHandler`; children with `tracer.trace`.
 * - `ddtrace`: dd-trace-js (`init()`, its http plugin only), children with
 *   its `tracer.trace`. Its http plugin does not see `Bun.serve` or
 *   `Deno.serve`: there the server span is made with its `tracer.trace`,
 *   with the tags its plugin sets.
 *
 * Prints `{"pid":…,"port":…}` once listening, and `{"cpu":…}` (the process's
 * CPU time so far, µs) for each line read on stdin; exits when stdin closes,
 * after flushing what the tracer holds.
 *
 * @module
 */
import process from "node:process";
import { createRequire } from "node:module";

const runtimeName = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const MODE = argValue("--mode") ?? "untraced";
const AGENT = argValue("--agent") ?? "http://127.0.0.1:8126";
/** The package's entry: its sources, or (`--module`, bench/app.mjs on Node) the compiled JavaScript npm users get. */
const MODULE = argValue("--module") ?? "../mod.ts";
if (!["untraced", "ours", "ddtrace"].includes(MODE)) throw new Error(`--mode untraced|ours|ddtrace, got ${MODE}`);

// deno-lint-ignore no-explicit-any
type Any = any;
/** Runs `fn` in a child span named `name` (or just runs it, untraced). */
type SpanFn = <T>(name: string, options: { resource?: string; type?: string }, fn: (span: Any) => T) => T;

let span: SpanFn = (_name, _options, fn) => fn(undefined);
let flush: () => Promise<void> = () => Promise.resolve();
/** Wraps a fetch handler in a server span (Bun and Deno, ours only). */
let wrapFetch: (h: (r: Request) => Promise<Response>) => (r: Request) => Promise<Response> = (h) => h;

if (MODE === "ours") {
  const { Tracer, instrumentNodeHttp, traceHandler }: typeof import("../mod.ts") = await import(MODULE);
  const tracer = new Tracer({ url: AGENT, service: "bench-app", env: "bench", flushOnExit: false });
  if (runtimeName === "node") instrumentNodeHttp(tracer, { client: false });
  span = (name, options, fn) => tracer.trace(name, options, fn);
  flush = () => tracer.shutdown();
  wrapFetch = (h) => traceHandler(tracer, h);
} else if (MODE === "ddtrace") {
  process.env.DD_INSTRUMENTATION_TELEMETRY_ENABLED = "false";
  process.env.DD_REMOTE_CONFIGURATION_ENABLED = "false";
  process.env.DD_TRACE_STARTUP_LOGS = "false";
  const require = createRequire(import.meta.url);
  const tracer = require("dd-trace").init({ url: AGENT, service: "bench-app", env: "bench", plugins: false });
  tracer.use("http", { client: false });
  span = (name, options, fn) => tracer.trace(name, options, (s: Any) => fn(s));
  flush = () => new Promise<void>((resolve) => tracer._tracer._exporter.flush(() => resolve()));
  // Its http plugin does not see `Bun.serve` or `Deno.serve`: there the server span is made as its plugin makes it.
  wrapFetch = (h) => (request) => {
    const url = new URL(request.url);
    return tracer.trace("web.request", {
      childOf: tracer.extract("http_headers", Object.fromEntries(request.headers)) ?? undefined,
      type: "web",
      resource: request.method,
      tags: { "span.kind": "server", component: "http", "http.method": request.method, "http.url": `${url.origin}${url.pathname}`, "http.useragent": request.headers.get("user-agent") ?? "" },
    }, async (s: Any) => {
      const response = await h(request);
      s.setTag("http.status_code", String(response.status));
      return response;
    });
  };
}

/** A stand-in for a database call: an await, and rows. */
async function query(id: number): Promise<{ id: number; name: string; total: number }[]> {
  await Promise.resolve();
  return [{ id, name: `customer ${id}`, total: id * 3 }, { id: id + 1, name: `customer ${id + 1}`, total: id * 5 }];
}

let requests = 0;

/** The handler every mode runs: three child spans, a small JSON body. */
async function handle(): Promise<string> {
  const id = ++requests;
  const user = span("auth.check", { resource: "session" }, () => ({ id: id % 1000, role: "reader" }));
  const rows = await span("db.query", { resource: "SELECT * FROM orders WHERE customer = ?", type: "sql" }, async (s) => {
    s?.setTag("db.system", "postgresql");
    s?.setTag("db.name", "shop");
    s?.setTag("db.user", "app");
    s?.setTag("out.host", "127.0.0.1");
    s?.setTag("db.row_count", 2);
    return await query(user.id);
  });
  return span("render", { resource: "orders.json" }, () => JSON.stringify({ user: user.id, orders: rows }));
}

const HEADERS = { "content-type": "application/json" };
let close: () => Promise<void>;
let port: number;

if (runtimeName === "node") {
  // Required after dd-trace's `init()`, as an application under dd-trace does (its http plugin hooks `require`).
  const http: typeof import("node:http") = createRequire(import.meta.url)("node:http");
  const server = http.createServer((_req, res) => {
    handle().then((body) => {
      res.writeHead(200, HEADERS);
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
  close = () => new Promise((resolve) => server.close(() => resolve()));
} else {
  const fetchHandler = wrapFetch(async () => new Response(await handle(), { headers: HEADERS }));
  if (runtimeName === "bun") {
    const server = (globalThis as Any).Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: fetchHandler });
    port = server.port;
    close = () => Promise.resolve(server.stop(true)).then(() => {});
  } else {
    const server = (globalThis as Any).Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, fetchHandler);
    port = server.addr.port;
    close = () => server.shutdown();
  }
}

console.log(JSON.stringify({ pid: process.pid, port, runtime: runtimeName, mode: MODE }));
// Each line on stdin asks for the process's CPU time so far (every thread, µs), answered as a line on stdout.
process.stdin.on("data", (data) => {
  for (const _ of String(data).split("\n").slice(1)) {
    const cpu = process.cpuUsage();
    console.log(JSON.stringify({ cpu: cpu.user + cpu.system }));
  }
});
process.stdin.on("end", async () => {
  await flush();
  await close();
  process.exit(0);
});
