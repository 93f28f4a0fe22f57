// The shared vectors of protocol/vectors/ through the TypeScript codec: each
// valid frame decodes to its header, body and diagnostic form and re-encodes
// byte for byte; each invalid one is rejected with its named defect; and the
// files are exactly what the generator writes.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ProtocolError,
  cborDecode,
  cborDiag,
  cborEncode,
  cobsDecode,
  cobsEncode,
  crc32,
  decodeMessage,
  encodeFrame,
  type CborEncodable,
} from '../../protocol/src/index.js';
import { VECTORS_DIR, renderVectors } from '../../protocol/vectors/generate.js';

type Block = Record<string, string>;

function readVec(name: string): Block[] {
  const text = fs.readFileSync(path.join(VECTORS_DIR, name), 'utf8');
  return text
    .split('\n\n')
    .map((chunk) => {
      const b: Block = {};
      for (const line of chunk.split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        const i = line.indexOf(':');
        b[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, '');
      }
      return b;
    })
    .filter((b) => Object.keys(b).length > 0);
}

const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function rejection(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return (err as ProtocolError).code;
  }
  return 'accepted';
}

describe('shared vectors', () => {
  it('are what the generator writes', () => {
    const want = renderVectors();
    for (const [name, text] of Object.entries(want)) expect(fs.readFileSync(path.join(VECTORS_DIR, name), 'utf8'), name).toBe(text);
    const onDisk = fs.readdirSync(VECTORS_DIR).filter((f) => f.endsWith('.vec'));
    expect(onDisk.sort()).toEqual(Object.keys(want).sort());
  });

  const messages = readVec('messages.vec');
  it('cover every message type of the spec, requests and responses', () => {
    const seen = new Set(messages.map((b) => `${b.type}/${b.flags}`));
    for (const t of ['0x01', '0x02', '0x03', '0x10', '0x11', '0x12', '0x20', '0x21', '0x22', '0x23', '0x24', '0x30', '0x31', '0x32', '0x33', '0x40']) {
      expect(seen.has(`${t}/0x00`), `request ${t}`).toBe(true);
      expect(seen.has(`${t}/0x01`), `response ${t}`).toBe(true);
    }
    for (const t of ['0x50/0x02', '0x51/0x02', '0x7e/0x02', '0x7f/0x01']) expect(seen.has(t), t).toBe(true);
  });

  it.each(messages.map((b) => [b.name!, b] as const))('valid frame: %s', (_name, b) => {
    const wire = unhex(b.wire!);
    const m = decodeMessage(wire);
    expect(m.frame.ver).toBe(Number(b.ver));
    expect(m.frame.type).toBe(Number(b.type));
    expect(m.frame.seq).toBe(Number(b.seq));
    expect(m.frame.flags).toBe(Number(b.flags));
    expect(hex(m.frame.body)).toBe(b.body);
    expect(m.frame.body.length === 0 ? '{}' : cborDiag(cborDecode(m.frame.body))).toBe(b.diag);
    expect(hex(encodeFrame(m.frame))).toBe(b.wire);
    expect(wire.indexOf(0)).toBe(wire.length - 1);
  });

  const invalid = readVec('invalid.vec');
  it('cover the invalid frames of the issue', () => {
    const errors = new Set(invalid.map((b) => b.error));
    for (const e of ['BAD_CRC', 'BAD_COBS', 'TOO_SHORT', 'TOO_LONG', 'BAD_VERSION', 'UNKNOWN_TYPE', 'BAD_CBOR', 'BAD_BODY']) expect(errors.has(e), e).toBe(true);
  });

  it.each(invalid.map((b) => [b.name!, b] as const))('invalid frame: %s', (_name, b) => {
    expect(b.valid).toBe('false');
    expect(rejection(() => decodeMessage(unhex(b.wire!)))).toBe(b.error);
  });

  it.each(readVec('cbor.vec').map((b) => [b.name!, b] as const))('cbor: %s', (_name, b) => {
    const bytes = unhex(b.hex!);
    if (b.valid === 'true') {
      const v = cborDecode(bytes);
      expect(cborDiag(v)).toBe(b.diag);
      expect(hex(cborEncode(v as CborEncodable))).toBe(b.hex);
    } else {
      expect(rejection(() => cborDecode(bytes))).toBe(b.error);
    }
  });

  it.each(readVec('crc32.vec').map((b) => [b.name!, b] as const))('crc32: %s', (_name, b) => {
    expect(`0x${crc32(unhex(b.hex!)).toString(16).padStart(8, '0')}`).toBe(b.crc32);
  });

  it('crc32 check value of "123456789" is 0xcbf43926', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it.each(readVec('cobs.vec').map((b) => [b.name!, b] as const))('cobs: %s', (_name, b) => {
    expect(hex(cobsEncode(unhex(b.hex!)))).toBe(b.cobs);
    expect(hex(cobsDecode(unhex(b.cobs!)))).toBe(b.hex);
  });
});
