/** Shared pieces of the tracer test files. */
import { createServer, type Server } from "node:http";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Tracer, type TracerOptions } from "../mod.ts";
import { type DecodedSpan, TestAgent } from "../testing.ts";

/** What a test's tracer logged. */
export type Logs = string[];

/**
 * Runs `fn` with a fresh agent and a tracer pointed at it (no interval
 * flushes unless `options` sets them; logs captured); shuts both down.
 */
export async function withTracer<T>(
  fn: (tracer: Tracer, agent: TestAgent, logs: Logs) => Promise<T> | T,
  options: TracerOptions = {},
  agentOptions: Parameters<typeof TestAgent.start>[0] = {},
): Promise<T> {
  const agent = await TestAgent.start(agentOptions);
  const logs: Logs = [];
  const tracer = new Tracer({
    url: agent.url,
    service: "svc",
    env: "test",
    version: "1.2.3",
    flushIntervalMs: 600_000,
    logger: (m) => logs.push(m),
    ...options,
  });
  try {
    return await fn(tracer, agent, logs);
  } finally {
    await tracer.shutdown({ timeoutMs: 10_000 });
    await agent.close();
  }
}

/** The full trace id of a decoded span (low 64 bits, and `_dd.p.tid`). */
export function traceIdOf(span: DecodedSpan): bigint {
  const tid = span.meta["_dd.p.tid"];
  return (tid ? BigInt(`0x${tid}`) << 64n : 0n) | span.trace_id;
}

/** The spans of `traces` by name (the last one of each name). */
export function byName(spans: DecodedSpan[]): Record<string, DecodedSpan> {
  return Object.fromEntries(spans.map((s) => [s.name, s]));
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The current runtime's name. */
export const runtimeName: "deno" | "bun" | "node" = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

/** The arguments that make this runtime's executable (`process.execPath`) run the TypeScript file `file`. */
export function runtimeArgs(file: string): string[] {
  return runtimeName === "deno" ? ["run", "-A", file] : runtimeName === "bun" ? [file] : ["--import", "tsx", file];
}

/**
 * Runs the TypeScript file `file` on this runtime, from the checkout's root, with `args` after it and
 * the environment plus `env` (an undefined value removes the variable); resolves with its exit code
 * and what it printed (stdout and stderr together).
 */
export function runScript(file: string, args: string[] = [], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; output: string }> {
  const proc = (globalThis as unknown as { process: { execPath: string; env: Record<string, string | undefined> } }).process;
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...proc.env, ...env })) if (v !== undefined) childEnv[k] = v;
  const child = spawn(proc.execPath, [...runtimeArgs(file), ...args], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, output })));
}

/** Starts a node:http server for `listener` on a free loopback port; returns its URL and a close function. */
export async function listen(listener: Parameters<typeof createServer>[1]): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(listener);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
