// Faults: a board unplugged in the middle of a transfer, and the daemon
// killed with SIGKILL during snapshots and rollbacks.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { sha256Hex } from '../../server/src/store/blobs.js';
import { auth, buildApp, TEST_TOKEN, tempDir, until } from './helpers.js';
import { startDaemon, type DaemonProcess } from '../../tools/proc/daemon.js';
import { LinkSim, linksimBuilt } from '../../tools/proc/linksim.js';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let twins: TwinProcess[] = [];

/** A REST call on a daemon process, with the admin token. */
const req = async (d: DaemonProcess, method: string, url: string, body?: unknown): Promise<{ status: number; body: Json }> => {
  const r = await fetch(`${d.url}${url}`, {
    method,
    headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: (await r.json()) as Json };
};
afterAll(async () => {
  await stopTwins(twins);
});

describe.runIf(twinBuilt())('board unplugged mid-transfer', () => {
  let app: FastifyInstance | null = null;
  afterEach(async () => {
    await app?.close();
    app = null;
  });

  it('fails the running job with a clear error, keeps its data, and reconnects when the board returns', async () => {
    const dir = tempDir('tinyrig-unplug-');
    const [twin] = await startTwins(dir, 1);
    twins.push(twin);
    app = await buildApp({ devices: [{ id: 'twin-u', path: twin.path, board: 'host-twin', tags: ['emulated'] }] });
    const board = app.devices.get('twin-u');
    await board.waitOnline(10_000);
    const deploy = await app.inject({ method: 'POST', url: '/v1/devices/twin-u/model', headers: auth(), payload: { model: 'cnn', seed: 1 } });
    expect(deploy.statusCode, deploy.body).toBe(200);
    if (!board.hello?.engine) throw new Error(`twin firmware ${board.hello?.build} lacks the training engine (HELLO engine:false)`);

    const started = await app.inject({
      method: 'POST', url: '/v1/devices/twin-u/train', headers: auth(),
      payload: { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 20000, lr: 0.01 },
    });
    expect(started.statusCode).toBe(202);
    const jobId = started.json().jobId as string;
    await until(async () => ((await app!.store.getJob(jobId))?.done ?? 0) >= 64, 30_000, 'some training steps');
    const bootBefore = board.hello!.bootId;
    await twin.kill(); // the cable is pulled

    const failed = await app.jobs.wait(jobId);
    expect(failed?.state).toBe('failed');
    expect(failed?.error?.code).toBe('TR_DEVICE_DISCONNECTED');
    expect(failed?.error?.message).toMatch(/twin-u/);
    expect(failed?.error?.message).toMatch(/disconnected/);
    // the job says what it did before the cable went: its steps, the board's step total, no hash (the board is gone)
    const partial = failed!.result as Json;
    expect(partial).toMatchObject({ deviceId: 'twin-u', interrupted: true, weightsSha256: null });
    expect(partial.steps).toBeGreaterThanOrEqual(64);
    expect(partial.stepsApplied).toBe(partial.steps);
    expect(partial.lastStepId).toBeGreaterThan(0);
    // the steps applied before the unplug are kept
    const metrics = (await app.inject({ method: 'GET', url: `/v1/devices/twin-u/metrics?jobId=${jobId}&limit=10000` })).json();
    expect(metrics.steps.length).toBeGreaterThanOrEqual(64);
    expect(metrics.steps.length).toBe(failed!.done);
    const dev = (await app.inject({ method: 'GET', url: '/v1/devices/twin-u' })).json();
    expect(dev.state).not.toBe('online');
    expect(dev.busy).toBeNull();
    const refused = await app.inject({ method: 'POST', url: '/v1/devices/twin-u/snapshots', headers: auth(), payload: {} });
    expect(refused.statusCode).toBe(503);

    // plugged back in: a new twin process on the same path (a fresh boot)
    await twin.start();
    await until(() => board.status === 'online', 15_000, 'reconnect after re-plug');
    expect(board.hello!.bootId).not.toBe(bootBefore);
    expect(board.counters.reconnects).toBeGreaterThanOrEqual(1);
    expect(board.counters.resets).toBeGreaterThanOrEqual(1);
    expect(board.model).toBeNull(); // a reset board holds no model
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/tinyrig_link_errors_total\{device="twin-u",kind="disconnect"\} [1-9]/);
    const again = await app.inject({ method: 'POST', url: '/v1/devices/twin-u/model', headers: auth(), payload: { model: 'cnn', seed: 1 } });
    expect(again.statusCode).toBe(200);
  });
});

