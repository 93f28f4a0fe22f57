// One contract for both store engines: the same cases, the same expected rows,
// run against SQLite (a temp var/ directory per case) and PostgreSQL (a
// throwaway cluster for this file, a fresh database per case). Then what only
// the shared engine has to survive: two daemons migrating one database at
// once, and PostgreSQL restarted under a store with writes in flight.
// Without the PostgreSQL server binaries the PostgreSQL half says plainly
// that it did not run, and why.
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../server/src/store/blobs.js';
import { migrations } from '../../server/src/store/migrations.js';
import { pgMigrations } from '../../server/src/store/pg-migrations.js';
import { PgStore } from '../../server/src/store/postgres.js';
import { SqliteStore } from '../../server/src/store/sqlite.js';
import { BlobDamagedError, BlobMissingError, STEP_FLUSH_MS, type StepRecord, type Store } from '../../server/src/store/types.js';
import { until } from '../../tools/proc/child.js';
import { PgCluster, pgAvailable } from '../../tools/proc/postgres.js';
import { tempDir } from '../server/helpers.js';

/** Where one case's rows live: a var/ directory or a database; every store opened on it is closed after the case. */
interface Backing {
  open(hostId?: string): Promise<Store>;
  /** Overwrites the stored bytes of a blob behind the store's back. */
  damage(sha256: string, bytes: Buffer): Promise<void>;
}

interface Engine {
  name: 'sqlite' | 'postgres';
  /** Why this engine cannot run here (null: it can). */
  missing: string | null;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  fresh(): Promise<Backing>;
}

const opened: Store[] = [];
const track = (s: Store): Store => (opened.push(s), s);
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close().catch(() => undefined)));
});

const sqlite: Engine = {
  name: 'sqlite',
  missing: null,
  setup: async () => undefined,
  teardown: async () => undefined,
  async fresh() {
    const dir = tempDir('tinyrig-store-');
    return {
      open: async (hostId = 'h1') => track(new SqliteStore(dir, { durable: false, hostId })),
      damage: async (sha, bytes) => fs.writeFileSync(path.join(dir, 'blobs', sha), bytes),
    };
  },
};

const pgHere = pgAvailable();
if (!pgHere.ok) console.warn(`PostgreSQL store contract NOT RUN: ${pgHere.reason}`);
let cluster: PgCluster | null = null;
let databases = 0;

const postgres: Engine = {
  name: 'postgres',
  missing: pgHere.ok ? null : pgHere.reason,
  async setup() {
    cluster = await PgCluster.create();
  },
  async teardown() {
    await cluster?.destroy();
  },
  async fresh() {
    const name = `contract_${++databases}`;
    const url = await cluster!.createDatabase(name);
    return {
      open: async (hostId = 'h1') => track(await PgStore.open(url, { hostId })),
      damage: async (sha, bytes) => void (await cluster!.sql(name, `UPDATE blobs SET data = $1 WHERE sha256 = $2`, [bytes, sha])),
    };
  },
};

const ISO = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const bytes = (seed: number, n = 1000): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const step = (i: number, over: Partial<StepRecord> = {}): StepRecord => ({
  deviceId: 'd1', jobId: 'j1', stepId: 1, sampleIndex: i, lossPpm: 1000 * i, counter: 3_000_000_000 + i, counterUnit: 'cycles',
  updatedPpm: 500_000, correct: i % 2 === 0, peakRam: 100, energyUj: 1.5, energySource: 'estimated', ...over,
});
const snapshotInput = (w: Uint8Array, over: Record<string, unknown> = {}) => ({
  weights: w, expectedSha256: sha256Hex(w), deviceId: 'd1', modelSha256: 'm'.repeat(64), modelName: 'cnn', step: 3,
  tags: ['nightly'], accuracy: null, good: false, ...over,
});
const slice = { dataset: 'fashion-mnist', split: 'test', offset: 0, count: 200 };

/**
 * Every write's first attempt is carried out and committed, then its answer
 * is lost as when the connection drops at that moment; the store's retry
 * sends it again. Counts the answers lost on `store.lostAnswers`.
 */
