/** This package's version, sent as the tracer version (`Datadog-Meta-Tracer-Version`). Kept equal to package.json's and deno.json's by a test. */
export const VERSION = "0.1.0";
