// IDX as a stream: the header (magic 0 0 0x08 ndims, one big-endian u32 per
// dimension) is read as it arrives, then the data bytes are handed on as
// views of the input chunks. Only unsigned-byte IDX (type 0x08) is taken.
import { invalid, MAX_SAMPLE_BYTES } from './common.js';

const MAX_TOTAL = 2 ** 40;

export class IdxStream {
  /** Dimensions once the header is complete (dims[0] is the sample count). */
  dims: number[] | null = null;
  private readonly head = new Uint8Array(4 + 4 * 255);
  private headLen = 0;
  private headNeed = 4;
  private total = 0;
  private seen = 0;

  constructor(
    private readonly part: string,
    /** Data bytes in order; a view valid only during the call. */
    private readonly onData: (bytes: Uint8Array) => void,
    /** Called once with the dimensions, before any data; may throw to refuse them. */
    private readonly onHeader: (dims: number[], headerBytes: number) => void = () => {},
  ) {}

  get headerBytes(): number {
    return this.headNeed;
  }

  push(chunk: Uint8Array): void {
    let i = 0;
    while (this.dims === null && i < chunk.length) {
      const take = Math.min(this.headNeed - this.headLen, chunk.length - i);
      this.head.set(chunk.subarray(i, i + take), this.headLen);
      this.headLen += take;
      i += take;
      if (this.headLen === 4 && this.headNeed === 4) {
        const h = this.head;
        if (h[0] !== 0 || h[1] !== 0) throw invalid(this.part, 'not an IDX file (the first two bytes must be 0)', { offset: 0 });
        if (h[2] !== 0x08) throw invalid(this.part, `only unsigned-byte IDX data (type 0x08) is taken, this is type 0x${h[2].toString(16)}`, { offset: 2 });
        if (h[3] === 0) throw invalid(this.part, 'IDX header names no dimensions', { offset: 3 });
        this.headNeed = 4 + 4 * h[3];
      } else if (this.headLen === this.headNeed) {
        const view = new DataView(this.head.buffer, 0, this.headNeed);
        const dims: number[] = [];
        for (let d = 0; d < this.head[3]; d++) dims.push(view.getUint32(4 + 4 * d, false));
        const perSample = dims.slice(1).reduce((a, b) => a * b, 1);
        const total = dims.reduce((a, b) => a * b, 1);
        if (perSample > MAX_SAMPLE_BYTES || total > MAX_TOTAL) {
          throw invalid(this.part, `IDX dimensions ${dims.join('x')} are too large`, { dims });
        }
        this.total = total;
        this.dims = dims;
        this.onHeader(dims, this.headNeed);
      }
    }
    if (this.dims === null || i === chunk.length) return;
    const rest = chunk.length - i;
    if (rest > this.total - this.seen) {
      const offset = this.headNeed + this.total;
      throw invalid(this.part, `bytes after the end of the IDX data (dimensions ${this.dims.join('x')} end at offset ${offset})`, { offset });
    }
    this.onData(chunk.subarray(i));
    this.seen += rest;
  }

  end(): void {
    if (this.dims === null) {
      throw invalid(this.part, `truncated IDX header (${this.headLen} of ${this.headNeed} bytes)`, { offset: this.headLen });
    }
    if (this.seen < this.total) {
      const per = this.dims.slice(1).reduce((a, b) => a * b, 1);
      throw invalid(
        this.part,
        `truncated IDX data: ${this.seen} of ${this.total} bytes (the file ends at offset ${this.headNeed + this.seen}, inside sample ${Math.floor(this.seen / per)})`,
        { offset: this.headNeed + this.seen, sample: Math.floor(this.seen / per) },
      );
    }
  }
}
