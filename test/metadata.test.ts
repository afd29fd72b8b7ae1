/** The package's metadata agrees with itself: versions, the C source list, the exports. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { VERSION } from "../mod.ts";
import { LIB_SOURCES, platformManifest, publishedManifest, releaseModule } from "../build.ts";
import { PACKAGE_NAME, PLATFORM_PACKAGES, releaseCacheLibrary, userCacheLibrary } from "../ffi/paths.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const json = (file: string) => JSON.parse(readFileSync(join(root, file), "utf8"));

test("VERSION equals package.json's and deno.json's versions", () => {
  assert.is(json("package.json").version, VERSION);
  assert.is(json("deno.json").version, VERSION);
});

test("package.json and deno.json name the same package and entry points", () => {
  const pkg = json("package.json");
  const deno = json("deno.json");
  assert.is(pkg.name, "@dd-ffi/trace");
  assert.is(deno.name, pkg.name);
  assert.is(deno.license, pkg.license);
  assert.equal(Object.keys(deno.exports).sort(), [".", "./build", "./opentelemetry", "./testing"]);
  for (const [entry, source] of Object.entries(deno.exports) as [string, string][]) {
    const compiled = source.replace(/^\.\//, "./dist/").replace(/\.ts$/, "");
    assert.equal(pkg.exports[entry], { types: `${compiled}.d.ts`, default: `${compiled}.js` }, entry);
  }
});

test("build.ts's LIB_SOURCES (what a JSR copy fetches) lists every source of lib/ (target/ and build/ are outputs)", () => {
  const walk = (dir: string): string[] =>
    readdirSync(join(root, "lib", dir), { withFileTypes: true }).flatMap((e) => {
      const path = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) return path === "target" || path === "build" ? [] : walk(path);
      return [path];
    });
  assert.equal([...LIB_SOURCES].sort(), walk("").sort());
});

test("the per-user cache: $XDG_CACHE_HOME, else ~/.cache; per version and platform", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const platform = `${process.platform}-${process.arch}`;
  assert.is(
    userCacheLibrary(env({ HOME: "/home/u" })),
    `/home/u/.cache/dd-ffi-trace/${VERSION}/${platform}/libdd_trace_ffi.so`,
  );
  assert.is(
    userCacheLibrary(env({ HOME: "/home/u", XDG_CACHE_HOME: "/c" })),
    `/c/dd-ffi-trace/${VERSION}/${platform}/libdd_trace_ffi.so`,
  );
  assert.is(userCacheLibrary(env({})), undefined);
});

test("the published manifests: no scripts or devDependencies; every platform package an optional dependency at this version; os, cpu, libc", () => {
  const pkg = json("package.json");
  assert.is(pkg.name, PACKAGE_NAME);
  const published = publishedManifest(pkg);
  assert.is(published.scripts, undefined);
  assert.is(published.devDependencies, undefined);
  assert.equal(
    published.optionalDependencies,
    Object.fromEntries(Object.values(PLATFORM_PACKAGES).map((p) => [p.name, VERSION])),
  );
  const linux = platformManifest(pkg, "linux-arm64");
  assert.is(linux.name, "@dd-ffi/trace-linux-arm64-gnu");
  assert.is(linux.version, VERSION);
  assert.equal([linux.os, linux.cpu, linux.libc], [["linux"], ["arm64"], ["glibc"]]);
  assert.equal(linux.files, ["libdd_trace_ffi.so", "libddffi_batch.so", "README.md", "LICENSE"]);
  const mac = platformManifest(pkg, "darwin-x64");
  assert.equal([mac.os, mac.cpu, mac.libc], [["darwin"], ["x64"], undefined]);
  assert.equal(mac.files, ["libdd_trace_ffi.dylib", "libddffi_batch.dylib", "README.md", "LICENSE"]);
});

test("ffi/release_sha256.ts is build.ts's releaseModule without digests: the GitHub release of package.json's repository at this version", () => {
  const text = readFileSync(join(root, "ffi", "release_sha256.ts"), "utf8");
  assert.fixture(text, releaseModule(json("package.json"), {}));
  assert.match(text, `"https://github.com/dd-ffi/trace/releases/download/v${VERSION}/"`);
  assert.match(releaseModule(json("package.json"), { "linux-x64-libdd_trace_ffi.so": "ab" }), `"linux-x64-libdd_trace_ffi.so": "ab",`);
});

test("the release's cache: apart from the per-user build, per version and platform", () => {
  const platform = `${process.platform}-${process.arch}`;
  assert.is(
    releaseCacheLibrary((name) => ({ HOME: "/home/u" } as Record<string, string>)[name]),
    `/home/u/.cache/dd-ffi-trace/${VERSION}/release/${platform}/libdd_trace_ffi.so`,
  );
});

test.run();
