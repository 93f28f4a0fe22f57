// Consistent Overhead Byte Stuffing (blocks of at most 254 data bytes), so
// that 0x00 only ever appears as the frame delimiter (SPEC §1).
import { ProtocolError } from './errors.js';

/** Worst-case encoded size of `n` bytes (without the delimiter). */
export function cobsMaxEncoded(n: number): number {
  return n + Math.ceil(n / 254) + 1;
}

/** COBS-encode `src`; the result holds no 0x00 byte. `delimit` appends the 0x00. */
export function cobsEncode(src: Uint8Array, delimit = false): Uint8Array {
  const out = new Uint8Array(cobsMaxEncoded(src.length) + (delimit ? 1 : 0));
  let codeAt = 0;
  let o = 1;
  let code = 1;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b === 0) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
      continue;
    }
    out[o++] = b;
    if (++code === 0xff) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
    }
  }
  out[codeAt] = code;
  if (delimit) out[o++] = 0;
  return out.subarray(0, o);
}

/** Decode one COBS block (no delimiter inside); throws ProtocolError(BAD_COBS). */
export function cobsDecode(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  let o = 0;
  let i = 0;
  while (i < src.length) {
    const code = src[i]!;
    if (code === 0) throw new ProtocolError('BAD_COBS', `zero byte at ${i}`);
    const end = i + code;
    if (end > src.length) throw new ProtocolError('BAD_COBS', `block of ${code - 1} bytes runs past the end at ${i}`);
    for (let j = i + 1; j < end; j++) {
      const b = src[j]!;
      if (b === 0) throw new ProtocolError('BAD_COBS', `zero byte at ${j}`);
      out[o++] = b;
    }
    i = end;
    // a full block (0xFF) carries no implied zero; the last block neither
    if (code !== 0xff && i < src.length) out[o++] = 0;
  }
  return out.subarray(0, o);
}
