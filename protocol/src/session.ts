// A host-side session with one board over any byte stream (a serialport
// SerialPort, a PTY, a socket): HELLO handshake, a window of pipelined
// requests with per-request time-outs, retransmits of the same seq, NAK
// handling, barriers, exactly-once TRAIN, and typed results (SPEC §3, §4).
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  EventKind,
  FRAME_OVERHEAD,
  Flags,
  GRANULE,
  MsgType,
  PROTO_VERSION,
  errorCodeName,
  eventKindName,
  msgTypeName,
} from './constants.js';
import { decodeRaw, encodeFrame, FrameSplitter, type Frame } from './frame.js';
import { cobsDecode } from './cobs.js';
import { DeviceError, DisconnectedError, ProtocolError, TimeoutError } from './errors.js';
import { decodeDeviceBody, decodeResponse, decodeTrainRecords, encodeRequest, type TrainRecord } from './messages.js';

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
}

export interface ModelInfo {
  /** SHA-256 (hex) of the live weights after the load. */
  sha256: string;
  /** Same as sha256: the live weights' hash. */
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
}

export interface EvalResult {
  count: number;
  correct: number;
  lossPpmSum: number;
  counter: number;
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
  /** Re-arm the serialport poller for reads while a write waits (default true; see armNudge). */
  readNudge?: boolean;
  /** Upper bound on the window HELLO grants. */
  window?: number;
  log?: SessionLogger;
}

interface Pending {
  seq: number;
  type: number;
  body: Uint8Array;
  wire: Uint8Array | null;
  barrier: boolean;
  retransmit: boolean;
  baseTimeoutMs: number;
  attempts: number;
  /** time-outs so far; NAK-driven and fast retransmits do not count (the device is alive) */
  expiries: number;
  maxExpiries: number;
  sentOrder: number;
  timer: NodeJS.Timeout | null;
  /** Pipelined transfers: units this request carries and the size the line allows now; a retransmit above it is split instead. */
  resize?: { units: number; step: () => number };
  resolve(v: Record<string, unknown>): void;
  reject(e: Error): void;
}

/** A pipelined request withdrawn before a retransmit so its range goes again in smaller pieces. */
class SplitRequest extends Error {}

interface RequestOptions {
  resize?: { units: number; step: () => number };
  barrier?: boolean;
  retransmit?: boolean;
  timeoutMs?: number;
  retries?: number;
}

const hex = (b: unknown): string => (b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : '');
const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0);
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

/** Largest multiple of the granule that fits a frame of max_frame with its overhead. */
export function chunkBytes(maxFrame: number): number {
  return Math.max(GRANULE, Math.floor((maxFrame - FRAME_OVERHEAD) / GRANULE) * GRANULE);
}

/** Samples per SAMPLES frame for a given max_frame. */
export function samplesPerFrame(maxFrame: number, sampleBytes: number): number {
  return Math.floor((maxFrame - FRAME_OVERHEAD - 8) / (sampleBytes + 1));
}

export class BoardSession extends EventEmitter {
  /** What the board said in its last HELLO. */
  hello!: HelloInfo;
  /** Host-side link counters (live object). `stats()` asks the device for its own. */
  readonly counters: LinkCounters = {
    framesTx: 0,
    framesRx: 0,
    bytesTx: 0,
    bytesRx: 0,
    retransmits: 0,
    crcErrors: 0,
    badFrames: 0,
    naks: 0,
    timeouts: 0,
    lateResponses: 0,
    splits: 0,
  };

