// EVAL with predictions (SPEC §0x32 keys 3, 5, 6) through BoardSession to the
// host twin over a PTY: one class and one loss per sample, the classes INFER
// gives, the losses adding up to the total; without the option the answer is
// the old one; and it fits the smallest frame a twin allows.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BoardSession } from '../../protocol/src/index.js';
import { fillBytes, modelBlob, requireEngine, TwinSessions, type TwinSession } from '../helpers/twin-session.js';
import type { TwinOptions } from '../../tools/proc/twin.js';

let dir = '';

/** A 10-class mlp on 8x8x1 inputs (64-byte samples fit a 128-byte frame). */
function mlp8(): Uint8Array {
  return modelBlob(dir, 'mlp', '8x8x1');
}

const twins = new TwinSessions();
const rig = (opts: TwinOptions = {}, sessionOpts: Parameters<typeof BoardSession.open>[1] = {}): Promise<TwinSession> =>
  twins.open(opts, sessionOpts);
const fill = fillBytes;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-eval-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => twins.closeAll());

describe('EVAL with predictions on the host twin', () => {
  it('gives each sample the class INFER gives it and its loss; without the option the answer is as before', async () => {
    const { session } = await rig();
    requireEngine(session);
    await session.loadModel(mlp8());
    const n = 8;
    const labels = Uint8Array.from({ length: n }, (_, i) => (i * 3) % 10);
    const data = fill(n * 64, 11);
    await session.sendSamples(0, 64, labels, data);

    const ev = await session.evaluate(0, n, { predictions: true });
    expect(ev.predicted).toHaveLength(n);
    expect(ev.lossPpm).toHaveLength(n);
    expect(ev.lossPpm!.reduce((a, b) => a + b, 0)).toBe(ev.lossPpmSum);
    expect(ev.correct).toBe(ev.predicted!.filter((c, i) => c === labels[i]).length);
    for (let i = 0; i < n; i++) expect(ev.predicted![i], `sample ${i}`).toBe((await session.infer(data.subarray(i * 64, (i + 1) * 64))).class);

    // relabelled so that every other prediction is right: correct follows
    const right = Uint8Array.from(ev.predicted!, (c, i) => (i % 2 === 0 ? c : (c + 1) % 10));
    await session.sendSamples(0, 64, right, data);
    const half = await session.evaluate(0, n, { predictions: true });
    expect(half.correct).toBe(n / 2);
    expect(half.predicted).toEqual(ev.predicted);

    const plain = await session.evaluate(0, n);
    expect(Object.keys(plain).sort()).toEqual(['correct', 'count', 'counter', 'lossPpmSum']);
    expect({ ...plain, counter: 0 }).toEqual({ count: n, correct: half.correct, lossPpmSum: half.lossPpmSum, counter: 0 });
    expect(Object.keys(await session.evaluate(0, n, { predictions: false })).sort()).toEqual(['correct', 'count', 'counter', 'lossPpmSum']);
  });

  it('fits the smallest frame a twin allows at its max_train', async () => {
    const { session } = await rig({ maxFrame: 128 });
    requireEngine(session);
    expect(session.hello.maxTrain).toBe(2);
    await session.loadModel(mlp8());
    await session.sendSamples(0, 64, Uint8Array.of(1, 2), fill(2 * 64, 12));
    const ev = await session.evaluate(0, 2, { predictions: true });
    expect(ev.predicted).toHaveLength(2);
    expect(ev.lossPpm![0]! + ev.lossPpm![1]!).toBe(ev.lossPpmSum);
  });
});
