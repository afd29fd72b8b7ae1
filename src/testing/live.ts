/**
 * Leak checks for tests.
 *
 * @module
 */
import { getBinding } from "../binding.ts";

/**
 * Native objects alive in the bundled library (configs, exporters,
 * responses, errors, spans, events, trace chunks, cancel tokens, encoded
 * values, shared runtimes): 0 once everything was freed. `undefined` with a real libdatadog
 * (`DD_LIBDATADOG_PATH`), which lacks the debug symbol.
 */
export function liveNativeObjects(): number | undefined {
  return getBinding().liveObjects();
}