  private readonly stream: Duplex;
  private readonly opts: Required<Omit<SessionOptions, 'log' | 'baudRate' | 'window' | 'requestTimeoutMs'>> & { window: number };
  private readonly log: SessionLogger;
  private readonly splitter: FrameSplitter;
  private readonly queue: Pending[] = [];
  private readonly outstanding = new Map<number, Pending>();
  private nextSeq = 1;
  private sendCounter = 0;
  private inFlightBytes = 0;
  private barrierActive = false;
  private closedError: DisconnectedError | null = null;
  private msPerByte = 0;
  private writesPending = 0;
  private nudgeTimer: NodeJS.Timeout | null = null;
  private rehelloing: Promise<HelloInfo> | null = null;
  private readonly roomWaiters: (() => void)[] = [];
  /** Fraction of the full frame size pipelined transfers use: halved on each retransmit, grown back on clean answers. */
  private sizeScale = 1;
  private readonly onData = (chunk: Buffer): void => {
    this.counters.bytesRx += chunk.length;
    this.splitter.push(chunk);
  };
  private readonly onClose = (): void => this.disconnect('stream closed');
  private readonly onEnd = (): void => this.disconnect('stream ended');
  private readonly onError = (err: Error): void => this.disconnect(`stream error: ${err.message}`);

  private constructor(stream: Duplex, opts: SessionOptions) {
    super();
    this.stream = stream;
    this.log = opts.log ?? {};
    this.opts = {
      timeoutMs: opts.timeoutMs ?? opts.requestTimeoutMs ?? 1000,
      retries: opts.retries ?? 8,
      helloIntervalMs: opts.helloIntervalMs ?? 250,
      helloTimeoutMs: opts.helloTimeoutMs ?? 15_000,
      msPerSample: opts.msPerSample ?? 250,
      maxInFlightBytes: opts.maxInFlightBytes ?? 16_384,
      window: opts.window ?? 64,
      readNudge: opts.readNudge ?? true,
    };
    const baud = opts.baudRate ?? (stream as unknown as { baudRate?: unknown }).baudRate;
    if (typeof baud === 'number' && baud > 0) this.msPerByte = 10_000 / baud;
    this.splitter = new FrameSplitter(
      (enc) => this.onFrame(enc),
      () => {
        this.counters.badFrames++;
      },
    );
    stream.on('data', this.onData);
    stream.on('close', this.onClose);
    stream.on('end', this.onEnd);
    stream.on('error', this.onError);
  }

  /**
   * Open a session: HELLO until answered (SPEC §4.4), then the board's limits
   * apply. The caller keeps owning the stream: close() detaches, it does not
   * close the port.
   */
  static async open(stream: Duplex, opts: SessionOptions = {}): Promise<BoardSession> {
    const s = new BoardSession(stream, opts);
    try {
      await s.handshake();
    } catch (err) {
      s.detach(err instanceof DisconnectedError ? err : new DisconnectedError('handshake failed'));
      throw err;
    }
    return s;
  }

  /** Alias of `counters`. */
  get linkStats(): LinkCounters {
    return this.counters;
  }

  /** True once the stream is gone or close() was called. */
  get closed(): boolean {
    return this.closedError !== null;
  }

  // ---- public requests ----

  async ping(data: Uint8Array = new Uint8Array(0)): Promise<{ data: Uint8Array; rttMs: number }> {
    const t0 = performance.now();
    const r = await this.request(MsgType.PING, { data });
    return { data: r.data as Uint8Array, rttMs: performance.now() - t0 };
  }

  /** RESET (never retransmitted), then HELLO until the board answers again. Resolves with the new HELLO. */
  async reset(): Promise<HelloInfo> {
    try {
      await this.request(MsgType.RESET, {}, { barrier: true, retransmit: false });
    } catch (err) {
      // the board may restart before its answer leaves: the HELLO below tells
      if (!(err instanceof TimeoutError)) throw err;
    }
    return this.rehello();
  }

  /** HELLO again (until answered); emits 'reset' when the boot id changed. */
  rehello(): Promise<HelloInfo> {
    this.rehelloing ??= this.handshake().finally(() => {
      this.rehelloing = null;
    });
    return this.rehelloing;
  }