function loseEveryFirstAnswer(store: PgStore): asserts store is PgStore & { lostAnswers: number } {
  const target = store as PgStore & { lostAnswers: number };
  target.lostAnswers = 0;
  let lost = false;
  const drop = (): boolean => {
    lost = !lost;
    if (lost) target.lostAnswers++;
    return lost;
  };
  const cut = (): Error => new Error('Connection terminated unexpectedly');
  type Query = (text: string, values?: unknown[]) => Promise<unknown>;
  type Client = { query: Query };
  const pool = store.db.pool as unknown as { query: Query; connect: (...cb: unknown[]) => Promise<Client> };
  const query = pool.query.bind(pool);
  pool.query = async (text, values) => {
    const r = await query(text, values);
    if (/^\s*(INSERT|UPDATE|DELETE)/.test(text) && drop()) throw cut();
    return r;
  };
  // transactions (connect() with no callback: pool.query's own connect(cb) passes through)
  const connect = pool.connect.bind(pool);
  const patched = new WeakSet<Client>();
  pool.connect = async (...cb: unknown[]) => {
    if (cb.length) return connect(...cb);
    const client = await connect();
    if (patched.has(client)) return client;
    patched.add(client);
    const clientQuery = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    // pool.query reuses this client later with a callback: that form passes through
    client.query = (async (text: string, values?: unknown[], ...cb: unknown[]) => {
      if (cb.length) return clientQuery(text, values, ...cb);
      const r = await clientQuery(text, values);
      if (text === 'COMMIT' && drop()) throw cut();
      return r;
    }) as Query;
    return client;
  };
}

it('numbers the PostgreSQL migrations as the SQLite ones', () => {
  expect(pgMigrations).toHaveLength(migrations.length);
});

