/**
 * The npm package's prebuilt libraries and how the loader picks them.
 *
 * On every runtime: the loader's paths per platform (`.so` / `.dylib`) and
 * its refusal of Windows and non-64-bit platforms (an injected platform).
 *
 * From the Node run only (it drives zig and qemu as child processes):
 * `build.ts --prebuilds` cross-compiles every library of `LIBRARIES` for
 * every platform of `PREBUILT_TARGETS` with cargo-zigbuild, as `npm pack` does;
 * each file is read back (test/objfile.ts): its format (ELF, Mach-O), its
 * architecture, its own name and the libraries it needs (the system's C
 * library and, on Linux, libgcc_s for unwinding), its exported symbols against ffi/abi.ts's table, and the oldest
 * system it runs on (glibc 2.17, macOS 11); darwin-arm64's code signature. Then a C program
 * (test/fixtures/send_span.c), linked to the linux-x64 library and run
 * natively, and linked to the linux-arm64 library and run under qemu-user
 * with Debian's arm64 glibc, sends a span that the test agent decodes.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { root } from "../scripts/runtimes.mjs";
import { LIBRARIES, PREBUILT_TARGETS } from "../build.ts";
import { symbols } from "../ffi/abi.ts";
import { checkoutLibrary, findLibrary, notFound, prebuiltLibrary, runtime } from "../ffi/load.ts";
import { BUNDLED_LIBRARY, libraryFileName, PLATFORM_PACKAGES, unsupportedPlatform } from "../ffi/paths.ts";
import { VERSION } from "../src/version.ts";
import { TestAgent } from "../testing.ts";
import { readSharedLibrary } from "./objfile.ts";

const onNode = !("Bun" in globalThis) && !("Deno" in globalThis);

test("the platforms with a prebuilt library: linux (glibc) and macOS, x64 and arm64, one npm package each", () => {
  assert.equal(Object.keys(PREBUILT_TARGETS).sort(), ["darwin-arm64", "darwin-x64", "linux-arm64", "linux-x64"]);
  assert.equal(Object.keys(PLATFORM_PACKAGES).sort(), Object.keys(PREBUILT_TARGETS).sort());
  assert.equal(PLATFORM_PACKAGES["linux-x64"], { name: "@dd-ffi/trace-linux-x64-gnu", os: "linux", cpu: "x64", libc: "glibc" });
  assert.equal(PLATFORM_PACKAGES["linux-arm64"], { name: "@dd-ffi/trace-linux-arm64-gnu", os: "linux", cpu: "arm64", libc: "glibc" });
  assert.equal(PLATFORM_PACKAGES["darwin-x64"], { name: "@dd-ffi/trace-darwin-x64", os: "darwin", cpu: "x64" });
  assert.equal(PLATFORM_PACKAGES["darwin-arm64"], { name: "@dd-ffi/trace-darwin-arm64", os: "darwin", cpu: "arm64" });
  assert.is(libraryFileName(BUNDLED_LIBRARY, "linux-arm64"), "libdd_trace_ffi.so");
  assert.is(libraryFileName(BUNDLED_LIBRARY, "darwin-arm64"), "libdd_trace_ffi.dylib");
  for (const platform of Object.keys(PREBUILT_TARGETS)) {
    // The checkout installs no platform package.
    assert.is(prebuiltLibrary(platform), undefined, platform);
    assert.ok(checkoutLibrary(platform)!.endsWith(`/lib/build/${libraryFileName(BUNDLED_LIBRARY, platform)}`), platform);
  }
});

test("without its platform package, the loader's error names the package to add, DD_LIBDATADOG_PATH and the platform; on macOS the .dylib files", () => {
  const env = (vars: Record<string, string>) => ({ ...runtime, env: (name: string) => vars[name] });
  try {
    findLibrary(env({ HOME: "/nonexistent" }), { platform: "darwin", arch: "arm64" });
    assert.unreachable("found a library for darwin-arm64 in a Linux checkout");
  } catch (e) {
    const message = (e as Error).message;
    assert.match(message, "No libdatadog library found for darwin-arm64");
    assert.match(message, "the package @dd-ffi/trace-darwin-arm64, which is not installed");
    assert.match(message, `npm install @dd-ffi/trace-darwin-arm64@${VERSION}`);
    assert.match(message, "set DD_LIBDATADOG_PATH to a libdatadog release build");
    assert.match(message, "/lib/build/libdd_trace_ffi.dylib (a source checkout's build)");
    assert.match(message, "/nonexistent/.cache/dd-ffi-trace/");
    assert.match(message, "/darwin-arm64/libdd_trace_ffi.dylib (the per-user build)");
    assert.match(message, "npx @dd-ffi/trace build");
  }
  // A platform without a package (here a checkout's linux .so would be found for it: the message alone).
  const message = notFound("freebsd-x64", [["/c/dd-ffi-trace/freebsd-x64/libdd_trace_ffi.so", "the per-user build"]]);
  assert.match(message, "No libdatadog library found for freebsd-x64");
  assert.match(message, "There is no prebuilt package for freebsd-x64: set DD_LIBDATADOG_PATH");
  assert.match(message, "deno run -A jsr:@dd-ffi/trace/build");
});

test("the loader refuses Windows (16-byte slices go by reference there) and 32-bit platforms, with DD_LIBDATADOG_PATH too", () => {
  const withPath = { ...runtime, env: (name: string) => (name === "DD_LIBDATADOG_PATH" ? "/x/libdatadog.so" : undefined) };
  for (const arch of ["x64", "arm64"]) {
    assert.throws(() => findLibrary(withPath, { platform: "win32", arch }), /does not run on Windows/);
  }
  assert.throws(
    () => findLibrary(withPath, { platform: "win32", arch: "x64" }),
    /Windows x64 calling convention passes libdatadog's 16-byte slices \(ddog_CharSlice\) by reference/,
  );
  for (const [platform, arch] of [["linux", "ia32"], ["linux", "arm"], ["linux", "s390x"]]) {
    assert.throws(() => findLibrary(withPath, { platform, arch }), new RegExp(`x64 and arm64 only, not on ${platform}-${arch}`));
  }
  for (const platform of Object.keys(PREBUILT_TARGETS)) {
    const [os, arch] = platform.split("-");
    assert.is(unsupportedPlatform(os, arch), undefined, platform);
  }
  assert.is(unsupportedPlatform(process.platform, process.arch), undefined);
});

// ---------------------------------------------------------------- the binaries (Node only)

/** Runs `argv`; resolves with its exit code and output (kills it after `limitMs`, default 5 minutes). */
function run(argv: string[], env: Record<string, string | undefined> = process.env, limitMs = 300_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", (e) => (stderr += String(e)));
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(argv: string[], limitMs?: number): Promise<string> {
  const r = await run(argv, process.env, limitMs);
  if (r.code !== 0) assert.unreachable(`${argv.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** zig, as build.ts finds it: `$ZIG`, `zig` on the PATH, or the checkout's `.venv` (`.ci/requirements.txt`). */
function zig(): string[] {
  if (process.env.ZIG) return [process.env.ZIG];
  const venv = join(root, ".venv", "bin", "python");
  return existsSync(venv) ? [venv, "-m", "ziglang"] : ["zig"];
}

if (onNode) {
  let out = "";

  test.before(async () => {
    out = mkdtempSync(join(tmpdir(), "dd-ffi-trace-prebuilds-"));
    // Four cross-compiled builds of lib/ and libdatadog's crates (a no-op when the pack step built them already).
    await ok([process.execPath, "--import", "tsx", join(root, "build.ts"), "--prebuilds", out], 45 * 60_000);
  });

  test.after(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  test("each prebuilt library: ELF or Mach-O, its architecture, its name, needs the system's libraries only, abi.ts's symbols, glibc 2.17 or macOS 11", () => {
    const table = new Map(Object.entries(symbols).map(([name, def]) => [name, def as { optional?: true }]));
    const ours = (name: string) => /^dd(og|ffi)_/.test(name);
    for (const name of Object.keys(LIBRARIES)) {
      let exported: string[] | undefined; // the same on every platform
      for (const [platform, target] of Object.entries(PREBUILT_TARGETS)) {
        const file = join(out, platform, libraryFileName(name, platform));
        const lib = readSharedLibrary(readFileSync(file));
        const where = `${platform}/${libraryFileName(name, platform)}`;
        assert.is(lib.format, platform.startsWith("darwin-") ? "Mach-O" : "ELF", where);
        assert.is(lib.arch, platform.endsWith("-arm64") ? "aarch64" : "x86_64", where);
        assert.ok(target.target.startsWith(`${lib.arch}-`), `${where}: built for ${target.target}`);
        assert.ok(lib.shared, `${where} is a shared library`);
        const fileName = libraryFileName(name, platform);
        assert.is(lib.name, lib.format === "Mach-O" ? `@rpath/${fileName}` : fileName, `${where}: its own name`);
        const system = lib.format === "Mach-O"
          ? ["/usr/lib/libSystem.B.dylib", "/usr/lib/libiconv.2.dylib", "/usr/lib/libcharset.1.dylib"]
          : ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"];
        assert.equal(lib.needed.filter((n) => !system.includes(n)), [], `${where} needs only the system's libraries (C, libgcc_s; macOS: libiconv)`);
        const names = [...lib.exports.keys()].filter(ours).sort();
        for (const n of names) assert.is(lib.exports.get(n), "function", `${where}: ${n} is a function`);
        if (exported === undefined) exported = names;
        else assert.equal(names, exported, `${where} exports what the other platforms' do`);
        if (lib.format === "Mach-O") assert.is(lib.minOs, "11.0.0", where);
        // macOS on arm64 loads only signed code: zig's linker signs it ad hoc.
        if (platform === "darwin-arm64") assert.is(lib.signature, "valid", `${where}: its code signature`);
        for (const v of lib.neededVersions ?? []) {
          const m = /^GLIBC_2\.(\d+)(?:\.\d+)?$/.exec(v);
          assert.ok(m && Number(m[1]) <= 17, `${where} needs ${v}`);
        }
        if (name === BUNDLED_LIBRARY) {
          for (const [symbol, def] of table) {
            if (!def.optional) assert.ok(names.includes(symbol), `${where} lacks ${symbol}`);
          }
          assert.equal(names.filter((n) => !table.has(n)), [], `${where}: exports outside ffi/abi.ts`);
          assert.ok(names.includes("ddffi_debug_live_objects"), where);
        }
      }
      assert.ok(exported!.length > 0, `${name} exports ddog_*/ddffi_* symbols`);
    }
  });

  test("the linux prebuilts send a span the agent decodes: x64 natively, arm64 under qemu-user", async () => {
    const sysroot = "/usr/aarch64-linux-gnu";
    assert.ok(
      existsSync(join(sysroot, "lib", "libc.so.6")) && (await run(["qemu-aarch64", "--version"])).code === 0,
      "needs qemu-user and Debian's libc6-arm64-cross (.ci/run installs them)",
    );
    const agent = await TestAgent.start();
    try {
      for (const [platform, arch, runner] of [
        ["linux-x64", "x86_64", []],
        ["linux-arm64", "aarch64", ["qemu-aarch64", "-L", sysroot, "-E", `LD_LIBRARY_PATH=${join(out, "linux-arm64")}`]],
      ] as const) {
        const dir = join(out, platform);
        const program = join(dir, "send_span");
        await ok([
          // zig's name of the Rust target: x86_64-unknown-linux-gnu.2.17 is x86_64-linux-gnu.2.17.
          ...zig(), "cc", "-target", PREBUILT_TARGETS[platform].target.replace("-unknown-", "-"), "-O1", "-Wall", "-Werror",
          "-o", program, join(root, "test", "fixtures", "send_span.c"), `-L${dir}`, `-l${BUNDLED_LIBRARY}`, `-Wl,-rpath,${dir}`,
        ]);
        const stdout = await ok([...runner, program, agent.url]);
        assert.is(stdout.trim(), "sent, live objects: 0", platform);
        const [[span]] = await agent.waitForTraces(1);
        assert.is(span.name, "arm64.span");
        assert.is(span.service, "prebuilt");
        assert.is(span.trace_id, 42n);
        assert.is(span.span_id, 7n);
        assert.is(span.duration, 1500n);
        assert.equal(span.meta, { arch }, platform);
        assert.equal(span.metrics, { answer: 42.5 });
        agent.reset();
      }
    } finally {
      await agent.close();
    }
  });
}

test.run();
