/**
 * The published shapes of the package, proven from the artifacts:
 * `build.ts --pack` makes them (the checkout's files untouched: git status
 * is the same after), the npm tarballs are served by a local npm registry
 * for the `@dd-ffi` scope (each project's `.npmrc`; other packages come from
 * the machine's caches), and each runtime's users' commands install them
 * into fresh projects under the system's temporary directory, where the
 * README's snippets run (the blocks after `<!-- test: … -->`):
 *
 * - Node: `npm install @dd-ffi/trace`, which installs the main package and
 *   exactly one platform package, `node hello.mjs`; the .d.ts resolve under
 *   `tsc --strict`; without the platform package, the loader's error names
 *   it, and `npx @dd-ffi/trace build` builds one with cargo.
 * - Bun: `bun add @dd-ffi/trace`, one platform package, `bun hello.mjs`.
 * - Deno, npm: `deno run` in the Node project (package.json + node_modules),
 *   and `deno add npm:@dd-ffi/trace` in a fresh one (one platform package
 *   fetched).
 * - Deno, JSR: `deno publish` of the staged JSR copy uploads to a local
 *   stand-in for JSR (its API and registry), so Deno itself makes the JSR
 *   artifact; then `deno add jsr:@dd-ffi/trace`, whose first run downloads
 *   the release's library from a local release server
 *   (`DD_FFI_TRACE_RELEASE_URL`): missing, corrupted and interrupted
 *   downloads fail and leave nothing, a good one is checked and cached, a
 *   cached file altered later is refused; each permission is named; and
 *   `deno run -A jsr:@dd-ffi/trace/build` still builds from source.
 *
 * The pack step cross-compiles the prebuilt libraries with cargo-zigbuild
 * into the same `CARGO_TARGET_DIR` as test/prebuilds.test.ts, so that
 * whichever runs second only copies them (in `npm test` this file runs
 * first); `PACKAGE_TEST_PREBUILDS=DIR` packs a finished set of
 * `build.ts --prebuilds DIR` instead.
 *
 * Children get a clean environment: no `DD_*`, no npm script variables, no
 * checkout `node_modules/.bin` on the PATH. The per-user library cache is a
 * temporary `XDG_CACHE_HOME`.
 *
 * Runs from the Node run of the suite only: it drives Bun and Deno as child
 * processes itself.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawn as spawnChild } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import process from "node:process";
import { gunzipSync } from "node:zlib";
import { bunBinary, denoBinary, root } from "../scripts/runtimes.mjs";
import { LIB_SOURCES, type Packed } from "../build.ts";
import { PLATFORM_PACKAGES, releaseFileName } from "../ffi/paths.ts";
import { VERSION } from "../mod.ts";

const onNode = !("Bun" in globalThis) && !("Deno" in globalThis);
const PLATFORM = `${process.platform}-${process.arch}`;
const PACKAGE = "@dd-ffi/trace";
const HELLO_OUTPUT = "the agent decoded hello.world from hello";

// ---------------------------------------------------------------- README

/** The README's snippets: `<!-- test: NAME -->` then a fenced block. */
function snippets(): Map<string, string> {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const found = new Map<string, string>();
  for (const m of readme.matchAll(/<!-- test: ([^>]+?) -->\n```[a-z]*\n([\s\S]*?)```/g)) found.set(m[1], m[2]);
  return found;
}

/** The commands of a shell snippet, one per line, split on spaces. */
function commands(name: string): string[][] {
  const text = snippets().get(name);
  if (text === undefined) throw new Error(`README.md has no snippet marked <!-- test: ${name} -->`);
  return text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")).map((l) => l.split(/\s+/));
}

// ---------------------------------------------------------------- processes

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A program name of the README's commands, as a path. */
function program(name: string): string {
  switch (name) {
    case "node":
      return process.execPath;
    case "bun":
      return bunBinary();
    case "deno":
      return denoBinary();
    default:
      return name; // npm, npx: from the PATH
  }
}

