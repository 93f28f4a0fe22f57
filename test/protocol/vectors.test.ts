// The shared vectors of protocol/vectors/ through the TypeScript codec: each
// valid frame decodes to its header, body and diagnostic form and re-encodes
// byte for byte; each invalid one is rejected with its named defect; each
// request fed to a live device (device.vec) is a valid request whose named
// answer decodes to what the block says; and the files are exactly what the
// generator writes.
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
  decodeTrainRecords,
  encodeFrame,
  encodeRequest,
  errorCodeName,
  MsgType,
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

  const device = readVec('device.vec');
  it('cover the exactly-once cases on a live device', () => {
    const scenarios = new Set(device.map((b) => b.scenario));
    for (const s of ['labels checked against the live model', 'samples sent before the model', 'trainable and bias_only', 'duplicates carry their own records', 'refused TRAINs change nothing'])
      expect(scenarios.has(s), s).toBe(true);
    const said = device.map((b) => b.device);
    for (const d of ['error BAD_SAMPLE', 'error BAD_ARG']) expect(said).toContain(d);
    expect(said.some((d) => /^train duplicate=true records=0 /.test(d!))).toBe(true);
    expect(device.some((b) => b.records_of !== undefined)).toBe(true);
  });

  it.each(device.map((b) => [b.name!, b] as const))('device: %s', (_name, b) => {
    const m = decodeMessage(unhex(b.wire!));
    expect(m.direction).toBe('request');
    expect(m.frame.seq).toBe(Number(b.seq));
    expect(hex(m.frame.body)).toBe(b.body);
    expect(cborDiag(cborDecode(m.frame.body))).toBe(b.diag);
    expect(hex(encodeFrame(m.frame))).toBe(b.wire);
    const [what, ...rest] = b.device!.split(' ');
    if (b.answer) {
      const a = decodeMessage(unhex(b.answer));
      expect(a.direction).toBe('response');
      expect(a.frame.seq).toBe(m.frame.seq);
      if (what === 'error') {
        expect(a.frame.type).toBe(MsgType.ERROR);
        expect(a.values.name).toBe(rest[0]);
        expect(errorCodeName(Number(a.values.code))).toBe(rest[0]);
      } else expect(a.frame.type).toBe(m.frame.type);
    }
    if (what === 'train') {
      expect(m.frame.type).toBe(MsgType.TRAIN);
      for (const t of rest) expect(t, b.device).toMatch(/^(duplicate=(true|false)|records=\d+|steps_applied=\d+|weights=(same|changed))$/);
    } else expect(['ok', 'error']).toContain(what);
    if (b.records_of !== undefined) {
      // the block whose records a duplicate carries: an earlier, applied TRAIN of the same scenario
      const i = device.indexOf(b);
      const src = device.slice(0, i).find((o) => o.name === b.records_of && o.scenario === b.scenario);
      expect(src, b.records_of).toBeDefined();
      expect(src!.device).toMatch(/^train duplicate=false records=[1-9]/);
      expect(decodeMessage(unhex(src!.wire!)).values.stepId).toBe(m.values.stepId);
    }
  });

  it('a TRAIN request keeps trainable 0 (no layer) apart from an absent trainable (every layer)', () => {
    const base = { stepId: 1, index: 0, count: 1, lrPpm: 10_000 };
    expect(decodeMessage(encodeFrame({ ver: 1, type: MsgType.TRAIN, seq: 1, flags: 0, body: encodeRequest(MsgType.TRAIN, { ...base, trainable: 0 }) })).values.trainable).toBe(0);
    expect('trainable' in decodeMessage(encodeFrame({ ver: 1, type: MsgType.TRAIN, seq: 1, flags: 0, body: encodeRequest(MsgType.TRAIN, { ...base, trainable: undefined }) })).values).toBe(false);
  });

  it('a TRAIN response with a fault decodes its records and the engine status', () => {
    const b = messages.find((v) => v.name === 'train response (an engine fault after one step)')!;
    const m = decodeMessage(unhex(b.wire!));
    expect(m.values.fault).toBe(8);
    expect(decodeTrainRecords(m.values.records)).toHaveLength(1);
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
