// A host-side session with one board over any byte stream (a serialport
// SerialPort, a PTY, a socket): the HELLO handshake and the typed requests of
// SPEC §3, each one or more requests through the window (window.ts), the large
// ones as pipelined transfers (transfers.ts).
import type { Duplex } from 'node:stream';
import { MsgType, PROTO_VERSION } from '../constants.js';
import { DisconnectedError, ProtocolError, TimeoutError } from '../errors.js';
import { decodeTrainRecords, decodeUintArray } from '../messages.js';
import { hex, num, sha256 } from './fields.js';
import { readWeightBytes, sendSampleFrames, stageBlob } from './transfers.js';
import type {
  BoardLink,
  DeviceStats,
  EvalOptions,
  EvalResult,
  HelloInfo,
  InferResult,
  ModelInfo,
  SamplesResult,
  SessionOptions,
  TrainRequest,
  TrainResult,
  WeightsCommit,
  WeightsInfo,
  WeightsRead,
} from './types.js';
import { RequestWindow } from './window.js';

export class BoardSession extends RequestWindow implements BoardLink {
  /** What the board said in its last HELLO. */
  hello!: HelloInfo;

  private readonly timeoutMs: number;
  private readonly helloIntervalMs: number;
  private readonly helloTimeoutMs: number;
  private readonly msPerSample: number;
  private rehelloing: Promise<HelloInfo> | null = null;

  private constructor(stream: Duplex, opts: SessionOptions) {
    const timeoutMs = opts.timeoutMs ?? opts.requestTimeoutMs ?? 1000;
    const baud = opts.baudRate ?? (stream as unknown as { baudRate?: unknown }).baudRate;
    super(stream, {
      timeoutMs,
      retries: opts.retries ?? 8,
      maxInFlightBytes: opts.maxInFlightBytes ?? 16_384,
      window: opts.window ?? 64,
      readNudge: opts.readNudge ?? true,
      msPerByte: typeof baud === 'number' && baud > 0 ? 10_000 / baud : 0,
      log: opts.log ?? {},
      label: opts.label ?? 'stream',
      closeStream: opts.closeStream,
    });
    this.timeoutMs = timeoutMs;
    this.helloIntervalMs = opts.helloIntervalMs ?? 250;
    this.helloTimeoutMs = opts.helloTimeoutMs ?? 15_000;
    this.msPerSample = opts.msPerSample ?? 250;
  }

  /**
   * Open a session: HELLO until answered (SPEC §4.4), then the board's limits
   * apply. The caller keeps owning the stream unless it passes `closeStream`:
   * close() detaches, it does not close the port.
   */
  static async open(stream: Duplex, opts: SessionOptions = {}): Promise<BoardSession> {
    const s = new BoardSession(stream, opts);
    try {
      await s.handshake();
    } catch (err) {
      await s.abandon(err instanceof DisconnectedError ? err : new DisconnectedError('handshake failed'));
      throw err;
    }
    return s;
  }

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
    const digest = await stageBlob(this, MsgType.MODEL_BEGIN, MsgType.MODEL_CHUNK, blob);
    const r = await this.request(MsgType.MODEL_COMMIT, { sha256: digest }, { barrier: true });
    return {
      weightsSha256: hex(r.sha256),
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
    const digest = await stageBlob(this, MsgType.WEIGHTS_BEGIN, MsgType.WEIGHTS_CHUNK, blob);
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
    const bytes = await readWeightBytes(this, info.weightsBytes);
    const got = hex(sha256(bytes));
    if (got !== info.sha256) throw new ProtocolError('HASH_MISMATCH', `weights read back hash to ${got}, the device said ${info.sha256}`);
    return { ...info, bytes };
  }

  /** Store labelled samples `index …` in as many pipelined SAMPLES frames as max_frame needs. */
  async sendSamples(index: number, sampleBytes: number, labels: Uint8Array, data: Uint8Array): Promise<SamplesResult> {
    const frames = await sendSampleFrames(this, index, sampleBytes, labels, data);
    return { count: labels.length, frames };
  }

