// The protocol session against the real host twin through the real link
// simulator: line rates, every byte exactly once under corruption, exactly-once
// TRAIN on a lossy line, and a cable pulled mid-transfer.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readIdxGz } from '../../server/src/datasets/idx.js';
import { DisconnectedError } from '../../protocol/src/index.js';
import { boardOnLine, buildModel, requireBinaries, type BoardOnLine } from './board-on-line.js';

const SAMPLE = 784;
let dir = '';
let images: Uint8Array;
let labels: Uint8Array;
const boards: BoardOnLine[] = [];

beforeAll(() => {
  requireBinaries();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-link-'));
  const img = readIdxGz('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz');
  const lbl = readIdxGz('/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz');
  images = img.data.subarray(0, 200 * SAMPLE);
  labels = lbl.data.subarray(0, 200);
  return () => fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  while (boards.length) await boards.pop()!.stop().catch(() => undefined);
});

let n = 0;
async function board(line: Parameters<typeof boardOnLine>[2]): Promise<BoardOnLine> {
  const b = await boardOnLine(dir, `board${n++}`, line);
  boards.push(b);
  return b;
}

const samples = (count: number) => ({ labels: labels.subarray(0, count), data: images.subarray(0, count * SAMPLE) });

/** A weights blob the live model accepts: with the engine, the model's own weights (read back clean). */
async function validWeights(b: BoardOnLine): Promise<Uint8Array> {
  await b.session.loadModel(buildModel(dir));
  const w = await b.session.readWeights();
  return new Uint8Array(w.bytes);
}

describe('session through the link simulator', () => {
  it('streams samples at the line rate: 921600 baud is about 8x faster than 115200', async () => {
    const count = 40; // ~31 KB: ~2.7 s at 115200
    const ms: number[] = [];
    for (const baud of [115200, 921600]) {
      const b = await board({ baud });
      const s = samples(count);
      const t0 = performance.now();
      await b.session.sendSamples(0, SAMPLE, s.labels, s.data);
      ms.push(performance.now() - t0);
      const st = await b.session.stats();
      expect(st.samplesHeld).toBeGreaterThanOrEqual(Math.min(count, b.session.hello.sampleSlots));
    }
    const ratio = ms[0]! / ms[1]!;
    expect(ratio).toBeGreaterThan(8 * 0.7);
    expect(ratio).toBeLessThan(8 * 1.3);
    // never faster than the payload alone allows at 115200
    expect(ms[0]!).toBeGreaterThan(((count * (SAMPLE + 1)) / 11520) * 1000);
  });

  it('weights write, commit and read-back under 1 % byte corruption deliver every byte exactly once', async () => {
    const b = await board({ baud: 921600, seed: 11 });
    const blob = await validWeights(b);
    b.sim.set('corrupt', 0.01);
    const before = b.session.counters.retransmits;
    const wr = await b.session.writeWeights(blob);
    const want = createHash('sha256').update(blob).digest('hex');
    expect(wr.sha256).toBe(want);
    const rd = await b.session.readWeights();
    expect(Buffer.from(rd.bytes).equals(Buffer.from(blob))).toBe(true);
    expect(rd.sha256).toBe(want);
    const line = await b.sim.stats();
    expect(line.corrupted).toBeGreaterThan(0);
    expect(b.session.counters.retransmits - before).toBeGreaterThan(0);
  });

  // A sample is never split across frames, so a 784-byte sample frame survives
  // 1 % byte corruption only 0.03 % of the time: 0.1 % (45 % of frames intact) is
  // the harshest line on which streaming still makes progress.
  it('sample streaming under 0.1 % byte corruption stores every sample exactly as sent', async () => {
    const b = await board({ baud: 921600, seed: 12 });
    const count = Math.min(150, b.session.hello.sampleSlots);
    const s = samples(count);
    const engine = b.session.hello.engine;
    expect(engine).toBeTruthy();
    await b.session.loadModel(buildModel(dir));
    b.sim.set('corrupt', 0.001);
    await b.session.sendSamples(0, SAMPLE, s.labels, s.data);
    b.sim.set('corrupt', 0);
    const st = await b.session.stats();
    expect(st.samplesHeld).toBe(count);
    expect(st.framesBad).toBeGreaterThan(0);
    expect(b.session.counters.retransmits).toBeGreaterThan(0);
    // the same evaluation as after a clean resend: any damaged byte would change the loss sum
    const evalAll = async () => {
      const out = [];
      for (let i = 0; i < count; i += b.session.hello.maxTrain) {
        // the counter is the twin's wall clock; everything else is a function of the bytes
        const { counter: _c, ...learned } = await b.session.evaluate(i, Math.min(b.session.hello.maxTrain, count - i));
        out.push(learned);
      }
      return out;
    };
    const lossy = await evalAll();
    await b.session.sendSamples(0, SAMPLE, s.labels, s.data);
    const clean = await evalAll();
    expect(lossy).toEqual(clean);
  });

  it('TRAIN is applied exactly once through a lossy line', async () => {
    const lossy = await board({ baud: 921600, seed: 13 });
    expect(lossy.session.hello.engine).toBeTruthy();
    const clean = await board({ baud: 921600 });
    const steps = 12;
    const s = samples(steps);
    for (const b of [clean, lossy]) {
      await b.session.loadModel(buildModel(dir));
      await b.session.sendSamples(0, SAMPLE, s.labels, s.data);
    }
    lossy.sim.set('corrupt', 0.01);
    lossy.sim.set('drop', 0.002);
    for (let step = 1; step <= steps; step++) {
      const req = { stepId: step, index: step - 1, count: 1, lrPpm: 20000 };
      const a = await clean.session.train(req);
      const b = await lossy.session.train(req);
      // a retransmit after a lost answer may arrive as the duplicate: then the
      // device answers with the records of the step it applied, once
      expect(b.stepsApplied).toBe(step);
      // everything but the step's own time, which is the twin's wall clock
      const learned = (r: typeof a.records) => r.map(({ counter: _c, ...rest }) => rest);
      expect(learned(b.records)).toEqual(learned(a.records));
      // a host that retries a step after a lost answer gets it acknowledged, not applied again
      const again = await lossy.session.train(req);
      expect(again.duplicate).toBe(true);
      expect(again.stepsApplied).toBe(step);
    }
    lossy.sim.set('corrupt', 0);
    lossy.sim.set('drop', 0);
    const [wa, wb] = [await clean.session.readWeights(), await lossy.session.readWeights()];
    expect(wb.sha256).toBe(wa.sha256);
    expect(wb.stepsApplied).toBe(steps);
    expect((await lossy.sim.stats()).corrupted).toBeGreaterThan(0);
  });

  it('a cable pulled mid-transfer fails the session promptly with DisconnectedError; after a replug the board kept its state', async () => {
    const b = await board({ baud: 115200 });
    const bootId = b.session.hello.bootId;
    const s = samples(100); // ~7 s at 115200
    const transfer = b.session.sendSamples(0, SAMPLE, s.labels, s.data).then(
      () => null,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 700));
    const t0 = performance.now();
    await b.sim.disconnect();
    const err = await transfer;
    const ms = performance.now() - t0;
    expect(err).toBeInstanceOf(DisconnectedError);
    expect(ms).toBeLessThan(2500);
    await b.sim.reconnect();
    const fresh = await b.reopen();
    expect(fresh.hello.bootId).toBe(bootId);
    const small = samples(4);
    await fresh.sendSamples(0, SAMPLE, small.labels, small.data);
    const st = await fresh.stats();
    expect(st.samplesHeld).toBeGreaterThanOrEqual(4);
  });
});
