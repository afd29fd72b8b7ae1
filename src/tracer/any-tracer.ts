/**
 * What the instrumentations and log helpers take: a `Tracer`, or the default
 * tracer (`import tracer from "@dd-ffi/trace"`), resolved at each use so it
 * may be passed before `tracer.init()`.
 *
 * @module
 */
import type { TracerProxy } from "./singleton.ts";
import type { Tracer } from "./tracer.ts";

/** A tracer, or the default one. */
export type AnyTracer = Tracer | TracerProxy;

/** The `Tracer` behind `t` now. */
export function resolveTracer(t: AnyTracer): Tracer {
  return "initialized" in t ? t.tracer : t;
}
