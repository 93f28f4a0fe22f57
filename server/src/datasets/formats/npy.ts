// NumPy .npy as a stream: magic "\x93NUMPY", version, header length (u16 in
// v1, u32 in v2/v3), a Python dict literal {'descr', 'fortran_order',
// 'shape'}, then the array in C order. The data bytes are handed on as views;
// NpyElements turns them into numbers across chunk boundaries.
import { invalid } from './common.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
const MAX_HEADER = 64 * 1024;
const MAX_TOTAL = 2 ** 40;

export interface NpyDtype {
  kind: 'u' | 'i' | 'f' | 'b';
  size: number;
  little: boolean;
  descr: string;
}

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Bytes before the data. */
  dataOffset: number;
}

export function parseNpyDict(part: string, text: string): { dtype: NpyDtype; shape: number[] } {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw invalid(part, `not a .npy header (needs 'descr', 'fortran_order' and 'shape'): ${JSON.stringify(text.slice(0, 120))}`, { offset: 10 });
  }
  const m = /^([<>|=]?)([uifb])(\d+)$/.exec(descr);
  if (!m || ![1, 2, 4, 8].includes(Number(m[3])) || (m[2] === 'f' && Number(m[3]) < 4)) {
    throw invalid(part, `.npy dtype '${descr}' is not taken (integers u1..i8, floats f4/f8, bool)`, { descr });
  }
  const size = Number(m[3]);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (!shape.every((s) => /^\d{1,12}L?$/.test(s))) throw invalid(part, `.npy shape (${shapeText}) is not a tuple of integers`, { shape: shapeText });
  const dims = shape.map((s) => parseInt(s, 10));
  if (fortran === 'True' && dims.filter((d) => d > 1).length > 1) {
    throw invalid(part, '.npy array is in Fortran order; save it C-ordered (np.ascontiguousarray)', { fortran_order: true });
  }
  return { dtype: { kind: m[2] as NpyDtype['kind'], size, little: m[1] !== '>' || size === 1, descr }, shape: dims };
}

export class NpyStream {
  header: NpyHeader | null = null;
  private readonly prefix = new Uint8Array(12);
  private prefixLen = 0;
  private prefixNeed = 10;
  private text: Uint8Array | null = null;
  private textLen = 0;
  private total = 0;
  private seen = 0;

  constructor(
    private readonly part: string,
    private readonly onData: (bytes: Uint8Array) => void,
    private readonly onHeader: (h: NpyHeader) => void = () => {},
  ) {}

  push(chunk: Uint8Array): void {
    let i = 0;
    while (this.header === null && i < chunk.length) {
      if (this.text === null) {
        const take = Math.min(this.prefixNeed - this.prefixLen, chunk.length - i);
        this.prefix.set(chunk.subarray(i, i + take), this.prefixLen);
        this.prefixLen += take;
        i += take;
        if (this.prefixLen < this.prefixNeed) continue;
        if (this.prefixNeed === 10) {
          for (let k = 0; k < 6; k++) if (this.prefix[k] !== MAGIC[k]) throw invalid(this.part, 'not a .npy file (no \\x93NUMPY magic)', { offset: k });
          const major = this.prefix[6];
          if (major < 1 || major > 3) throw invalid(this.part, `.npy format version ${major} is not known`, { offset: 6 });
          if (major > 1) {
            this.prefixNeed = 12;
            continue;
          }
        }
        const view = new DataView(this.prefix.buffer);
        const len = this.prefixNeed === 10 ? view.getUint16(8, true) : view.getUint32(8, true);
        if (len > MAX_HEADER) throw invalid(this.part, `.npy header of ${len} bytes is too long`, { offset: 8 });
        this.text = new Uint8Array(len);
        if (len === 0) this.finishHeader();
        continue;
      }
      const take = Math.min(this.text.length - this.textLen, chunk.length - i);
      this.text.set(chunk.subarray(i, i + take), this.textLen);
      this.textLen += take;
      i += take;
      if (this.textLen === this.text.length) this.finishHeader();
    }
    if (this.header === null || i === chunk.length) return;
    const rest = chunk.length - i;
    if (rest > this.total - this.seen) {
      const offset = this.header.dataOffset + this.total;
      throw invalid(this.part, `bytes after the end of the .npy data (shape (${this.header.shape.join(', ')}) ends at offset ${offset})`, { offset });
    }
    this.onData(chunk.subarray(i));
    this.seen += rest;
  }

  private finishHeader(): void {
    const { dtype, shape } = parseNpyDict(this.part, Buffer.from(this.text!).toString('latin1'));
    const total = shape.reduce((a, b) => a * b, 1) * dtype.size;
    if (total > MAX_TOTAL) throw invalid(this.part, `.npy shape (${shape.join(', ')}) is too large`, { shape });
    this.total = total;
    this.header = { dtype, shape, dataOffset: this.prefixNeed + this.text!.length };
    this.onHeader(this.header);
  }

  end(): void {
    if (this.header === null) {
      const at = this.text === null ? this.prefixLen : this.prefixNeed + this.textLen;
      throw invalid(this.part, `truncated .npy header (the file ends at offset ${at})`, { offset: at });
    }
    if (this.seen < this.total) {
      const item = Math.floor(this.seen / this.header.dtype.size);
      throw invalid(this.part, `truncated .npy data: ${this.seen} of ${this.total} bytes (the file ends at offset ${this.header.dataOffset + this.seen}, element ${item})`, {
        offset: this.header.dataOffset + this.seen,
        element: item,
      });
    }
  }
}

/** Decodes .npy data bytes into numbers, holding an element cut by a chunk boundary. */
export class NpyElements {
  private readonly carry: Uint8Array;
  private carryLen = 0;
  /** Elements decoded so far. */
  count = 0;

  constructor(
    private readonly dtype: NpyDtype,
    private readonly onValue: (v: number, index: number) => void,
  ) {
    this.carry = new Uint8Array(dtype.size);
  }

  push(bytes: Uint8Array): void {
    const size = this.dtype.size;
    let i = 0;
    if (this.carryLen > 0) {
      const take = Math.min(size - this.carryLen, bytes.length);
      this.carry.set(bytes.subarray(0, take), this.carryLen);
      this.carryLen += take;
      i = take;
      if (this.carryLen < size) return;
      this.emit(new DataView(this.carry.buffer), 0);
      this.carryLen = 0;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (; i + size <= bytes.length; i += size) this.emit(view, i);
    if (i < bytes.length) {
      this.carry.set(bytes.subarray(i), 0);
      this.carryLen = bytes.length - i;
    }
  }

  private emit(view: DataView, at: number): void {
    const { kind, size, little } = this.dtype;
    let v: number;
    if (kind === 'f') v = size === 4 ? view.getFloat32(at, little) : view.getFloat64(at, little);
    else if (size === 1) v = kind === 'i' ? view.getInt8(at) : view.getUint8(at);
    else if (size === 2) v = kind === 'i' ? view.getInt16(at, little) : view.getUint16(at, little);
    else if (size === 4) v = kind === 'i' ? view.getInt32(at, little) : view.getUint32(at, little);
    else v = Number(kind === 'i' ? view.getBigInt64(at, little) : view.getBigUint64(at, little));
    this.onValue(v, this.count++);
  }
}
