/**
 * Trace and span ids from a cryptographic random source
 * (`crypto.getRandomValues`, drawn 16 KiB at a time: each call has a cost
 * of its own, on Node several times that of the 128 ids of 1 KiB).
 *
 * @module
 */

const pool = new BigUint64Array(2048);
let next = pool.length;

/** 64 random bits. */
function random64(): bigint {
  if (next === pool.length) {
    crypto.getRandomValues(pool);
    next = 0;
  }
  return pool[next++];
}

/** A new span id: 64 random bits, never 0. */
export function newSpanId(): bigint {
  let id = random64();
  while (id === 0n) id = random64();
  return id;
}

/**
 * A new trace id. 128-bit in Datadog's layout (what dd-trace-js, -go, -java
 * generate): the high 64 bits are the start time in Unix seconds (32 bits;
 * `seconds`, the trace's first span's start, default now) then 32 zero
 * bits; the low 64 bits are `low` (default random; the Tracer gives its root
 * span's id, as dd-trace-js does). With `bits128` false, `low` alone.
 */
export function newTraceId(bits128 = true, seconds: number = Math.floor(Date.now() / 1000), low: bigint = newSpanId()): bigint {
  if (!bits128) return low;
  if (seconds !== highSeconds) {
    highSeconds = seconds;
    high = (BigInt(seconds) & 0xffffffffn) << 96n;
  }
  return high | low;
}

/** The high 64 bits of the trace ids of the current second, made once a second (bigint arithmetic allocates). */
let highSeconds = -1;
let high = 0n;

/** A new runtime id (a random UUID), tagged `runtime-id` on spans. */
export function newRuntimeId(): string {
  return crypto.randomUUID();
}