  /** Load a model blob (BEGIN, pipelined CHUNKs, COMMIT). */
  async loadModel(blob: Uint8Array): Promise<ModelInfo> {
    const digest = await this.stage(MsgType.MODEL_BEGIN, MsgType.MODEL_CHUNK, blob);
    const r = await this.request(MsgType.MODEL_COMMIT, { sha256: digest }, { barrier: true });
    const w = hex(r.sha256);
    return {
      sha256: w,
      weightsSha256: w,
      modelSha256: hex(digest),
      weightsBytes: num(r.weightsBytes),
      inputBytes: num(r.inputBytes),
      classes: num(r.classes),
      layers: num(r.layers),
      trainBytes: num(r.trainBytes),
      inferBytes: num(r.inferBytes),
    };
  }

  /** Replace the live weights (BEGIN, pipelined CHUNKs, COMMIT). */
  async writeWeights(blob: Uint8Array): Promise<WeightsCommit> {
    const digest = await this.stage(MsgType.WEIGHTS_BEGIN, MsgType.WEIGHTS_CHUNK, blob);
    const r = await this.request(MsgType.WEIGHTS_COMMIT, { sha256: digest }, { barrier: true });
    return { sha256: hex(r.sha256), weightsBytes: num(r.weightsBytes) };
  }

  async weightsInfo(): Promise<WeightsInfo> {
    const r = await this.request(MsgType.WEIGHTS_INFO, {});
    return { sha256: hex(r.sha256), weightsBytes: num(r.weightsBytes), stepsApplied: num(r.stepsApplied), modelSha256: hex(r.modelSha256) };
  }

  /** WEIGHTS_INFO, then pipelined READs; the bytes must hash to INFO's SHA-256 (else ProtocolError HASH_MISMATCH). */
  async readWeights(): Promise<WeightsRead> {
    const info = await this.weightsInfo();
    const total = info.weightsBytes;
    const bytes = new Uint8Array(total);
    const readStep = (): number => Math.max(16, Math.floor(chunkBytes(this.hello.maxFrame) * this.sizeScale));
    await this.pipelined(total, readStep, (offset, length, resize) =>
      this.request(MsgType.WEIGHTS_READ, { offset, length }, { resize }).then((r) => {
        const data = r.data as Uint8Array;
        if (num(r.offset) !== offset || data.length !== length)
          throw new ProtocolError('BAD_BODY', `WEIGHTS_READ at ${offset}: got ${data.length} bytes at ${num(r.offset)}`);
        bytes.set(data, offset);
      }),
    );
    const got = hex(sha256(bytes));
    if (got !== info.sha256) throw new ProtocolError('HASH_MISMATCH', `weights read back hash to ${got}, the device said ${info.sha256}`);
    return { ...info, bytes };
  }

  /** Store labelled samples `index …` in as many pipelined SAMPLES frames as max_frame needs. */
  async sendSamples(index: number, sampleBytes: number, labels: Uint8Array, data: Uint8Array): Promise<SamplesResult> {
    const count = labels.length;
    if (data.length !== count * sampleBytes)
      throw new ProtocolError('BAD_VALUE', `${data.length} data bytes for ${count} samples of ${sampleBytes} bytes`);
    const per = samplesPerFrame(this.hello.maxFrame, sampleBytes);
    if (per < 1) throw new ProtocolError('TOO_LARGE', `a sample of ${sampleBytes} bytes does not fit max_frame ${this.hello.maxFrame}`);
    const frames = await this.pipelined(count, () => Math.max(1, Math.floor(per * this.sizeScale)), (i, n, resize) => {
      const at = index + i;
      const body = { index: at, sampleBytes, labels: labels.subarray(i, i + n), data: data.subarray(i * sampleBytes, (i + n) * sampleBytes) };
      return this.request(MsgType.SAMPLES, body, { resize }).then((r) => {
        if (num(r.index) !== at || num(r.count) !== n)
          throw new ProtocolError('BAD_BODY', `SAMPLES at ${at}: device stored ${num(r.count)} at ${num(r.index)}`);
      });
    });
    return { count, frames };
  }

