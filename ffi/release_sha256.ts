/**
 * The release's prebuilt libraries: where they are and their digests.
 * Generated: `build.ts --pack` writes this file, with the digests of the
 * libraries it built, into the copy it stages for `deno publish`; the
 * checkout's copy (written by `releaseModule` in `build.ts` too) has none.
 *
 * @module
 */

/** The release's folder: the GitHub release of package.json's repository, at this version. `DD_FFI_TRACE_RELEASE_URL` replaces it. */
export const RELEASE_URL: string = "https://github.com/dd-ffi/trace/releases/download/v0.1.0/";

/** The sha256 (hex) of each release file, by name (`releaseFileName` in `paths.ts`); empty outside a published copy. */
export const RELEASE_SHA256: Readonly<Record<string, string>> = {};
