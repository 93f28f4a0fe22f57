// The SQLite store's files: blobs on disk, temporaries after a crash, the schema version.
// What both engines must do alike is in test/store/contract.test.ts.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../server/src/store/blobs.js';
import { SqliteStore } from '../../server/src/store/sqlite.js';
import { tempDir } from './helpers.js';

const weights = (seed: number, n = 1000): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('store', async () => {
  it('stores a snapshot row only with its verified blob', async () => {
    const dir = tempDir();
    const store = new SqliteStore(dir, { durable: false, hostId: 'h1' });
    const w = weights(1);
    const sha = sha256Hex(w);
    await expect(
      store.createSnapshot({ weights: w, expectedSha256: 'f'.repeat(64), deviceId: 'd', modelSha256: 'm', modelName: null, step: 1, tags: [], accuracy: null, good: false }),
    ).rejects.toThrow(/expected/);
    expect(await store.listSnapshots()).toHaveLength(0);
    const snap = await store.createSnapshot({ weights: w, expectedSha256: sha, deviceId: 'd', modelSha256: 'm', modelName: 'cnn', step: 3, tags: ['a'], accuracy: null, good: false });
    expect(snap.sha256).toBe(sha);
    expect(fs.readFileSync(path.join(dir, 'blobs', sha))).toEqual(Buffer.from(w));
    expect(await store.listSnapshots({ tag: 'a' })).toHaveLength(1);
    expect(await store.listSnapshots({ tag: 'b' })).toHaveLength(0);
    // an evaluation of these weights on a dataset slice marks the snapshot good, and says on which slice
    const slice = { dataset: 'fashion-mnist', split: 'test', offset: 0, count: 200 };
    expect(await store.markEvaluated(sha, 0.8, 0.5, slice)).toBe(1);
    expect(await store.getSnapshot(snap.id)).toMatchObject({ accuracy: 0.8, good: true, evaluatedOn: slice });
    await store.close();
  });

  it('after a crash fails interrupted jobs and removes blob temporaries', async () => {
    const dir = tempDir();
    let store = new SqliteStore(dir, { durable: false, hostId: 'h1' });
    const running = await store.createJob('snapshot', 'd', {});
    await store.startJob(running.id);
    const queued = await store.createJob('train', 'd', {});
    const done = await store.createJob('train', 'd', {});
    await store.finishJob(done.id, 'succeeded', { ok: 1 }, null);
    fs.writeFileSync(path.join(dir, 'blobs', '.tmp-abc-1-00'), 'half');
    await store.close();
    store = new SqliteStore(dir, { durable: false, hostId: 'h1' });
    const rec = await store.recoverAfterRestart();
    expect(rec.failedJobs.sort()).toEqual([running.id, queued.id].sort());
    expect(rec.temporaries).toBe(1);
    expect(await store.getJob(running.id)).toMatchObject({ state: 'failed', error: { code: 'TR_DAEMON_RESTARTED' } });
    expect(await store.getJob(done.id)).toMatchObject({ state: 'succeeded', result: { ok: 1 } });
    expect(fs.readdirSync(path.join(dir, 'blobs'))).toEqual([]);
    expect(await store.schemaVersion()).toBe(7);
    await store.close();
  });

  it('records and pages training steps', async () => {
    const store = new SqliteStore(tempDir(), { durable: false, hostId: 'h1' });
    store.recordSteps(
      Array.from({ length: 5 }, (_, i) => ({
        deviceId: 'd', jobId: 'j', stepId: 1, sampleIndex: i, lossPpm: 1000 * i, counter: 10, counterUnit: 'cycles',
        updatedPpm: 500000, correct: i % 2 === 0, peakRam: 100, energyUj: 1.5, energySource: 'estimated' as const,
      })),
    );
    const first = await store.listSteps('d', { limit: 3 });
    expect(first.map((s) => s.sampleIndex)).toEqual([0, 1, 2]);
    const rest = await store.listSteps('d', { after: first[2].seq });
    expect(rest.map((s) => s.sampleIndex)).toEqual([3, 4]);
    expect(rest[0]).toMatchObject({ correct: false, energySource: 'estimated', counterUnit: 'cycles' });
    expect(await store.countSteps('d')).toBe(5);
    await store.close();
  });
});
