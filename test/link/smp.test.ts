// The SMP console framing bench:wire compares against: line limits, markers,
// CRC16 and a round trip, so the reference numbers come from a correct encoding.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SMP_LINE_MAX, SmpDeframer, crc16Ccitt, decodeSmpPacket, encodeSmpPacket, frameSmp } from '../../bench/lib/smp.js';

describe('SMP console framing', () => {
  it('uses CRC-16/XMODEM (poly 0x1021, init 0): check value of "123456789" is 0x31C3', () => {
    expect(crc16Ccitt(Buffer.from('123456789'))).toBe(0x31c3);
  });

  it('splits a packet into lines of at most 127 bytes with 0x06 0x09 first and 0x04 0x14 after, and reassembles it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.integer({ min: 0, max: 255 }), (data, seq) => {
        const pkt = encodeSmpPacket({ op: 2, group: 1, id: 1, seq, body: { off: 0, data: Buffer.from(data) } });
        const frame = frameSmp(pkt);
        const lines = frame.toString('latin1').split('\n').slice(0, -1);
        expect(frame[frame.length - 1]).toBe(0x0a);
        lines.forEach((l, i) => {
          expect(l.length + 1).toBeLessThanOrEqual(SMP_LINE_MAX);
          expect(l.charCodeAt(0)).toBe(i === 0 ? 0x06 : 0x04);
          expect(l.charCodeAt(1)).toBe(i === 0 ? 0x09 : 0x14);
        });
        const got: Buffer[] = [];
        const d = new SmpDeframer((p) => got.push(p));
        for (let i = 0; i < frame.length; i += 7) d.push(frame.subarray(i, i + 7));
        expect(got).toHaveLength(1);
        const back = decodeSmpPacket(got[0]!);
        expect(back.seq).toBe(seq);
        expect(Buffer.from(back.body.data as Uint8Array).equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('drops a packet whose CRC does not match', () => {
    const frame = frameSmp(encodeSmpPacket({ op: 2, group: 64, id: 0, seq: 1, body: { off: 0, data: Buffer.alloc(300, 7) } }));
    const raw = frame.toString('latin1').split('\n');
    // swap one base64 character in the second line for another valid one
    const l = raw[1]!;
    raw[1] = l.slice(0, 10) + (l[10] === 'A' ? 'B' : 'A') + l.slice(11);
    const got: Buffer[] = [];
    const d = new SmpDeframer((p) => got.push(p));
    d.push(Buffer.from(raw.join('\n'), 'latin1'));
    expect(got).toHaveLength(0);
    expect(d.badPackets).toBe(1);
  });
});
