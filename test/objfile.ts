/**
 * Reads what the tests check of a shared library, from its bytes: the file
 * format (ELF or Mach-O, 64-bit little-endian only), the architecture, its
 * own name and the libraries it needs, the exported symbols with their kind,
 * and Mach-O's minimum macOS version and ELF's needed glibc symbol versions.
 *
 * ELF: the header, the section headers, `.dynsym` (`SHT_DYNSYM`) with its
 * string table, `.dynamic` (`DT_SONAME`, `DT_NEEDED`) and the version needs
 * (`SHT_GNU_verneed`). Mach-O: the header, `LC_SYMTAB` (external, defined,
 * not private-extern `nlist_64` entries; the leading `_` dropped),
 * `LC_ID_DYLIB`, `LC_LOAD_DYLIB`, `LC_BUILD_VERSION`, and `LC_CODE_SIGNATURE`
 * (whose CodeDirectory page hashes are checked against the file: macOS on
 * arm64 loads only signed code, ad-hoc signed at least).
 */
import { createHash } from "node:crypto";


/** What {@link readSharedLibrary} found. */
export interface SharedLibrary {
  format: "ELF" | "Mach-O";
  /** "x86_64" or "aarch64" (anything else as `machine:<number>`). */
  arch: string;
  /** Whether the file is a shared library (ELF `ET_DYN`, Mach-O `MH_DYLIB`). */
  shared: boolean;
  /** Its own name: ELF `DT_SONAME`, Mach-O's install name (`LC_ID_DYLIB`). */
  name?: string;
  /** The libraries it needs: ELF `DT_NEEDED`, Mach-O `LC_LOAD_DYLIB`. */
  needed: string[];
  /** Exported (global or weak, default or protected visibility, defined) symbols → "function" or "data". */
  exports: Map<string, "function" | "data">;
  /** Mach-O: the minimum macOS version, e.g. "11.0.0". */
  minOs?: string;
  /**
   * Mach-O: "valid" when it has a code signature whose CodeDirectory hashes
   * every page of the file's code, "invalid" when a hash differs, "none".
   */
  signature?: "valid" | "invalid" | "none";
  /** ELF: the versions of the libraries' symbols it needs, e.g. "GLIBC_2.17". */
  neededVersions?: string[];
}

const text = (bytes: Uint8Array, at: number): string => {
  let end = at;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(at, end));
};

/** Parses `bytes` as a 64-bit little-endian ELF or Mach-O file; throws on anything else. */
export function readSharedLibrary(bytes: Uint8Array): SharedLibrary {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, false) === 0x7f454c46) return readElf(bytes, view);
  if (view.getUint32(0, true) === 0xfeedfacf) return readMachO(bytes, view);
  throw new Error(`neither ELF nor 64-bit Mach-O (magic ${view.getUint32(0, false).toString(16)})`);
}

function readElf(bytes: Uint8Array, view: DataView): SharedLibrary {
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new Error("ELF, but not 64-bit little-endian");
  const machine = view.getUint16(18, true);
  const arch = machine === 62 ? "x86_64" : machine === 183 ? "aarch64" : `machine:${machine}`;
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      type: view.getUint32(at + 4, true),
      offset: Number(view.getBigUint64(at + 24, true)),
      size: Number(view.getBigUint64(at + 32, true)),
      link: view.getUint32(at + 40, true),
      info: view.getUint32(at + 44, true),
    };
  };
  const exports = new Map<string, "function" | "data">();
  const neededVersions: string[] = [];
  const needed: string[] = [];
  let name: string | undefined;
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type === 6 /* SHT_DYNAMIC */) {
      const strtab = section(s.link).offset;
      for (let at = s.offset; at + 16 <= s.offset + s.size; at += 16) {
        const tag = view.getBigInt64(at, true), value = Number(view.getBigUint64(at + 8, true));
        if (tag === 0n) break;
        if (tag === 1n /* DT_NEEDED */) needed.push(text(bytes, strtab + value));
        if (tag === 14n /* DT_SONAME */) name = text(bytes, strtab + value);
      }
    } else if (s.type === 11 /* SHT_DYNSYM */) {
      const strtab = section(s.link).offset;
      for (let at = s.offset + 24; at + 24 <= s.offset + s.size; at += 24) { // entry 0 is the null symbol
        const symbol = text(bytes, strtab + view.getUint32(at, true));
        const info = bytes[at + 4], other = bytes[at + 5], shndx = view.getUint16(at + 6, true);
        const bind = info >> 4, type = info & 0xf, visibility = other & 3;
        if (shndx === 0 || (bind !== 1 && bind !== 2) || (visibility !== 0 && visibility !== 3)) continue;
        if (type === 2 /* STT_FUNC */) exports.set(symbol, "function");
        else if (type === 1 /* STT_OBJECT */ || type === 6 /* STT_TLS */) exports.set(symbol, "data");
      }
    } else if (s.type === 0x6ffffffe /* SHT_GNU_verneed */) {
      const strtab = section(s.link).offset;
      let need = s.offset;
      for (let n = 0; n < s.info; n++) { // Elf64_Verneed, each followed by its Elf64_Vernaux list
        const count = view.getUint16(need + 2, true);
        let aux = need + view.getUint32(need + 8, true);
        for (let k = 0; k < count; k++) {
          neededVersions.push(text(bytes, strtab + view.getUint32(aux + 8, true)));
          aux += view.getUint32(aux + 12, true);
        }
        need += view.getUint32(need + 12, true);
      }
    }
  }
  return { format: "ELF", arch, shared: view.getUint16(16, true) === 3, name, needed, exports, neededVersions };
}

