// The window of outstanding requests over one byte stream (SPEC §4.1–§4.3):
// frames out and in, per-request time-outs, retransmits of the same seq, NAKs,
// barriers, the in-flight byte budget, and a typed error for a lost stream.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { EventKind, Flags, MsgType, PROTO_VERSION, errorCodeName, eventKindName, msgTypeName } from '../constants.js';
import { cobsDecode } from '../cobs.js';
import { DeviceError, DisconnectedError, ProtocolError, TimeoutError } from '../errors.js';
import { decodeRaw, encodeFrame, FrameSplitter, type Frame } from '../frame.js';
import { decodeDeviceBody, decodeResponse, encodeRequest } from '../messages.js';
import { num } from './fields.js';
import { ReadNudge } from './serial-poller.js';
import type { DeviceEvent, DeviceLog, LinkCounters, SessionLogger } from './types.js';

/** A pipelined request's units and the size the line allows now; a retransmit above it is split instead. */
export interface Resize {
  units: number;
  step: () => number;
}

export interface RequestOptions {
  resize?: Resize;
  barrier?: boolean;
  retransmit?: boolean;
  timeoutMs?: number;
  retries?: number;
}

/** A pipelined request withdrawn before a retransmit so its range goes again in smaller pieces. */
export class SplitRequest extends Error {}

export interface WindowOptions {
  timeoutMs: number;
  retries: number;
  maxInFlightBytes: number;
  /** Upper bound on the window the board grants. */
  window: number;
  readNudge: boolean;
  /** Line time of one byte, 0 when the rate is unknown. */
  msPerByte: number;
  log: SessionLogger;
  label: string;
  closeStream?: () => Promise<void>;
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
  resize?: Resize;
  resolve(v: Record<string, unknown>): void;
  reject(e: Error): void;
}

export class RequestWindow extends EventEmitter {
  /** Host-side link counters (live object). */
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

  protected readonly log: SessionLogger;
  private readonly stream: Duplex;
  private readonly opts: WindowOptions;
  private closeStream: (() => Promise<void>) | undefined;
  private readonly splitter: FrameSplitter;
  private readonly nudge: ReadNudge;
  private readonly queue: Pending[] = [];
  private readonly outstanding = new Map<number, Pending>();
  private readonly roomWaiters: (() => void)[] = [];
  /** The board's window and max_frame once HELLO answered; until then one request at a time. */
  private peer: { window: number; maxFrame: number } | null = null;
  private nextSeq = 1;
  private sendCounter = 0;
  private inFlightBytes = 0;
  private barrierActive = false;
  private closedError: DisconnectedError | null = null;
  /** Fraction of the full frame size pipelined transfers use: halved on each retransmit, grown back on clean answers. */
  private sizeScale = 1;
  private readonly onData = (chunk: Buffer): void => {
    this.counters.bytesRx += chunk.length;
    this.splitter.push(chunk);
  };
  private readonly onClose = (err?: { disconnected?: boolean } | null): void =>
    this.disconnect(`${this.opts.label} ${err?.disconnected ? 'disconnected' : 'closed'}`);
  private readonly onEnd = (): void => this.disconnect(`${this.opts.label} ended`);
  private readonly onError = (err: Error): void => this.disconnect(`${this.opts.label} error: ${err.message}`);

  protected constructor(stream: Duplex, opts: WindowOptions) {
    super();
    this.stream = stream;
    this.opts = opts;
    this.log = opts.log;
    this.closeStream = opts.closeStream;
    this.nudge = new ReadNudge(stream, opts.readNudge);
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

  /** Alias of `counters`. */
  get linkStats(): LinkCounters {
    return this.counters;
  }

  /** True once the stream is gone or close() was called. */
  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Fraction of the full frame size the line carries cleanly now (1 on a clean line, down to 1/64). */
  get lineScale(): number {
    return this.sizeScale;
  }

  /**
   * Send one request and wait for its response body (decoded by name). The
   * low-level entry point; the typed requests are built on it.
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

  /** Resolves when one more request can go into the window without queueing. */
  room(): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.queue.length + this.outstanding.size < this.window) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /**
   * Stop using the stream: every outstanding request fails with
   * DisconnectedError. The stream stays open unless it was handed over
   * (`closeStream`).
   */
  async close(): Promise<void> {
    this.detach(new DisconnectedError('session closed'));
    await this.releaseStream();
  }

  /** The board's limits from its HELLO; call pump() once listeners have heard of the new HELLO. */
  protected setPeerLimits(window: number, maxFrame: number): void {
    this.peer = { window, maxFrame };
  }

  /** A device EVENT BOOT arrived (after the 'event' listeners ran). */
  protected onBootEvent(): void {}

  /** Detach, then end a handed-over stream: for an open() that failed. */
  protected async abandon(err: DisconnectedError): Promise<void> {
    this.detach(err);
    await this.releaseStream();
  }

  private get window(): number {
    return Math.max(1, Math.min(this.peer?.window ?? 1, this.opts.window));
  }

  /** Send queued requests while the window, the byte budget and the barriers allow (SPEC §4.1, §4.3). */
  protected pump(): void {
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
      if (this.peer && p.wire.length > this.peer.maxFrame + Math.ceil(this.peer.maxFrame / 254) + 2) {
        p.reject(new ProtocolError('TOO_LARGE', `${msgTypeName(p.type)} frame of ${p.wire.length} bytes exceeds max_frame ${this.peer.maxFrame}`));
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
    this.nudge.writeStarted();
    this.stream.write(p.wire, (err) => {
      this.nudge.writeDone();
      if (err) this.disconnect(`write failed: ${err.message}`);
    });
    if (p.timer) clearTimeout(p.timer);
    // line time of what is ahead of this answer in both directions
    const lineMs = this.opts.msPerByte * 2 * (this.inFlightBytes + (this.peer?.maxFrame ?? 256));
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
      if (ev.kind === EventKind.BOOT && !this.closedError) this.onBootEvent();
    }
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
    this.nudge.stop();
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

  private async releaseStream(): Promise<void> {
    const end = this.closeStream;
    this.closeStream = undefined;
    await end?.();
  }
}
