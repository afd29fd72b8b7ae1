/**
 * The errors this library throws.
 *
 * @module
 */
import type { ErrorCodeName, SharedRuntimeErrorCodeName } from "../ffi/abi.ts";

export type { ErrorCodeName, SharedRuntimeErrorCodeName };

/**
 * An error returned by libdatadog (`ddog_TraceExporterError`): `code` is
 * the `ddog_TraceExporterErrorCode` name (e.g. `"ConnectionRefused"`,
 * `"HttpServer"`, `"TimedOut"`), `message` libdatadog's text.
 */
export class TraceExporterError extends Error {
  /** `"TraceExporterError"`. */
  override name = "TraceExporterError";
  /** The `ddog_TraceExporterErrorCode` name. */
  readonly code: ErrorCodeName;
  /** The C function that returned the error. */
  readonly function: string;
  /** libdatadog's message. */
  readonly detail: string;
  /** The exporter option whose setter failed, e.g. `"computeStats"`. */
  readonly option?: string;

  /** An error `code` with libdatadog's `detail`, returned by the C function `fn` (for the exporter option `option`). */
  constructor(code: ErrorCodeName, detail: string, fn: string, option?: string) {
    super(`${option ? `options.${option}: ` : ""}${fn}: ${code}: ${detail}`);
    this.code = code;
    this.function = fn;
    this.detail = detail;
    if (option) this.option = option;
  }
}

/**
 * An error returned by libdatadog's shared runtime functions
 * (`ddog_SharedRuntimeFFIError`): `code` is the `ddog_SharedRuntimeErrorCode`
 * name (e.g. `"ShutdownTimedOut"`), `message` libdatadog's text.
 */
export class SharedRuntimeError extends Error {
  /** `"SharedRuntimeError"`. */
  override name = "SharedRuntimeError";
  /** The `ddog_SharedRuntimeErrorCode` name. */
  readonly code: SharedRuntimeErrorCodeName;
  /** The C function that returned the error. */
  readonly function: string;
  /** libdatadog's message. */
  readonly detail: string;

  /** An error `code` with libdatadog's `detail`, returned by the C function `fn`. */
  constructor(code: SharedRuntimeErrorCodeName, detail: string, fn: string) {
    super(`${fn}: ${code}: ${detail}`);
    this.code = code;
    this.function = fn;
    this.detail = detail;
  }
}

/**
 * A span or an option that cannot be used as given. `path` names the
 * field, e.g. `traces[0][56].meta["http.status_code"]` or
 * `options.connectionTimeoutMs`; nothing was sent.
 */
export class ValidationError extends TypeError {
  /** `"ValidationError"`. */
  override name = "ValidationError";
  /** Where the bad value is, e.g. `traces[0][56].traceId`. */
  readonly path: string;
  /**
   * The index of the trace chunk of `send`'s `traces` the bad value is in,
   * when it is in one: the chunk a caller may leave out and send the rest.
   */
  chunk: number | undefined;

  /** The value at `path` has `problem`; the message is `path: problem`. */
  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`${path}: ${problem}`, options);
    this.path = path;
  }
}

/** A send cancelled through its `AbortSignal`. */
export class AbortError extends Error {
  /** `"AbortError"`. */
  override name = "AbortError";
  /** An abort; `options.cause` is the signal's reason. */
  constructor(message = "The send was aborted", options?: ErrorOptions) {
    super(message, options);
  }
}

/** An operation on an exporter after `close()`. */
export class ClosedError extends Error {
  /** `"ClosedError"`. */
  override name = "ClosedError";
}
