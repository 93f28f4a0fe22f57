// Training over a dataset slice for several epochs with a seeded shuffle and
// a learning-rate schedule, run by the daemon as a sequence of TRAINs: the
// same seed gives the same weights on every board; and the sample ring is
// never a trap (a push larger than the ring is refused unless asked for,
// {steps} says which held samples it trained on).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { epochOrder, scheduledLr, type TrainParams } from '../../server/src/operations/training.js';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';
import { apiClient, buildApp, tempDir, until } from './helpers.js';

describe('schedules and seeded orders', () => {
  it('permutes every index once, the same for the same seed and epoch, differently otherwise', () => {
    const a = epochOrder(100, 1, 0);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect([...epochOrder(100, 1, 0)]).toEqual([...a]);
    expect([...epochOrder(100, 1, 1)]).not.toEqual([...a]);
    expect([...epochOrder(100, 2, 0)]).not.toEqual([...a]);
  });

  it('holds the rate over blocks of 16 steps: cosine from lr to lrMin, step decays by gamma', () => {
    const p = { lr: 0.004, schedule: 'cosine', lrMin: 0.001 } as TrainParams;
    expect(scheduledLr(p, 0, 320, 160)).toBeCloseTo(0.004, 9);
    expect(scheduledLr(p, 15, 320, 160)).toBe(scheduledLr(p, 0, 320, 160));
    expect(scheduledLr(p, 160, 320, 160)).toBeCloseTo(0.0025, 9);
    expect(scheduledLr(p, 319, 320, 160)).toBeGreaterThan(0.001);
    expect(scheduledLr(p, 319, 320, 160)).toBeLessThan(0.0011);
    const s = { lr: 0.01, schedule: 'step', gamma: 0.5 } as TrainParams;
    expect([0, 159, 160, 320].map((t) => scheduledLr(s, t, 480, 160))).toEqual([0.01, 0.01, 0.005, 0.0025]);
    expect(scheduledLr({ lr: 0.002 } as TrainParams, 999, 1000, 1000)).toBe(0.002);
  });
});

let app: FastifyInstance;
let twins: TwinProcess[] = [];
const { post, get } = apiClient(() => app);

describe.runIf(twinBuilt())('epochs over host twins', () => {
  beforeAll(async () => {
    twins = await startTwins(tempDir('tinyrig-epochs-'), 3);
    app = await buildApp({ devices: twins.map((t, i) => ({ id: `e${i}`, path: t.path, board: 'host-twin', tags: ['emulated'] })) });
    await until(() => app.devices.list().every((b) => b.status === 'online'), 15_000, 'twins online');
    for (let i = 0; i < 3; i++) expect((await post(`/v1/devices/e${i}/model`, { model: 'cnn', seed: 5 })).status).toBe(200);
  });
  afterAll(async () => {
    await app?.close();
    await stopTwins(twins);
  });

  const job = { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 96, epochs: 3, schedule: 'cosine', lr: 0.003, lrMin: 0.0005 };

  it('runs epochs with a cosine schedule; the same seed gives the same weights, another seed others', async () => {
    const [a, b, c] = await Promise.all([
      post('/v1/devices/e0/train?wait=true', job),
      post('/v1/devices/e1/train?wait=true', job),
      post('/v1/devices/e2/train?wait=true', { ...job, seed: 2 }),
    ]);
    for (const r of [a, b, c]) expect(r.body.state, JSON.stringify(r.body.error)).toBe('succeeded');
    expect(a.body.result.steps).toBe(288);
    expect(a.body.result.epochs.map((e: { epoch: number; steps: number }) => [e.epoch, e.steps])).toEqual([[1, 96], [2, 96], [3, 96]]);
    expect(a.body.result.schedule).toMatchObject({ kind: 'cosine', lr: 0.003, block: 16 });
    expect(a.body.result.schedule.lrEnd).toBeLessThan(0.0006);
    expect(a.body.result.weightsSha256).toBe(b.body.result.weightsSha256);
    expect(c.body.result.weightsSha256).not.toBe(a.body.result.weightsSha256);
    // the job's steps are recorded in the order the shuffle gave
    const steps = (await get(`/v1/devices/e0/metrics?jobId=${a.body.id}&limit=10000`)).steps;
    expect(steps).toHaveLength(288);
  });

  it('refuses epochs over held samples and schedule fields without their schedule', async () => {
    for (const body of [{ steps: 4, epochs: 2 }, { ...job, schedule: 'step', lrMin: 0.001 }, { ...job, schedule: 'constant', gamma: 0.5 }]) {
      const r = await post('/v1/devices/e0/train', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('TR_BAD_REQUEST');
    }
  });

  it('refuses a push larger than the ring unless asked, and says what it pushed out', async () => {
    const board = app.devices.get('e0');
    const slots = board.hello!.sampleSlots;
    const big = await post('/v1/devices/e0/samples', { dataset: 'fashion-mnist', offset: 0, count: slots + 10 });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ code: 'TR_PAYLOAD_TOO_LARGE', details: { slots, count: slots + 10 } });
    // a full ring pushes out every sample held before (the training job's last ones)
    const held = { from: board.heldFrom, to: board.heldTo };
    const first = await post('/v1/devices/e0/samples', { dataset: 'fashion-mnist', offset: 0, count: slots });
    expect(first.body).toMatchObject({ count: slots, heldTo: first.body.heldFrom + slots, overwritten: held });
    const more = await post('/v1/devices/e0/samples', { dataset: 'fashion-mnist', offset: slots, count: 10 });
    expect(more.body.overwritten).toEqual({ from: first.body.heldFrom, to: first.body.heldFrom + 10 });
    const forced = await post('/v1/devices/e0/samples', { dataset: 'fashion-mnist', offset: 0, count: slots + 10, overwrite: true });
    expect(forced.status).toBe(200);
    expect(forced.body.heldTo - forced.body.heldFrom).toBe(slots);
  });

  it('trains {steps} on the newest held samples, or on the range named, and says which', async () => {
    const board = app.devices.get('e0');
    const newest = await post('/v1/devices/e0/train?wait=true', { steps: 8 });
    expect(newest.body.result.samples).toEqual({ from: board.heldTo - 8, to: board.heldTo });
    const steps = (await get(`/v1/devices/e0/metrics?jobId=${newest.body.id}`)).steps;
    expect(steps.map((s: { sampleIndex: number }) => s.sampleIndex)).toEqual(Array.from({ length: 8 }, (_, i) => board.heldTo - 8 + i));
    const named = await post('/v1/devices/e0/train?wait=true', { steps: 6, range: { from: board.heldFrom, to: board.heldFrom + 3 } });
    expect(named.body.result.samples).toEqual({ from: board.heldFrom, to: board.heldFrom + 3 });
    const gone = await post('/v1/devices/e0/train', { steps: 4, range: { from: 0, to: 4 } });
    expect(gone.status).toBe(409);
    expect(gone.body.code).toBe('TR_NO_SAMPLES');
  });
});

describe.runIf(!twinBuilt())('epochs over host twins (twin missing)', () => {
  it('needs the host twin binary', () => {
    throw new Error('firmware/build/host/tinyrig-twin is not built: run make -C firmware');
  });
});
