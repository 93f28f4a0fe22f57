// Symbol addresses of a 32-bit little-endian ELF (a Cortex-M image), read
// from its .symtab: where a test puts a breakpoint. No binutils needed.
import fs from 'node:fs';

export interface ElfSymbol {
  name: string;
  /** st_value; Thumb functions have bit 0 set. */
  value: number;
  size: number;
  /** STT_* (0 none, 1 object, 2 function). */
  type: number;
}

export function readElfSymbols(file: string): Map<string, ElfSymbol> {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 1 || b[5] !== 1) throw new Error(`${file} is not a 32-bit little-endian ELF`);
  const shoff = b.readUInt32LE(0x20);
  const shentsize = b.readUInt16LE(0x2e);
  const shnum = b.readUInt16LE(0x30);
  const section = (i: number) => {
    const o = shoff + i * shentsize;
    return { type: b.readUInt32LE(o + 4), offset: b.readUInt32LE(o + 16), size: b.readUInt32LE(o + 20), link: b.readUInt32LE(o + 24), entsize: b.readUInt32LE(o + 36) };
  };
  const out = new Map<string, ElfSymbol>();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type !== 2) continue; // SHT_SYMTAB
    const strtab = section(s.link);
    for (let o = s.offset; o + 16 <= s.offset + s.size; o += s.entsize || 16) {
      const nameOff = b.readUInt32LE(o);
      const end = b.indexOf(0, strtab.offset + nameOff);
      const name = b.toString('latin1', strtab.offset + nameOff, end);
      if (name && !out.has(name)) out.set(name, { name, value: b.readUInt32LE(o + 4), size: b.readUInt32LE(o + 8), type: b[o + 12] & 0xf });
    }
  }
  return out;
}

/** The address of a function (Thumb bit cleared); throws naming the image when it is absent. */
export function functionAddress(symbols: Map<string, ElfSymbol>, name: string, file = 'the image'): number {
  const s = symbols.get(name);
  if (!s || s.type !== 2) throw new Error(`${file} has no function ${name}`);
  return s.value & ~1;
}
