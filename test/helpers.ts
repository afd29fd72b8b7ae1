/** Shared pieces of the test files. */
import * as assert from "uvu/assert";
import { createServer } from "node:net";
import { type Span, TraceExporter, type ExporterOptions } from "../mod.ts";
import { liveNativeObjects, TestAgent } from "../testing.ts";

/** A valid span with every required field; `over` replaces fields. */
export function span(over: Partial<Span> = {}): Span {
  return {
    name: "web.request",
    service: "web",
    resource: "GET /",
    type: "web",
    traceId: 0x1234n,
    spanId: 0x5678n,
    start: 1_700_000_000_000_000_000n,
    duration: 1_500_000n,
    ...over,
  };
}

/**
 * Whether the bundled library is loaded: it alone has the live-object
 * counter (false with `DD_LIBDATADOG_PATH` pointing at a real libdatadog).
 */
export const bundled: boolean = liveNativeObjects() !== undefined;

/**
 * The order in which the loaded library sends a span's meta or metrics keys,
 * given their writes in order (a key written twice keeps its last value):
 * libdatadog 14 (the bundled library) keeps each key at its last write
 * (`VecMap::dedup`); libdatadog v41 (a release build at DD_LIBDATADOG_PATH)
 * sends them in the reverse order of their last write.
 */
export function sentOrder(writes: string[]): string[] {
  const last = writes.filter((k, i) => writes.lastIndexOf(k) === i);
  return bundled ? last : last.reverse();
}

/**
 * Registers a test of what only the bundled library has (its live-object
 * counter, its refusals, its exact messages) with `register`; with a real
 * libdatadog loaded, prints that it is skipped and why instead.
 */
export function bundledOnly(name: string, reason: string, register: () => void): void {
  if (bundled) register();
  else console.log(`skipped (real libdatadog loaded): "${name}": ${reason}`);
}

/** Asserts that no native object is left (the bundled library counts them). */
export function assertNoLeaks(): void {
  const live = liveNativeObjects();
  if (live !== undefined) assert.is(live, 0, `native objects leaked: ${live}`);
}

/**
 * Waits (up to 2 s) until no native object is left, then asserts it: `[Symbol.dispose]()` and a timed-out
 * `close()` free the exporter off the JS thread, a little later.
 */
export async function assertNoLeaksSoon(): Promise<void> {
  const until = Date.now() + 2000;
  while ((liveNativeObjects() ?? 0) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  assertNoLeaks();
}

/** Runs `fn` with a fresh agent and an exporter pointed at it; closes both. */
export async function withExporter<T>(
  fn: (exporter: TraceExporter, agent: TestAgent) => Promise<T>,
  options: ExporterOptions = {},
  agentOptions: Parameters<typeof TestAgent.start>[0] = {},
): Promise<T> {
  const agent = await TestAgent.start(agentOptions);
  const exporter = new TraceExporter({ url: agent.url, ...options });
  try {
    return await fn(exporter, agent);
  } finally {
    await exporter.close();
    await agent.close();
  }
}

/** Expects `p` to reject with an error of class `type` whose message matches `pattern`; returns it. */
export async function rejects<E extends Error>(
  p: Promise<unknown> | (() => unknown),
  type: new (...a: never[]) => E,
  pattern?: RegExp,
): Promise<E> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (!(e instanceof type)) throw new assert.Assertion({ message: `expected ${type.name}, got ${e}`, generated: false, operator: "instanceOf", expects: type.name, actual: String(e) });
    if (pattern) assert.match((e as Error).message, pattern);
    return e as E;
  }
  throw new assert.Assertion({ message: `expected ${type.name}, nothing thrown`, generated: false, operator: "throws", expects: type.name, actual: "nothing" });
}

/**
 * Runs full garbage collections (the runners expose the GC: `--expose-gc`,
 * `Bun.gc`) until `done()` holds, for up to 5 s: finalizers run some time
 * after the collection that found their objects.
 */
export async function collectGarbageUntil(done: () => boolean): Promise<void> {
  const g = globalThis as unknown as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  const until = Date.now() + 5000;
  while (!done() && Date.now() < until) {
    if (g.Bun) g.Bun.gc(true);
    else if (g.gc) g.gc();
    else throw new Error("no GC exposed: run with --expose-gc");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP port nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** How many trace payloads (`/v0.4/traces`) the agent got: a real libdatadog also polls `/info`. */
export const traceRequests = (agent: TestAgent): number => agent.requests.filter((r) => r.path === "/v0.4/traces").length;