  /** One TRAIN (a barrier); retransmits are safe: the device deduplicates by stepId. */
  async train(req: TrainRequest): Promise<TrainResult> {
    const r = await this.request(MsgType.TRAIN, { ...req }, { barrier: true, timeoutMs: this.workTimeout(req.count) });
    return {
      stepId: num(r.stepId),
      duplicate: r.duplicate === true,
      stepsApplied: num(r.stepsApplied),
      records: decodeTrainRecords(r.records),
      ...(r.fault === undefined ? {} : { fault: num(r.fault) }),
    };
  }

  /**
   * EVAL over held samples `index … index + count − 1` (a barrier; it only reads).
   * With `predictions` the result also has each sample's predicted class and
   * loss, unless the firmware predates them (then both are absent).
   */
  async evaluate(index: number, count: number, opts: EvalOptions = {}): Promise<EvalResult> {
    const predictions = opts.predictions === true;
    // false is left out, so the request is byte for byte what a host without the key sends
    const values = predictions ? { index, count, predictions } : { index, count };
    const r = await this.request(MsgType.EVAL, values, { barrier: true, timeoutMs: this.workTimeout(count) });
    const result: EvalResult = { count: num(r.count), correct: num(r.correct), lossPpmSum: num(r.lossPpmSum), counter: num(r.counter) };
    if (!predictions || (r.predicted === undefined && r.lossPpm === undefined)) return result;
    if (r.predicted === undefined || r.lossPpm === undefined) throw new ProtocolError('BAD_BODY', 'EVAL answer has only one of predicted and loss_ppm');
    return { ...result, predicted: decodeUintArray(r.predicted, result.count, 'EVAL predicted'), lossPpm: decodeUintArray(r.lossPpm, result.count, 'EVAL loss_ppm') };
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
      ...(r.storedSeq === undefined ? {} : { storedSeq: num(r.storedSeq), storeFaults: num(r.storeFaults ?? 0) }),
    };
  }

  /** A board that restarted on its own: learn its new boot id (emits 'reset'). */
  protected override onBootEvent(): void {
    if (this.hello) this.rehello().catch(() => undefined);
  }

  private workTimeout(count: number): number {
    return this.timeoutMs + Math.max(1, count) * this.msPerSample;
  }

  private async handshake(): Promise<HelloInfo> {
    const attempts = Math.max(1, Math.ceil(this.helloTimeoutMs / this.helloIntervalMs));
    let r: Record<string, unknown>;
    try {
      r = await this.request(MsgType.HELLO, {}, { barrier: true, timeoutMs: this.helloIntervalMs, retries: attempts - 1 });
    } catch (err) {
      if (err instanceof TimeoutError) throw new TimeoutError(`no HELLO answer within ${this.helloTimeoutMs} ms`, err.attempts);
      throw err;
    }
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
      watchdogMs: r.watchdogMs === undefined ? 0 : num(r.watchdogMs),
      ...(r.storedLoaded === undefined ? {} : { storedLoaded: num(r.storedLoaded) }),
    };
    if (h.proto !== PROTO_VERSION) throw new ProtocolError('BAD_VERSION', `board speaks protocol ${h.proto}, host ${PROTO_VERSION}`);
    if (h.window < 1 || h.maxFrame < 64) throw new ProtocolError('BAD_BODY', `HELLO window ${h.window}, max_frame ${h.maxFrame}`);
    const previous = this.hello;
    this.hello = h;
    this.setPeerLimits(h.window, h.maxFrame);
    if (previous && previous.bootId !== h.bootId) {
      this.log.info?.({ previous: previous.bootId, bootId: h.bootId }, 'board reset');
      this.emit('reset', { previousBootId: previous.bootId, hello: h });
    }
    this.pump();
    return h;
  }
}
