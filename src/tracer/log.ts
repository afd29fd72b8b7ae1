/**
 * The tracer's diagnostics: each kind of problem (an export failure code, a
 * full queue, …) is logged once per tracer, then only counted.
 *
 * @module
 */

/** Where the tracer writes its diagnostics; default: `console.warn`, prefixed `[@dd-ffi/trace]`. */
export type Logger = (message: string) => void;

/** The default logger. */
export const consoleLogger: Logger = (message) => console.warn(`[@dd-ffi/trace] ${message}`);

/** Logs a message the first time its kind is seen. */
export class OnceLogger {
  #write: Logger;
  #seen = new Set<string>();

  constructor(write: Logger) {
    this.#write = write;
  }

  /** Logs `message` unless a message of this `kind` was logged already. */
  once(kind: string, message: string): void {
    if (this.#seen.has(kind)) return;
    this.#seen.add(kind);
    try {
      this.#write(message);
    } catch {
      // A failing logger must not break the application either.
    }
  }
}

/** The logger each tracer was given (or the default), for helpers such as `nodeListener`. Internal. */
const loggers = new WeakMap<object, Logger>();

/** Records `tracer`'s logger. Internal. */
export function setLoggerOf(tracer: object, logger: Logger): void {
  loggers.set(tracer, logger);
}

/** `tracer`'s logger, if it is a tracer. Internal. */
export function loggerOf(tracer: object): Logger | undefined {
  return loggers.get(tracer);
}
