// What a board session answers and takes (SPEC §3 results, session options),
// and BoardLink: the part of a session a daemon drives, so it can be faked.
import type { TrainRecord } from '../messages.js';

export interface HelloInfo {
  proto: number;
  board: string;
  build: string;
  cpu: string;
  clockHz: number;
  ramBytes: number;
  maxFrame: number;
  window: number;
  bootId: number;
  sampleSlots: number;
  arenaBytes: number;
  blobMax: number;
  counter: string;
  staticRam: number;
  stackBytes: number;
  maxTrain: number;
  engine: boolean;
  /** Watchdog period in ms (0: the board reports none). */
  watchdogMs: number;
  /** Boards with A/B flash slots: the stored copy loaded at boot (0: none). Absent: no slots. */
  storedLoaded?: number;
}

export interface ModelInfo {
  /** SHA-256 (hex) of the live weights after the load. */
  weightsSha256: string;
  /** SHA-256 (hex) of the model blob that was loaded. */
  modelSha256: string;
  weightsBytes: number;
  inputBytes: number;
  classes: number;
  layers: number;
  trainBytes: number;
  inferBytes: number;
}

export interface WeightsCommit {
  sha256: string;
  weightsBytes: number;
}

export interface WeightsInfo {
  sha256: string;
  weightsBytes: number;
  stepsApplied: number;
  modelSha256: string;
}

export interface WeightsRead extends WeightsInfo {
  bytes: Uint8Array;
}

export interface TrainRequest {
  stepId: number;
  index: number;
  count: number;
  lrPpm: number;
  lambdaMinPpm?: number;
  lambdaMaxPpm?: number;
  trainable?: number;
  biasOnly?: number;
  options?: number;
}

export interface TrainResult {
  stepId: number;
  duplicate: boolean;
  stepsApplied: number;
  records: TrainRecord[];
  /** Set when the engine stopped the TRAIN early (its status); records are the steps applied (SPEC §0x31). */
  fault?: number;
}

export interface EvalOptions {
  /** Ask for each sample's predicted class and loss (SPEC §0x32 key 3). */
  predictions?: boolean;
}

export interface EvalResult {
  count: number;
  correct: number;
  lossPpmSum: number;
  counter: number;
  /**
   * With `predictions`: the class predicted for sample `index + i` at i (`count` entries).
   * Absent when not asked for, or when the firmware predates the key (it ignores it).
   */
  predicted?: number[];
  /** With `predictions`: sample `index + i`'s cross-entropy ×10⁶ at i; present exactly when `predicted` is. */
  lossPpm?: number[];
}

export interface InferResult {
  class: number;
  logits: Int8Array;
  counter: number;
}

export interface DeviceStats {
  stepsApplied: number;
  lastStepId: number;
  arenaPeak: number;
  stackPeak: number;
  staticRam: number;
  counterTotal: number;
  samplesHeld: number;
  /** hex, empty with no model */
  modelSha256: string;
  framesRx: number;
  framesBad: number;
  /** Boards with A/B flash slots: the newest stored copy (0: none). Absent: no slots. */
  storedSeq?: number;
  /** Boards with A/B flash slots: commits since boot that could not be stored. */
  storeFaults?: number;
}

export interface SamplesResult {
  count: number;
  frames: number;
}

export interface DeviceEvent {
  kind: number;
  kindName: string;
  text?: string;
}

export interface DeviceLog {
  level: number;
  text: string;
}

/** The 'reset' event: the board's boot id changed. */
export interface ResetEvent {
  previousBootId: number;
  hello: HelloInfo;
}

/** Link counters of the host side. */
export interface LinkCounters {
  framesTx: number;
  framesRx: number;
  bytesTx: number;
  bytesRx: number;
  retransmits: number;
  /** frames from the device dropped for a bad CRC */
  crcErrors: number;
  /** frames from the device dropped for bad COBS, length or version */
  badFrames: number;
  naks: number;
  /** request attempts that timed out (each one led to a retransmit or a TimeoutError) */
  timeouts: number;
  /** responses that matched nothing outstanding (late answers to retransmits) */
  lateResponses: number;
  /** pipelined requests withdrawn and sent again as smaller ones because the line lost them */
  splits: number;
}

/** A pino logger fits; a child with `{deviceId}` bound says which board. */
export interface SessionLogger {
  debug?(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
}

export interface SessionOptions {
  /** Base time-out of one request attempt in ms (default 1000); line time and TRAIN/EVAL work are added. */
  timeoutMs?: number;
  /** Alias of timeoutMs. */
  requestTimeoutMs?: number;
  /** Time-outs (each followed by a retransmit) before a request fails with TimeoutError (default 8). */
  retries?: number;
  /** Interval between HELLOs during the handshake (default 250 ms). */
  helloIntervalMs?: number;
  /** Give up the handshake after this long (default 15000 ms). */
  helloTimeoutMs?: number;
  /** Extra time-out per sample of a TRAIN or EVAL (default 250 ms). */
  msPerSample?: number;
  /** Line rate for time-outs when the stream has no `baudRate` (default: the stream's, else none). */
  baudRate?: number;
  /** Upper bound on request bytes in flight, under the OS tty buffer so a write never blocks (default 16384). */
  maxInFlightBytes?: number;
  /** Re-arm the serialport poller for reads while a write waits (default true; see serial-poller.ts). */
  readNudge?: boolean;
  /** Upper bound on the window HELLO grants. */
  window?: number;
  log?: SessionLogger;
  /** What the stream is, in disconnect reasons (default 'stream'): e.g. `port /dev/ttyACM0`. */
  label?: string;
  /** Hands the stream to the session: close() and a failed open() end it with this (default: the caller keeps it). */
  closeStream?: () => Promise<void>;
}

/** What a daemon drives on one board: BoardSession implements it; a test may fake it. */
export interface BoardLink {
  /** What the board said in its last HELLO. */
  readonly hello: HelloInfo;
  /** Host-side link counters (live). */
  readonly counters: Readonly<LinkCounters>;
  /** True once the stream is gone or close() was called. */
  readonly closed: boolean;
  loadModel(blob: Uint8Array): Promise<ModelInfo>;
  writeWeights(blob: Uint8Array): Promise<WeightsCommit>;
  readWeights(): Promise<WeightsRead>;
  weightsInfo(): Promise<WeightsInfo>;
  sendSamples(index: number, sampleBytes: number, labels: Uint8Array, data: Uint8Array): Promise<SamplesResult>;
  train(req: TrainRequest): Promise<TrainResult>;
  evaluate(index: number, count: number, opts?: EvalOptions): Promise<EvalResult>;
  stats(): Promise<DeviceStats>;
  reset(): Promise<HelloInfo>;
  close(): Promise<void>;
  /** Once, when the stream closes, ends or fails (not after close()). */
  on(event: 'disconnect', listener: (reason: string) => void): this;
  /** The board's boot id changed (it restarted). */
  on(event: 'reset', listener: (e: ResetEvent) => void): this;
  on(event: 'log', listener: (log: DeviceLog) => void): this;
  on(event: 'event', listener: (ev: DeviceEvent) => void): this;
}
