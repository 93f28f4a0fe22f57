// Pipelined transfers (SPEC §4.2): a blob staged as chunks, weights read in
// pieces, samples in as many frames as max_frame needs, each request sized
// when it is issued so sizes follow the line, at most a window ahead.
import { FRAME_OVERHEAD, GRANULE, MsgType, msgTypeName } from '../constants.js';
import { ProtocolError } from '../errors.js';
import { num, sha256 } from './fields.js';
import type { HelloInfo } from './types.js';
import { SplitRequest, type RequestOptions, type Resize } from './window.js';

/** What a transfer needs of the session. */
export interface TransferLink {
  readonly hello: Pick<HelloInfo, 'maxFrame'>;
  /** Fraction of the full frame size the line carries cleanly now. */
  readonly lineScale: number;
  room(): Promise<void>;
  request(type: number, values: Record<string, unknown>, o?: RequestOptions): Promise<Record<string, unknown>>;
}

/** Largest multiple of the granule that fits a frame of max_frame with its overhead. */
export function chunkBytes(maxFrame: number): number {
  return Math.max(GRANULE, Math.floor((maxFrame - FRAME_OVERHEAD) / GRANULE) * GRANULE);
}

/** Samples per SAMPLES frame for a given max_frame. */
export function samplesPerFrame(maxFrame: number, sampleBytes: number): number {
  return Math.floor((maxFrame - FRAME_OVERHEAD - 8) / (sampleBytes + 1));
}

/** BEGIN (a barrier) then pipelined chunks of `blob`; resolves with its SHA-256 for the COMMIT. */
export async function stageBlob(link: TransferLink, beginType: number, chunkType: number, blob: Uint8Array): Promise<Uint8Array> {
  const digest = sha256(blob);
  await link.request(beginType, { size: blob.length, sha256: digest }, { barrier: true });
  // chunk length now: the largest granule multiple for max_frame, scaled down while the line loses frames
  const step = (): number => Math.max(GRANULE, Math.floor((chunkBytes(link.hello.maxFrame) * link.lineScale) / GRANULE) * GRANULE);
  await pipelined(link, blob.length, step, (offset, length, resize) => {
    const data = blob.subarray(offset, offset + length);
    return link.request(chunkType, { offset, data }, { resize }).then((r) => {
      if (num(r.offset) !== offset || num(r.length) !== data.length)
        throw new ProtocolError('BAD_BODY', `${msgTypeName(chunkType)} at ${offset}: device took ${num(r.length)} at ${num(r.offset)}`);
    });
  }, GRANULE);
  return digest;
}

/** Pipelined WEIGHTS_READs of `total` bytes. */
export async function readWeightBytes(link: TransferLink, total: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(total);
  const step = (): number => Math.max(16, Math.floor(chunkBytes(link.hello.maxFrame) * link.lineScale));
  await pipelined(link, total, step, (offset, length, resize) =>
    link.request(MsgType.WEIGHTS_READ, { offset, length }, { resize }).then((r) => {
      const data = r.data as Uint8Array;
      if (num(r.offset) !== offset || data.length !== length)
        throw new ProtocolError('BAD_BODY', `WEIGHTS_READ at ${offset}: got ${data.length} bytes at ${num(r.offset)}`);
      bytes.set(data, offset);
    }),
  );
  return bytes;
}

/** Labelled samples `index …` in pipelined SAMPLES frames; resolves with the number of frames. */
export async function sendSampleFrames(link: TransferLink, index: number, sampleBytes: number, labels: Uint8Array, data: Uint8Array): Promise<number> {
  const count = labels.length;
  if (data.length !== count * sampleBytes)
    throw new ProtocolError('BAD_VALUE', `${data.length} data bytes for ${count} samples of ${sampleBytes} bytes`);
  const per = samplesPerFrame(link.hello.maxFrame, sampleBytes);
  if (per < 1) throw new ProtocolError('TOO_LARGE', `a sample of ${sampleBytes} bytes does not fit max_frame ${link.hello.maxFrame}`);
  return pipelined(link, count, () => Math.max(1, Math.floor(per * link.lineScale)), (i, n, resize) => {
    const at = index + i;
    const body = { index: at, sampleBytes, labels: labels.subarray(i, i + n), data: data.subarray(i * sampleBytes, (i + n) * sampleBytes) };
    return link.request(MsgType.SAMPLES, body, { resize }).then((r) => {
      if (num(r.index) !== at || num(r.count) !== n)
        throw new ProtocolError('BAD_BODY', `SAMPLES at ${at}: device stored ${num(r.count)} at ${num(r.index)}`);
    });
  });
}

/**
 * Issue `total` units as pipelined requests, each sized by `step()` when it
 * is issued, at most a window ahead. A request the window withdrew
 * (SplitRequest) goes again as smaller ones, on `align` boundaries. Resolves
 * with the number of requests once all are answered; the first failure stops
 * issuing and is thrown after the rest settle.
 */
async function pipelined(
  link: TransferLink,
  total: number,
  step: () => number,
  issue: (offset: number, units: number, resize: Resize) => Promise<void>,
  align = 1,
): Promise<number> {
  const again: [number, number][] = [];
  const inflight = new Set<Promise<void>>();
  let next = 0;
  let count = 0;
  let failure: unknown = null;
  while (failure === null) {
    let range = again.shift();
    if (!range) {
      if (next >= total) {
        if (inflight.size === 0) break;
        await Promise.race(inflight);
        continue;
      }
      range = [next, Math.min(step(), total - next)];
      next += range[1];
    }
    await link.room();
    if (failure !== null) break;
    const [offset, n] = range;
    count++;
    const p: Promise<void> = issue(offset, n, { units: n, step })
      .catch((err: unknown) => {
        if (err instanceof SplitRequest) {
          const s = Math.max(align, Math.floor(Math.min(step(), Math.ceil(n / 2)) / align) * align);
          for (let o = offset; o < offset + n; o += s) again.push([o, Math.min(s, offset + n - o)]);
        } else failure ??= err;
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  if (failure !== null) throw failure;
  return count;
}
