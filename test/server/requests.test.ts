// What a request over a real board is refused for, before anything happens:
// names that are Object members, checks a job would only make later
// (sparse range, guard slice and size), labels the model has no class for;
// and what an accepted one records: the learning rate it ran with, who sent it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { apiClient, buildApp, OPERATOR_TOKEN, tempDir, until, type Json } from './helpers.js';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';

let app: FastifyInstance;
let twins: TwinProcess[] = [];
const { post, get } = apiClient(() => app);
const operator = apiClient(() => app, OPERATOR_TOKEN);

describe.runIf(twinBuilt())('requests over a host twin', () => {
  beforeAll(async () => {
    twins = await startTwins(tempDir('tinyrig-requests-'), 1);
    app = await buildApp({ devices: [{ id: 'b0', path: twins[0].path, board: 'host-twin', tags: ['emulated'] }] });
    await until(() => app.devices.get('b0').status === 'online', 15_000, 'twin online');
    const r = await post('/v1/devices/b0/model', { model: 'cnn', seed: 1 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  });
  afterAll(async () => {
    await app?.close();
    await stopTwins(twins);
  });

  const jobsOnBoard = async (): Promise<number> => (await get('/v1/jobs?deviceId=b0&limit=1000')).jobs.length;

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('answers dataset %s with 404 TR_DATASET_NOT_FOUND on every route', async (name) => {
    for (const [url, body] of [
      ['/v1/devices/b0/train', { dataset: name, count: 4 }],
      ['/v1/devices/b0/evaluate', { dataset: name, count: 4 }],
      ['/v1/devices/b0/samples', { dataset: name, count: 4 }],
      ['/v1/devices/b0/train', { steps: 4, guard: { dataset: name } }],
    ] as const) {
      const r = await post(url, body);
      expect(r.status, `${url} ${JSON.stringify(r.body)}`).toBe(404);
      expect(r.body.code).toBe('TR_DATASET_NOT_FOUND');
    }
  });

  it('refuses before the 202 what the job would refuse later, and creates no job', async () => {
    await post('/v1/devices/b0/samples', { dataset: 'fashion-mnist', count: 8 });
    const before = await jobsOnBoard();
    const cases: [unknown, number, string][] = [
      [{ dataset: 'fashion-mnist', count: 8, sparse: { lambdaMin: 0.9, lambdaMax: 0.1 } }, 400, 'TR_BAD_REQUEST'],
      [{ steps: 8, sparse: { lambdaMin: 0.9, lambdaMax: 0.1 } }, 400, 'TR_BAD_REQUEST'],
      [{ steps: 8, guard: { dataset: 'nope' } }, 404, 'TR_DATASET_NOT_FOUND'],
      [{ steps: 8, guard: { count: 999999999 } }, 413, 'TR_PAYLOAD_TOO_LARGE'],
      [{ steps: 8, guard: { offset: 9990, count: 20 } }, 400, 'TR_BAD_REQUEST'],
      [{ dataset: 'fashion-mnist', offset: 59990, count: 20 }, 400, 'TR_BAD_REQUEST'],
      [{ dataset: 'fashion-mnist', count: 8, steps: 8 }, 400, 'TR_BAD_REQUEST'],
    ];
    for (const [body, status, code] of cases) {
      const r = await post('/v1/devices/b0/train', body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.code, JSON.stringify(body)).toBe(code);
    }
    const ev = await post('/v1/devices/b0/evaluate', { dataset: 'fashion-mnist', count: 70000 });
    expect(ev.status).toBe(413);
    expect(await jobsOnBoard()).toBe(before);
  });

  it('trains the layers named, and refuses layer lists that train nothing or name a layer without weights', async () => {
    const board = app.devices.get('b0');
    const none = await post('/v1/devices/b0/train', { dataset: 'fashion-mnist', count: 4, trainableLayers: [] });
    expect(none.status).toBe(400);
    expect(none.body.code).toBe('TR_BAD_REQUEST');
    // layer 1 of the CNN is a max pool: the board refuses the TRAIN whole, nothing applied
    const stats = await board.run('stats', (l) => l.stats());
    const pool = await post('/v1/devices/b0/train?wait=true', { dataset: 'fashion-mnist', count: 4, trainableLayers: [1] });
    expect(pool.body.state).toBe('failed');
    expect(pool.body.error.code).toBe('TR_BAD_REQUEST');
    expect((await board.run('stats', (l) => l.stats())).stepsApplied).toBe(stats.stepsApplied);
    const last = await post('/v1/devices/b0/train?wait=true', { dataset: 'fashion-mnist', count: 4, trainableLayers: [5, 6], biasOnlyLayers: [0] });
    expect(last.body.state, JSON.stringify(last.body.error)).toBe('succeeded');
    expect(last.body.result.steps).toBe(4);
  });

  it('refuses samples whose label the model has no class for, sending nothing', async () => {
    const board = app.devices.get('b0');
    const held = [board.heldFrom, board.heldTo];
    const bytes = 28 * 28;
    const r = await post('/v1/devices/b0/samples', {
      sampleBytes: bytes,
      labels: [3, 10],
      data: Buffer.alloc(2 * bytes, 7).toString('base64'),
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'TR_BAD_SAMPLE', details: { sample: 1, label: 10, classes: 10 } });
    expect([board.heldFrom, board.heldTo]).toEqual(held);
    const fine = await post('/v1/devices/b0/samples', { sampleBytes: bytes, labels: [3, 9], data: Buffer.alloc(2 * bytes, 7).toString('base64') });
    expect(fine.status).toBe(200);
    expect(fine.body.heldTo).toBe(held[1] + 2);
  });

  it('trains with the default learning rate of each optimizer and records it, with who started the job', async () => {
    const std = await operator.job('/v1/devices/b0/train', { dataset: 'fashion-mnist', count: 4 });
    expect(std.params.lr).toBe(0.002);
    expect(std.actor).toBe('test-operator');
    const qas = await post('/v1/devices/b0/train?wait=true', { dataset: 'fashion-mnist', count: 4, qas: true });
    expect(qas.body.params.lr).toBe(0.005);
    expect(qas.body.actor).toBe('test-admin');
    const given = await post('/v1/devices/b0/train?wait=true', { dataset: 'fashion-mnist', count: 4, lr: 0.0031 });
    expect(given.body.params.lr).toBe(0.0031);
    const deploy = (await get('/v1/jobs?deviceId=b0&limit=1000')).jobs.find((j: Json) => j.kind === 'deploy');
    expect(deploy.actor).toBe('test-admin');
  });
});

describe.runIf(!twinBuilt())('requests over a host twin (twin missing)', () => {
  it('needs the host twin binary', () => {
    throw new Error('firmware/build/host/tinyrig-twin is not built: run make -C firmware');
  });
});