describe.runIf(twinBuilt())('daemon killed with SIGKILL', () => {
  let daemon: DaemonProcess | null = null;
  afterEach(async () => {
    await daemon?.kill9();
    daemon = null;
  });

  it('leaves no half snapshot and no job stuck running after a restart', async () => {
    const dir = tempDir('tinyrig-kill9-');
    const rigTwins = await startTwins(dir, 2);
    twins.push(...rigTwins);
    const varDir = path.join(dir, 'var');
    const devicesFile = path.join(dir, 'devices.json');
    fs.writeFileSync(
      devicesFile,
      JSON.stringify({ devices: rigTwins.map((t, i) => ({ id: `k${i}`, path: t.path, board: 'host-twin', tags: ['emulated'] })) }),
    );
    const env = { TINYRIG_VAR: varDir, TINYRIG_DEVICES: devicesFile, TINYRIG_TOKEN: TEST_TOKEN, TINYRIG_RECONNECT_MIN_MS: '50' };

    daemon = await startDaemon(env);
    const until2 = async (d: DaemonProcess): Promise<void> =>
      until(async () => (await req(d, 'GET', '/v1/health')).body.devices.online === 2, 15_000, 'both boards online');
    await until2(daemon);
    for (const id of ['k0', 'k1']) {
      const r = await req(daemon, 'POST', `/v1/devices/${id}/model`, { model: 'cnn', seed: 7 });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    const first = await req(daemon, 'POST', '/v1/devices/k0/snapshots', { tags: ['first'] });
    expect(first.status).toBe(201);

    // keep snapshots and rollbacks in flight on both boards, then SIGKILL at an arbitrary moment
    let stop = false;
    const loop = async (id: string): Promise<void> => {
      while (!stop) {
        try {
          await req(daemon!, 'POST', `/v1/devices/${id}/snapshots`, { tags: ['loop'] });
          await req(daemon!, 'POST', `/v1/devices/${id}/rollback`, { snapshotId: first.body.id });
        } catch {
          return; // the daemon is gone
        }
      }
    };
    const loops = [loop('k0'), loop('k1')];
    await new Promise((r) => setTimeout(r, 1500 + Math.random() * 500));
    await daemon.kill9();
    stop = true;
    await Promise.all(loops);

    // what the killed daemon left behind
    const db = new Database(path.join(varDir, 'store.db'), { readonly: true });
    const rows = db.prepare(`SELECT id, sha256, bytes FROM snapshots`).all() as { id: string; sha256: string; bytes: number }[];
    const stuckBefore = (db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE state IN ('queued','running')`).get() as { n: number }).n;
    db.close();
    expect(rows.length).toBeGreaterThan(1);
    for (const r of rows) {
      const blob = fs.readFileSync(path.join(varDir, 'blobs', r.sha256));
      expect(blob.length).toBe(r.bytes);
      expect(sha256Hex(blob)).toBe(r.sha256);
    }

    daemon = await startDaemon(env);
    const jobs = (await req(daemon, 'GET', '/v1/jobs?limit=1000')).body.jobs as Json[];
    expect(jobs.filter((j) => j.state === 'running' || j.state === 'queued')).toEqual([]);
    const interrupted = jobs.filter((j) => j.error?.code === 'TR_DAEMON_RESTARTED');
    expect(interrupted.length).toBe(stuckBefore);
    expect(fs.readdirSync(path.join(varDir, 'blobs')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    // every snapshot the API lists is whole
    const snaps = (await req(daemon, 'GET', '/v1/snapshots?limit=1000')).body.snapshots as Json[];
    expect(snaps.length).toBe(rows.length);
    // and the boards are usable again: a verified rollback on each
    await until2(daemon);
    for (const id of ['k0', 'k1']) {
      const r = await req(daemon, 'POST', `/v1/devices/${id}/rollback`, { snapshotId: first.body.id });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.verified).toBe(true);
    }
    await daemon.stop();
    daemon = null;
  });
});

describe.runIf(twinBuilt() && linksimBuilt())('work cut off by SIGKILL', () => {
  let daemon: DaemonProcess | null = null;
  const sims: LinkSim[] = [];
  afterEach(async () => {
    await daemon?.kill9();
    daemon = null;
    for (const s of sims.splice(0)) await s.stop();
  });

  it('keeps each board\'s outcome of a fleet rollback and the steps of a training job that were under way', async () => {
    const dir = tempDir('tinyrig-partial-');
    const rigTwins = await startTwins(dir, 4);
    twins.push(...rigTwins);
    // the fleet's three boards behind 115200-baud lines: a 64 KiB rollback takes seconds each
    for (let i = 0; i < 3; i++) {
      sims.push(await LinkSim.start({ device: rigTwins[i].path, link: path.join(dir, `line-${i}`), baud: 115200 }));
    }
    const varDir = path.join(dir, 'var');
    const devicesFile = path.join(dir, 'devices.json');
    const entries = [
      ...sims.map((s, i) => ({ id: `f${i}`, path: s.path, board: 'host-twin', tags: ['fleet'] })),
      { id: 't0', path: rigTwins[3].path, board: 'host-twin', tags: ['trainer'] },
    ];
    fs.writeFileSync(devicesFile, JSON.stringify({ devices: entries }));
    const env = {
      TINYRIG_VAR: varDir, TINYRIG_DEVICES: devicesFile, TINYRIG_TOKEN: TEST_TOKEN, TINYRIG_RECONNECT_MIN_MS: '50',
      TINYRIG_REQUEST_TIMEOUT_MS: '20000',
    };
    daemon = await startDaemon(env);
    await until(async () => (await req(daemon!, 'GET', '/v1/health')).body.devices.online === 4, 20_000, 'four boards online');
    for (const e of entries) {
      const r = await req(daemon, 'POST', `/v1/devices/${e.id}/model`, { model: 'cnn', seed: 3 });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    const snap = await req(daemon, 'POST', '/v1/devices/t0/snapshots', {});
    expect(snap.status).toBe(201);

    const fleet = await req(daemon, 'POST', '/v1/fleet/rollback', { selector: { tag: 'fleet' }, to: snap.body.id, canary: 1 });
    expect(fleet.status).toBe(202);
    const train = await req(daemon, 'POST', '/v1/devices/t0/train', { dataset: 'fashion-mnist', count: 20000 });
    expect(train.status).toBe(202);
    const job = async (id: string): Promise<Json> => (await req(daemon!, 'GET', `/v1/jobs/${id}`)).body;
    await until(async () => ((await job(fleet.body.jobId)).result?.devices?.length ?? 0) >= 1, 60_000, 'the canary rolled back');
    await until(async () => ((await job(train.body.jobId)).result?.steps ?? 0) >= 32, 60_000, 'some training steps checkpointed');
    expect((await job(fleet.body.jobId)).state).toBe('running');
    await daemon.kill9();

    daemon = await startDaemon(env);
    const f = await job(fleet.body.jobId);
    expect(f).toMatchObject({ state: 'failed', error: { code: 'TR_DAEMON_RESTARTED' }, actor: 'env' });
    expect(f.result.interrupted).toBe(true);
    expect(f.result.devices[0]).toMatchObject({ deviceId: 'f0', phase: 'canary', state: 'succeeded', verified: true, after: snap.body.sha256 });
    expect(f.result.devices.length + f.result.pending).toBe(3);
    const t = await job(train.body.jobId);
    expect(t).toMatchObject({ state: 'failed', error: { code: 'TR_DAEMON_RESTARTED' } });
    expect(t.result.steps).toBeGreaterThanOrEqual(32);
    expect(t.result.stepsApplied).toBe(t.result.steps);
    expect(t.params.lr).toBe(0.002); // the default the job ran with is recorded
  }, 180_000);
});

describe.runIf(!twinBuilt())('faults over host twins (twin missing)', () => {
  it('needs the host twin binary', () => {
    throw new Error('firmware/build/host/tinyrig-twin is not built: run make -C firmware (unplug and SIGKILL tests not run)');
  });
});
