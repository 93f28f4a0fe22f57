// From PPK2 sample words to marker pulses with their energy, and from pulses
// to the steps of one TRAIN. Pure: bytes and arrival times in, figures out.
import {
  PPK2_COUNTER_MASK,
  PPK2_SAMPLE_BYTES,
  PPK2_SAMPLE_US,
  sampleCurrentA,
  type Ppk2Calibration,
} from './protocol.js';

/** One high period of the marker channel: the board's step. Times are our clock (ms). */
export interface MarkerPulse {
  /** Sample numbers of the first high sample and of the first low one after it. */
  startN: number;
  endN: number;
  startMs: number;
  endMs: number;
  samples: number;
  /** Σ current × VDD × 10 µs over the high samples. */
  uj: number;
  meanMa: number;
  /** Samples were lost (counter skipped) while the marker was high. */
  lossy: boolean;
  used: boolean;
}

export interface StreamOptions {
  calibration: Ppk2Calibration;
  /** VDD used for the calibration's VDD term and for energy. */
  vddMv: number;
  markerChannel: number;
  /** How much our estimate of the PPK2 clock may move later per ms of our time (its crystal vs ours). */
  driftPerMs?: number;
  keepMs?: number;
}

const MS_PER_SAMPLE = PPK2_SAMPLE_US / 1000;

/**
 * Decodes the sample stream, O(n) per chunk. Sample n is timed at
 * offset + n × 10 µs; the offset is the smallest (arrival − n × 10 µs) seen,
 * since a chunk can arrive late but never before its samples were taken; it
 * may creep later by driftPerMs to follow a slower PPK2 clock.
 */
export class Ppk2SampleStream {
  readonly pulses: MarkerPulse[] = [];
  /** Times (ms) at which the sample counter skipped: samples lost on the way. */
  readonly losses: number[] = [];
  private readonly rest = Buffer.alloc(PPK2_SAMPLE_BYTES);
  private restLen = 0;
  private n = 0;
  private offsetMs: number | null = null;
  private lastArrival = 0;
  private expectedCounter: number | null = null;
  private high = false;
  private open: { startN: number; samples: number; amps: number; lossy: boolean } | null = null;
  private readonly markerBit: number;
  private readonly ujPerAmpSample: number;
  /** First and last sample times of this stream, null before any sample. */
  get firstMs(): number | null {
    return this.n > 0 && this.offsetMs !== null ? this.timeOf(0) : null;
  }

  get lastMs(): number | null {
    return this.n > 0 && this.offsetMs !== null ? this.timeOf(this.n) : null;
  }

  constructor(private readonly opts: StreamOptions) {
    this.markerBit = 1 << opts.markerChannel;
    this.ujPerAmpSample = (opts.vddMv / 1000) * PPK2_SAMPLE_US; // A × V × 10 µs in µJ
  }

  get markerHigh(): boolean {
    return this.high;
  }

  timeOf(sampleIndex: number): number {
    return (this.offsetMs ?? 0) + sampleIndex * MS_PER_SAMPLE;
  }

  push(chunk: Buffer, arrivalMs: number): void {
    let at = 0;
    if (this.restLen > 0) {
      const take = Math.min(PPK2_SAMPLE_BYTES - this.restLen, chunk.length);
      chunk.copy(this.rest, this.restLen, 0, take);
      this.restLen += take;
      at = take;
      if (this.restLen < PPK2_SAMPLE_BYTES) return;
      this.sample(this.rest.readUInt32LE(0));
      this.restLen = 0;
    }
    for (; at + PPK2_SAMPLE_BYTES <= chunk.length; at += PPK2_SAMPLE_BYTES) this.sample(chunk.readUInt32LE(at));
    if (at < chunk.length) {
      chunk.copy(this.rest, 0, at);
      this.restLen = chunk.length - at;
    }
    this.align(arrivalMs);
  }

  private align(arrivalMs: number): void {
    const candidate = arrivalMs - this.n * MS_PER_SAMPLE;
    if (this.offsetMs === null) this.offsetMs = candidate;
    else {
      const creep = Math.max(0, arrivalMs - this.lastArrival) * (this.opts.driftPerMs ?? 2e-4);
      this.offsetMs = Math.min(this.offsetMs + creep, candidate);
    }
    this.lastArrival = arrivalMs;
    // pulses no TRAIN has claimed yet follow the better estimate (they sit at the tail)
    for (let k = this.pulses.length - 1; k >= 0 && !this.pulses[k]!.used; k--) {
      const p = this.pulses[k]!;
      p.startMs = this.timeOf(p.startN);
      p.endMs = this.timeOf(p.endN);
    }
    this.prune();
  }

