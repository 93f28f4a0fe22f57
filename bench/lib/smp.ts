// Zephyr MCUmgr SMP over a serial console, encoded by us so bench:wire can put
// the reference link beside ours on the same simulated line:
//   SMP packet = 8-byte header (op | ver<<3, flags, len BE16, group BE16, seq, id) + CBOR map (text keys)
//   serial     = BE16 length (packet + 2) ‖ packet ‖ CRC16 (poly 0x1021, init 0, big-endian),
//                base64 in lines of at most 127 bytes: 0x06 0x09 first, 0x04 0x14 after, '\n' last
// One request in flight; every request gets a small response.
import { Encoder, decode } from 'cbor-x';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';

export const SMP_LINE_MAX = 127;
/* 127 − 2 start bytes − newline = 124 base64 characters = 93 raw bytes per line. */
export const SMP_RAW_PER_LINE = ((SMP_LINE_MAX - 3) / 4) * 3;
/* Zephyr's default CONFIG_MCUMGR_SMP_UART_MTU / CONFIG_MCUMGR_TRANSPORT_UART_MTU. */
export const SMP_DEFAULT_MTU = 256;

export const SMP_OP_READ = 0;
export const SMP_OP_READ_RSP = 1;
export const SMP_OP_WRITE = 2;
export const SMP_OP_WRITE_RSP = 3;
export const SMP_GROUP_IMAGE = 1;
export const SMP_GROUP_FS = 8;
/* First user-defined group: sample streaming has no standard SMP command. */
export const SMP_GROUP_USER = 64;

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export interface SmpPacket {
  op: number;
  group: number;
  id: number;
  seq: number;
  body: Record<string, unknown>;
}

