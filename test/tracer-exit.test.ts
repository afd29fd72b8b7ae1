/** Tracer: nothing lost at exit — a child process on this runtime creates traces and simply ends. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { fileURLToPath } from "node:url";
import { TestAgent } from "../testing.ts";
import { assertNoLeaks } from "./helpers.ts";
import { runScript, runtimeName } from "./tracer-helpers.ts";

test.after.each(assertNoLeaks);

const CHILD = fileURLToPath(new URL("./fixtures/exit-child.ts", import.meta.url));

/** Runs the child script on this runtime's executable; resolves with its exit code and output. */
function runChild(agentUrl: string, traces: number): Promise<{ code: number | null; output: string }> {
  return runScript(CHILD, [String(traces)], { DD_TRACE_AGENT_URL: agentUrl });
}

test(`a script that creates traces and just ends loses none (${runtimeName})`, async () => {
  await using agent = await TestAgent.start();
  const { code, output } = await runChild(agent.url, 40);
  assert.is(code, 0, output);
  const traces = await agent.waitForTraces(41, 10_000);
  assert.is(traces.length, 41, "40 traces and the one finished on a timer");
  const names = traces.flat().map((s) => s.name);
  assert.is(names.filter((n) => n === "exit.work").length, 40);
  assert.is(names.filter((n) => n === "exit.step").length, 40);
  assert.is(names.filter((n) => n === "exit.late").length, 1);
  assert.ok(traces.every((t) => t[0].service === "exit-test"));
});

test(`the exit flush waits for a slow agent (${runtimeName})`, async () => {
  await using agent = await TestAgent.start();
  agent.fail({ delayMs: 1000, times: 1 });
  const { code, output } = await runChild(agent.url, 5);
  assert.is(code, 0, output);
  assert.is(agent.traces().length, 6, "the agent answered before the process exited");
});

test.run();
