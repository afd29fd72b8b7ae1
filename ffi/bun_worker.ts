/**
 * A Bun worker that calls the blocking symbols (the sends) off the JS
 * thread. It loads the same library file as the main thread: native handles
 * are plain addresses, valid on every thread of the process.
 *
 * @module
 */
import { dlopen, type FFIFunction } from "bun:ffi";
import { type SymbolDef, symbols } from "./abi.ts";
import { declaration } from "./bun.ts";

declare const self: Worker;
// deno-lint-ignore no-explicit-any
let lib: Record<string, (...args: any[]) => unknown> | undefined;

self.onmessage = ({ data }: MessageEvent) => {
  if (data.open) {
    const decls: Record<string, FFIFunction> = {};
    for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
      if (def.blocking && !def.optional) decls[name] = declaration(def);
    }
    lib = { ...dlopen(data.open, decls).symbols };
    // Optional blocking symbols (the batch decoder): from the library, else from the shim.
    for (const [name, def] of Object.entries(symbols) as [string, SymbolDef][]) {
      if (!def.blocking || !def.optional) continue;
      for (const file of [data.open, data.shim]) {
        if (!file) continue;
        try {
          lib[name] = dlopen(file, { [name]: declaration(def) }).symbols[name];
          break;
        } catch {
          // not in this file
        }
      }
    }
    return;
  }
  try {
    const result = lib![data.name](...data.args);
    self.postMessage({ id: data.id, result: result ?? 0 });
  } catch (e) {
    self.postMessage({ id: data.id, error: String(e) });
  }
};