describe.each([sqlite, postgres])('the $name store', (engine) => {
  describe.skipIf(engine.missing !== null)('keeps the store contract', () => {
    let b: Backing;
    let store: Store;
    beforeAll(() => engine.setup(), 60_000);
    afterAll(() => engine.teardown());
    const fresh = async (): Promise<void> => {
      b = await engine.fresh();
      store = await b.open('h1');
    };

    it('runs a job from queued to succeeded, keeping what a checkpoint recorded', async () => {
      await fresh();
      const job = await store.createJob('train', 'd1', { epochs: 2, z: 1, a: [1, 2] }, 5, 'alice');
      expect(store.engine).toBe(engine.name);
      expect(job).toEqual({
        id: expect.stringMatching(/^job_/), kind: 'train', deviceId: 'd1', state: 'queued', done: 0, total: 5,
        params: { epochs: 2, z: 1, a: [1, 2] }, result: null, error: null, createdAt: ISO, startedAt: null, finishedAt: null,
        actor: 'alice', hostId: 'h1',
      });
      await store.startJob(job.id);
      await store.progressJob(job.id, 2, 6);
      await store.checkpointJob(job.id, { applied: 2 });
      expect(await store.getJob(job.id)).toMatchObject({ state: 'running', startedAt: ISO, done: 2, total: 6, result: { applied: 2 }, finishedAt: null });
      await store.finishJob(job.id, 'succeeded', { applied: 6 }, null);
      expect(await store.getJob(job.id)).toMatchObject({ state: 'succeeded', result: { applied: 6 }, error: null, finishedAt: ISO });
      const failed = await store.createJob('snapshot', null, undefined);
      await store.finishJob(failed.id, 'failed', undefined, { code: 'TR_DEVICE_OFFLINE', message: 'gone' });
      expect(await store.getJob(failed.id)).toMatchObject({ deviceId: null, params: {}, state: 'failed', result: null, error: { code: 'TR_DEVICE_OFFLINE', message: 'gone' }, actor: null });
      expect(await store.getJob('job_none')).toBeNull();
    });

    it('lists jobs newest first, by device, state and host, up to a limit', async () => {
      await fresh();
      const h2 = await b.open('h2');
      const ids: string[] = [];
      for (const [s, dev] of [[store, 'd1'], [store, 'd2'], [h2, 'd1'], [store, 'd1']] as const) {
        ids.push((await s.createJob('train', dev, {})).id);
        await sleep(3); // distinct created_at: within one millisecond the order is the ids'
      }
      await store.startJob(ids[3]!);
      expect((await store.listJobs()).map((j) => j.id)).toEqual([...ids].reverse());
      expect((await store.listJobs({ deviceId: 'd1' })).map((j) => j.id)).toEqual([ids[3], ids[2], ids[0]]);
      expect((await store.listJobs({ state: 'running' })).map((j) => j.id)).toEqual([ids[3]]);
      expect((await store.listJobs({ hostId: 'h2' })).map((j) => j.id)).toEqual([ids[2]]);
      expect((await store.listJobs({ hostId: 'h1', deviceId: 'd1', state: 'queued' })).map((j) => j.id)).toEqual([ids[0]]);
      expect((await store.listJobs({ limit: 2 })).map((j) => j.id)).toEqual([ids[3], ids[2]]);
      expect(await h2.listJobs({ deviceId: 'nobody' })).toEqual([]);
    });

    it("after a restart fails only this host's queued and running jobs", async () => {
      await fresh();
      const h2 = await b.open('h2');
      const running = await store.createJob('train', 'd1', {});
      await store.startJob(running.id);
      const queued = await store.createJob('train', 'd1', {});
      const done = await store.createJob('train', 'd1', {});
      await store.finishJob(done.id, 'succeeded', { ok: 1 }, null);
      const other = await h2.createJob('train', 'd9', {});
      await store.close();
      const again = await b.open('h1');
      const rec = await again.recoverAfterRestart();
      expect(rec.failedJobs.sort()).toEqual([running.id, queued.id].sort());
      expect(rec.temporaries).toBe(0);
      expect(await again.getJob(running.id)).toMatchObject({
        state: 'failed', finishedAt: ISO,
        error: { code: 'TR_DAEMON_RESTARTED', message: 'the daemon stopped while this job was running; the job did not finish' },
      });
      expect(await again.getJob(done.id)).toMatchObject({ state: 'succeeded', result: { ok: 1 }, error: null });
      expect(await again.getJob(other.id)).toMatchObject({ state: 'queued', error: null });
      expect((await again.recoverAfterRestart()).failedJobs).toEqual([]);
    });

    it('fails the jobs of a host that stopped heartbeating', async () => {
      await fresh();
      const h2 = await b.open('h2');
      const mine = await store.createJob('train', 'd1', {});
      const lost = [await h2.createJob('train', 'd2', {}), await h2.createJob('eval', 'd3', {})];
      await h2.startJob(lost[0]!.id);
      const finished = await h2.createJob('train', 'd2', {});
      await h2.finishJob(finished.id, 'succeeded', null, null);
      const error = { code: 'TR_HOST_LOST', message: 'host h2 stopped heartbeating' };
      expect((await store.failJobsOfHost('h2', error)).sort()).toEqual(lost.map((j) => j.id).sort());
      for (const j of lost) expect(await store.getJob(j.id)).toMatchObject({ state: 'failed', error, finishedAt: ISO });
      expect(await store.getJob(finished.id)).toMatchObject({ state: 'succeeded' });
      expect(await store.getJob(mine.id)).toMatchObject({ state: 'queued' });
      expect(await store.failJobsOfHost('h2', error)).toEqual([]);
    });

    it('buffers steps until a flush, the flush timer or a read', async () => {
      await fresh();
      const reader = await b.open('h1');
      store.recordSteps([step(0), step(1)]);
      expect(await reader.countSteps('d1')).toBe(0); // still buffered in the writer
      await store.flushSteps();
      expect(await reader.countSteps('d1')).toBe(2);
      store.recordSteps([step(2)]);
      await until(async () => (await reader.countSteps('d1')) === 3, STEP_FLUSH_MS * 10, 'the flush timer');
      store.recordSteps([step(3)]);
      expect(await store.countSteps('d1')).toBe(4); // a read of the writer flushes first
    });

    it('pages steps by seq, by job, with the rows as recorded', async () => {
      await fresh();
      store.recordSteps(Array.from({ length: 5 }, (_, i) => step(i)));
      store.recordSteps([step(5, { jobId: 'j2', energyUj: null, energySource: null }), step(0, { deviceId: 'd2' })]);
      const first = await store.listSteps('d1', { limit: 3 });
      expect(first.map((s) => s.sampleIndex)).toEqual([0, 1, 2]);
      expect(first[0]).toEqual({ seq: expect.any(Number), createdAt: ISO, ...step(0) });
      const rest = await store.listSteps('d1', { after: first[2]!.seq });
      expect(rest.map((s) => s.sampleIndex)).toEqual([3, 4, 5]);
      expect(rest[0]).toMatchObject({ correct: false, counter: 3_000_000_003, energySource: 'estimated' });
      expect(rest[2]).toMatchObject({ jobId: 'j2', energyUj: null, energySource: null });
      expect((await store.listSteps('d1', { jobId: 'j2' })).map((s) => s.sampleIndex)).toEqual([5]);
      expect(await store.countSteps('d1')).toBe(6);
      expect(await store.countSteps('d2')).toBe(1);
      expect(await store.listSteps('d3')).toEqual([]);
    });

    it('keeps zoo and user models apart and fills what a zoo model learns later', async () => {
      await fresh();
      const zoo = await store.putModel({ sha256: 'a'.repeat(64), name: 'cnn', seed: 7, bytes: 4000, weightsBytes: null, inputBytes: null, classes: null });
      expect(zoo).toEqual({
        sha256: 'a'.repeat(64), name: 'cnn', seed: 7, bytes: 4000, weightsBytes: null, inputBytes: null, classes: null,
        createdAt: ISO, source: 'zoo', plan: null, spec: null, actor: null,
      });
      // a later put fills what was unknown and never blanks what was known
      expect(await store.putModel({ sha256: 'a'.repeat(64), name: 'cnn', seed: 7, bytes: 4000, weightsBytes: 900, inputBytes: 784, classes: null }))
        .toMatchObject({ weightsBytes: 900, inputBytes: 784, classes: null, createdAt: zoo.createdAt });
      expect(await store.putModel({ sha256: 'a'.repeat(64), name: 'cnn', seed: 7, bytes: 4000, weightsBytes: null, inputBytes: null, classes: 10 }))
        .toMatchObject({ weightsBytes: 900, inputBytes: 784, classes: 10 });
      expect(await store.findModel('cnn', 7)).toMatchObject({ sha256: 'a'.repeat(64) });
      expect(await store.findModel('cnn', 8)).toBeNull();

      const plan = { input: [28, 28, 1], classes: 10, layers: [{ kind: 'dense', out: 10 }] };
      const spec = { name: 'mine', z: 1, a: 2 };
      const user = await store.putUserModel({ sha256: 'b'.repeat(64), name: 'mine', seed: 1, bytes: 10, weightsBytes: 5, inputBytes: 784, classes: 10, plan, spec, actor: 'bob' });
      expect(user).toEqual({ sha256: 'b'.repeat(64), name: 'mine', seed: 1, bytes: 10, weightsBytes: 5, inputBytes: 784, classes: 10, createdAt: ISO, source: 'user', plan, spec, actor: 'bob' });
      expect(Object.keys((await store.getModel('b'.repeat(64)))!.spec as object)).toEqual(['name', 'z', 'a']); // as written
      await store.putUserModel({ sha256: 'c'.repeat(64), name: 'bare', seed: null, bytes: 10, weightsBytes: null, inputBytes: null, classes: null });
      expect(await store.getModel('c'.repeat(64))).toMatchObject({ plan: null, spec: null, actor: null, seed: null });
      expect(await store.findModel('mine', 1)).toBeNull(); // zoo only
      expect(await store.userModelByName('mine')).toMatchObject({ sha256: 'b'.repeat(64) });
      expect(await store.userModelByName('cnn')).toBeNull();
      expect((await store.listUserModels()).map((m) => m.name).sort()).toEqual(['bare', 'mine']);
      expect(await store.getModel('f'.repeat(64))).toBeNull();
    });

    it("deletes a model's blob with its row unless a snapshot shares the hash", async () => {
      await fresh();
      const blob = bytes(9, 64);
      const sha = await store.blobs.put(blob);
      await store.putUserModel({ sha256: sha, name: 'm1', seed: null, bytes: blob.length, weightsBytes: null, inputBytes: null, classes: null });
      await store.createSnapshot(snapshotInput(bytes(1), { modelSha256: sha }));
      expect(await store.countSnapshotsOfModel(sha)).toBe(1);
      expect(await store.deleteModel(sha)).toBe(true);
      expect(await store.getModel(sha)).toBeNull();
      expect(await store.blobs.has(sha)).toBe(false);
      expect(await store.deleteModel(sha)).toBe(false);

      const shared = bytes(2, 64);
      const sha2 = await store.blobs.put(shared);
      await store.putUserModel({ sha256: sha2, name: 'm2', seed: null, bytes: 64, weightsBytes: null, inputBytes: null, classes: null });
      await store.createSnapshot(snapshotInput(shared));
      expect(await store.deleteModel(sha2)).toBe(true);
      expect(await store.blobs.get(sha2)).toEqual(Buffer.from(shared));
    });

    it('stores a snapshot row only with its verified blob', async () => {
      await fresh();
      const w = bytes(1);
      await expect(store.createSnapshot(snapshotInput(w, { expectedSha256: 'f'.repeat(64) }))).rejects.toThrow(/expected/);
      expect(await store.listSnapshots()).toEqual([]);
      expect(await store.blobs.has(sha256Hex(w))).toBe(false);
      const snap = await store.createSnapshot(snapshotInput(w, { tags: ['a', 'nightly'] }));
      expect(snap).toEqual({
        id: expect.stringMatching(/^snap_/), sha256: sha256Hex(w), bytes: 1000, deviceId: 'd1', modelSha256: 'm'.repeat(64), modelName: 'cnn',
        step: 3, tags: ['a', 'nightly'], accuracy: null, good: false, createdAt: ISO, evaluatedOn: null,
      });
      expect(await store.blobs.get(snap.sha256)).toEqual(Buffer.from(w));
      expect(await store.getSnapshot(snap.id)).toEqual(snap);
      expect(await store.getSnapshot('snap_none')).toBeNull();
    });

    it('lists snapshots newest first by device, model, good and tag', async () => {
      await fresh();
      const ids: string[] = [];
      const inputs = [
        { deviceId: 'd1', tags: ['a'], good: true, accuracy: 0.9, evaluatedOn: slice },
        { deviceId: 'd2', tags: ['a', 'b'] },
        { deviceId: 'd1', tags: [], modelSha256: 'n'.repeat(64) },
        { deviceId: 'd1', tags: ['b'] },
      ];
      for (const [i, over] of inputs.entries()) {
        ids.push((await store.createSnapshot(snapshotInput(bytes(i), over))).id);
        await sleep(3);
      }
      const list = async (o: Parameters<Store['listSnapshots']>[0]) => (await store.listSnapshots(o)).map((s) => s.id);
      expect(await list({})).toEqual([...ids].reverse());
      expect(await list({ deviceId: 'd1' })).toEqual([ids[3], ids[2], ids[0]]);
      expect(await list({ modelSha256: 'n'.repeat(64) })).toEqual([ids[2]]);
      expect(await list({ good: true })).toEqual([ids[0]]);
      expect(await list({ good: false })).toEqual([ids[3], ids[2], ids[1]]);
      expect(await list({ tag: 'a' })).toEqual([ids[1], ids[0]]);
      expect(await list({ tag: 'b', deviceId: 'd1' })).toEqual([ids[3]]);
      expect(await list({ tag: 'c' })).toEqual([]);
      expect(await list({ limit: 1 })).toEqual([ids[3]]);
      expect((await store.getSnapshot(ids[0]!))!).toMatchObject({ good: true, accuracy: 0.9, evaluatedOn: slice });
    });

    it('records an evaluation on every snapshot of the same weights', async () => {
      await fresh();
      const w = bytes(5);
      const sha = sha256Hex(w);
      const a = await store.createSnapshot(snapshotInput(w, { deviceId: 'd1' }));
      const c = await store.createSnapshot(snapshotInput(w, { deviceId: 'd2' }));
      await store.createSnapshot(snapshotInput(bytes(6)));
      expect(await store.knownAccuracy(sha)).toBeNull();
      expect(await store.markEvaluated(sha, 0.4, 0.5, slice)).toBe(2);
      expect(await store.getSnapshot(a.id)).toMatchObject({ accuracy: 0.4, good: false, evaluatedOn: slice });
      expect(await store.knownAccuracy(sha)).toEqual({ accuracy: 0.4, slice });
      const later = { ...slice, offset: 200 };
      expect(await store.markEvaluated(sha, 0.8125, 0.5, later)).toBe(2);
      expect(await store.getSnapshot(c.id)).toMatchObject({ accuracy: 0.8125, good: true, evaluatedOn: later });
      expect(await store.knownAccuracy(sha)).toEqual({ accuracy: 0.8125, slice: later });
      expect(await store.markEvaluated('e'.repeat(64), 0.9, 0.5, slice)).toBe(0);
    });

    it('deletes a snapshot, and its blob once nothing else holds the hash', async () => {
      await fresh();
      const w = bytes(3);
      const sha = sha256Hex(w);
      const a = await store.createSnapshot(snapshotInput(w));
      const c = await store.createSnapshot(snapshotInput(w, { deviceId: 'd2' }));
      expect(await store.deleteSnapshot(a.id)).toBe(true);
      expect(await store.getSnapshot(a.id)).toBeNull();
      expect(await store.blobs.verify(sha)).toBe(true); // c still holds it
      expect(await store.deleteSnapshot(c.id)).toBe(true);
      expect(await store.blobs.has(sha)).toBe(false);
      expect(await store.deleteSnapshot(c.id)).toBe(false);

      // a model stored under the same hash keeps the blob too
      const m = bytes(4);
      const msha = await store.blobs.put(m);
      await store.putUserModel({ sha256: msha, name: 'same', seed: null, bytes: m.length, weightsBytes: null, inputBytes: null, classes: null });
      const s = await store.createSnapshot(snapshotInput(m));
      expect(await store.deleteSnapshot(s.id)).toBe(true);
      expect(await store.blobs.verify(msha)).toBe(true);
    });

    it('verifies every blob it reads and repairs a damaged one on the next put', async () => {
      await fresh();
      const w = bytes(8);
      await expect(store.blobs.put(w, 'f'.repeat(64))).rejects.toThrow(/expected/);
      const sha = await store.blobs.put(w, sha256Hex(w));
      expect(await store.blobs.put(w)).toBe(sha); // twice is once
      expect(await store.blobs.has(sha)).toBe(true);
      expect(await store.blobs.verify(sha)).toBe(true);
      expect(await store.blobs.get(sha)).toEqual(Buffer.from(w));

      const damaged = Buffer.from(w);
      damaged[10] ^= 0xff;
      await b.damage(sha, damaged);
      const err = await store.blobs.get(sha).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlobDamagedError);
      expect(err).toMatchObject({ sha256: sha, actual: sha256Hex(damaged) });
      expect(await store.blobs.verify(sha)).toBe(false);
      expect(await store.blobs.has(sha)).toBe(true);
      await store.blobs.put(w);
      expect(await store.blobs.get(sha)).toEqual(Buffer.from(w));

      await store.blobs.remove(sha);
      await expect(store.blobs.get(sha)).rejects.toBeInstanceOf(BlobMissingError);
      expect(await store.blobs.verify(sha)).toBe(false);
      expect(await store.blobs.has(sha)).toBe(false);
      expect(await store.blobs.sweepTemporaries()).toBe(0);
    });

    it('keeps regression runs and one baseline per suite', async () => {
      await fresh();
      await store.putRun('run_1', 'nightly', 'running', { id: 'run_1', suite: 'nightly', z: 1, a: 2 }, false);
      await sleep(3);
      await store.putRun('run_2', 'nightly', 'queued', { id: 'run_2' }, false);
      await sleep(3);
      await store.putRun('run_3', 'smoke', 'running', { id: 'run_3' }, false);
      await store.putRun('run_1', 'nightly', 'passed', { id: 'run_1', suite: 'nightly', verdict: 'pass' }, true);
      expect(await store.getRun('run_1')).toEqual({ id: 'run_1', suite: 'nightly', verdict: 'pass' });
      expect(await store.getRun('run_none')).toBeNull();
      const ids = async (o: Parameters<Store['listRuns']>[0]) => (await store.listRuns<{ id: string }>(o)).map((r) => r.id);
      expect(await ids({})).toEqual(['run_3', 'run_2', 'run_1']); // an update keeps a run's place
      expect(await ids({ suite: 'nightly' })).toEqual(['run_2', 'run_1']);
      expect(await ids({ state: 'running' })).toEqual(['run_3']);
      expect(await ids({ limit: 1 })).toEqual(['run_3']);
      expect(await store.baselineOf('nightly')).toBeNull();
      await store.setBaseline('nightly', 'run_1', 'alice');
      await store.setBaseline('nightly', 'run_2', null);
      expect(await store.baselineOf('nightly')).toBe('run_2');
      expect(await store.baselineOf('smoke')).toBeNull();
    });

    it('keeps leases until they end, renewing only open ones', async () => {
      await fresh();
      const exp = (s: number): string => new Date(Date.UTC(2030, 0, 1, 0, 0, s)).toISOString();
      await store.insertLease({ id: 'lease_1', deviceIds: ['d2', 'd1'], holder: 'alice', reason: 'calibration', expiresAt: exp(10) });
      await sleep(3);
      await store.insertLease({ id: 'lease_2', deviceIds: ['d3'], holder: 'bob', reason: null, expiresAt: exp(20) });
      expect(await store.openLeases()).toEqual([
        { id: 'lease_1', deviceIds: ['d2', 'd1'], holder: 'alice', reason: 'calibration', createdAt: ISO, expiresAt: exp(10) },
        { id: 'lease_2', deviceIds: ['d3'], holder: 'bob', reason: null, createdAt: ISO, expiresAt: exp(20) },
      ]);
      await store.renewLease('lease_1', exp(30));
      expect(await store.endLease('lease_2', 'admin')).toBe(true);
      expect(await store.endLease('lease_2', 'admin')).toBe(false);
      await store.renewLease('lease_2', exp(40));
      expect(await store.openLeases()).toEqual([expect.objectContaining({ id: 'lease_1', expiresAt: exp(30) })]);
    });

    it('takes a reservation only where no other holder holds a board: two hosts at once, one wins', async () => {
      await fresh();
      const h2 = await b.open('h2');
      const later = new Date(Date.now() + 60_000).toISOString();
      const one = { id: 'lease_a', deviceIds: ['d1', 'd2'], holder: 'alice', reason: null, expiresAt: later };
      const two = { id: 'lease_b', deviceIds: ['d2'], holder: 'bob', reason: 'calibration', expiresAt: later };
      const [ra, rb] = await Promise.all([store.insertLease(one), h2.insertLease(two)]);
      // exactly one of them is in force, and the other was told whose lease stood in its way
      expect([ra, rb].filter((r) => r === null)).toHaveLength(1);
      const open = await store.openLeases();
      expect(open).toHaveLength(1);
      expect((ra ?? rb)!.id).toBe(open[0].id);
      // the same holder may take another lease on its boards; an expired lease holds nothing
      expect(await store.insertLease({ ...one, id: 'lease_c', deviceIds: ['d2'], holder: open[0].holder })).toBeNull();
      await store.endLease('lease_c', 'test');
      await store.endLease(open[0].id, 'test');
      expect(await h2.insertLease({ ...two, id: 'lease_d', expiresAt: new Date(Date.now() - 1000).toISOString() })).toBeNull();
      expect(await store.insertLease({ ...one, id: 'lease_e' })).toBeNull();
      await h2.close();
    });

    it('keeps per-device state across a restart', async () => {
      await fresh();
      expect(await store.getDeviceState('d1')).toBeNull();
      await store.setDeviceState({ deviceId: 'd1', modelSha256: 'a'.repeat(64), modelName: 'cnn', bootId: 4_000_000_000 });
      await store.setDeviceState({ deviceId: 'd1', modelSha256: null, modelName: null, bootId: 4_000_000_001 });
      await store.close();
      const again = await b.open('h1');
      expect(await again.getDeviceState('d1')).toEqual({ deviceId: 'd1', modelSha256: null, modelName: null, bootId: 4_000_000_001 });
    });

    it("replaces a host's boards at each heartbeat; a board that moved belongs to its new host", async () => {
      await fresh();
      const h2 = await b.open('h2');
      const started = new Date().toISOString();
      await store.heartbeat({ url: 'http://10.0.0.1:8080', version: '0.1.0', startedAt: started }, [
        { deviceId: 'b', doc: { id: 'b', state: 'online', z: 1, a: 2 } },
        { deviceId: 'a', doc: { id: 'a', state: 'offline' } },
      ]);
      await h2.heartbeat({ url: 'http://10.0.0.2:8080', version: '0.1.0', startedAt: started }, [{ deviceId: 'c', doc: { id: 'c' } }]);
      expect(await h2.listBoards()).toEqual([
        { deviceId: 'a', hostId: 'h1', doc: { id: 'a', state: 'offline' }, updatedAt: ISO },
        { deviceId: 'b', hostId: 'h1', doc: { id: 'b', state: 'online', z: 1, a: 2 }, updatedAt: ISO },
        { deviceId: 'c', hostId: 'h2', doc: { id: 'c' }, updatedAt: ISO },
      ]);
      expect(Object.keys((await store.listBoards())[1]!.doc)).toEqual(['id', 'state', 'z', 'a']); // as written
      const [first] = await store.listHosts();
      expect(first).toEqual({ id: 'h1', url: 'http://10.0.0.1:8080', version: '0.1.0', startedAt: started, heartbeatAt: ISO, stoppedAt: null });

      await sleep(5);
      await store.heartbeat({ url: 'http://10.0.0.1:8080', version: '0.2.0', startedAt: started }, [{ deviceId: 'b', doc: { id: 'b', state: 'busy' } }]);
      await h2.heartbeat({ url: 'http://10.0.0.2:8080', version: '0.1.0', startedAt: started }, [
        { deviceId: 'c', doc: { id: 'c' } },
        { deviceId: 'b', doc: { id: 'b', moved: true } },
      ]);
      expect((await store.listBoards()).map((r) => [r.deviceId, r.hostId, r.doc])).toEqual([
        ['b', 'h2', { id: 'b', moved: true }],
        ['c', 'h2', { id: 'c' }],
      ]);
      // h1 reporting no boards leaves h2's alone
      await store.heartbeat({ url: 'http://10.0.0.1:8080', version: '0.2.0', startedAt: started }, []);
      expect((await store.listBoards()).map((r) => r.deviceId)).toEqual(['b', 'c']);
      const hosts = await store.listHosts();
      expect(hosts.map((h) => h.id)).toEqual(['h1', 'h2']);
      expect(hosts[0]).toMatchObject({ version: '0.2.0', stoppedAt: null });
      expect(hosts[0]!.heartbeatAt > first!.heartbeatAt).toBe(true);

      await store.stopHost();
      expect((await store.listHosts())[0]).toMatchObject({ id: 'h1', stoppedAt: ISO });
      expect((await store.listBoards()).map((r) => r.deviceId)).toEqual(['b', 'c']);
      await store.heartbeat({ url: 'http://10.0.0.1:8080', version: '0.2.0', startedAt: started }, []);
      expect((await store.listHosts())[0]).toMatchObject({ stoppedAt: null });
    });

    it('applies each migration once: opening again changes nothing', async () => {
      await fresh();
      expect(await store.schemaVersion()).toBe(migrations.length);
      const job = await store.createJob('train', 'd1', { keep: true });
      await store.close();
      const again = await b.open('h1');
      expect(await again.schemaVersion()).toBe(migrations.length);
      expect(await again.getJob(job.id)).toMatchObject({ params: { keep: true } });
    });
  });
});

