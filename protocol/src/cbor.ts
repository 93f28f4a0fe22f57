// The canonical CBOR subset of SPEC §2: a small encoder and a strict decoder.
//
// Why not cbor-x here: its encoder tags Maps (259) and may pick float or
// record encodings unless carefully configured, and its decoder accepts
// floats, tags and indefinite lengths that SPEC §2 says to reject, so it would
// need a second validating pass anyway. The subset is small enough that one
// pass that validates while it decodes is simpler and lets both directions be
// byte-exact with the C codec. The tests use cbor-x as an independent oracle.
import { ProtocolError } from './errors.js';

export type CborValue = number | bigint | string | Uint8Array | boolean | null | CborValue[] | CborMap;
/** A body map: small unsigned integer keys (SPEC §2). */
export type CborMap = Map<number, CborValue>;
/** What the encoder takes as a map: a Map or a plain object with integer keys; undefined values are left out. */
export type CborMapInput = Map<number, CborEncodable> | { [key: number]: CborEncodable | undefined };
export type CborEncodable = number | bigint | string | Uint8Array | boolean | null | CborEncodable[] | CborMapInput;

/** Containers nested deeper than this are rejected (SPEC §2, TR_CBOR_MAX_DEPTH). */
export const CBOR_MAX_DEPTH = 8;
const MAX_U64 = (1n << 64n) - 1n;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

class Writer {
  buf = new Uint8Array(256);
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  head(major: number, arg: number | bigint): void {
    const m = major << 5;
    if (typeof arg === 'bigint' && arg <= BigInt(Number.MAX_SAFE_INTEGER)) arg = Number(arg);
    this.room(9);
    const b = this.buf;
    if (typeof arg === 'number') {
      if (arg < 24) b[this.len++] = m | arg;
      else if (arg < 0x100) {
        b[this.len++] = m | 24;
        b[this.len++] = arg;
      } else if (arg < 0x10000) {
        b[this.len++] = m | 25;
        b[this.len++] = arg >>> 8;
        b[this.len++] = arg & 0xff;
      } else if (arg < 0x100000000) {
        b[this.len++] = m | 26;
        new DataView(b.buffer).setUint32(this.len, arg);
        this.len += 4;
      } else {
        b[this.len++] = m | 27;
        new DataView(b.buffer).setBigUint64(this.len, BigInt(arg));
        this.len += 8;
      }
      return;
    }
    b[this.len++] = m | 27;
    new DataView(b.buffer).setBigUint64(this.len, arg);
    this.len += 8;
  }
  bytes(data: Uint8Array): void {
    this.room(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }
}

function encodeInt(w: Writer, v: number | bigint): void {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new ProtocolError('BAD_VALUE', `${v} is not an integer (no floats on the wire)`);
    if (!Number.isSafeInteger(v)) throw new ProtocolError('BAD_VALUE', `${v} is beyond 2^53: pass a bigint`);
    if (v >= 0) w.head(0, v);
    else w.head(1, -1 - v);
    return;
  }
  if (v >= 0n) {
    if (v > MAX_U64) throw new ProtocolError('BAD_VALUE', `${v} does not fit 64 bits`);
    w.head(0, v);
  } else {
    if (-1n - v > MAX_U64) throw new ProtocolError('BAD_VALUE', `${v} does not fit 64 bits`);
    w.head(1, -1n - v);
  }
}

function encodeItem(w: Writer, v: CborEncodable, depth: number): void {
  if (v === null) return void w.bytes(Uint8Array.of(0xf6));
  if (v === true) return void w.bytes(Uint8Array.of(0xf5));
  if (v === false) return void w.bytes(Uint8Array.of(0xf4));
  if (typeof v === 'number' || typeof v === 'bigint') return encodeInt(w, v);
  if (typeof v === 'string') {
    const b = utf8.encode(v);
    w.head(3, b.length);
    return w.bytes(b);
  }
  if (v instanceof Uint8Array) {
    w.head(2, v.length);
    return w.bytes(v);
  }
  if (depth >= CBOR_MAX_DEPTH) throw new ProtocolError('TOO_DEEP', `containers nested deeper than ${CBOR_MAX_DEPTH}`);
  if (Array.isArray(v)) {
    w.head(4, v.length);
    for (const x of v) encodeItem(w, x, depth + 1);
    return;
  }
  const entries: [number, CborEncodable][] = [];
  if (v instanceof Map) {
    for (const [k, x] of v) entries.push([k, x]);
  } else if (typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) if (x !== undefined) entries.push([Number(k), x]);
  } else {
    throw new ProtocolError('BAD_VALUE', `cannot encode ${typeof v}`);
  }
  for (const [k] of entries)
    if (!Number.isSafeInteger(k) || k < 0) throw new ProtocolError('BAD_VALUE', `map key ${k} is not an unsigned integer`);
  entries.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < entries.length; i++)
    if (entries[i]![0] === entries[i - 1]![0]) throw new ProtocolError('BAD_VALUE', `duplicate map key ${entries[i]![0]}`);
  w.head(5, entries.length);
  for (const [k, x] of entries) {
    w.head(0, k);
    encodeItem(w, x, depth + 1);
  }
}

/** Canonical CBOR (SPEC §2): shortest integers, ascending keys, definite lengths, no floats or tags. */
export function cborEncode(v: CborEncodable): Uint8Array {
  const w = new Writer();
  encodeItem(w, v, 0);
  return w.buf.slice(0, w.len);
}

