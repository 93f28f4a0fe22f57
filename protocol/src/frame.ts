// Frames of SPEC §1: raw = ver, type, seq (u16 LE), flags, body, CRC-32 (LE);
// on the wire COBS(raw) 0x00. Encoding and decoding are pure functions; the
// FrameSplitter cuts a byte stream at the delimiters in O(n) per chunk.
import { CRC_BYTES, HEADER_BYTES, HOST_MAX_RAW_FRAME, MIN_RAW_FRAME, PROTO_VERSION } from './constants.js';
import { cobsDecode, cobsEncode } from './cobs.js';
import { crc32 } from './crc32.js';
import { ProtocolError } from './errors.js';

export interface Frame {
  ver: number;
  type: number;
  seq: number;
  flags: number;
  /** Canonical CBOR body; empty means an empty map. */
  body: Uint8Array;
}

/** Raw frame bytes (header, body, CRC) before COBS. */
export function encodeRaw(f: Frame): Uint8Array {
  const raw = new Uint8Array(HEADER_BYTES + f.body.length + CRC_BYTES);
  raw[0] = f.ver;
  raw[1] = f.type;
  raw[2] = f.seq & 0xff;
  raw[3] = (f.seq >>> 8) & 0xff;
  raw[4] = f.flags;
  raw.set(f.body, HEADER_BYTES);
  const crc = crc32(raw.subarray(0, HEADER_BYTES + f.body.length));
  new DataView(raw.buffer, raw.byteOffset, raw.byteLength).setUint32(HEADER_BYTES + f.body.length, crc, true);
  return raw;
}

/** Wire bytes: COBS(raw) followed by the 0x00 delimiter. */
export function encodeFrame(f: Frame): Uint8Array {
  return cobsEncode(encodeRaw({ ...f, ver: f.ver ?? PROTO_VERSION }), true);
}

/**
 * Parse raw bytes (COBS already removed). Throws ProtocolError: TOO_SHORT,
 * TOO_LONG (over `maxRaw`), BAD_CRC. Version and type are left to the caller.
 */
export function decodeRaw(raw: Uint8Array, maxRaw = HOST_MAX_RAW_FRAME): Frame {
  if (raw.length < MIN_RAW_FRAME) throw new ProtocolError('TOO_SHORT', `raw frame of ${raw.length} bytes (at least ${MIN_RAW_FRAME})`);
  if (raw.length > maxRaw) throw new ProtocolError('TOO_LONG', `raw frame of ${raw.length} bytes (at most ${maxRaw})`);
  const n = raw.length - CRC_BYTES;
  const want = new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(n, true);
  const got = crc32(raw.subarray(0, n));
  if (want !== got) throw new ProtocolError('BAD_CRC', `CRC ${got.toString(16).padStart(8, '0')} != ${want.toString(16).padStart(8, '0')}`);
  return { ver: raw[0]!, type: raw[1]!, seq: raw[2]! | (raw[3]! << 8), flags: raw[4]!, body: raw.slice(HEADER_BYTES, n) };
}

/**
 * Decode one frame from its wire bytes (COBS, with or without the trailing
 * 0x00). Throws ProtocolError: BAD_COBS, TOO_SHORT, TOO_LONG, BAD_CRC.
 */
export function decodeFrame(wire: Uint8Array, maxRaw = HOST_MAX_RAW_FRAME): Frame {
  let end = wire.length;
  if (end > 0 && wire[end - 1] === 0) end--;
  // COBS adds at least one byte per 254: anything longer cannot fit maxRaw
  if (end > maxRaw + Math.ceil(maxRaw / 254) + 1) throw new ProtocolError('TOO_LONG', `encoded frame of ${end} bytes`);
  return decodeRaw(cobsDecode(wire.subarray(0, end)), maxRaw);
}

/**
 * Cuts a byte stream into COBS frames at each 0x00. Bytes are copied once into
 * a growing buffer (amortized O(n) per chunk); a frame longer than `maxEncoded`
 * is discarded up to its delimiter and reported as an over-long frame.
 */
export class FrameSplitter {
  private buf: Uint8Array;
  private len = 0;
  private overflow = false;
  constructor(
    private readonly onFrame: (encoded: Uint8Array) => void,
    private readonly onOverlong: (bytes: number) => void = () => undefined,
    private readonly maxEncoded = HOST_MAX_RAW_FRAME + Math.ceil(HOST_MAX_RAW_FRAME / 254) + 1,
  ) {
    this.buf = new Uint8Array(1024);
  }

  push(chunk: Uint8Array): void {
    let start = 0;
    for (;;) {
      const z = chunk.indexOf(0, start);
      const end = z < 0 ? chunk.length : z;
      this.append(chunk.subarray(start, end));
      if (z < 0) return;
      if (this.overflow) this.onOverlong(this.len);
      else if (this.len > 0) this.onFrame(this.buf.slice(0, this.len));
      this.len = 0;
      this.overflow = false;
      start = z + 1;
    }
  }

  /** Bytes of an unfinished frame held so far. */
  get pending(): number {
    return this.len;
  }

  reset(): void {
    this.len = 0;
    this.overflow = false;
  }

  private append(part: Uint8Array): void {
    if (part.length === 0) return;
    if (this.overflow || this.len + part.length > this.maxEncoded) {
      // keep counting, stop storing: the frame is dropped at its delimiter
      this.overflow = true;
      this.len += part.length;
      return;
    }
    if (this.len + part.length > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.len + part.length) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(part, this.len);
    this.len += part.length;
  }
}
