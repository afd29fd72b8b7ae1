/**
 * Structured values as msgpack, through libdatadog's encoder.
 *
 * @module
 */
import { getBinding } from "./binding.ts";
import { encodeValue as encode } from "./build.ts";

/**
 * Encodes a plain value (objects, arrays, strings, numbers, bigint, booleans,
 * null, `Uint8Array`) as msgpack with `ddog_tracer_encode_value`: the bytes a
 * span's `metaStruct` entry carries for it. Integers use the most compact
 * form; non-integer numbers are float64.
 *
 * @throws {ValidationError} for cycles, nesting deeper than 64, functions, symbols and class instances.
 */
export function encodeValue(value: unknown): Uint8Array {
  return encode(getBinding(), value);
}