/** Body bytes of a map: an empty map is an empty body (SPEC §1). */
export function encodeBody(m: CborMapInput): Uint8Array {
  const b = cborEncode(m);
  return b.length === 1 && b[0] === 0xa0 ? new Uint8Array(0) : b;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  fail(code: string, what: string): never {
    throw new ProtocolError(code, `${what} at byte ${this.pos}`);
  }
  need(n: number | bigint): number {
    if (BigInt(this.pos) + BigInt(n) > BigInt(this.buf.length)) this.fail('TRUNCATED', `item of ${n} bytes runs past the end`);
    return Number(n);
  }
  /** Head of an item: major type and argument (indefinite lengths, reserved values rejected). */
  head(): [number, number | bigint, number] {
    this.need(1);
    const ib = this.buf[this.pos]!;
    const major = ib >> 5;
    const ai = ib & 31;
    if (ai < 24) {
      this.pos += 1;
      return [major, ai, ai];
    }
    if (ai === 31) this.fail('INDEFINITE', 'indefinite length');
    if (ai > 27) this.fail('BAD_CBOR', `reserved additional info ${ai}`);
    const n = 1 << (ai - 24);
    this.need(1 + n);
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos + 1, n);
    let arg: number | bigint;
    if (n === 1) arg = dv.getUint8(0);
    else if (n === 2) arg = dv.getUint16(0);
    else if (n === 4) arg = dv.getUint32(0);
    else {
      const big = dv.getBigUint64(0);
      arg = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    this.pos += 1 + n;
    return [major, arg, ai];
  }
  item(depth: number): CborValue {
    const start = this.pos;
    const [major, arg, ai] = this.head();
    switch (major) {
      case 0:
        return arg;
      case 1:
        return typeof arg === 'number' && arg < Number.MAX_SAFE_INTEGER ? -1 - arg : -1n - BigInt(arg);
      case 2:
      case 3: {
        const n = this.need(arg);
        const data = this.buf.slice(this.pos, this.pos + n);
        this.pos += n;
        if (major === 2) return data;
        try {
          return utf8Strict.decode(data);
        } catch {
          this.pos = start;
          return this.fail('BAD_CBOR', 'text string is not UTF-8');
        }
      }
      case 4:
      case 5: {
        if (depth >= CBOR_MAX_DEPTH) {
          this.pos = start;
          this.fail('TOO_DEEP', `containers nested deeper than ${CBOR_MAX_DEPTH}`);
        }
        // every item takes at least one byte: a count past the end is truncated before we allocate
        const per = major === 5 ? 2 : 1;
        if (BigInt(arg) * BigInt(per) > BigInt(this.buf.length - this.pos)) this.fail('TRUNCATED', `${arg} items cannot fit`);
        const n = Number(arg);
        if (major === 4) {
          const out: CborValue[] = [];
          for (let i = 0; i < n; i++) out.push(this.item(depth + 1));
          return out;
        }
        const out: CborMap = new Map();
        for (let i = 0; i < n; i++) {
          const at = this.pos;
          const k = this.item(depth + 1);
          if (typeof k !== 'number' || k < 0) {
            this.pos = at;
            this.fail('BAD_KEY', 'map key is not a small unsigned integer');
          }
          if (out.has(k)) {
            this.pos = at;
            this.fail('BAD_KEY', `duplicate map key ${k}`);
          }
          out.set(k, this.item(depth + 1));
        }
        return out;
      }
      case 6:
        this.pos = start;
        return this.fail('TAG', 'tags are not allowed');
      default:
        // major 7: only false, true, null; floats and other simple values are rejected
        if (ai === 20) return false;
        if (ai === 21) return true;
        if (ai === 22) return null;
        this.pos = start;
        return this.fail(ai >= 25 && ai <= 27 ? 'FLOAT' : 'BAD_CBOR', ai >= 25 && ai <= 27 ? 'floats are not allowed' : `simple value ${arg}`);
    }
  }
}

/**
 * Decode exactly one item of the subset. Throws ProtocolError (code TRUNCATED,
 * INDEFINITE, FLOAT, TAG, TOO_DEEP, BAD_KEY, TRAILING or BAD_CBOR) and nothing else.
 */
export function cborDecode(bytes: Uint8Array): CborValue {
  const r = new Reader(bytes);
  if (bytes.length === 0) r.fail('TRUNCATED', 'empty input');
  const v = r.item(0);
  if (r.pos !== bytes.length) r.fail('TRAILING', `${bytes.length - r.pos} bytes after the item`);
  return v;
}

/** Decode a frame body: a map (an empty body is an empty map). */
export function decodeBody(body: Uint8Array): CborMap {
  if (body.length === 0) return new Map();
  const v = cborDecode(body);
  if (!(v instanceof Map)) throw new ProtocolError('BAD_BODY', 'body is not a map');
  return v;
}

/** CBOR diagnostic notation (RFC 8949 §8) as the vectors write it: `{1: 2, 2: h'00ff', 3: "x", 4: [true, null]}`. */
export function cborDiag(v: CborValue): string {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'number' || typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return `"${v.replace(/["\\]/g, (c) => '\\' + c)}"`;
  if (v instanceof Uint8Array) return `h'${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}'`;
  if (Array.isArray(v)) return `[${v.map(cborDiag).join(', ')}]`;
  return `{${[...v].map(([k, x]) => `${k}: ${cborDiag(x)}`).join(', ')}}`;
}
