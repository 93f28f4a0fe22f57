// Streaming labelled samples into a board's sample ring, batched to fill its
// frames and pipelined up to its receive window.
import type { Board } from '../devices/board.js';
import { Errors } from '../errors.js';
import type { SampleSlice } from '../datasets/index.js';

/** Frame bytes around a SAMPLES body's payload: header, CRC, CBOR map and length heads. */
const SAMPLES_OVERHEAD = 48;

export function samplesPerFrame(board: Board, sampleBytes: number): number {
  const maxFrame = board.hello?.maxFrame ?? 0;
  const n = Math.floor((maxFrame - SAMPLES_OVERHEAD) / (sampleBytes + 1));
  if (n < 1) throw Errors.BAD_REQUEST(`a ${sampleBytes}-byte sample does not fit the ${maxFrame}-byte frames of device ${board.id}`);
  return n;
}

export function checkSampleSize(board: Board, sampleBytes: number): void {
  const want = board.model?.inputBytes;
  if (want !== undefined && want !== sampleBytes) {
    throw Errors.BAD_REQUEST(`device ${board.id} runs a model taking ${want}-byte samples; these are ${sampleBytes} bytes`);
  }
}

/** Refuses a slice the board's model cannot take (sample size, a label ≥ its classes) before any byte is sent. */
export function checkSliceFits(board: Board, slice: SampleSlice, what = 'samples'): void {
  checkSampleSize(board, slice.sampleBytes);
  const classes = board.model?.classes;
  if (classes === undefined) return;
  for (let i = 0; i < slice.labels.length; i++) {
    if (slice.labels[i] >= classes) {
      throw Errors.SAMPLE_INVALID(
        `${what}: sample ${i} has label ${slice.labels[i]}; the model on device ${board.id} has ${classes} classes (labels 0..${classes - 1})`,
        { sample: i, label: slice.labels[i], classes },
      );
    }
  }
}

/**
 * Sends `slice` as sample numbers starting at the board's next free number.
 * Returns the first sample number used. `onBatch` reports samples sent so far.
 */
export async function sendSlice(board: Board, slice: SampleSlice, onBatch?: (sent: number) => void): Promise<number> {
  return (await streamSlice(board, slice, onBatch)).first;
}

/** sendSlice, also saying which sample numbers the batch pushed out of the ring. */
export async function streamSlice(
  board: Board,
  slice: SampleSlice,
  onBatch?: (sent: number) => void,
): Promise<{ first: number; overwritten: { from: number; to: number } | null }> {
  const count = slice.labels.length;
  if (count === 0) return { first: board.heldTo, overwritten: null };
  checkSampleSize(board, slice.sampleBytes);
  const perFrame = samplesPerFrame(board, slice.sampleBytes);
  const window = Math.max(1, board.hello?.window ?? 1);
  const first = board.heldTo;
  await board.run('stream samples', async (link) => {
    let next = 0;
    let sent = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const from = next;
        const n = Math.min(perFrame, count - from);
        next += n;
        await link.sendSamples(
          first + from,
          slice.sampleBytes,
          slice.labels.subarray(from, from + n),
          slice.data.subarray(from * slice.sampleBytes, (from + n) * slice.sampleBytes),
        );
        sent += n;
        onBatch?.(sent);
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, Math.ceil(count / perFrame)) }, worker));
  });
  const overwritten = board.samplesSent(first, count, slice.labels);
  return { first, overwritten };
}
