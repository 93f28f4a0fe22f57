// Properties of the codec over random inputs (fast-check): COBS and frame round
// trips, CRC-32 catching every single-byte corruption, canonical CBOR round
// trips agreeing with cbor-x, and decoders that fail only with ProtocolError.
import { decode as cborxDecode } from 'cbor-x';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FrameSplitter,
  ProtocolError,
  cborDecode,
  cborEncode,
  cobsDecode,
  cobsEncode,
  crc32,
  decodeFrame,
  decodeMessage,
  encodeFrame,
  encodeRaw,
  type CborEncodable,
  type CborValue,
} from '../../protocol/src/index.js';

const bytes = (max = 1200) => fc.uint8Array({ maxLength: max });
const frameArb = fc.record({
  ver: fc.constant(1),
  type: fc.integer({ min: 0, max: 255 }),
  seq: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.integer({ min: 0, max: 3 }),
  body: bytes(700),
});

const cborArb: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    fc.bigInt({ min: -(1n << 64n), max: (1n << 64n) - 1n }).map((b) => (b >= BigInt(-Number.MAX_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b)),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.constantFrom<CborValue>(true, false, null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 70000 }), tie('v')), { maxLength: 4, selector: (e) => e[0] }).map((es) => new Map(es)),
  ),
})).v;

/** Containers nested in v (the limit is 8). */
function depth(v: CborValue): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depth));
  if (v instanceof Map) return 1 + Math.max(0, ...[...v.values()].map(depth));
  return 0;
}

function normalizeCborx(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (Array.isArray(v)) return v.map(normalizeCborx);
  if (v instanceof Map) return [...v].map(([k, x]) => [Number(k), normalizeCborx(x)]);
  if (v && typeof v === 'object') return Object.entries(v).map(([k, x]) => [Number(k), normalizeCborx(x)]);
  if (typeof v === 'bigint' && v >= BigInt(-Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  return v;
}

function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
  }
}

describe('codec properties', () => {
  it('COBS round-trips and never emits a zero byte', () => {
    fc.assert(
      fc.property(bytes(), (b) => {
        const enc = cobsEncode(b);
        expect(enc.includes(0)).toBe(false);
        expect(enc.length).toBeLessThanOrEqual(b.length + Math.ceil(b.length / 254) + 1);
        expect(Buffer.from(cobsDecode(enc)).equals(Buffer.from(b))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('frames round-trip through the wire bytes and a splitter fed in random pieces', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 5 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1 }), (frames, cuts) => {
        const wire = Buffer.concat(frames.map((f) => encodeFrame(f)));
        const got: Uint8Array[] = [];
        const s = new FrameSplitter((e) => got.push(e));
        let at = 0;
        for (let i = 0; at < wire.length; i++) {
          const n = cuts[i % cuts.length]!;
          s.push(wire.subarray(at, at + n));
          at += n;
        }
        expect(got.length).toBe(frames.length);
        got.forEach((g, i) => {
          const f = decodeFrame(g);
          expect({ ...f, body: Buffer.from(f.body).toString('hex') }).toEqual({ ...frames[i]!, body: Buffer.from(frames[i]!.body).toString('hex') });
        });
      }),
      { numRuns: 300 },
    );
  });

  it('CRC-32 detects every single-byte corruption of a raw frame', () => {
    fc.assert(
      fc.property(frameArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (f, where, xor) => {
        const raw = encodeRaw(f);
        const i = where % raw.length;
        const bad = raw.slice();
        bad[i]! ^= xor;
        const n = bad.length - 4;
        const stored = new DataView(bad.buffer).getUint32(n, true);
        expect(crc32(bad.subarray(0, n))).not.toBe(stored);
        expect(() => decodeFrame(cobsEncode(bad, true))).toThrow(ProtocolError);
      }),
      { numRuns: 1000 },
    );
  });

  it('canonical CBOR round-trips, is stable, and cbor-x reads the same value', () => {
    fc.assert(
      fc.property(cborArb, (v) => {
        fc.pre(depth(v) <= 8);
        const enc = cborEncode(v as CborEncodable);
        const back = cborDecode(enc);
        expect(Buffer.from(cborEncode(back as CborEncodable)).equals(Buffer.from(enc))).toBe(true);
        expect(normalizeCborx(cborxDecode(Buffer.from(enc)))).toEqual(normalizeCborx(back));
      }),
      { numRuns: 500 },
    );
  });

  it('map keys come out ascending whatever order they went in', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 20 }), (keys) => {
        const m = new Map(keys.map((k) => [k, k] as [number, CborEncodable]));
        const back = cborDecode(cborEncode(m)) as Map<number, CborValue>;
        expect([...back.keys()]).toEqual([...keys].sort((a, b) => a - b));
      }),
    );
  });

  it('decoders throw nothing but ProtocolError on random bytes', () => {
    fc.assert(
      fc.property(bytes(400), (b) => {
        onlyProtocolErrors(() => cborDecode(b));
        onlyProtocolErrors(() => cobsDecode(b));
        onlyProtocolErrors(() => decodeFrame(b));
        onlyProtocolErrors(() => decodeMessage(b));
      }),
      { numRuns: 3000 },
    );
  });

  it('decoders throw nothing but ProtocolError on valid frames with random bodies', () => {
    fc.assert(
      fc.property(fc.constantFrom(0x01, 0x02, 0x11, 0x24, 0x30, 0x31, 0x40, 0x50, 0x7e, 0x7f), fc.integer({ min: 0, max: 3 }), bytes(200), (type, flags, body) => {
        onlyProtocolErrors(() => decodeMessage(encodeFrame({ ver: 1, type, seq: 1, flags, body })));
      }),
      { numRuns: 3000 },
    );
  });
});
