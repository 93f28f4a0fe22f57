// The daemon in-process over several real host twins (PTYs): deploy → stream →
// train → snapshot → damage → rollback with the device's hash verified; busy
// boards; SSE; guard; last-good; fleet rollback with a canary and a failing board.
import crypto from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { apiClient, auth, buildApp, tempDir, until, type Json } from './helpers.js';
import { TWIN_BIN } from '../../tools/proc/paths.js';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';

const BOARDS = 3;
let app: FastifyInstance;
let twins: TwinProcess[] = [];
let dir: string;

const { post, get, job } = apiClient(() => app);

/** The engine-dependent tests need twins whose firmware links the engine. */
async function requireEngine(id: string): Promise<void> {
  const d = await get(`/v1/devices/${id}`);
  if (!d.firmware?.engine) {
    throw new Error(
      `device ${id} runs firmware ${d.firmware?.build} without the training engine (HELLO engine:false); ` +
        `rebuild the host twin with the engine linked (make -C firmware)`,
    );
  }
}

describe.runIf(twinBuilt())('daemon over host twins', () => {
  beforeAll(async () => {
    dir = tempDir('tinyrig-flow-');
    twins = await startTwins(dir, BOARDS);
    app = await buildApp({
      goodAccuracy: 0.15,
      devices: [
        ...twins.map((t, i) => ({
          id: `twin-${i}`,
          path: t.path,
          board: 'host-twin',
          emulated: true,
          tags: ['emulated', 'lab'],
          powerBoard: 'nrf52840dk/nrf52840',
        })),
        // configured but never plugged in: the failing board of the fleet tests
        { id: 'ghost', path: path.join(dir, 'no-such-port'), board: 'host-twin', tags: ['lab'] },
      ],
    });
    const online = (): number => app.devices.list().filter((b) => b.status === 'online').length;
    await until(() => online() === BOARDS, 15_000, 'twins online').catch(() => {
      const why = app.devices.list().map((b) => `${b.id}: ${b.status} (${b.lastError ?? 'no error'})`).join('; ');
      throw new Error(`only ${online()} of ${BOARDS} twins came online: ${why}`);
    });
  });

  afterAll(async () => {
    await app?.close();
    await stopTwins(twins);
  });

  it('lists the boards with what HELLO told', async () => {
    const { devices } = await get('/v1/devices');
    expect(devices).toHaveLength(BOARDS + 1);
    const twin0 = devices.find((d: Json) => d.id === 'twin-0');
    expect(twin0).toMatchObject({ state: 'online', busy: null, emulated: true, tags: ['emulated', 'lab'] });
    expect(twin0.firmware.protocol).toBe(1);
    expect(twin0.ram.total).toBeGreaterThan(0);
    expect(twin0.limits.maxTrain).toBeGreaterThan(0);
    expect(twin0.power).toMatchObject({ source: 'estimated', board: 'nrf52840dk/nrf52840', activeMw: 10.6 });
    const ghost = devices.find((d: Json) => d.id === 'ghost');
    expect(ghost.state).not.toBe('online');
    expect(ghost.lastError).toMatch(/no-such-port/);
    const offline = await post('/v1/devices/ghost/model', { model: 'cnn', seed: 1 });
    expect(offline.status).toBe(503);
    expect(offline.body.code).toBe('TR_DEVICE_OFFLINE');
  });

  it('deploy → stream → train → snapshot → damage → rollback → hash verified', async () => {
    const deployed = await post('/v1/devices/twin-0/model', { model: 'cnn', seed: 1 });
    expect(deployed.status, JSON.stringify(deployed.body)).toBe(200);
    expect(deployed.body.model).toMatchObject({ name: 'cnn', inputBytes: 784, classes: 10 });
    const initialSha = deployed.body.weightsSha256;
    expect(initialSha).toMatch(/^[0-9a-f]{64}$/);

    const samples = await post('/v1/devices/twin-0/samples', { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 32 });
    expect(samples.status, JSON.stringify(samples.body)).toBe(200);
    expect(samples.body).toMatchObject({ count: 32, heldTo: samples.body.first + 32 });

    await requireEngine('twin-0');
    const trained = await job('/v1/devices/twin-0/train', {
      dataset: 'fashion-mnist', split: 'train', offset: 0, count: 300, lr: 0.01, sparse: { lambdaMin: 0.1, lambdaMax: 1 },
    });
    expect(trained.progress).toEqual({ done: 300, total: 300 });
    expect(trained.result).toMatchObject({ steps: 300, deviceId: 'twin-0' });
    expect(trained.result.weightsSha256).not.toBe(initialSha);
    expect(trained.result.meanUpdatedFraction).toBeGreaterThan(0);
    expect(trained.result.meanUpdatedFraction).toBeLessThanOrEqual(1);

    const metrics = await get('/v1/devices/twin-0/metrics?limit=10000');
    const mine = metrics.steps.filter((s: Json) => s.jobId === trained.id);
    expect(mine).toHaveLength(300);
    expect(metrics.energy.source).toBe('estimated');
    for (const s of mine.slice(0, 5)) {
      expect(s.loss).toBeGreaterThan(0);
      expect(s.peakRam).toBeGreaterThan(0);
      expect(s.energySource).toBe('estimated');
      expect(s.energyUj).toBeGreaterThan(0);
      expect(s.counterUnit).toBe(metrics.counterUnit);
    }

    const evalBase = await job('/v1/devices/twin-0/evaluate', { dataset: 'fashion-mnist', split: 'test', offset: 0, count: 200 });
    expect(evalBase.result.count).toBe(200);
    const baseAccuracy = evalBase.result.accuracy;

    const snap = await post('/v1/devices/twin-0/snapshots', { tags: ['baseline'] });
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    expect(snap.body).toMatchObject({ device: 'twin-0', model: 'cnn', sha256: trained.result.weightsSha256, tags: ['baseline'] });
    expect(snap.body.step).toBeGreaterThanOrEqual(300);
    expect(snap.body.accuracy).toBe(baseAccuracy);
    // the weights are the lab's work: a token is needed even where other reads are open
    expect((await app.inject({ method: 'GET', url: `/v1/snapshots/${snap.body.id}/weights` })).statusCode).toBe(401);
    const blob = await app.inject({ method: 'GET', url: `/v1/snapshots/${snap.body.id}/weights`, headers: auth() });
    expect(blob.statusCode).toBe(200);
    expect(crypto.createHash('sha256').update(blob.rawPayload).digest('hex')).toBe(snap.body.sha256);
    expect(blob.rawPayload.length).toBe(snap.body.bytes);

    // damage: an absurd learning rate
    const damaged = await job('/v1/devices/twin-0/train', { dataset: 'fashion-mnist', split: 'train', offset: 300, count: 40, lr: 100 });
    expect(damaged.result.weightsSha256).not.toBe(snap.body.sha256);

    const rb = await post('/v1/devices/twin-0/rollback', { snapshotId: snap.body.id });
    expect(rb.status, JSON.stringify(rb.body)).toBe(200);
    expect(rb.body).toMatchObject({ snapshotId: snap.body.id, sha256: snap.body.sha256, verified: true, before: damaged.result.weightsSha256 });
    const dev = await get('/v1/devices/twin-0?refresh=true');
    expect(dev.model.weightsSha256).toBe(snap.body.sha256);
    // the same weights evaluate to the same figures, bit for bit
    const evalAfter = await job('/v1/devices/twin-0/evaluate', { dataset: 'fashion-mnist', split: 'test', offset: 0, count: 200 });
    expect(evalAfter.result.accuracy).toBe(baseAccuracy);
    expect(evalAfter.result.loss).toBe(evalBase.result.loss);

    const rollbackJob = await get(`/v1/jobs/${rb.body.jobId}`);
    expect(rollbackJob).toMatchObject({ kind: 'rollback', state: 'succeeded' });
  });

  it('refuses a second job on a busy board with 409 and streams job events', async () => {
    await requireEngine('twin-1');
    expect((await post('/v1/devices/twin-1/model', { model: 'cnn', seed: 2 })).status).toBe(200);
    const started = await post('/v1/devices/twin-1/train', { dataset: 'fashion-mnist', count: 256, lr: 0.01 });
    expect(started.status).toBe(202);
    const busy = await post('/v1/devices/twin-1/train', { dataset: 'fashion-mnist', count: 10, lr: 0.01 });
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe('TR_DEVICE_BUSY');
    expect(busy.body.message).toContain(started.body.jobId);
    const snapBusy = await post('/v1/devices/twin-1/snapshots', {});
    expect(snapBusy.status).toBe(409);
    const dev = await get('/v1/devices/twin-1');
    expect(dev.busy).toContain(started.body.jobId);

    // the SSE stream ends with the job and carries progress, steps, loss and the result
    const sse = await app.inject({ method: 'GET', url: `/v1/jobs/${started.body.jobId}/events` });
    expect(sse.headers['content-type']).toMatch(/text\/event-stream/);
    const events = sse.body.split('\n\n').filter(Boolean).map((block) => {
      const type = /event: (.*)/.exec(block)?.[1];
      const data = /data: (.*)/.exec(block)?.[1];
      return { type, data: data ? JSON.parse(data) : null };
    });
    const types = new Set(events.map((e) => e.type));
    for (const t of ['state', 'progress', 'step', 'loss', 'accuracy', 'result']) expect(types).toContain(t);
    expect(events.filter((e) => e.type === 'step')).toHaveLength(256);
    expect(events.at(-1)).toEqual({ type: 'state', data: { state: 'succeeded' } });
    const done = await get(`/v1/jobs/${started.body.jobId}`);
    expect(done).toMatchObject({ state: 'succeeded', progress: { done: 256, total: 256 } });
    expect((await get('/v1/devices/twin-1')).busy).toBeNull();
    // a finished job's stream replays its outcome
    const again = await app.inject({ method: 'GET', url: `/v1/jobs/${started.body.jobId}/events` });
    expect(again.body).toContain('event: result');
  });

  it('trains {steps} over samples already on the board, and rejects it without samples', async () => {
    await requireEngine('twin-2');
    expect((await post('/v1/devices/twin-2/model', { model: 'cnn', seed: 3 })).status).toBe(200);
    const none = await post('/v1/devices/twin-2/train', { steps: 10, lr: 0.01 });
    expect(none.status).toBe(409);
    expect(none.body.code).toBe('TR_NO_SAMPLES');
    // raw samples in CBOR: labels and data as byte strings
    const { encode } = await import('cbor-x');
    const ds = app.datasets.slice('fashion-mnist', 'train', 1000, 20);
    const raw = await app.inject({
      method: 'POST',
      url: '/v1/devices/twin-2/samples',
      headers: { ...auth(), 'content-type': 'application/cbor' },
      payload: encode({ sampleBytes: 784, labels: Buffer.from(ds.labels), data: Buffer.from(ds.data) }),
    });
    expect(raw.statusCode, raw.body).toBe(200);
    expect(raw.json().count).toBe(20);
    const wrongSize = await post('/v1/devices/twin-2/samples', { sampleBytes: 100, labels: [1], data: Buffer.alloc(100).toString('base64') });
    expect(wrongSize.status).toBe(400);
    const t = await job('/v1/devices/twin-2/train', { steps: 50, lr: 0.01 });
    expect(t.result.steps).toBe(50);
    const ev = await job('/v1/devices/twin-2/evaluate', {});
    expect(ev.result.count).toBe(20);
  });

  it('guard: rolls the board back by itself when training made it worse', async () => {
    await requireEngine('twin-2');
    const before = (await get('/v1/devices/twin-2')).model.weightsSha256;
    const t = await job('/v1/devices/twin-2/train', {
      dataset: 'fashion-mnist', split: 'train', offset: 2000, count: 40, lr: 100,
      guard: { margin: 0.0, dataset: 'fashion-mnist', split: 'test', offset: 0, count: 100 },
    });
    const g = t.result.guard;
    expect(g.accuracyBefore).toBeGreaterThanOrEqual(0);
    if (g.accuracyAfter < g.accuracyBefore) {
      expect(g.rolledBack).toBe(true);
      expect(g.rollback.verified).toBe(true);
      expect((await get('/v1/devices/twin-2?refresh=true')).model.weightsSha256).toBe(before);
    } else {
      // the damage did not lower accuracy on the guard slice: nothing to undo
      expect(g.rolledBack).toBe(false);
    }
    const pre = await get(`/v1/snapshots/${g.snapshotId}`);
    expect(pre.tags).toEqual(['guard', 'pre-train']);
    expect(pre.sha256).toBe(before);
  });

  it('fleet rollback: canary first, a failing board within the limit, halting beyond it', async () => {
    await requireEngine('twin-0');
    const snaps = (await get('/v1/snapshots?deviceId=twin-0&tag=baseline')).snapshots;
    expect(snaps.length).toBeGreaterThan(0);
    const target = snaps[0];

    const ok = await post('/v1/fleet/rollback?wait=true', {
      selector: { devices: ['twin-0', 'twin-1', 'twin-2', 'ghost'] }, to: target.id, canary: 1, maxFailures: 1,
    });
    expect(ok.status).toBe(200);
    expect(ok.body.state, JSON.stringify(ok.body.error)).toBe('succeeded');
    const r = ok.body.result;
    expect(r).toMatchObject({ succeeded: 3, failed: 1, skipped: 0, halted: false, canary: 1 });
    expect(r.devices[0]).toMatchObject({ deviceId: 'twin-0', phase: 'canary', state: 'succeeded', verified: true });
    for (const d of r.devices.slice(1, 3)) {
      expect(d).toMatchObject({ phase: 'fleet', state: 'succeeded', verified: true, after: target.sha256 });
    }
    // twin-1 and twin-2 ran other models: the snapshot's model was loaded first
    expect(r.devices[3]).toMatchObject({ deviceId: 'ghost', state: 'failed', verified: false });
    expect(r.devices[3].error.code).toBe('TR_DEVICE_OFFLINE');
    for (const id of ['twin-1', 'twin-2']) expect((await get(`/v1/devices/${id}?refresh=true`)).model.weightsSha256).toBe(target.sha256);

    // the failing board as canary with no failure allowed: the rest is never touched
    const halted = await post('/v1/fleet/rollback?wait=true', {
      selector: { devices: ['ghost', 'twin-1', 'twin-2'] }, to: target.id, canary: 1, maxFailures: 0,
    });
    expect(halted.body.state).toBe('failed');
    expect(halted.body.error.code).toBe('TR_FLEET_HALTED');
    expect(halted.body.result).toMatchObject({ succeeded: 0, failed: 1, skipped: 2, halted: true });
    expect(halted.body.result.devices.map((d: Json) => d.state)).toEqual(['failed', 'skipped', 'skipped']);
  });

  it('last-good: an evaluated snapshot above the threshold is the fleet target', async () => {
    await requireEngine('twin-0');
    const good = (await get('/v1/snapshots?deviceId=twin-0&good=true')).snapshots;
    expect(good.length, 'the baseline snapshot was evaluated above goodAccuracy').toBeGreaterThan(0);
    await job('/v1/devices/twin-0/train', { dataset: 'fashion-mnist', offset: 500, count: 20, lr: 100 });
    const f = await post('/v1/fleet/rollback?wait=true', { selector: { tag: 'emulated', board: 'host-twin' }, to: 'last-good', canary: 1, maxFailures: 0 });
    expect(f.body.state, JSON.stringify(f.body)).toBe('succeeded');
    const d0 = f.body.result.devices.find((d: Json) => d.deviceId === 'twin-0');
    expect(d0).toMatchObject({ state: 'succeeded', snapshotId: good[0].id, after: good[0].sha256, verified: true });
    const one = await post('/v1/devices/twin-0/rollback', { snapshotId: 'last-good' });
    expect(one.status).toBe(200);
    expect(one.body.snapshotId).toBe(good[0].id);
  });

  it('Prometheus metrics carry per-board steps and job durations', async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/tinyrig_training_steps_total\{device="twin-0"\} \d+/);
    expect(text).toContain('tinyrig_device_online{device="twin-0"} 1');
    expect(text).toContain('tinyrig_device_online{device="ghost"} 0');
    expect(text).toMatch(/tinyrig_job_duration_seconds_count\{kind="train",state="succeeded"\} \d+/);
    expect(text).toMatch(/tinyrig_retransmits_total\{device="twin-0"\} \d+/);
  });
});

describe.runIf(!twinBuilt())('daemon over host twins (twin missing)', () => {
  it('needs the host twin binary', () => {
    throw new Error(`${TWIN_BIN} is not built: run make -C firmware`);
  });
});