export function crc16Ccitt(data: Uint8Array, crc = 0): number {
  for (let i = 0; i < data.length; i++) {
    crc ^= data[i]! << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

export function encodeSmpPacket(p: SmpPacket): Buffer {
  const cbor = encoder.encode(p.body) as Buffer;
  const hdr = Buffer.alloc(8);
  hdr[0] = (p.op & 7) | (1 << 3);
  hdr[1] = 0;
  hdr.writeUInt16BE(cbor.length, 2);
  hdr.writeUInt16BE(p.group, 4);
  hdr[6] = p.seq & 0xff;
  hdr[7] = p.id;
  return Buffer.concat([hdr, cbor]);
}

export function decodeSmpPacket(pkt: Uint8Array): SmpPacket {
  if (pkt.length < 8) throw new Error('SMP packet shorter than its header');
  const b = Buffer.from(pkt.buffer, pkt.byteOffset, pkt.length);
  const len = b.readUInt16BE(2);
  if (8 + len !== b.length) throw new Error(`SMP length ${len} does not match ${b.length - 8}`);
  const body = len > 0 ? (decode(b.subarray(8)) as Record<string, unknown>) : {};
  return { op: b[0]! & 7, group: b.readUInt16BE(4), seq: b[6]!, id: b[7]!, body };
}

/** Console framing of one SMP packet: base64 lines with start markers, CRC16 at the end. */
export function frameSmp(packet: Uint8Array): Buffer {
  const raw = Buffer.alloc(packet.length + 4);
  raw.writeUInt16BE(packet.length + 2, 0);
  raw.set(packet, 2);
  raw.writeUInt16BE(crc16Ccitt(packet), 2 + packet.length);
  const lines: Buffer[] = [];
  for (let off = 0; off < raw.length; off += SMP_RAW_PER_LINE) {
    const part = raw.subarray(off, Math.min(raw.length, off + SMP_RAW_PER_LINE));
    lines.push(Buffer.from(off === 0 ? [0x06, 0x09] : [0x04, 0x14]));
    lines.push(Buffer.from(part.toString('base64'), 'latin1'));
    lines.push(Buffer.from([0x0a]));
  }
  return Buffer.concat(lines);
}

/** Reassembles SMP packets from console lines; calls onPacket with each packet whose CRC holds. */
export class SmpDeframer {
  private line: Buffer[] = [];
  private raw: Buffer[] = [];
  private rawLen = 0;
  private inPacket = false;
  badPackets = 0;

  constructor(private readonly onPacket: (packet: Buffer) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      this.line.push(chunk.subarray(start, nl));
      this.endLine(this.line.length === 1 ? this.line[0]! : Buffer.concat(this.line));
      this.line = [];
      start = nl + 1;
    }
    if (start < chunk.length) this.line.push(chunk.subarray(start));
  }

  private endLine(line: Buffer): void {
    if (line.length < 2) return;
    if (line[0] === 0x06 && line[1] === 0x09) {
      this.raw = [];
      this.rawLen = 0;
      this.inPacket = true;
    } else if (!(line[0] === 0x04 && line[1] === 0x14) || !this.inPacket) {
      return; // console text, or a continuation without a start
    }
    const part = Buffer.from(line.subarray(2).toString('latin1'), 'base64');
    this.raw.push(part);
    this.rawLen += part.length;
    if (this.rawLen < 2) return;
    const raw = Buffer.concat(this.raw);
    this.raw = [raw];
    const want = raw.readUInt16BE(0);
    if (raw.length - 2 < want) return;
    this.inPacket = false;
    const packet = raw.subarray(2, 2 + want - 2);
    const crc = raw.readUInt16BE(want);
    if (want < 2 || crc16Ccitt(packet) !== crc) {
      this.badPackets++;
      return;
    }
    this.onPacket(Buffer.from(packet));
  }
}

/** The largest data chunk whose request packet still fits the MTU. */
export function smpChunkSize(mtu: number, body: (data: Buffer) => Record<string, unknown>): number {
  for (let n = mtu; n > 0; n--) {
    const p = encodeSmpPacket({ op: SMP_OP_WRITE, group: 0, id: 0, seq: 0, body: body(Buffer.alloc(n)) });
    if (p.length <= mtu) return n;
  }
  throw new Error(`MTU ${mtu} too small`);
}

/** SMP client: one request in flight over any Duplex (a SerialPort on the simulated line). */
export class SmpClient {
  private seq = 0;
  private pending: { seq: number; resolve: (p: SmpPacket) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private readonly deframer: SmpDeframer;
  wireOut = 0;
  wireIn = 0;

  constructor(
    private readonly stream: Duplex,
    readonly mtu = SMP_DEFAULT_MTU,
    private readonly timeoutMs = 10_000,
  ) {
    this.deframer = new SmpDeframer((pkt) => this.onPacket(pkt));
    stream.on('data', (d: Buffer) => {
      this.wireIn += d.length;
      this.deframer.push(d);
    });
  }

  private onPacket(pkt: Buffer): void {
    const p = decodeSmpPacket(pkt);
    const pend = this.pending;
    if (!pend || p.seq !== pend.seq) return;
    this.pending = null;
    clearTimeout(pend.timer);
    pend.resolve(p);
  }

  request(op: number, group: number, id: number, body: Record<string, unknown>): Promise<SmpPacket> {
    if (this.pending) throw new Error('SMP allows one request in flight');
    const seq = this.seq;
    this.seq = (this.seq + 1) & 0xff;
    const frame = frameSmp(encodeSmpPacket({ op, group, id, seq, body }));
    return new Promise<SmpPacket>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        reject(new Error(`SMP request seq ${seq} timed out`));
      }, this.timeoutMs);
      this.pending = { seq, resolve, reject, timer };
      this.wireOut += frame.length;
      this.stream.write(frame);
    }).then((rsp) => {
      if (typeof rsp.body.rc === 'number' && rsp.body.rc !== 0) throw new Error(`SMP rc ${rsp.body.rc}`);
      return rsp;
    });
  }

  /** Image-upload style write of a byte stream (group, id), chunked to the MTU. */
  async upload(group: number, id: number, data: Uint8Array, first: Record<string, unknown> = {}): Promise<void> {
    const sha = createHash('sha256').update(data).digest();
    const firstSize = smpChunkSize(this.mtu, (d) => ({ image: 0, len: data.length, off: 0, sha, data: d, ...first }));
    const nextSize = smpChunkSize(this.mtu, (d) => ({ off: data.length, data: d }));
    let off = 0;
    while (off < data.length) {
      const n = Math.min(off === 0 ? firstSize : nextSize, data.length - off);
      const chunk = Buffer.from(data.buffer, data.byteOffset + off, n);
      const body = off === 0 ? { image: 0, len: data.length, off, sha, data: chunk, ...first } : { off, data: chunk };
      const rsp = await this.request(SMP_OP_WRITE, group, id, body);
      const next = Number(rsp.body.off);
      if (next !== off + n) throw new Error(`SMP upload: device at ${next}, expected ${off + n}`);
      off = next;
    }
  }

  /** File-download style read (fs group, id 0) of `len` bytes named `name`. */
  async download(name: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let off = 0;
    let total = -1;
    while (total < 0 || off < total) {
      const rsp = await this.request(SMP_OP_READ, SMP_GROUP_FS, 0, { off, name });
      if (typeof rsp.body.len === 'number') total = rsp.body.len;
      const data = rsp.body.data as Uint8Array;
      if (!data || data.length === 0) break;
      parts.push(Buffer.from(data));
      off += data.length;
    }
    return Buffer.concat(parts);
  }
}
