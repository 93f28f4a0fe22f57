// Evaluation people can use: any slice of a dataset, with accuracy, mean
// loss, per-class figures and a confusion matrix; a snapshot records the
// slice its accuracy was measured on, and last-good takes a slice the caller
// names (or the configured one), never whatever the board's ring held.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';
import { apiClient, buildApp, tempDir, until, type Json } from './helpers.js';

let app: FastifyInstance;
let twins: TwinProcess[] = [];
const { post, job } = apiClient(() => app);

describe.runIf(twinBuilt())('evaluation over a host twin', () => {
  beforeAll(async () => {
    twins = await startTwins(tempDir('tinyrig-eval-'), 1);
    app = await buildApp({ goodAccuracy: 0.3, devices: [{ id: 'v0', path: twins[0].path, board: 'host-twin', tags: ['emulated'] }] });
    await until(() => app.devices.get('v0').status === 'online', 15_000, 'twin online');
    expect((await post('/v1/devices/v0/model', { model: 'cnn', seed: 1 })).status).toBe(200);
    await job('/v1/devices/v0/train', { dataset: 'fashion-mnist', count: 600 });
  });
  afterAll(async () => {
    await app?.close();
    await stopTwins(twins);
  });

  it('gives accuracy, mean loss, per-class figures and the confusion matrix of a slice', async () => {
    const r = await job('/v1/devices/v0/evaluate', { dataset: 'fashion-mnist', split: 'test', offset: 100, count: 300 });
    const e = r.result as Json;
    expect(e).toMatchObject({ count: 300, slice: { dataset: 'fashion-mnist', split: 'test', offset: 100, count: 300 }, held: null });
    expect(e.classes).toHaveLength(10);
    expect(e.confusion).toHaveLength(10);
    const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);
    expect(sum(e.confusion.map(sum))).toBe(300);
    expect(sum(e.confusion.map((row: number[], i: number) => row[i]))).toBe(e.correct);
    expect(sum(e.classes.map((c: Json) => c.count))).toBe(300);
    for (const c of e.classes as Json[]) {
      expect(c.correct).toBe(e.confusion[c.label][c.label]);
      if (c.count) expect(c.loss).toBeGreaterThan(0);
    }
    const meanOfClasses = sum(e.classes.map((c: Json) => (c.loss ?? 0) * c.count)) / 300;
    expect(meanOfClasses).toBeCloseTo(e.loss, 4);
    expect(e.accuracy).toBeCloseTo(e.correct / 300, 9);
  });

  it('records on a snapshot the slice its accuracy was measured on; the ring never makes one good', async () => {
    await post('/v1/devices/v0/samples', { dataset: 'fashion-mnist', split: 'test', offset: 0, count: 64 });
    const board = app.devices.get('v0');
    const ring = await job('/v1/devices/v0/evaluate', {});
    expect(ring.result).toMatchObject({ slice: null, held: { from: board.heldFrom, to: board.heldTo } });
    expect(ring.result.count).toBe(board.heldTo - board.heldFrom);
    expect(ring.result.classes).toHaveLength(10); // the daemon knows the labels it sent
    const fromRing = await post('/v1/devices/v0/snapshots', { tags: ['ring'] });
    expect(fromRing.body).toMatchObject({ good: false, evaluatedOn: null });

    const slice = { dataset: 'fashion-mnist', split: 'test', offset: 0, count: 200 };
    const snap = await post('/v1/devices/v0/snapshots', { tags: ['sliced'], evaluate: slice });
    expect(snap.body).toMatchObject({ good: true, evaluatedOn: slice });
    // last-good by the slice asked for: this one; by another slice: none
    const back = await post('/v1/devices/v0/rollback', { snapshotId: 'last-good', goodSlice: slice });
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body.snapshotId).toBe(snap.body.id);
    const other = await post('/v1/devices/v0/rollback', { snapshotId: 'last-good', goodSlice: { ...slice, offset: 1 } });
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('TR_NO_GOOD_SNAPSHOT');
  });
});

describe.runIf(!twinBuilt())('evaluation over a host twin (twin missing)', () => {
  it('needs the host twin binary', () => {
    throw new Error('firmware/build/host/tinyrig-twin is not built: run make -C firmware');
  });
});
