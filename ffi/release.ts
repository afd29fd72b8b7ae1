/**
 * The release's prebuilt library, for Deno from JSR (the JSR package holds
 * no binary; `load.ts` calls this only there): downloaded once from
 * `DD_FFI_TRACE_RELEASE_URL` (default `RELEASE_URL`, the GitHub release)
 * into the per-user cache (`releaseCacheLibrary` in `paths.ts`), and checked
 * against the sha256 published with the package (`release_sha256.ts`)
 * before every load: a file that does not match is never opened. This is
 * the convention of Deno's FFI libraries (`@db/sqlite` with `@denosaurs/plug`)
 * plus the digest.
 *
 * Permissions: `--allow-net` (of the release's host) for the download only,
 * `--allow-write` of the cache folder for the download only, `--allow-read`
 * of the file.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { BUNDLED_LIBRARY, PLATFORM, releaseCacheLibrary, releaseFileName } from "./paths.ts";
import { RELEASE_SHA256, RELEASE_URL } from "./release_sha256.ts";

/** The sha256 of `bytes`, hex. */
function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** An error of a missing Deno permission, as one naming the flag; others unchanged. */
function permission(e: unknown, flag: string, what: string): unknown {
  if (e instanceof Error && (e.name === "NotCapable" || e.name === "PermissionDenied")) {
    return new Error(`@dd-ffi/trace needs Deno's ${flag} to ${what}: run with ${flag}`, { cause: e });
  }
  return e;
}

/**
 * The path of the release's library for `platform` in the per-user cache,
 * downloaded first if it is not there, after checking its sha256 against
 * the published one. `env` reads an environment variable. Throws (and
 * leaves nothing in the cache) when there is no published digest for the
 * platform, the download fails or is cut short, or the digest differs: that
 * error names the file (or URL) and both digests.
 */
export async function releaseLibrary(
  env: (name: string) => string | undefined,
  platform: string = PLATFORM,
): Promise<string> {
  const name = releaseFileName(BUNDLED_LIBRARY, platform);
  const expected = RELEASE_SHA256[name];
  if (expected === undefined) {
    throw new Error(`This copy of @dd-ffi/trace has no prebuilt library for ${platform} (no published sha256 of ${name})`);
  }
  const path = releaseCacheLibrary(env, platform);
  if (path === undefined) throw new Error("Neither XDG_CACHE_HOME nor HOME is set: no per-user cache to download the library into");
  let cached: Uint8Array | undefined;
  try {
    cached = existsSync(path) ? readFileSync(path) : undefined;
  } catch (e) {
    throw permission(e, `--allow-read`, `read ${path}`);
  }
  if (cached !== undefined) {
    const actual = sha256(cached);
    if (actual !== expected) {
      throw new Error(
        `${path} has sha256 ${actual}, not the published ${expected}: not loading it. ` +
          "Delete it to download it again.",
      );
    }
    return path;
  }
  const base = env("DD_FFI_TRACE_RELEASE_URL") || RELEASE_URL;
  const url = base.endsWith("/") ? base + name : `${base}/${name}`;
  let bytes: Uint8Array;
  try {
    const response = await fetch(url);
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`downloading ${url}: ${response.status} ${response.statusText}`);
    }
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    const named = permission(e, `--allow-net`, `download ${url}`);
    if (named !== e) throw named;
    const message = e instanceof Error ? e.message : String(e);
    throw new Error(message.startsWith("downloading ") ? message : `downloading ${url}: ${message}`, { cause: e });
  }
  const actual = sha256(bytes);
  if (actual !== expected) {
    throw new Error(`${url} (${bytes.length} bytes) has sha256 ${actual}, not the published ${expected}: not loading it`);
  }
  const dir = path.slice(0, path.lastIndexOf("/"));
  const tmp = `${path}.${Date.now()}.tmp`;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(tmp, bytes, { mode: 0o755 });
    renameSync(tmp, path);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch { /* the write was denied too */ }
    throw permission(e, `--allow-write`, `write ${dir}`);
  }
  return path;
}
