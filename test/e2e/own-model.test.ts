// A lab's own model and data, end to end on an emulated M4 board and a host
// twin: a CSV data set made here (Fashion-MNIST down-sampled to 14×14) is
// uploaded with a seeded split, a small CNN is defined in JSON, deployed on
// both, trained 3 epochs with a cosine schedule and evaluated on the test
// split. The board's weights must equal the twin's byte for byte, and the
// accuracy must be well above chance. Prints the figures the README reports.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { RigProcess, qemuRigReady } from '../../tools/proc/rig.js';
import { writeFashionCsv } from '../helpers/fashion-csv.js';
import { apiClient, auth, buildApp, tempDir, until, type Json } from '../server/helpers.js';

export const CNN14 = {
  name: 'cnn-14',
  description: '14x14 grayscale: conv 3x3 (8) + pool, dense 32, 10 classes',
  input: [14, 14, 1],
  classes: 10,
  seed: 7,
  layers: [
    { kind: 'conv2d', units: 8, kernel: 3, pad: 1, act: 'relu' },
    { kind: 'maxpool', k: 2 },
    { kind: 'dense', units: 32, act: 'relu' },
    { kind: 'dense', units: 10 },
    { kind: 'softmax' },
  ],
};

/** Measured: 74.7 % on the 300 test samples (chance is 10 %). */
const ACCURACY_FLOOR = 0.65;

const ready = qemuRigReady();

let app: FastifyInstance;
let rig: RigProcess;
const { post, get } = apiClient(() => app);

describe.runIf(ready)('own model and data on a QEMU M4 and a host twin', () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir('tinyrig-own-');
    rig = new RigProcess(path.join(dir, 'rig'), { m4: 1, twin: 1 });
    const devices = await rig.start();
    app = await buildApp({ varDir: path.join(dir, 'var'), devices });
    await until(() => app.devices.list().every((b) => b.status === 'online'), 60_000, 'rig online');
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await rig?.stop();
  });

  it('uploads a CSV, defines a CNN, trains 3 epochs with cosine on both boards: equal weights, accuracy well above chance', async () => {
    const csv = path.join(dir, 'fashion14.csv');
    writeFashionCsv(csv, { size: 14, count: 1500 });
    const form = new FormData();
    form.set('file', new Blob([fs.readFileSync(csv)]), 'fashion14.csv');
    for (const [k, v] of Object.entries({ name: 'fashion14', format: 'csv', labelColumn: 'label', shape: '14,14,1', classes: '10', testFraction: '0.2', seed: '1' })) {
      form.set(k, v);
    }
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const up = await fetch(`${url}/v1/datasets`, { method: 'POST', headers: auth(), body: form });
    const uploaded = (await up.json()) as Json;
    expect(up.status, JSON.stringify(uploaded)).toBe(201);
    expect(uploaded.dataset.splits.train.count).toBe(1200);
    expect(uploaded.dataset.splits.test.count).toBe(300);

    const model = await post('/v1/models', CNN14);
    expect(model.status, JSON.stringify(model.body)).toBe(201);
    expect(model.body.fits.classes.every((c: Json) => c.fits)).toBe(true);
    for (const id of ['m4-0', 'twin-0']) {
      const d = await post(`/v1/devices/${id}/model`, { model: 'cnn-14' });
      expect(d.status, JSON.stringify(d.body)).toBe(200);
    }
    // the M4's HELLO reports what boards.json says its image gives the engine
    const m4 = app.devices.get('m4-0').hello!;
    const image = app.models.classImage('m4')!;
    expect({ arenaBytes: m4.arenaBytes, blobMax: m4.blobMax, maxFrame: m4.maxFrame }).toEqual({
      arenaBytes: image.arenaBytes, blobMax: image.blobMax, maxFrame: image.maxFrame,
    });

    const job = { dataset: 'fashion14', split: 'train', epochs: 3, schedule: 'cosine', seed: 1 };
    const t0 = Date.now();
    const [onM4, onTwin] = await Promise.all([
      post('/v1/devices/m4-0/train?wait=true', job).then((r) => ({ ...r, ms: Date.now() - t0 })),
      post('/v1/devices/twin-0/train?wait=true', job),
    ]);
    expect(onM4.body.state, JSON.stringify(onM4.body.error)).toBe('succeeded');
    expect(onTwin.body.state, JSON.stringify(onTwin.body.error)).toBe('succeeded');
    expect(onM4.body.result.steps).toBe(3600);
    expect(onM4.body.result.weightsSha256).toBe(onTwin.body.result.weightsSha256);

    const evals = await Promise.all(
      ['m4-0', 'twin-0'].map((id) => post(`/v1/devices/${id}/evaluate?wait=true`, { dataset: 'fashion14', split: 'test' })),
    );
    for (const e of evals) expect(e.body.state).toBe('succeeded');
    const [em4, etwin] = evals.map((e) => e.body.result as Json);
    expect(em4.count).toBe(300);
    expect(em4.correct).toBe(etwin.correct);
    expect(em4.confusion).toEqual(etwin.confusion);
    expect(em4.accuracy).toBeGreaterThanOrEqual(ACCURACY_FLOOR);

    const snap = await post('/v1/devices/m4-0/snapshots', { tags: ['own-model'] });
    expect(snap.body).toMatchObject({ model: 'cnn-14', good: true, evaluatedOn: { dataset: 'fashion14', split: 'test', offset: 0, count: 300 } });

    const steps = (await get(`/v1/devices/m4-0/metrics?jobId=${onM4.body.id}&limit=10000`)).steps as Json[];
    const instructions = steps.reduce((a, s) => a + s.counter, 0) / steps.length;
    console.log(
      JSON.stringify({
        figures: 'own model on the M4 (QEMU mps2-an386)',
        plan: Object.fromEntries(model.body.fits.classes.map((c: Json) => [c.class, { fits: c.fits, reasons: c.reasons }])),
        weightsBytes: model.body.weightsBytes, trainArenaBytes: model.body.trainBytes, inferArenaBytes: model.body.inferBytes,
        blobBytes: model.body.bytes, forwardMacs: model.body.forwardMacs,
        steps: onM4.body.result.steps, testAccuracy: em4.accuracy, twinEqual: true,
        instructionsPerStep: Math.round(instructions), peakRam: onM4.body.result.peakRam,
        wallMsPerSample: +(onM4.ms / onM4.body.result.steps).toFixed(2),
      }),
    );
  }, 900_000);
});

describe.runIf(!ready)('own model and data (QEMU or board firmware missing)', () => {
  it('needs qemu-system-arm and the QEMU board firmware', () => {
    throw new Error('own-model end-to-end test not run: install qemu-system-arm and build the firmware (make -C firmware)');
  });
});
