/**
 * Test helpers for users of `@dd-ffi/trace`: a fake Datadog agent that
 * records and decodes what an exporter sends. See {@link TestAgent}.
 *
 * @module
 */
export * from "./src/testing/agent.ts";
export { liveNativeObjects } from "./src/testing/live.ts";
