/**
 * `DD_TRACE_DEBUG`: the tracer's debug lines, and libdatadog's own logs
 * through libdd-log-ffi (`ddog_logger_configure_std`,
 * `ddog_logger_set_log_level`) where the loaded library has them; and the
 * sink of a disabled tracer (`DD_TRACE_ENABLED=false`).
 *
 * @module
 */
import { logLevels, stdTargets } from "../../ffi/abi.ts";
import { native, runtime } from "../../ffi/load.ts";
import type { Word } from "../../ffi/native.ts";
import type { TraceBuffer } from "./buffer.ts";
import type { Logger } from "./log.ts";

/** Writes one debug line. */
export type DebugLog = (message: string) => void;

/** The debug log of a tracer: every line through `logger`, prefixed `debug:`; undefined when off. */
export function debugLog(enabled: boolean, logger: Logger): DebugLog | undefined {
  if (!enabled) return undefined;
  return (message) => {
    try {
      logger(`debug: ${message}`);
    } catch {
      // A failing logger must not break the application.
    }
  };
}

/** A libdatadog log level name. */
export type LibraryLogLevel = keyof typeof logLevels;

let libraryLogs: LibraryLogLevel | undefined;

/**
 * Turns on libdatadog's own logs, on stderr, from `level` up: calls
 * `ddog_logger_configure_std({ target: stderr })` then
 * `ddog_logger_set_log_level(level)`, once per process (the logger is the
 * library's, shared by every tracer). Loads the native library.
 *
 * @returns a line saying what was done: on, already on, not available (the
 * library does not export the logger), or libdatadog's error message.
 */
export function enableLibraryLogs(level: LibraryLogLevel = "debug"): string {
  if (libraryLogs !== undefined) return `libdatadog's own logs are already on (${libraryLogs})`;
  const lib = native();
  const { ddog_logger_configure_std: configure, ddog_logger_set_log_level: setLevel } = lib.symbols;
  if (!configure || !setLevel) {
    return `libdatadog's own logs are not available: ${lib.path} does not export ddog_logger_configure_std and ddog_logger_set_log_level`;
  }
  const failed = takeError(configure(stdTargets.stderr)) ?? takeError(setLevel(logLevels[level]));
  if (failed !== undefined) return `libdatadog's own logs could not be turned on: ${failed}`;
  libraryLogs = level;
  return `libdatadog's own logs are on (stderr, from ${level})`;
}

/** Reads and drops a `ddog_Error *` (undefined for NULL). */
function takeError(error: Word | null): string | undefined {
  if (!error) return undefined;
  const lib = native();
  let message = "unknown error";
  const slice = lib.symbols.ddog_Error_message?.(error);
  if (slice && slice[0] && slice[1] > 0) message = new TextDecoder().decode(lib.read(slice[0], Math.min(slice[1], 4096)));
  // libdatadog's FFI frees the message only; the 24-byte Error box has no free function.
  lib.symbols.ddog_Error_drop?.(error);
  return message;
}

/** The queue of a disabled tracer: takes nothing, sends nothing. */
export function disabledBuffer(): Pick<TraceBuffer, "push" | "flush" | "close" | "counters" | "queued" | "busy"> {
  return {
    push: () => true,
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
    counters: () => ({
      tracesSent: 0, spansSent: 0, bytesSent: 0, payloadsSent: 0, tracesDropped: 0, spansDropped: 0,
      tracesFailed: 0, spansFailed: 0, payloadsFailed: 0, tracesTimedOut: 0, spansTimedOut: 0, payloadsTimedOut: 0,
      tracesInvalid: 0, spansInvalid: 0, queuedTraces: 0, queuedBytes: 0,
    }),
    queued: false,
    busy: false,
  };
}

/** `DD_TRACE_LOG_LEVEL` (`debug`, `info`, `warn`, `error`; also `trace`), default `debug`; an unknown value warns and falls back. */
export function libraryLogLevel(log: { once(kind: string, message: string): void }): LibraryLogLevel {
  const text = runtime.env("DD_TRACE_LOG_LEVEL")?.trim().toLowerCase();
  if (!text) return "debug";
  if (Object.hasOwn(logLevels, text)) return text as LibraryLogLevel;
  log.once("env:DD_TRACE_LOG_LEVEL", `DD_TRACE_LOG_LEVEL=${JSON.stringify(text)} is not one of trace, debug, info, warn, error: debug is used`);
  return "debug";
}
