// BoardSession against the real host twin over a real PTY: handshake, sample
// streaming, weights write/commit/read-back, exactly-once TRAIN, RESET, lost
// frames (retransmit, NAK on a gap), raw garbage on the line, a bulk
// full-duplex transfer, and a twin that dies mid-request.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import type { SerialPort } from 'serialport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BoardSession,
  DeviceError,
  DisconnectedError,
  ErrorCode,
  Flags,
  FrameSplitter,
  MsgType,
  cobsEncode,
  decodeFrame,
  decodeMessage,
  encodeFrame,
  encodeRaw,
  encodeRequest,
  type Frame,
} from '../../protocol/src/index.js';
import { closeSerial, openSerial, writeRaw } from '../helpers/serial.js';
import { fillBytes, modelBlob, requireEngine, TwinSessions, type TwinSession } from '../helpers/twin-session.js';
import { TwinProcess, type TwinOptions } from '../../tools/proc/twin.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
let dir = '';

const model = (name: string, input?: string): Uint8Array => modelBlob(dir, name, input);

const twins = new TwinSessions();
const rig = (opts: TwinOptions = {}, sessionOpts: Parameters<typeof BoardSession.open>[1] = {}): Promise<TwinSession> =>
  twins.open(opts, sessionOpts);
const fill = fillBytes;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-proto-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => twins.closeAll());

/** A Duplex in front of a port that can drop chosen outgoing frames (a lossy cable, host side). */
class DroppingLink extends Duplex {
  lose: (f: Frame) => boolean = () => false;
  dropped: Frame[] = [];
  private readonly split: FrameSplitter;
  constructor(private readonly port: SerialPort) {
    super();
    port.on('data', (d: Buffer) => this.push(d));
    port.on('close', () => this.destroy());
    this.split = new FrameSplitter((enc) => {
      const f = decodeFrame(enc);
      if (this.lose(f)) this.dropped.push(f);
      else this.port.write(Buffer.from(cobsEncode(encodeRaw(f), true)));
    });
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.split.push(chunk);
    cb();
  }
}

