// A small SMP device on a tty: answers image-upload style writes (any group,
// id 1 for images) with {rc, off} and fs downloads with chunks of the last
// uploaded image, each response fitting the MTU. Usage: tsx smp-responder.ts <tty> [mtu]
import { SerialPort } from 'serialport';
import {
  SMP_DEFAULT_MTU,
  SMP_GROUP_FS,
  SMP_GROUP_IMAGE,
  SMP_OP_READ,
  SMP_OP_READ_RSP,
  SMP_OP_WRITE,
  SMP_OP_WRITE_RSP,
  SmpDeframer,
  decodeSmpPacket,
  encodeSmpPacket,
  frameSmp,
  smpChunkSize,
} from './smp.js';

const ttyPath = process.argv[2];
const mtu = Number(process.argv[3] ?? SMP_DEFAULT_MTU);
if (!ttyPath) {
  console.error('usage: smp-responder <tty> [mtu]');
  process.exit(2);
}

const stores = new Map<number, { data: Buffer; len: number }>();
const port = new SerialPort({ path: ttyPath, baudRate: 115200 });
const deframer = new SmpDeframer((pkt) => {
  const req = decodeSmpPacket(pkt);
  let op = SMP_OP_WRITE_RSP;
  let body: Record<string, unknown> = { rc: 0 };
  if (req.op === SMP_OP_WRITE) {
    const off = Number(req.body.off);
    const data = Buffer.from(req.body.data as Uint8Array);
    if (off === 0) {
      const len = Number(req.body.len ?? data.length);
      stores.set(req.group, { data: Buffer.alloc(len), len });
    }
    const s = stores.get(req.group);
    if (!s || off + data.length > s.len) body = { rc: 3 };
    else {
      data.copy(s.data, off);
      body = { rc: 0, off: off + data.length };
    }
  } else if (req.op === SMP_OP_READ && req.group === SMP_GROUP_FS) {
    op = SMP_OP_READ_RSP;
    const s = stores.get(SMP_GROUP_IMAGE);
    const off = Number(req.body.off);
    if (!s) body = { rc: 2 };
    else {
      const size = smpChunkSize(mtu, (d) => (off === 0 ? { off, data: d, len: s.len, rc: 0 } : { off, data: d, rc: 0 }));
      const data = s.data.subarray(off, Math.min(s.len, off + size));
      body = off === 0 ? { off, data, len: s.len, rc: 0 } : { off, data, rc: 0 };
    }
  } else {
    body = { rc: 8 };
  }
  port.write(frameSmp(encodeSmpPacket({ op, group: req.group, id: req.id, seq: req.seq, body })));
});
port.on('data', (d: Buffer) => deframer.push(d));
port.on('open', () => console.log('SMP ready'));
port.on('error', (e) => {
  console.error(`smp-responder: ${e.message}`);
  process.exit(1);
});
process.on('SIGTERM', () => port.close(() => process.exit(0)));
