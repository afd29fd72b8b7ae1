#!/usr/bin/env node
/**
 * The npm package's command, for platforms without a prebuilt library:
 *
 * ```sh
 * npx @dd-ffi/trace build [--force]
 * ```
 *
 * compiles the bundled Rust sources with cargo into the per-user cache the
 * loader searches (`~/.cache/dd-ffi-trace/<version>/<platform>/`).
 *
 * @module
 */
import process from "node:process";
import { buildUserLibrary } from "./build.ts";

const [command, ...flags] = process.argv.slice(2);
if (command !== "build" || flags.some((f) => f !== "--force")) {
  console.error("usage: npx @dd-ffi/trace build [--force]\n" +
    "  compiles the bundled Rust library with cargo ($CARGO, cargo, ~/.cargo/bin/cargo)\n" +
    "  into the per-user cache the loader searches");
  process.exit(2);
}
try {
  console.log(`built ${await buildUserLibrary({ force: flags.includes("--force") })}`);
} catch (e) {
  console.error(`@dd-ffi/trace build: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}
