/**
 * Time for spans: nanoseconds since the Unix epoch as bigint, read from the
 * monotonic clock (`performance.now()`, sub-millisecond) anchored to the
 * epoch once, when this module loads. Durations are differences of two
 * readings, so a wall-clock jump (NTP, a manual change) never makes them
 * negative or wrong.
 *
 * @module
 */

const anchorPerf = performance.now();
/** `performance.timeOrigin`, read once (a getter call on Node). */
const timeOrigin = performance.timeOrigin;
/** The epoch time at `anchorPerf`, in ns (microsecond-exact: a double holds µs since 1970 exactly). */
const anchorNs = BigInt(Math.round((timeOrigin + anchorPerf) * 1e3)) * 1000n;

/** Now, in nanoseconds since the Unix epoch, from the monotonic clock. */
export function nowNs(): bigint {
  return perfNs(performance.now());
}

/** A reading of `performance.now()` (ms), in nanoseconds since the Unix epoch. */
export function perfNs(perf: number): bigint {
  return anchorNs + BigInt(Math.round((perf - anchorPerf) * 1e6));
}

/** A reading of `performance.now()` (ms), in whole seconds since the Unix epoch. */
export function perfSeconds(perf: number): number {
  return Math.floor((timeOrigin + perf) / 1000);
}

/** The nanoseconds from a reading of `performance.now()` (ms) to now, at least 0. */
export function nsSince(perf: number): bigint {
  const ms = performance.now() - perf;
  return ms > 0 ? BigInt(Math.round(ms * 1e6)) : 0n;
}

/** A time given by the caller: a bigint is nanoseconds since the epoch; a number (like `Date.now()`) or a `Date` is milliseconds. */
export type TimeInput = bigint | number | Date;

const NS_LIMIT = 1n << 63n;

/**
 * Converts a {@link TimeInput} to nanoseconds since the epoch; undefined
 * when it is not a usable time: not a bigint, number or Date, negative, or
 * past what the agent takes (2^63 ns, in 2262: e.g. a count of ns passed
 * as a number, which is read as ms).
 */
export function toNs(time: TimeInput): bigint | undefined {
  if (typeof time === "bigint") return time >= 0n && time < NS_LIMIT ? time : undefined;
  const ms = time instanceof Date ? time.getTime() : time;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return undefined;
  const whole = Math.trunc(ms);
  const ns = BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
  return ns < NS_LIMIT ? ns : undefined;
}
