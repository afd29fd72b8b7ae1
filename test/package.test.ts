/**
 * The published shapes of the package, proven from the artifacts: `npm pack`
 * makes the tarball, which is installed into fresh projects under the
 * system's temporary directory the way each runtime's users do, and each
 * project runs the README's snippets (the blocks after `<!-- test: … -->`):
 *
 * - Node: `npm install` of the tarball, `node hello.mjs`; the .d.ts resolve
 *   under `tsc --strict`; without the prebuilt, the loader's error says how to
 *   build one, and `npx @dd-ffi/trace build` does.
 * - Bun: `bun add` of the tarball, `bun hello.mjs`.
 * - Deno, npm package: `deno run` in the Node project (package.json + node_modules).
 * - Deno, JSR: `deno publish` uploads to a local stand-in for JSR (its API
 *   and registry), so Deno itself makes the JSR artifact; then `deno add
 *   jsr:@dd-ffi/trace`, `deno run -A jsr:@dd-ffi/trace/build` and the
 *   permissions, all from that registry.
 *
 * Children get a clean environment: no `DD_*`, no npm script variables, no
 * checkout `node_modules/.bin` on the PATH; packages come from the npm
 * registry (through the machine's caches). The per-user library cache is a
 * temporary `XDG_CACHE_HOME`.
 *
 * Runs from the Node run of the suite only: it drives Bun and Deno as child
 * processes itself.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import process from "node:process";
import { gunzipSync } from "node:zlib";
import { bunBinary, denoBinary, root } from "../scripts/runtimes.mjs";
import { LIB_SOURCES } from "../build.ts";
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
    const child = spawn(program(argv[0]), argv.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
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
async function ok(argv: string[], cwd: string, env: Record<string, string>): Promise<Result> {
  const r = await run(argv, cwd, env);
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
let tarball = "";
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
  return dir;
}

/** `commands(name)` with the registry's package replaced by `spec`. */
function install(name: string, spec: string): string[][] {
  return commands(name).map((argv) => argv.map((a) => (a === PACKAGE ? spec : a)));
}

/** Every file under `dir`, relative, with `/`. */
function walk(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]
  );
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