  /** One TRAIN (a barrier); retransmits are safe: the device deduplicates by stepId. */
  async train(req: TrainRequest): Promise<TrainResult> {
    const r = await this.request(MsgType.TRAIN, { ...req }, { barrier: true, timeoutMs: this.workTimeout(req.count) });
    return { stepId: num(r.stepId), duplicate: r.duplicate === true, stepsApplied: num(r.stepsApplied), records: decodeTrainRecords(r.records) };
  }

  async evaluate(index: number, count: number): Promise<EvalResult> {
    const r = await this.request(MsgType.EVAL, { index, count }, { barrier: true, timeoutMs: this.workTimeout(count) });
    return { count: num(r.count), correct: num(r.correct), lossPpmSum: num(r.lossPpmSum), counter: num(r.counter) };
  }

  async infer(sample: Uint8Array): Promise<InferResult> {
    const r = await this.request(MsgType.INFER, { sample }, { timeoutMs: this.workTimeout(1) });
    const logits = r.logits as Uint8Array;
    return { class: num(r.class), logits: new Int8Array(logits.buffer, logits.byteOffset, logits.length), counter: num(r.counter) };
  }

  /** The device's STATS. */
  async stats(): Promise<DeviceStats> {
    const r = await this.request(MsgType.STATS, {});
    return {
      stepsApplied: num(r.stepsApplied),
      lastStepId: num(r.lastStepId),
      arenaPeak: num(r.arenaPeak),
      stackPeak: num(r.stackPeak),
      staticRam: num(r.staticRam),
      counterTotal: num(r.counterTotal),
      samplesHeld: num(r.samplesHeld),
      modelSha256: hex(r.modelSha256),
      framesRx: num(r.framesRx),
      framesBad: num(r.framesBad),
    };
  }

