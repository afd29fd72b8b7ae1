// Types of runtimes.mjs, for the TypeScript tests that import it.
/** The checkout's root directory. */
export const root: string;
/** The Bun binary in node_modules. */
export function bunBinary(): string;
/** The Deno binary in node_modules. */
export function denoBinary(): string;
/** How to run a TypeScript file on each runtime: [command, ...args before the file]. */
export function runtimeCommands(): Record<"node" | "bun" | "deno", string[]>;