/** Runs `argv` in `cwd`; never rejects (but kills it after `timeoutMs`). */
function run(argv: string[], cwd: string, env: Record<string, string>, timeoutMs = 240_000): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawnChild(program(argv[0]), argv.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => (stderr += String(e)));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function describe(argv: string[], r: Result): string {
  return `${argv.join(" ")} exited ${r.code}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;
}

/** Runs `argv` and expects exit 0; returns the result. */
async function ok(argv: string[], cwd: string, env: Record<string, string>, timeoutMs?: number): Promise<Result> {
  const r = await run(argv, cwd, env, timeoutMs);
  if (r.code !== 0) assert.unreachable(describe(argv, r));
  return r;
}

/** Runs `argv` and expects a failure whose stderr has every one of `texts`. */
async function fails(argv: string[], cwd: string, env: Record<string, string>, texts: string[]): Promise<void> {
  const r = await run(argv, cwd, env);
  if (r.code === 0) assert.unreachable(`expected a failure: ${describe(argv, r)}`);
  for (const t of texts) assert.ok(r.stderr.includes(t), `stderr lacks ${JSON.stringify(t)}: ${describe(argv, r)}`);
}

// ---------------------------------------------------------------- the environment

let work = "";
let packed: Packed;
let npm: Awaited<ReturnType<typeof localNpm>>;
let cleanEnv: Record<string, string> = {};

/** The environment of a user's shell: nothing of the checkout, of npm's script runner or of Datadog. */
function userEnv(cacheHome: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(npm_|DD_|NODE_OPTIONS$|NODE_PATH$|INIT_CWD$|TSX_|FORCE_COLOR$)/i.test(k)) continue;
    env[k] = v;
  }
  const path = (process.env.PATH ?? "").split(delimiter).filter((p) => p && !p.includes("node_modules"));
  env.PATH = [dirname(process.execPath), ...path].join(delimiter);
  // The machine's package caches stay; the library's per-user cache is ours.
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  env.DENO_DIR = process.env.DENO_DIR || join(xdg, "deno");
  env.BUN_INSTALL_CACHE_DIR = process.env.BUN_INSTALL_CACHE_DIR || join(homedir(), ".bun", "install", "cache");
  env.XDG_CACHE_HOME = cacheHome;
  // cargo's build cache: the build commands compile lib/ (and libdatadog's crates) once on a
  // user's machine; here they reuse the checkout's, so that each is a rebuild of lib/ alone.
  env.CARGO_TARGET_DIR = process.env.CARGO_TARGET_DIR || join(root, "lib", "target");
  env.NO_COLOR = "1";
  env.DENO_NO_UPDATE_CHECK = "1";
  return env;
}

/** A fresh project directory. */
function project(name: string, packageJson = true): string {
  const dir = join(work, name);
  mkdirSync(dir);
  if (packageJson) writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `hello-${name}`, private: true }) + "\n");
  writeFileSync(join(dir, "hello.mjs"), snippets().get("hello.mjs")!);
  // The @dd-ffi scope comes from the local registry (npm, Bun and Deno read a project's .npmrc).
  writeFileSync(join(dir, ".npmrc"), `@dd-ffi:registry=${npm.url}\n`);
  return dir;
}

/** The platform packages installed in `dir`'s node_modules. */
function platformPackages(dir: string): string[] {
  const scope = join(dir, "node_modules", "@dd-ffi");
  return readdirSync(scope).filter((n) => n !== "trace").map((n) => `@dd-ffi/${n}`).sort();
}

/** Every file under `dir`, relative, with `/`. */
function walk(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]
  );
}

// ---------------------------------------------------------------- a local npm registry

/**
 * An npm registry on 127.0.0.1 serving `tarballs` (the packed packages of
 * the `@dd-ffi` scope): each package's document (its package.json with the
 * tarball's URL and digests) and its tarball. `fetched` lists the tarballs
 * downloaded, in order.
 */
async function localNpm(tarballs: string[]) {
  const packages = new Map<string, { manifest: Record<string, unknown>; file: string; bytes: Buffer }>();
  for (const file of tarballs) {
    const bytes = readFileSync(file);
    const manifest = JSON.parse(new TextDecoder().decode(untar(gunzipSync(bytes)).get("package/package.json")));
    packages.set(manifest.name, { manifest, file: file.slice(file.lastIndexOf("/") + 1), bytes });
  }
  const fetched: string[] = [];
  let url = "";
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const tarball = path.startsWith("/-/") ? [...packages.values()].find((p) => `/-/${p.file}` === path) : undefined;
    if (tarball) {
      fetched.push(tarball.manifest.name as string);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": tarball.bytes.length });
      return res.end(tarball.bytes);
    }
    const pkg = packages.get(path.slice(1));
    if (!pkg) {
      res.writeHead(404, { "content-type": "application/json" });
      return res.end(JSON.stringify({ error: "not found" }));
    }
    const version = pkg.manifest.version as string;
    const dist = {
      tarball: `${url}-/${pkg.file}`,
      shasum: createHash("sha1").update(pkg.bytes).digest("hex"),
      integrity: `sha512-${createHash("sha512").update(pkg.bytes).digest("base64")}`,
    };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ name: pkg.manifest.name, "dist-tags": { latest: version }, versions: { [version]: { ...pkg.manifest, dist } } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  return { url, fetched, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

// ---------------------------------------------------------------- a local release

type ReleaseMode = "ok" | "missing" | "corrupt" | "interrupted";

/**
 * The release's files (`build.ts --pack`'s release folder) on 127.0.0.1,
 * as a GitHub release serves them, or broken as `mode` says: missing (404),
 * corrupt (one byte changed), interrupted (the connection closes halfway
 * through the announced length).
 */
async function localRelease(dir: string) {
  const state = { mode: "ok" as ReleaseMode, fetched: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const name = new URL(req.url ?? "/", "http://x").pathname.slice(1);
    const file = join(dir, name);
    if (state.mode === "missing" || name.includes("/") || !existsSync(file)) {
      res.writeHead(404);
      return res.end("Not Found");
    }
    state.fetched += 1;
    const bytes = Buffer.from(readFileSync(file));
    if (state.mode === "corrupt") bytes[bytes.length >> 1] ^= 0xff;
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length });
    if (state.mode === "interrupted") {
      res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
      return;
    }
    res.end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
    state,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

// ---------------------------------------------------------------- a local JSR

/** Reads a tar archive (ustar, as `deno publish` writes it) into path → bytes. */
function untar(tar: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (h: Uint8Array, at: number, n: number) =>
    new TextDecoder().decode(h.subarray(at, at + n)).replace(/\0[\s\S]*$/, "");
  for (let at = 0; at + 512 <= tar.length;) {
    const h = tar.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const name = text(h, 0, 100), prefix = text(h, 345, 155), type = text(h, 156, 1);
    const size = parseInt(text(h, 124, 12).trim() || "0", 8);
    const path = (prefix ? `${prefix}/${name}` : name).replace(/^\.?\//, "");
    if (type === "0" || type === "") files.set(path, tar.slice(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/**
 * A stand-in for JSR on 127.0.0.1: the publish API `deno publish` talks to
 * (JSR_API_URL), keeping the tarball Deno uploads, and the registry Deno
 * installs from (JSR_URL), serving that tarball's files.
 */
async function localJsr() {
  let files: Map<string, Uint8Array> | undefined;
  const [scope, name] = PACKAGE.slice(1).split("/");
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const url = new URL(req.url ?? "/", "http://x");
      const pkgApi = `/api/scopes/${scope}/packages/${name}`;
      const pkg = `/@${scope}/${name}`;
      const published = { scope, name, version: VERSION, packageScope: scope, packageName: name, packageVersion: VERSION };
      if (req.method === "GET" && url.pathname === pkgApi) return json(200, { scope, name, description: "", latestVersion: null });
      if (req.method === "GET" && url.pathname === `${pkgApi}/versions/${VERSION}`) {
        return files ? json(200, published) : json(404, { code: "versionNotFound", message: "not found" });
      }
      if (req.method === "POST" && url.pathname === `${pkgApi}/versions/${VERSION}`) {
        files = untar(gunzipSync(Buffer.concat(chunks)));
        return json(200, { id: "1", status: "success", ...published });
      }
      if (req.method === "GET" && url.pathname === "/api/publish_status/1") return json(200, { id: "1", status: "success", ...published });
      if (files && url.pathname === `${pkg}/meta.json`) {
        return json(200, { scope, name, latest: VERSION, versions: { [VERSION]: {} } });
      }
      if (files && url.pathname === `${pkg}/${VERSION}_meta.json`) {
        const manifest: Record<string, { size: number; checksum: string }> = {};
        for (const [path, bytes] of files) {
          manifest[`/${path}`] = { size: bytes.length, checksum: `sha256-${createHash("sha256").update(bytes).digest("hex")}` };
        }
        return json(200, { manifest, exports: JSON.parse(new TextDecoder().decode(files.get("deno.json"))).exports });
      }
      const file = url.pathname.startsWith(`${pkg}/${VERSION}/`) && files?.get(url.pathname.slice(pkg.length + VERSION.length + 2));
      if (file) {
        res.writeHead(200);
        return res.end(file);
      }
      json(404, { code: "notFound", message: `${req.method} ${req.url}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    registry: `http://127.0.0.1:${port}/`,
    api: `http://127.0.0.1:${port}/api/`,
    files: () => files,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------- the tests

/** `git status --porcelain` of the checkout, ignored files left out. */
const gitStatus = () => execFileSync("git", ["status", "--porcelain"], { cwd: root, encoding: "utf8" });

/** The tarball's files, as `path → bytes`. */
const tarFiles = (file: string) => untar(gunzipSync(readFileSync(file)));

if (onNode) {
  test.before(() => {
    work = realpathSync(mkdtempSync(join(tmpdir(), "dd-ffi-trace-package-")));
    for (let d = work; d !== dirname(d); d = dirname(d)) {
      assert.not.ok(existsSync(join(dirname(d), "node_modules")), `${dirname(d)}/node_modules would leak into the projects`);
    }
    cleanEnv = userEnv(join(work, "cache"));
  });

  test.after(async () => {
    await npm?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("build.ts --pack: the main package without libraries, one package per platform, the release's files, the JSR copy; the checkout unchanged", async () => {
    const before = gitStatus();
    const manifestBefore = readFileSync(join(root, "package.json"), "utf8");
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_"))) as Record<string, string>;
    const prebuilt = process.env.PACKAGE_TEST_PREBUILDS ? ["--prebuilt", process.env.PACKAGE_TEST_PREBUILDS] : [];
    await ok(["node", "--import", "tsx", join(root, "build.ts"), "--pack", join(work, "pack"), ...prebuilt], root, env, 3_600_000);
    assert.is(gitStatus(), before, "git status after packing");
    // npm pack of the checkout would publish its own package.json: it refuses, naming the way.
    await fails(["npm", "pack", "--dry-run"], root, env, ["npm run dist"]);
    assert.is(readFileSync(join(root, "package.json"), "utf8"), manifestBefore, "the checkout's package.json untouched");
    const names = readdirSync(join(work, "pack")).filter((f) => f.endsWith(".tgz")).sort();
    const platforms = Object.keys(PLATFORM_PACKAGES);
    const tarballName = (name: string) => `${name.slice(1).replace("/", "-")}-${VERSION}.tgz`;
    assert.equal(names, [PACKAGE, ...platforms.map((p) => PLATFORM_PACKAGES[p].name)].map(tarballName).sort());
    packed = {
      main: join(work, "pack", tarballName(PACKAGE)),
      platforms: Object.fromEntries(platforms.map((p) => [p, join(work, "pack", tarballName(PLATFORM_PACKAGES[p].name))])),
      release: join(work, "pack", "release"),
      jsr: join(work, "pack", "jsr"),
    };

    // The main package: compiled JS and .d.ts, the Rust sources, LICENSE; no library, no TypeScript source.
    const main = tarFiles(packed.main);
    const files = [...main.keys()].map((f) => f.replace(/^package\//, "")).sort();
    for (const f of ["package.json", "README.md", "LICENSE", "dist/cli.js", "dist/ffi/bun_worker.js", "dist/ffi/bun_slice_return.c"]) {
      assert.ok(files.includes(f), `${f} in ${files.join(" ")}`);
    }
    for (const entry of ["mod", "testing", "build", "opentelemetry"]) {
      assert.ok(files.includes(`dist/${entry}.js`) && files.includes(`dist/${entry}.d.ts`), entry);
    }
    for (const c of LIB_SOURCES) assert.ok(files.includes(`dist/lib/${c}`), c);
    assert.equal(files.filter((f) => /\.(so|dylib)$/.test(f)), []);
    assert.equal(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), []);
    assert.equal(files.filter((f) => !f.startsWith("dist/") && !["package.json", "README.md", "LICENSE"].includes(f)), []);
    assert.ok(readFileSync(packed.main).length < 1_000_000, `main tarball of ${readFileSync(packed.main).length} bytes`);
    const manifest = JSON.parse(new TextDecoder().decode(main.get("package/package.json")));
    assert.is(manifest.scripts, undefined);
    assert.is(manifest.devDependencies, undefined);
    assert.equal(manifest.optionalDependencies, Object.fromEntries(platforms.map((p) => [PLATFORM_PACKAGES[p].name, VERSION])));

    // Each platform's package: its os, cpu and libc, the same version, its two libraries.
    const sums = readFileSync(join(packed.release, "SHA256SUMS"), "utf8");
    for (const platform of platforms) {
      const { name, os, cpu, libc } = PLATFORM_PACKAGES[platform];
      const tar = tarFiles(packed.platforms[platform]);
      const ext = platform.startsWith("darwin-") ? "dylib" : "so";
      assert.equal(
        [...tar.keys()].sort(),
        ["LICENSE", "README.md", `libdd_trace_ffi.${ext}`, `libddffi_batch.${ext}`, "package.json"].map((f) => `package/${f}`),
        name,
      );
      const m = JSON.parse(new TextDecoder().decode(tar.get("package/package.json")));
      assert.equal([m.name, m.version, m.os, m.cpu, m.libc, m.license], [name, VERSION, [os], [cpu], libc && [libc], "Apache-2.0"]);
      // The release's file is the package's library; SHA256SUMS and the JSR copy give its digest.
      const library = tar.get(`package/libdd_trace_ffi.${ext}`)!;
      const digest = createHash("sha256").update(library).digest("hex");
      const file = releaseFileName("dd_trace_ffi", platform);
      assert.equal(readFileSync(join(packed.release, file)), Buffer.from(library), file);
      assert.match(sums, `${digest}  ${file}\n`);
      assert.match(readFileSync(join(packed.jsr, "ffi", "release_sha256.ts"), "utf8"), `"${file}": "${digest}",`);
    }
    npm = await localNpm([packed.main, ...Object.values(packed.platforms)]);
  });

  test("Node: npm install @dd-ffi/trace installs exactly one platform package, then the README's hello.mjs", async () => {
    const dir = project("node");
    for (const argv of commands("node install")) {
      const r = await ok([...argv, "--prefer-offline", "--no-audit", "--no-fund"], dir, cleanEnv);
      // npm lists the packages with install scripts (koffi has one); ours are not among them.
      assert.not.match(r.stdout + r.stderr, /install-scripts.*@dd-ffi/, describe(argv, r));
    }
    assert.equal(platformPackages(dir), [PLATFORM_PACKAGES[PLATFORM].name]);
    const installed = join(dir, "node_modules", ...PACKAGE.split("/"));
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
    assert.is(manifest.scripts, undefined, "the published package.json has no scripts");
    assert.is(manifest.devDependencies, undefined, "the published package.json has no devDependencies");
    assert.is(manifest.license, "Apache-2.0");
    assert.match(manifest.repository?.url ?? "", "github.com/dd-ffi/trace");
    assert.match(manifest.homepage ?? "", "github.com/dd-ffi/trace");
    assert.match(readFileSync(join(installed, "LICENSE"), "utf8"), "Apache License\n                           Version 2.0");
    assert.ok(existsSync(join(installed, "dist", "mod.js")));
    assert.ok(existsSync(join(dir, "node_modules", "koffi")), "koffi installed");
    // The compiled import specifiers point at .js files (in the .d.ts too).
    for (const f of walk(join(installed, "dist")).filter((f) => /\.(js|d\.ts)$/.test(f))) {
      const text = readFileSync(join(installed, "dist", f), "utf8");
      assert.not.match(text, /(?:from\s*|import\s*\(\s*|import\s+)(["'])\.\.?\/[^"']*\.ts\1/, `a .ts import in dist/${f}`);
    }
    for (const f of ["mod.js", "mod.d.ts"]) {
      assert.match(readFileSync(join(installed, "dist", f), "utf8"), `from "./src/exporter.js"`, f);
    }
    for (const argv of commands("node run")) {
      const r = await ok(argv, dir, cleanEnv);
      assert.match(r.stdout, HELLO_OUTPUT);
    }
  });

  test("the .d.ts type-check without @types/node (types: [], TypeScript's default lib)", async () => {
    const dir = project("types");
    await ok(["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", PACKAGE], dir, cleanEnv);
    assert.not.ok(existsSync(join(dir, "node_modules", "@types")), "no @types in the project");
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { module: "nodenext", strict: true, noEmit: true, types: [] } }),
    );
    const entries = Object.keys(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).exports)
      .filter((e) => e !== "./package.json");
    assert.ok(entries.length >= 3, entries.join(" "));
    const imports = entries.map((e, i) => `import * as entry${i} from "${PACKAGE}${e.slice(1)}";`);
    writeFileSync(join(dir, "consumer.ts"), `${imports.join("\n")}\nexport const entries = [${entries.map((_, i) => `entry${i}`)}];\n`);
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    await ok(["node", tsc, "-p", "tsconfig.json"], dir, cleanEnv);
  });

  test("Node: the exports' types resolve (tsc --strict, nodenext)", async () => {
    const dir = join(work, "node");
    await ok(["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "-D", "@types/node@20"], dir, cleanEnv);
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { module: "nodenext", target: "es2022", strict: true, noEmit: true, types: ["node"] } }),
    );
    writeFileSync(
      join(dir, "consumer.ts"),
      `import { createServer } from "node:http";
import { nodeListener, TraceExporter, TraceExporterError, VERSION, type Span, type ExporterOptions } from "${PACKAGE}";
import { TestAgent, type DecodedSpan } from "${PACKAGE}/testing";
import { buildUserLibrary } from "${PACKAGE}/build";
const options: ExporterOptions = { service: "hello", connectionTimeoutMs: 1000 };
const span: Span = { name: "n", service: "s", traceId: 1n, spanId: 1n, start: 0n, duration: 1 };
export const server = createServer(nodeListener(() => new Response("ok")));
export async function main(): Promise<string> {
  const agent: TestAgent = await TestAgent.start();
  const exporter = new TraceExporter({ ...options, url: agent.url });
  await exporter.send([[span]]);
  const spans: DecodedSpan[][] = await agent.waitForTraces(1);
  const built: Promise<string> = buildUserLibrary();
  return VERSION + spans.length + String(built) + String(TraceExporterError);
}
`,
    );
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    await ok(["node", tsc, "-p", "tsconfig.json"], dir, cleanEnv);
  });

  test("Deno: the npm package (package.json + node_modules), the README's deno run", async () => {
    const dir = join(work, "node");
    for (const argv of commands("deno run")) {
      const r = await ok(argv, dir, cleanEnv);
      assert.match(r.stdout, HELLO_OUTPUT);
    }
  });

  test("Node: without the platform package, the error names it, DD_LIBDATADOG_PATH and the platform; npx @dd-ffi/trace build builds one", async () => {
    const dir = join(work, "node");
    const { name } = PLATFORM_PACKAGES[PLATFORM];
    rmSync(join(dir, "node_modules", ...name.split("/")), { recursive: true });
    const env = { ...cleanEnv, XDG_CACHE_HOME: join(work, "cache-npx") };
    const [hello] = commands("node run");
    await fails(hello, dir, env, [
      `No libdatadog library found for ${PLATFORM}`,
      `npm install ${name}@${VERSION}`,
      "DD_LIBDATADOG_PATH",
      "npx @dd-ffi/trace build",
      join(work, "cache-npx", "dd-ffi-trace", VERSION, PLATFORM, "libdd_trace_ffi.so"),
    ]);
    for (const argv of commands("npm build")) await ok(argv, dir, env);
    assert.ok(existsSync(join(work, "cache-npx", "dd-ffi-trace", VERSION, PLATFORM, "libdd_trace_ffi.so")));
    const r = await ok(hello, dir, env);
    assert.match(r.stdout, HELLO_OUTPUT);
  });

  test("Bun: bun add @dd-ffi/trace installs exactly one platform package, then the README's hello.mjs", async () => {
    const dir = project("bun");
    for (const argv of commands("bun install")) await ok(argv, dir, cleanEnv);
    assert.equal(platformPackages(dir), [PLATFORM_PACKAGES[PLATFORM].name]);
    for (const argv of commands("bun run")) {
      const r = await ok(argv, dir, cleanEnv);
      assert.match(r.stdout, HELLO_OUTPUT);
    }
  });

  test("Deno: deno add npm:@dd-ffi/trace fetches exactly one platform package, then the README's hello.mjs", async () => {
    const dir = project("deno-npm", false);
    const first = npm.fetched.length;
    for (const argv of commands("deno npm install")) await ok(argv, dir, cleanEnv);
    const [hello] = commands("deno run");
    const r = await ok(hello, dir, cleanEnv);
    assert.match(r.stdout, HELLO_OUTPUT);
    // Deno's npm cache is per registry (this one's port is new): every tarball it used was fetched here.
    const platformNames = Object.values(PLATFORM_PACKAGES).map((p) => p.name);
    assert.equal(npm.fetched.slice(first).filter((n) => platformNames.includes(n)), [PLATFORM_PACKAGES[PLATFORM].name]);
  });

  test("Deno: deno publish to a local JSR, deno add; the release's library downloaded, checked by sha256 and cached; permissions; the build entry", async () => {
    const jsr = await localJsr();
    const release = await localRelease(packed.release);
    try {
      const cache = join(work, "cache-jsr");
      const env = {
        ...cleanEnv,
        JSR_URL: jsr.registry,
        JSR_API_URL: jsr.api,
        XDG_CACHE_HOME: cache,
        DD_FFI_TRACE_RELEASE_URL: release.url,
      };
      await ok(["deno", "publish", "--token", "local", "--no-provenance", "--allow-dirty", "--no-check"], packed.jsr, env);
      const published = [...jsr.files()!.keys()].sort();
      for (const f of ["deno.json", "README.md", "mod.ts", "testing.ts", "build.ts", "ffi/bun_slice_return.c", "ffi/release_sha256.ts"]) {
        assert.ok(published.includes(f), `${f} in ${published.join(" ")}`);
      }
      for (const c of LIB_SOURCES) assert.ok(published.includes(`lib/${c}`), c);
      assert.equal(published.filter((f) => /^(test|dist|node_modules|examples|scripts|types)\//.test(f) || /\.(so|dylib)$/.test(f)), []);

      const dir = project("deno", false);
      const [add, ...rest] = commands("deno install");
      assert.equal(rest, []);
      await ok(add, dir, env);
      const [hello] = commands("deno run");
      const file = releaseFileName("dd_trace_ffi", PLATFORM);
      const url = `${release.url}${file}`;
      const library = join(cache, "dd-ffi-trace", VERSION, "release", PLATFORM, "libdd_trace_ffi.so");
      const expected = /^([0-9a-f]{64}) {2}(.+)$/gm;
      const digest = [...readFileSync(join(packed.release, "SHA256SUMS"), "utf8").matchAll(expected)].find((m) => m[2] === file)![1];
      const nothingCached = () => assert.equal(existsSync(dirname(library)) ? readdirSync(dirname(library)) : [], [], "nothing left in the cache");

      // A missing file, a corrupted one, an interrupted download: an error, nothing cached, nothing loaded.
      release.state.mode = "missing";
      await fails(hello, dir, env, [`downloading ${url}: 404`]);
      nothingCached();
      release.state.mode = "corrupt";
      const corrupted = Buffer.from(readFileSync(join(packed.release, file)));
      corrupted[corrupted.length >> 1] ^= 0xff;
      await fails(hello, dir, env, [url, `has sha256 ${createHash("sha256").update(corrupted).digest("hex")}, not the published ${digest}`]);
      nothingCached();
      release.state.mode = "interrupted";
      await fails(hello, dir, env, [`downloading ${url}`]);
      nothingCached();

      // The download needs --allow-net and --allow-write (of the cache), and names them.
      release.state.mode = "ok";
      await fails(hello.filter((a) => a !== "--allow-write"), dir, env, ["@dd-ffi/trace needs Deno's --allow-write"]);
      nothingCached();
      // (Without --allow-net the test agent of hello.mjs cannot listen: a program that only loads the library.)
      writeFileSync(join(dir, "load.mjs"), `import { TraceExporter } from "${PACKAGE}";\nawait new TraceExporter({ service: "load" }).close();\n`);
      const load = hello.map((a) => (a === "hello.mjs" ? "load.mjs" : a)).filter((a) => a !== "--allow-net");
      const fetched = release.state.fetched;
      await fails(load, dir, env, [`@dd-ffi/trace needs Deno's --allow-net to download ${url}`]);
      assert.is(release.state.fetched, fetched, "no request without --allow-net");
      nothingCached();
      assert.match((await ok(hello, dir, env)).stdout, HELLO_OUTPUT);
      assert.is(createHash("sha256").update(readFileSync(library)).digest("hex"), digest);

      // Cached: no download again (the release is gone), no --allow-write needed.
      release.state.mode = "missing";
      const noWrite = hello.filter((a) => a !== "--allow-write");
      assert.match((await ok(noWrite, dir, env)).stdout, HELLO_OUTPUT);
      // Each permission the library needs, when missing, is named.
      for (const flag of ["--allow-ffi", "--allow-env", "--allow-read"]) {
        await fails(noWrite.filter((a) => a !== flag), dir, env, [`@dd-ffi/trace needs Deno's ${flag}`]);
      }
      // --allow-read of the library file alone is enough.
      const narrow = noWrite.map((a) => (a === "--allow-read" ? `--allow-read=${library}` : a));
      assert.match((await ok(narrow, dir, env)).stdout, HELLO_OUTPUT);

      // A cached file altered later is refused before it is opened, naming it and both digests.
      const altered = Buffer.concat([readFileSync(library), Buffer.from([0])]);
      writeFileSync(library, altered);
      await fails(hello, dir, env, [library, `has sha256 ${createHash("sha256").update(altered).digest("hex")}, not the published ${digest}`]);

      // Other platforms build from source with cargo: the build entry, whose library then comes first.
      const [build, ...none] = commands("deno build");
      assert.equal(none, []);
      assert.equal(build, ["deno", "run", "-A", "jsr:@dd-ffi/trace/build"]);
      const built = join(cache, "dd-ffi-trace", VERSION, PLATFORM, "libdd_trace_ffi.so");
      assert.match((await ok(build, dir, env)).stdout, `built ${built}`);
      assert.match((await ok(hello, dir, env)).stdout, HELLO_OUTPUT);
    } finally {
      await release.close();
      await jsr.close();
    }
  });
}

test.run();
