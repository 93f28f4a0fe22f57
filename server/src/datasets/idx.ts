// IDX files (the MNIST family's format): big-endian header, magic
// 0x00 0x00 <type> <ndims>, one u32 per dimension, then the data.
import fs from 'node:fs';
import zlib from 'node:zlib';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function parseIdx(buf: Uint8Array, what = 'IDX data'): IdxArray {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${what}: not an IDX file`);
  if (buf[2] !== 0x08) throw new Error(`${what}: only unsigned byte IDX data is supported (type 0x${buf[2].toString(16)})`);
  const ndims = buf[3];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const start = 4 + 4 * ndims;
  const n = dims.reduce((a, b) => a * b, 1);
  if (buf.length < start + n) throw new Error(`${what}: truncated (${buf.length - start} of ${n} bytes)`);
  return { dims, data: buf.subarray(start, start + n) };
}

export function readIdxGz(file: string): IdxArray {
  const raw = fs.readFileSync(file);
  const buf = file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw;
  return parseIdx(buf, file);
}