describe.skipIf(!pgHere.ok)('the postgres store, shared and restarted', () => {
  let pgc: PgCluster;
  let n = 0;
  beforeAll(async () => {
    pgc = await PgCluster.create();
  }, 60_000);
  afterAll(() => pgc?.destroy());
  const database = async (): Promise<{ name: string; url: string }> => {
    const name = `shared_${++n}`;
    return { name, url: await pgc.createDatabase(name) };
  };

  it('migrates once when two daemons open one new database at the same moment', async () => {
    const db = await database();
    const stores = (await Promise.all(['h1', 'h2', 'h3'].map((hostId) => PgStore.open(db.url, { hostId })))).map(track);
    for (const s of stores) expect(await s.schemaVersion()).toBe(pgMigrations.length);
    const rows = await pgc.sql<{ version: number }>(db.name, `SELECT version FROM schema_migrations ORDER BY version`);
    expect(rows.map((r) => r.version)).toEqual(pgMigrations.map((_, i) => i + 1));
  });

  it('finishes writes in flight across a PostgreSQL restart, each exactly once, and says when it lost the server', async () => {
    const db = await database();
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const store = track(await PgStore.open(db.url, { hostId: 'h1', log, retryMs: 30_000 })) as PgStore;
    await store.createJob('warm', null, {}); // the pool holds idle connections the restart will cut
    expect(store.reachable).toBe(true);

    let sawUnreachable = false;
    const watch = setInterval(() => (sawUnreachable ||= !store.reachable), 2);
    try {
      const restarting = pgc.restart();
      const job = store.createJob('train', 'd1', { during: 'restart' });
      store.recordSteps(Array.from({ length: 50 }, (_, i) => step(i)));
      const flushed = store.flushSteps();
      await restarting;
      // and one issued while it is still coming back, or just back
      const late = store.createJob('train', 'd1', { during: 'recovery' });
      await Promise.all([job, flushed, late]);
    } finally {
      clearInterval(watch);
    }
    expect(sawUnreachable).toBe(true);
    expect(store.reachable).toBe(true);
    expect(store.lastError).toMatchObject({ message: expect.any(String), at: ISO });
    expect((await store.listJobs()).map((j) => j.params)).toEqual(
      expect.arrayContaining([{ during: 'restart' }, { during: 'recovery' }]),
    );
    expect(await store.listJobs()).toHaveLength(3);
    expect(await store.countSteps('d1')).toBe(50);
    const warns = lines.filter((l) => l.level === 40 && /unreachable/.test(l.msg)).length;
    const infos = lines.filter((l) => l.level === 30 && /reachable again/.test(l.msg)).length;
    expect(warns).toBeGreaterThanOrEqual(1);
    expect(infos).toBe(warns); // every outage it warned of, it saw end
  });

  it('lands a write once and answers as usual when its first commit went through but the answer was lost', async () => {
    const db = await database();
    const store = track(await PgStore.open(db.url, { hostId: 'h1' })) as PgStore;
    loseEveryFirstAnswer(store);
    const job = await store.createJob('train', 'd1', { once: true });
    expect(await store.listJobs()).toEqual([job]);
    store.recordSteps(Array.from({ length: 7 }, (_, i) => step(i)));
    expect(await store.countSteps('d1')).toBe(7);
    const w = bytes(1);
    const snap = await store.createSnapshot(snapshotInput(w));
    const twin = await store.createSnapshot(snapshotInput(w, { deviceId: 'd2' }));
    expect(await store.listSnapshots()).toHaveLength(2);
    expect(await store.markEvaluated(snap.sha256, 0.9, 0.5, slice)).toBe(2);
    const m = bytes(2, 64);
    const msha = await store.blobs.put(m);
    expect(await store.putUserModel({ sha256: msha, name: 'mine', seed: null, bytes: 64, weightsBytes: null, inputBytes: null, classes: null }))
      .toMatchObject({ name: 'mine', source: 'user' });
    await store.heartbeat({ url: 'http://h1', version: '1', startedAt: new Date().toISOString() }, [{ deviceId: 'b1', doc: {} }]);
    expect(await store.listBoards()).toHaveLength(1);
    await store.insertLease({ id: 'lease_1', deviceIds: ['d1'], holder: 'alice', reason: null, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    expect(await store.endLease('lease_1', 'alice')).toBe(true);
    expect(await store.failJobsOfHost('h1', { code: 'TR_HOST_LOST', message: 'lost' })).toEqual([job.id]);
    expect(await store.deleteSnapshot(snap.id)).toBe(true);
    expect(await store.deleteSnapshot(twin.id)).toBe(true);
    expect(await store.blobs.has(snap.sha256)).toBe(false);
    expect(await store.deleteModel(msha)).toBe(true);
    expect(store.lostAnswers).toBe(14); // every write above lost its first answer
  });

  it('waits for a server that is down, then fails plainly when it stays down', async () => {
    const db = await database();
    const store = track(await PgStore.open(db.url, { hostId: 'h1', retryMs: 800 })) as PgStore;
    await pgc.stop();
    try {
      const err = await store.createJob('train', 'd1', {}).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TR_STORE_UNREACHABLE', message: expect.stringMatching(/PostgreSQL unreachable for \d+ ms/) });
      expect(store.reachable).toBe(false);
    } finally {
      await pgc.start();
    }
    expect(await store.listJobs()).toEqual([]);
    expect(store.reachable).toBe(true);
  });
});