if (onNode) {
  test.before(() => {
    work = realpathSync(mkdtempSync(join(tmpdir(), "dd-ffi-trace-package-")));
    for (let d = work; d !== dirname(d); d = dirname(d)) {
      assert.not.ok(existsSync(join(dirname(d), "node_modules")), `${dirname(d)}/node_modules would leak into the projects`);
    }
    cleanEnv = userEnv(join(work, "cache"));
  });

  test.after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("npm pack: compiled JS and .d.ts, the Rust sources of lib/, LICENSE and the prebuilts of linux and macOS, x64 and arm64; no TypeScript sources", async () => {
    const env = { ...process.env } as Record<string, string>;
    for (const k of Object.keys(env)) if (k.startsWith("npm_")) delete env[k];
    const argv = ["npm", "pack", "--json", "--pack-destination", work];
    const r = await ok(argv, root, env);
    const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf("\n[") + 1 || 0));
    tarball = join(work, info.filename);
    const files = (info.files as { path: string }[]).map((f) => f.path).sort();
    for (const f of ["package.json", "README.md", "dist/cli.js", "dist/ffi/bun_worker.js", "dist/ffi/bun_slice_return.c"]) {
      assert.ok(files.includes(f), `${f} in ${files.join(" ")}`);
    }
    for (const entry of ["mod", "testing", "build", "opentelemetry"]) {
      assert.ok(files.includes(`dist/${entry}.js`) && files.includes(`dist/${entry}.d.ts`), entry);
    }
    for (const c of LIB_SOURCES) assert.ok(files.includes(`dist/lib/${c}`), c);
    for (const platform of ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64"]) {
      const ext = platform.startsWith("darwin-") ? "dylib" : "so";
      assert.ok(files.includes(`dist/prebuilds/${platform}/libdd_trace_ffi.${ext}`), platform);
    }
    assert.equal(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), []);
    assert.equal(files.filter((f) => !f.startsWith("dist/") && !["package.json", "README.md", "LICENSE"].includes(f)), []);
    assert.ok(files.includes("LICENSE"));
    // postpack put the checkout's package.json back.
    assert.ok(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts?.test, "the checkout's package.json restored");
    assert.not.ok(existsSync(join(root, ".cache", "prepack-package.json")));
    assert.ok(info.size < 1_000_000, `tarball of ${info.size} bytes`);
  });

  test("Node: npm install of the tarball, then the README's hello.mjs", async () => {
    const dir = project("node");
    for (const argv of install("node install", tarball)) {
      const r = await ok([...argv, "--prefer-offline", "--no-audit", "--no-fund"], dir, cleanEnv);
      // npm lists the packages with install scripts (koffi has one); ours is not one of them.
      assert.not.match(r.stdout + r.stderr, new RegExp(`install-scripts.*${PACKAGE}`), describe(argv, r));
    }
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
    await ok(["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", tarball], dir, cleanEnv);
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

  test("Node: without a prebuilt, the error says how to build one; npx @dd-ffi/trace build does", async () => {
    const dir = join(work, "node");
    rmSync(join(dir, "node_modules", ...PACKAGE.split("/"), "dist", "prebuilds"), { recursive: true });
    const env = { ...cleanEnv, XDG_CACHE_HOME: join(work, "cache-npx") };
    const [hello] = commands("node run");
    await fails(hello, dir, env, [
      `No libdatadog library found for ${PLATFORM}`,
      "npx @dd-ffi/trace build",
      "deno run -A jsr:@dd-ffi/trace/build",
      "DD_LIBDATADOG_PATH",
      join(work, "cache-npx", "dd-ffi-trace", VERSION, PLATFORM, "libdd_trace_ffi.so"),
    ]);
    for (const argv of commands("npm build")) await ok(argv, dir, env);
    assert.ok(existsSync(join(work, "cache-npx", "dd-ffi-trace", VERSION, PLATFORM, "libdd_trace_ffi.so")));
    const r = await ok(hello, dir, env);
    assert.match(r.stdout, HELLO_OUTPUT);
  });

  test("Bun: bun add of the tarball, then the README's hello.mjs", async () => {
    const dir = project("bun");
    for (const argv of install("bun install", tarball)) await ok(argv, dir, cleanEnv);
    assert.ok(existsSync(join(dir, "node_modules", ...PACKAGE.split("/"), "dist", "prebuilds")));
    for (const argv of commands("bun run")) {
      const r = await ok(argv, dir, cleanEnv);
      assert.match(r.stdout, HELLO_OUTPUT);
    }
  });

  test("Deno: deno publish to a local JSR, deno add, the build entry, permissions, the README's hello.mjs", async () => {
    const jsr = await localJsr();
    try {
      const env = { ...cleanEnv, JSR_URL: jsr.registry, JSR_API_URL: jsr.api, XDG_CACHE_HOME: join(work, "cache-jsr") };
      await ok(["deno", "publish", "--token", "local", "--no-provenance", "--allow-dirty", "--no-check"], root, env);
      const published = [...jsr.files()!.keys()].sort();
      for (const f of ["deno.json", "README.md", "mod.ts", "testing.ts", "build.ts", "ffi/bun_slice_return.c"]) {
        assert.ok(published.includes(f), `${f} in ${published.join(" ")}`);
      }
      for (const c of LIB_SOURCES) assert.ok(published.includes(`lib/${c}`), c);
      assert.equal(published.filter((f) => /^(test|dist|node_modules|examples|scripts|types)\//.test(f)), []);

      const dir = project("deno", false);
      const [add, build, ...rest] = commands("deno install");
      assert.equal(rest, []);
      assert.equal(build, ["deno", "run", "-A", "jsr:@dd-ffi/trace/build"]);
      await ok(add, dir, env);
      const [hello] = commands("deno run");
      // Nothing built yet: the error names the build entry.
      await fails(hello, dir, env, [`No libdatadog library found for ${PLATFORM}`, "deno run -A jsr:@dd-ffi/trace/build"]);
      const r = await ok(build, dir, env);
      const library = join(work, "cache-jsr", "dd-ffi-trace", VERSION, PLATFORM, "libdd_trace_ffi.so");
      assert.match(r.stdout, `built ${library}`);
      // Each permission the library needs, when missing, is named.
      for (const flag of ["--allow-ffi", "--allow-env", "--allow-read"]) {
        await fails(hello.filter((a) => a !== flag), dir, env, [`@dd-ffi/trace needs Deno's ${flag}`]);
      }
      // --allow-read of the library file alone is enough.
      const narrow = hello.map((a) => (a === "--allow-read" ? `--allow-read=${library}` : a));
      assert.match((await ok(narrow, dir, env)).stdout, HELLO_OUTPUT);
      assert.match((await ok(hello, dir, env)).stdout, HELLO_OUTPUT);
    } finally {
      await jsr.close();
    }
  });
}

test.run();