function readMachO(bytes: Uint8Array, view: DataView): SharedLibrary {
  const cpu = view.getUint32(4, true);
  const arch = cpu === 0x01000007 ? "x86_64" : cpu === 0x0100000c ? "aarch64" : `machine:${cpu}`;
  const ncmds = view.getUint32(16, true);
  const exports = new Map<string, "function" | "data">();
  let minOs: string | undefined, name: string | undefined;
  let signature: "valid" | "invalid" | "none" = "none";
  const needed: string[] = [];
  let at = 32;
  for (let i = 0; i < ncmds; i++) {
    const cmd = view.getUint32(at, true), size = view.getUint32(at + 4, true);
    if (cmd === 0x2 /* LC_SYMTAB */) {
      const symoff = view.getUint32(at + 8, true), nsyms = view.getUint32(at + 12, true);
      const stroff = view.getUint32(at + 16, true);
      // The section numbers of code, to tell functions from data.
      const code = codeSections(view, ncmds);
      for (let k = 0; k < nsyms; k++) {
        const e = symoff + k * 16;
        const type = bytes[e + 4], sect = bytes[e + 5];
        // not a debug entry, external, defined in a section, not private-extern
        if ((type & 0xe0) !== 0 || (type & 0x01) === 0 || (type & 0x0e) !== 0x0e || (type & 0x10) !== 0) continue;
        const name = text(bytes, stroff + view.getUint32(e, true));
        exports.set(name.startsWith("_") ? name.slice(1) : name, code.has(sect) ? "function" : "data");
      }
    } else if (cmd === 0xd /* LC_ID_DYLIB */ || cmd === 0xc /* LC_LOAD_DYLIB */) {
      const dylib = text(bytes, at + view.getUint32(at + 8, true)); // struct dylib's name offset
      if (cmd === 0xd) name = dylib;
      else needed.push(dylib);
    } else if (cmd === 0x1d /* LC_CODE_SIGNATURE */) {
      signature = checkSignature(bytes, view.getUint32(at + 8, true)) ? "valid" : "invalid";
    } else if (cmd === 0x32 /* LC_BUILD_VERSION */) {
      const v = view.getUint32(at + 12, true);
      minOs = `${v >>> 16}.${(v >>> 8) & 0xff}.${v & 0xff}`;
    }
    at += size;
  }
  return { format: "Mach-O", arch, shared: view.getUint32(12, true) === 6, name, needed, exports, minOs, signature };
}

/**
 * Whether the code signature (a SuperBlob, big-endian, at `offset`) has a
 * SHA-256 CodeDirectory whose page hashes match the file up to its
 * `codeLimit`.
 */
function checkSignature(bytes: Uint8Array, offset: number): boolean {
  const be = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (be.getUint32(offset) !== 0xfade0cc0) return false; // CSMAGIC_EMBEDDED_SIGNATURE
  const count = be.getUint32(offset + 8);
  for (let i = 0; i < count; i++) {
    const type = be.getUint32(offset + 12 + i * 8), blob = offset + be.getUint32(offset + 16 + i * 8);
    if (type !== 0 || be.getUint32(blob) !== 0xfade0c02) continue; // CSSLOT_CODEDIRECTORY, CSMAGIC_CODEDIRECTORY
    const hashOffset = be.getUint32(blob + 16), nCodeSlots = be.getUint32(blob + 28), codeLimit = be.getUint32(blob + 32);
    const hashSize = bytes[blob + 36], hashType = bytes[blob + 37], pageSize = 1 << bytes[blob + 39];
    if (hashType !== 2 /* SHA-256 */ || hashSize !== 32 || nCodeSlots !== Math.ceil(codeLimit / pageSize)) return false;
    for (let page = 0; page < nCodeSlots; page++) {
      const start = page * pageSize, end = Math.min(start + pageSize, codeLimit);
      const hash = createHash("sha256").update(bytes.subarray(start, end)).digest();
      const at = blob + hashOffset + page * hashSize;
      if (!hash.equals(bytes.subarray(at, at + hashSize))) return false;
    }
    return true;
  }
  return false;
}

/** The 1-based numbers of the sections with instructions (`S_ATTR_PURE_INSTRUCTIONS`) of a Mach-O file. */
function codeSections(view: DataView, ncmds: number): Set<number> {
  const code = new Set<number>();
  let number = 0, at = 32;
  for (let i = 0; i < ncmds; i++) {
    const cmd = view.getUint32(at, true), size = view.getUint32(at + 4, true);
    if (cmd === 0x19 /* LC_SEGMENT_64 */) {
      const nsects = view.getUint32(at + 64, true);
      for (let k = 0; k < nsects; k++) {
        const section = at + 72 + k * 80; // section_64
        number++;
        if (view.getUint32(section + 64, true) & 0x80000000) code.add(number);
      }
    }
    at += size;
  }
  return code;
}
