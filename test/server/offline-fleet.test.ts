// Boards that are configured but absent: the daemon keeps retrying them,
// reports why, refuses work on them, and a fleet rollback over them halts.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { auth, buildApp, tempDir, until } from './helpers.js';

let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

describe('absent boards', () => {
  it('are retried with back-off, refused with 503, and halt a fleet rollback at its failure limit', async () => {
    const dir = tempDir('tinyrig-absent-');
    app = await buildApp({
      reconnectMinMs: 20,
      reconnectMaxMs: 100,
      devices: ['a', 'b', 'c'].map((id) => ({ id, path: path.join(dir, `${id}.pty`), board: 'host-twin', tags: ['lab'] })),
    });
    await until(() => app!.devices.list().every((b) => b.lastError !== null), 5000, 'first connection attempts');
    const list = (await app.inject({ method: 'GET', url: '/v1/devices?tag=lab' })).json().devices;
    expect(list.map((d: { id: string }) => d.id)).toEqual(['a', 'b', 'c']);
    for (const d of list) {
      expect(d.state).not.toBe('online');
      expect(d.lastError).toContain(`${d.id}.pty`);
    }
    const train = await app.inject({ method: 'POST', url: '/v1/devices/a/train', headers: auth(), payload: { steps: 1, lr: 0.01 } });
    expect(train.statusCode).toBe(503);
    expect(train.json().code).toBe('TR_DEVICE_OFFLINE');

    const weights = Uint8Array.from({ length: 256 }, (_, i) => i);
    const { sha256Hex } = await import('../../server/src/store/blobs.js');
    const snap = await app.store.createSnapshot({
      weights, expectedSha256: sha256Hex(weights), deviceId: 'a', modelSha256: 'f'.repeat(64), modelName: 'cnn',
      step: 0, tags: [], accuracy: 0.9, good: true, evaluatedOn: { dataset: 'fashion-mnist', split: 'test', offset: 0, count: 200 },
    });

    const within = await app.inject({
      method: 'POST', url: '/v1/fleet/rollback?wait=true', headers: auth(),
      payload: { selector: { devices: ['c', 'a', 'b'] }, to: snap.id, canary: 1, maxFailures: 5 },
    });
    expect(within.json().state).toBe('succeeded');
    expect(within.json().result).toMatchObject({ succeeded: 0, failed: 3, skipped: 0, halted: false });
    expect(within.json().result.devices.map((d: { deviceId: string }) => d.deviceId)).toEqual(['c', 'a', 'b']);

    const halted = await app.inject({
      method: 'POST', url: '/v1/fleet/rollback', headers: auth(),
      payload: { selector: { tag: 'lab' }, to: 'last-good', canary: 1, maxFailures: 0 },
    });
    expect(halted.statusCode).toBe(202);
    const job = await app.jobs.wait(halted.json().jobId);
    expect(job).toMatchObject({ state: 'failed', error: { code: 'TR_FLEET_HALTED' } });
    const r = job!.result as { devices: { deviceId: string; phase: string; state: string; error: { code: string } | null }[] };
    expect(r.devices.map((d) => [d.deviceId, d.phase, d.state])).toEqual([
      ['a', 'canary', 'failed'],
      ['b', 'fleet', 'skipped'],
      ['c', 'fleet', 'skipped'],
    ]);
    expect(r.devices[0].error!.code).toBe('TR_DEVICE_OFFLINE');

    const sse = await app.inject({ method: 'GET', url: `/v1/jobs/${job!.id}/events` });
    expect(sse.body).toContain('event: device');
    expect(sse.body).toContain('event: error');
    expect(sse.body).toContain('TR_FLEET_HALTED');

    const unknown = await app.inject({
      method: 'POST', url: '/v1/fleet/rollback', headers: auth(), payload: { selector: { tag: 'lab' }, to: 'snap_missing' },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('TR_SNAPSHOT_NOT_FOUND');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('tinyrig_device_online{device="a"} 0');
    expect(metrics).toMatch(/tinyrig_job_duration_seconds_count\{kind="fleet-rollback",state="failed"\} 1/);
  });
});