/** Raw frames the device sends back after `bytes` (no session on the port). */
async function rawExchange(port: SerialPort, bytes: Uint8Array, want: number, ms = 2000): Promise<Frame[]> {
  const got: Frame[] = [];
  const split = new FrameSplitter((e) => got.push(decodeFrame(e)));
  const onData = (d: Buffer): void => split.push(d);
  port.on('data', onData);
  await writeRaw(port, bytes);
  const end = Date.now() + ms;
  while (got.length < want && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  port.off('data', onData);
  return got;
}

describe('BoardSession over a PTY to the host twin', () => {
  it('handshakes and reports what the twin was started with', async () => {
    const { session } = await rig({ window: 3, maxFrame: 1024, bootId: 4242, board: 'proto-test' });
    expect(session.hello).toMatchObject({ proto: 1, board: 'proto-test', window: 3, maxFrame: 1024, bootId: 4242, counter: 'ns' });
    for (const k of ['sampleSlots', 'arenaBytes', 'blobMax', 'maxTrain', 'clockHz', 'ramBytes'] as const) expect(session.hello[k]).toBeGreaterThan(0);
    expect(typeof session.hello.engine).toBe('boolean');
    const echo = await session.ping(Uint8Array.of(0, 1, 0, 255));
    expect([...echo.data]).toEqual([0, 1, 0, 255]);
    expect(session.counters.framesTx).toBe(session.counters.framesRx);
  });

  it('streams samples split to max_frame and the device holds each one', async () => {
    const { session } = await rig({ maxFrame: 2048 });
    const count = Math.min(100, session.hello.sampleSlots);
    const r = await session.sendSamples(0, 784, fill(count, 1).map((b) => b % 10), fill(count * 784, 2));
    expect(r.count).toBe(count);
    expect(r.frames).toBe(Math.ceil(count / 2)); // two 785-byte samples fit 2048 with the overhead
    const st = await session.stats();
    expect(st.samplesHeld).toBe(count);
    expect(st.framesBad).toBe(0);
  });

  it('refuses a sample that cannot fit a frame, before sending it', async () => {
    const { session } = await rig({ maxFrame: 512 });
    await expect(session.sendSamples(0, 600, Uint8Array.of(1), new Uint8Array(600))).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect(session.counters.framesTx).toBe(1); // the HELLO only
  });

  it('loads a model, writes weights, commits and reads them back with the same SHA-256', async () => {
    const { session } = await rig();
    const blob = model('cnn');
    if (!session.hello.engine) {
      await expect(session.loadModel(blob)).rejects.toBeInstanceOf(DeviceError);
      return;
    }
    const info = await session.loadModel(blob);
    expect(info.modelSha256).toBe(sha(blob));
    expect(info.inputBytes).toBe(784);
    expect(info.classes).toBe(10);
    const live = await session.readWeights();
    expect(live.sha256).toBe(info.weightsSha256);
    expect(sha(live.bytes)).toBe(live.sha256);
    // a changed weight (bias bytes of the last layer are safe to nudge) makes a new snapshot
    const changed = live.bytes.slice();
    changed[changed.length - 1] ^= 1;
    const w = await session.writeWeights(changed);
    expect(w).toEqual({ sha256: sha(changed), weightsBytes: changed.length });
    const back = await session.readWeights();
    expect(Buffer.from(back.bytes).equals(Buffer.from(changed))).toBe(true);
    expect(back.modelSha256).toBe(sha(blob));
    // a commit is idempotent: writing the same blob again answers the same
    expect(await session.writeWeights(changed)).toEqual(w);
    // a blob of the wrong size is refused and the live weights stay
    await expect(session.writeWeights(changed.subarray(0, 640))).rejects.toMatchObject({ code: ErrorCode.BAD_WEIGHTS, codeName: 'BAD_WEIGHTS' });
    expect((await session.weightsInfo()).sha256).toBe(sha(changed));
  });

  it('applies a TRAIN exactly once: the same stepId again is a duplicate', async () => {
    const { session } = await rig();
    if (!session.hello.engine) {
      const err = await session.train({ stepId: 1, index: 0, count: 1, lrPpm: 10_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeviceError);
      expect((err as DeviceError).codeName).toMatch(/NOT_SUPPORTED|NO_MODEL/);
      return;
    }
    await expect(session.train({ stepId: 1, index: 0, count: 1, lrPpm: 10_000 })).rejects.toMatchObject({ codeName: 'NO_MODEL' });
    await session.loadModel(model('cnn'));
    await session.sendSamples(0, 784, Uint8Array.of(3, 7, 1, 0), fill(4 * 784, 5));
    const first = await session.train({ stepId: 10, index: 0, count: 4, lrPpm: 20_000 });
    expect(first).toMatchObject({ stepId: 10, duplicate: false, stepsApplied: 4 });
    expect(first.records).toHaveLength(4);
    for (const r of first.records) {
      expect(r.lossPpm).toBeGreaterThan(0);
      expect(r.peakRam).toBeGreaterThan(0);
      expect(typeof r.correct).toBe('boolean');
    }
    const w1 = await session.weightsInfo();
    const again = await session.train({ stepId: 10, index: 0, count: 4, lrPpm: 20_000 });
    expect(again).toMatchObject({ stepId: 10, duplicate: true, stepsApplied: 4 });
    expect(again.records).toEqual(first.records);
    expect((await session.weightsInfo()).sha256).toBe(w1.sha256);
    const next = await session.train({ stepId: 11, index: 1, count: 1, lrPpm: 20_000 });
    expect(next).toMatchObject({ duplicate: false, stepsApplied: 5 });
    const ev = await session.evaluate(0, 4);
    expect(ev.count).toBe(4);
    expect(ev.correct).toBeLessThanOrEqual(4);
    const inf = await session.infer(fill(784, 9));
    expect(inf.logits).toHaveLength(10);
    expect(inf.class).toBeLessThan(10);
    const st = await session.stats();
    expect(st).toMatchObject({ stepsApplied: 5, lastStepId: 11, samplesHeld: 4 });
  });

  it('RESET gives a new boot id and a reset event', async () => {
    const { session } = await rig();
    const before = session.hello.bootId;
    const resets: unknown[] = [];
    session.on('reset', (r) => resets.push(r));
    const h = await session.reset();
    expect(h.bootId).not.toBe(before);
    expect(session.hello.bootId).toBe(h.bootId);
    expect(resets).toEqual([{ previousBootId: before, hello: h }]);
    expect((await session.stats()).samplesHeld).toBe(0);
  });

  it('retransmits a lost request with the same seq, after a NAK on the gap or a time-out', async () => {
    const twin = await TwinProcess.start({ quiet: true, window: 4, maxFrame: 1024 });
    const port = await openSerial(twin.path);
    const link = new DroppingLink(port);
    let session: BoardSession | null = null;
    try {
      session = await BoardSession.open(link, { timeoutMs: 300 });
      // lose the first transmission of the second SAMPLES frame: the third arrives, the device NAKs the gap
      const seen = new Map<number, number>();
      link.lose = (f) => {
        if (f.type !== MsgType.SAMPLES) return false;
        const n = (seen.get(f.seq) ?? 0) + 1;
        seen.set(f.seq, n);
        return n === 1 && [...seen.keys()].sort((a, b) => a - b).indexOf(f.seq) === 1;
      };
      const count = 8;
      await session.sendSamples(0, 784, new Uint8Array(count), fill(count * 784, 3));
      expect(link.dropped).toHaveLength(1);
      expect(seen.get(link.dropped[0]!.seq)).toBe(2); // sent again with the same seq
      expect(session.counters.retransmits).toBeGreaterThanOrEqual(1);
      expect((await session.stats()).samplesHeld).toBe(count);
      // a lone request lost on the way is sent again after its time-out
      let lose = 1;
      link.lose = (f) => f.type === MsgType.STATS && lose-- > 0;
      const t0 = performance.now();
      await session.stats();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
      expect(session.counters.timeouts).toBeGreaterThanOrEqual(1);
    } finally {
      session?.close();
      await closeSerial(port);
      await twin.stop();
    }
  });

  it('the device NAKs garbage and corrupt frames, answers ERROR to bad ones, and keeps serving', async () => {
    const twin = await TwinProcess.start({ quiet: true });
    const port = await openSerial(twin.path);
    try {
      const good = encodeFrame({ ver: 1, type: MsgType.PING, seq: 7, flags: 0, body: encodeRequest(MsgType.PING, { data: Uint8Array.of(1, 2, 3) }) });
      const corrupt = good.slice();
      corrupt[7] ^= 0x10;
      let got = await rawExchange(port, corrupt, 1);
      expect(got.map((f) => [f.type, f.flags])).toEqual([[MsgType.NAK, Flags.DEV]]);
      got = await rawExchange(port, Uint8Array.of(0x13, 0x37, 0xfe, 0x99, 0x42, 0x00), 1);
      expect(got[0]?.type).toBe(MsgType.NAK);
      // valid CRC, unknown type: ERROR with the request's seq
      got = await rawExchange(port, encodeFrame({ ver: 1, type: 0x60, seq: 8, flags: 0, body: new Uint8Array(0) }), 1);
      expect(got[0]).toMatchObject({ type: MsgType.ERROR, seq: 8, flags: Flags.RESP });
      expect(decodeMessage(encodeFrame(got[0]!)).values).toMatchObject({ code: ErrorCode.UNKNOWN_TYPE, name: 'UNKNOWN_TYPE' });
      // a body missing a required key: BAD_BODY
      got = await rawExchange(port, encodeFrame({ ver: 1, type: MsgType.EVAL, seq: 9, flags: 0, body: Uint8Array.of(0xa1, 0x01, 0x00) }), 1);
      expect(decodeMessage(encodeFrame(got[0]!)).values).toMatchObject({ code: ErrorCode.BAD_BODY });
      // and the same port still serves a session
      const session = await BoardSession.open(port);
      const st = await session.stats();
      expect(st.framesBad).toBeGreaterThanOrEqual(2);
      session.close();
    } finally {
      await closeSerial(port);
      await twin.stop();
    }
  });

  it('reads a large weights blob while samples stream the other way, full duplex over the PTY', async () => {
    // big frames and a wide window: without the session's guards this stalls in
    // @serialport/bindings-cpp 13 in about one run of three (see protocol/src/session/serial-poller.ts)
    const { session } = await rig({ maxFrame: 16_384, window: 32 });
    requireEngine(session);
    const blob = model('mlp', '48x48x1'); // ~150 KB of weights
    const info = await session.loadModel(blob);
    expect(info.weightsBytes).toBeGreaterThan(100_000);
    const sampleBytes = info.inputBytes;
    const count = session.hello.sampleSlots;
    const labels = fill(count, 11).map((b) => b % 10);
    const data = fill(count * sampleBytes, 12);
    const t0 = performance.now();
    const rounds = 3;
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < rounds; i++) {
      work.push(session.readWeights());
      work.push(session.sendSamples(0, sampleBytes, labels, data));
    }
    const results = await Promise.all(work);
    const ms = performance.now() - t0;
    for (let i = 0; i < rounds; i++) expect((results[2 * i] as { sha256: string }).sha256).toBe(info.weightsSha256);
    const moved = rounds * (info.weightsBytes + count * (sampleBytes + 1));
    console.log(JSON.stringify({ fullDuplexBytes: moved, ms: Math.round(ms), mbPerS: +(moved / 1e3 / ms).toFixed(2) }));
    expect((await session.stats()).samplesHeld).toBe(count);
    expect(session.counters.timeouts).toBe(0);
  });

  it('rejects everything outstanding with DisconnectedError when the board goes away', async () => {
    const { session, twin } = await rig();
    const gone: string[] = [];
    session.on('disconnect', (why: string) => gone.push(why));
    const pending = session.sendSamples(0, 784, new Uint8Array(200), fill(200 * 784, 4)).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 5));
    twin.child!.kill('SIGKILL');
    const err = await pending;
    // a transfer that finished before the kill is fine too; anything else must be a DisconnectedError
    if (err !== undefined && !(err && typeof err === 'object' && 'count' in err)) expect(err).toBeInstanceOf(DisconnectedError);
    await expect(session.stats()).rejects.toBeInstanceOf(DisconnectedError);
    expect(gone.length).toBe(1);
  });
});
