// The Zephyr app on an emulated Zephyr target (mps2/an386 or mps2/an500
// under QEMU), driven by the daemon exactly like the bare-metal boards:
// deploy → stream → train (sparse) → snapshot → damage → rollback verified,
// weights equal to the host twin's byte for byte, and a reset survived with
// the committed weights still live (A/B slots in flash).
// CI cannot build Zephyr: this suite runs when RIG_ZEPHYR names a built
// zephyr.elf (RIG_ZEPHYR_CLASS=m4|m7) and says plainly that it did not run otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { RigProcess } from '../../tools/proc/rig.js';
import { apiClient, buildApp, tempDir, until, type Json } from '../server/helpers.js';

const elf = process.env.RIG_ZEPHYR;
const cls = process.env.RIG_ZEPHYR_CLASS ?? 'm4';
const id = `zephyr-${cls}-0`;
if (!elf) console.warn('Zephyr board suite NOT RUN: set RIG_ZEPHYR=path/to/zephyr.elf (built from firmware/ports/zephyr for mps2/an386 or mps2/an500)');

let app: FastifyInstance;
let rig: RigProcess;
const { post, get, job } = apiClient(() => app);

describe.skipIf(!elf || !fs.existsSync(elf))(`the Zephyr app on QEMU (${cls})`, () => {
  beforeAll(async () => {
    const dir = tempDir('tinyrig-zephyr-');
    rig = new RigProcess(path.join(dir, 'rig'), { twin: 1 });
    const devices = await rig.start();
    app = await buildApp({ varDir: path.join(dir, 'var'), devices });
    await until(() => app.devices.list().every((b) => b.status === 'online'), 60_000, 'rig online');
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await rig?.stop();
  });

  it('answers HELLO with the Zephyr board and its counter', async () => {
    const d = await get(`/v1/devices/${id}`);
    expect(d.state).toBe('online');
    console.log(JSON.stringify({ zephyrHello: { board: d.board, cpu: d.cpu, clockHz: d.clockHz, counter: d.counterUnit, ...d.firmware }, ram: d.ram, limits: d.limits }));
    expect(String(d.board)).toMatch(/mps2/);
    expect(d.firmware.build).toMatch(/zephyr/);
  });

  it('trains like the bare-metal boards: weights equal the twin\'s, a damaged board rolled back and verified', async () => {
    const train = { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 64, sparse: { lambdaMin: 0.1, lambdaMax: 1 } };
    for (const dev of [id, 'twin-0']) expect((await post(`/v1/devices/${dev}/model`, { model: 'cnn', seed: 3 })).status).toBe(200);
    const [z, t] = await Promise.all([job(`/v1/devices/${id}/train`, train), job('/v1/devices/twin-0/train', train)]);
    expect(z.result.weightsSha256).toBe(t.result.weightsSha256);
    const metrics = await get(`/v1/devices/${id}/metrics?jobId=${z.id}&limit=100`);
    console.log(JSON.stringify({ zephyrPerStep: metrics.steps.reduce((a: number, s: Json) => a + s.counter, 0) / metrics.steps.length, unit: metrics.counterUnit, peakRam: z.result.peakRam }));
    const snap = await post(`/v1/devices/${id}/snapshots`, { tags: ['zephyr'] });
    expect(snap.status).toBe(201);
    await job(`/v1/devices/${id}/train`, { steps: 8, lr: 5 });
    const back = await post(`/v1/devices/${id}/rollback`, { snapshotId: snap.body.id });
    expect(back.body).toMatchObject({ verified: true, sha256: snap.body.sha256 });

    // a reset: the board comes back with the committed weights still live
    const before = app.devices.get(id).hello!.bootId;
    expect((await post(`/v1/devices/${id}/reset`, {})).status).toBe(200);
    await until(() => app.devices.get(id).status === 'online' && app.devices.get(id).hello!.bootId !== before, 60_000, 'the board back');
    await until(async () => (await get(`/v1/devices/${id}`)).model?.weightsSha256 === snap.body.sha256, 20_000, 'the committed weights live after the reset');
  }, 600_000);
});