  private sample(word: number): void {
    const counter = (word >>> 18) & PPK2_COUNTER_MASK;
    let lost = 0;
    if (this.expectedCounter !== null && counter !== this.expectedCounter) {
      lost = (counter - this.expectedCounter + PPK2_COUNTER_MASK + 1) & PPK2_COUNTER_MASK;
      this.losses.push(this.timeOf(this.n));
      if (this.open) this.open.lossy = true;
    }
    this.n += lost; // keep the time base: lost samples took their 10 µs
    this.expectedCounter = (counter + 1) & PPK2_COUNTER_MASK;
    const high = ((word >>> 24) & this.markerBit) !== 0;
    if (high && !this.high) this.open = { startN: this.n, samples: 0, amps: 0, lossy: false };
    else if (!high && this.high && this.open) this.close(this.n);
    this.high = high;
    if (high && this.open) {
      this.open.samples++;
      this.open.amps += sampleCurrentA(this.opts.calibration, (word >>> 14) & 0x7, word & 0x3fff, this.opts.vddMv);
    }
    this.n++;
  }

  private close(endN: number): void {
    const p = this.open!;
    this.open = null;
    this.pulses.push({
      startN: p.startN,
      endN,
      startMs: this.timeOf(p.startN),
      endMs: this.timeOf(endN),
      samples: p.samples,
      uj: p.amps * this.ujPerAmpSample,
      meanMa: p.samples > 0 ? (p.amps / p.samples) * 1000 : 0,
      lossy: p.lossy,
      used: false,
    });
  }

  /** The stream ended (port closed): a pulse still high is not a whole step and is dropped. */
  end(): void {
    this.open = null;
    this.high = false;
  }

  private prune(): void {
    const keep = this.opts.keepMs ?? 10 * 60_000;
    if (this.lastMs === null) return;
    const cutoff = this.lastMs - keep;
    let drop = 0;
    while (drop < this.pulses.length && this.pulses[drop]!.endMs < cutoff) drop++;
    if (drop > 256) this.pulses.splice(0, drop);
    let dropL = 0;
    while (dropL < this.losses.length && this.losses[dropL]! < cutoff) dropL++;
    if (dropL > 256) this.losses.splice(0, dropL);
  }
}

/** What the stream knew when a TRAIN ended. */
export interface StreamView {
  pulses: MarkerPulse[];
  losses: number[];
  /** Time span the current stream covers; null when no stream (unplugged, not started). */
  firstMs: number | null;
  lastMs: number | null;
  markerHigh: boolean;
}

export type StepAttribution =
  | { kind: 'measured'; pulses: MarkerPulse[] }
  | { kind: 'uncertain'; reason: string; discarded: number };

/**
 * Matches the pulses of one TRAIN to its `steps` steps, in order. A pulse is
 * the TRAIN's when it lies within [startMs − slackMs, endMs + slackMs]; pulses
 * older than that which no TRAIN claimed are extra and dropped. Unless exactly
 * `steps` whole, loss-free pulses lie in the window, and the stream covered it
 * without a gap, no pulse is attributed: every step of the TRAIN keeps its
 * estimate (a wrong pulse is never given to a step), and the reason says why.
 */
export function attributePulses(view: StreamView, steps: number, startMs: number, endMs: number, slackMs: number): StepAttribution {
  const from = startMs - slackMs;
  const to = endMs + slackMs;
  const inWindow: MarkerPulse[] = [];
  let straddling = 0;
  for (const p of view.pulses) {
    if (p.used) continue;
    if (p.endMs < from) {
      p.used = true; // before this TRAIN and claimed by none: an extra pulse
      continue;
    }
    if (p.startMs > to) continue; // a later TRAIN's
    if (p.startMs < from) straddling++;
    inWindow.push(p);
  }
  const give = (reason: string): StepAttribution => {
    for (const p of inWindow) p.used = true;
    return { kind: 'uncertain', reason, discarded: inWindow.length };
  };
  if (view.firstMs === null || view.lastMs === null) return give('no PPK2 sample stream');
  if (view.firstMs > startMs) return give('the PPK2 stream started after the TRAIN did');
  if (view.losses.some((t) => t >= from && t <= to)) return give('PPK2 samples were lost during the TRAIN');
  if (straddling > 0) return give('a marker pulse began before the TRAIN was sent');
  if (inWindow.some((p) => p.lossy)) return give('a marker pulse lost samples');
  if (inWindow.length < steps) {
    const late = view.lastMs < endMs || view.markerHigh;
    return give(late
      ? `${inWindow.length} of ${steps} marker pulses had arrived when the TRAIN answered`
      : `${inWindow.length} marker pulses for ${steps} steps (a pulse is missing)`);
  }
  if (inWindow.length > steps) return give(`${inWindow.length} marker pulses for ${steps} steps (an extra pulse)`);
  for (const p of inWindow) p.used = true;
  return { kind: 'measured', pulses: inWindow };
}