  /**
   * Send one request and wait for its response body (decoded by name). The
   * low-level entry point; the methods above are built on it.
   */
  request(type: number, values: Record<string, unknown>, o: RequestOptions = {}): Promise<Record<string, unknown>> {
    if (this.closedError) return Promise.reject(this.closedError);
    let body: Uint8Array;
    try {
      body = encodeRequest(type, values);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({
        seq: -1,
        type,
        body,
        wire: null,
        barrier: o.barrier ?? false,
        retransmit: o.retransmit ?? true,
        baseTimeoutMs: o.timeoutMs ?? this.opts.timeoutMs,
        attempts: 0,
        expiries: 0,
        maxExpiries: (o.retransmit ?? true) ? 1 + (o.retries ?? this.opts.retries) : 1,
        sentOrder: 0,
        timer: null,
        resize: o.resize,
        resolve,
        reject,
      });
      this.pump();
    });
  }

  /** Stop using the stream: every outstanding request fails with DisconnectedError. The stream stays open. */
  close(): void {
    this.detach(new DisconnectedError('session closed'));
  }

  // ---- internals ----

  private async handshake(): Promise<HelloInfo> {
    const deadline = Date.now() + this.opts.helloTimeoutMs;
    const attempts = Math.max(1, Math.ceil(this.opts.helloTimeoutMs / this.opts.helloIntervalMs));
    let r: Record<string, unknown>;
    try {
      r = await this.request(MsgType.HELLO, {}, { barrier: true, timeoutMs: this.opts.helloIntervalMs, retries: attempts - 1 });
    } catch (err) {
      if (err instanceof TimeoutError) throw new TimeoutError(`no HELLO answer within ${this.opts.helloTimeoutMs} ms`, err.attempts);
      throw err;
    }
    void deadline;
    const h: HelloInfo = {
      proto: num(r.proto),
      board: r.board as string,
      build: r.build as string,
      cpu: r.cpu as string,
      clockHz: num(r.clockHz),
      ramBytes: num(r.ramBytes),
      maxFrame: num(r.maxFrame),
      window: num(r.window),
      bootId: num(r.bootId),
      sampleSlots: num(r.sampleSlots),
      arenaBytes: num(r.arenaBytes),
      blobMax: num(r.blobMax),
      counter: r.counter as string,
      staticRam: num(r.staticRam),
      stackBytes: num(r.stackBytes),
      maxTrain: num(r.maxTrain),
      engine: r.engine === true,
    };
    if (h.proto !== PROTO_VERSION) throw new ProtocolError('BAD_VERSION', `board speaks protocol ${h.proto}, host ${PROTO_VERSION}`);
    if (h.window < 1 || h.maxFrame < 64) throw new ProtocolError('BAD_BODY', `HELLO window ${h.window}, max_frame ${h.maxFrame}`);
    const previous = this.hello;
    this.hello = h;
    if (previous && previous.bootId !== h.bootId) {
      this.log.info?.({ previous: previous.bootId, bootId: h.bootId }, 'board reset');
      this.emit('reset', { previousBootId: previous.bootId, hello: h });
    }
    this.pump();
    return h;
  }

  private async stage(beginType: number, chunkType: number, blob: Uint8Array): Promise<Uint8Array> {
    const digest = sha256(blob);
    await this.request(beginType, { size: blob.length, sha256: digest }, { barrier: true });
    await this.pipelined(blob.length, () => this.blobStep(), (offset, length, resize) => {
      const data = blob.subarray(offset, offset + length);
      return this.request(chunkType, { offset, data }, { resize }).then((r) => {
        if (num(r.offset) !== offset || num(r.length) !== data.length)
          throw new ProtocolError('BAD_BODY', `${msgTypeName(chunkType)} at ${offset}: device took ${num(r.length)} at ${num(r.offset)}`);
      });
    }, GRANULE);
    return digest;
  }

  /** Chunk or read length now: the largest granule multiple for max_frame, scaled down while the line loses frames. */
  private blobStep(): number {
    const full = chunkBytes(this.hello.maxFrame);
    return Math.max(GRANULE, Math.floor((full * this.sizeScale) / GRANULE) * GRANULE);
  }

  /**
   * Issue `total` units as pipelined requests, each sized by `step()` when it
   * is issued (so sizes follow the line), at most a window ahead. Resolves with
   * the number of requests once all are answered; the first failure stops
   * issuing and is thrown after the rest settle.
   */
  private async pipelined(
    total: number,
    step: () => number,
    issue: (offset: number, units: number, resize: { units: number; step: () => number }) => Promise<void>,
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
      await this.room();
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

  /** Resolves when one more request can go into the window without queueing. */
  private room(): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.queue.length + this.outstanding.size < this.window) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private workTimeout(count: number): number {
    return this.opts.timeoutMs + Math.max(1, count) * this.opts.msPerSample;
  }

  private get window(): number {
    return Math.max(1, Math.min(this.hello?.window ?? 1, this.opts.window));
  }

  /** Send queued requests while the window, the byte budget and the barriers allow (SPEC §4.1, §4.3). */
  private pump(): void {
    while (this.queue.length > 0 && !this.closedError) {
      const p = this.queue[0]!;
      if (this.barrierActive) return;
      if (p.barrier) {
        if (this.outstanding.size > 0) return;
      } else {
        if (this.outstanding.size >= this.window) return;
        const size = p.body.length + 16;
        if (this.outstanding.size > 0 && this.inFlightBytes + size > this.opts.maxInFlightBytes) return;
      }
      this.queue.shift();
      p.seq = this.nextSeq;
      this.nextSeq = (this.nextSeq + 1) & 0xffff;
      p.wire = encodeFrame({ ver: PROTO_VERSION, type: p.type, seq: p.seq, flags: 0, body: p.body });
      if (this.hello && p.wire.length > this.hello.maxFrame + Math.ceil(this.hello.maxFrame / 254) + 2) {
        p.reject(new ProtocolError('TOO_LARGE', `${msgTypeName(p.type)} frame of ${p.wire.length} bytes exceeds max_frame ${this.hello.maxFrame}`));
        continue;
      }
      this.outstanding.set(p.seq, p);
      this.inFlightBytes += p.wire.length;
      if (p.barrier) this.barrierActive = true;
      this.transmit(p);
    }
  }

  private transmit(p: Pending): void {
    if (this.closedError || !p.wire) return;
    if (p.attempts > 0 && p.resize && p.resize.units > 1) {
      this.sizeScale = Math.max(1 / 64, this.sizeScale / 2);
      if (p.resize.units > p.resize.step()) {
        // too big for this line: withdraw it, its range goes again in smaller requests (positions make that safe)
        this.counters.splits++;
        this.finish(p);
        p.reject(new SplitRequest());
        return;
      }
    }
    p.attempts++;
    p.sentOrder = ++this.sendCounter;
    if (p.attempts > 1) this.counters.retransmits++;
    this.counters.framesTx++;
    this.counters.bytesTx += p.wire.length;
    this.writesPending++;
    this.armNudge();
    this.stream.write(p.wire, (err) => {
      this.writesPending--;
      if (err) this.disconnect(`write failed: ${err.message}`);
    });
    if (p.timer) clearTimeout(p.timer);
    // line time of what is ahead of this answer in both directions
    const lineMs = this.msPerByte * 2 * (this.inFlightBytes + (this.hello?.maxFrame ?? 256));
    p.timer = setTimeout(() => this.expire(p), p.baseTimeoutMs + lineMs);
  }

  private expire(p: Pending): void {
    p.timer = null;
    if (this.outstanding.get(p.seq) !== p) return;
    this.counters.timeouts++;
    p.expiries++;
    if (p.expiries < p.maxExpiries) {
      this.log.debug?.({ type: msgTypeName(p.type), seq: p.seq, attempt: p.attempts + 1 }, 'retransmit after time-out');
      this.transmit(p);
      return;
    }
    this.finish(p);
    p.reject(new TimeoutError(`${msgTypeName(p.type)} seq ${p.seq}: no answer after ${p.attempts} attempt(s)`, p.attempts));
  }

  private finish(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
    this.outstanding.delete(p.seq);
    this.inFlightBytes -= p.wire?.length ?? 0;
    if (p.barrier) this.barrierActive = false;
    if (p.attempts === 1) this.sizeScale = Math.min(1, this.sizeScale + 1 / 32);
    queueMicrotask(() => {
      this.pump();
      while (this.roomWaiters.length > 0 && this.queue.length + this.outstanding.size < this.window) this.roomWaiters.shift()!();
    });
  }

  private onFrame(encoded: Uint8Array): void {
    let f: Frame;
    try {
      f = decodeRaw(cobsDecode(encoded));
    } catch (err) {
      if (err instanceof ProtocolError && err.code === 'BAD_CRC') this.counters.crcErrors++;
      else this.counters.badFrames++;
      // the device answers in order, so a damaged frame was most likely the oldest request's answer
      this.resendOldest('damaged frame from the device');
      return;
    }
    this.counters.framesRx++;
    if (f.ver !== PROTO_VERSION) {
      this.counters.badFrames++;
      return;
    }
    if (f.flags & Flags.DEV) return this.onDeviceFrame(f);
    if (!(f.flags & Flags.RESP)) {
      this.counters.badFrames++;
      return;
    }
    const p = this.outstanding.get(f.seq);
    if (!p || (f.type !== p.type && f.type !== MsgType.ERROR)) {
      this.counters.lateResponses++;
      return;
    }
    this.finish(p);
    // the device answers in arrival order: anything sent before this request and still unanswered lost its answer
    for (const q of this.outstanding.values()) {
      if (q.sentOrder < p.sentOrder && q.retransmit) {
        this.log.debug?.({ type: msgTypeName(q.type), seq: q.seq }, 'retransmit: a later request was answered first');
        this.transmit(q);
      }
    }
    if (f.type === MsgType.ERROR && p.type !== MsgType.ERROR) {
      let e: Record<string, unknown>;
      try {
        e = decodeDeviceBody(MsgType.ERROR, f.body);
      } catch (err) {
        p.reject(err as Error);
        return;
      }
      const code = num(e.code);
      p.reject(
        new DeviceError(
          code,
          (e.name as string) || errorCodeName(code),
          e.detail === undefined ? undefined : num(e.detail),
          e.message as string | undefined,
          msgTypeName(p.type),
        ),
      );
      return;
    }
    try {
      p.resolve(decodeResponse(p.type, f.body));
    } catch (err) {
      p.reject(err as Error);
    }
  }

  private resendOldest(why: string): void {
    let oldest: Pending | undefined;
    for (const p of this.outstanding.values()) if (!oldest || p.sentOrder < oldest.sentOrder) oldest = p;
    if (!oldest?.retransmit) return;
    this.log.debug?.({ type: msgTypeName(oldest.type), seq: oldest.seq, why }, 'retransmit oldest');
    this.transmit(oldest);
  }

  private onDeviceFrame(f: Frame): void {
    let b: Record<string, unknown>;
    try {
      b = decodeDeviceBody(f.type, f.body);
    } catch {
      this.counters.badFrames++;
      return;
    }
    if (f.type === MsgType.NAK) {
      this.counters.naks++;
      if (b.seq === undefined) return this.resendOldest('NAK');
      const target = this.outstanding.get(num(b.seq));
      if (target?.retransmit) {
        this.log.debug?.({ type: msgTypeName(target.type), seq: target.seq }, 'retransmit after NAK');
        this.transmit(target);
      }
      return;
    }
    if (f.type === MsgType.LOG) {
      const log: DeviceLog = { level: num(b.level), text: b.text as string };
      this.emit('log', log);
      return;
    }
    if (f.type === MsgType.EVENT) {
      const ev: DeviceEvent = { kind: num(b.kind), kindName: eventKindName(num(b.kind)) };
      if (b.text !== undefined) ev.text = b.text as string;
      this.emit('event', ev);
      // a board that restarted on its own: learn its new boot id (emits 'reset')
      if (ev.kind === EventKind.BOOT && this.hello && !this.closedError) this.rehello().catch(() => undefined);
    }
  }

  /**
   * Work-around for @serialport/bindings-cpp 13 on Linux: when a write waits
   * on EAGAIN, its poller re-arms only UV_WRITABLE and stops reporting
   * readable, so a board blocked writing its answers to us never drains our
   * write (full-duplex stall). The byte budget keeps writes small enough not
   * to block; if one still waits, re-arming UV_READABLE | UV_WRITABLE lets
   * reads go on without losing the writable wait. Measured over a PTY to the
   * twin (max_frame 16384, window 32, reads and samples at once): 3 of 8 runs
   * stalled with neither guard, 0 of 8 with either.
   */
  private armNudge(): void {
    if (this.nudgeTimer || !this.opts.readNudge) return;
    this.nudgeTimer = setInterval(() => {
      if (this.writesPending === 0 || this.closedError) {
        clearInterval(this.nudgeTimer!);
        this.nudgeTimer = null;
        return;
      }
      const poller = (this.stream as unknown as { port?: { poller?: { poll?(flags: number): void } } }).port?.poller;
      try {
        poller?.poll?.(0b0011);
      } catch {
        // a poller of a closed port
      }
    }, 20);
    this.nudgeTimer.unref?.();
  }

  private disconnect(reason: string): void {
    if (this.closedError) return;
    this.log.warn?.({ reason }, 'link lost');
    this.detach(new DisconnectedError(reason));
    this.emit('disconnect', reason);
  }

  private detach(err: DisconnectedError): void {
    if (this.closedError) return;
    this.closedError = err;
    this.stream.off('data', this.onData);
    this.stream.off('close', this.onClose);
    this.stream.off('end', this.onEnd);
    // keep an error listener: an error after we leave must not crash the process
    this.stream.off('error', this.onError);
    this.stream.on('error', () => undefined);
    if (this.nudgeTimer) clearInterval(this.nudgeTimer);
    this.nudgeTimer = null;
    const all = [...this.outstanding.values(), ...this.queue];
    this.outstanding.clear();
    this.queue.length = 0;
    this.inFlightBytes = 0;
    this.barrierActive = false;
    for (const p of all) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    for (const w of this.roomWaiters.splice(0)) w();
  }
}
