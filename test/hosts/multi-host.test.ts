// Several rig hosts, one fleet: three daemons, each in its own network
// namespace with its own two host twins, sharing one throwaway PostgreSQL.
// A board of one host is driven through another host's API; a fleet rollback
// spans all three; a host is killed mid-rollback; PostgreSQL restarts under a
// running job; a host is cut off from PostgreSQL. Where namespaces cannot be
// made the hosts get loopback addresses of their own and the test says so.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../tools/proc/child.js';
import { startDaemon, type DaemonProcess } from '../../tools/proc/daemon.js';
import { HostNetwork } from '../../tools/proc/netns.js';
import { PgCluster, pgAvailable } from '../../tools/proc/postgres.js';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';
import { TEST_TOKEN, tempDir } from '../server/helpers.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const HOSTS = 3;
const BOARDS = 2;
const pg = pgAvailable();
const ready = twinBuilt() && pg.ok;
if (!ready) {
  console.log(`multi-host tests did NOT run: ${!twinBuilt() ? 'the host twin is not built (make -C firmware host)' : (pg as { reason: string }).reason}`);
}

interface Host {
  id: string;
  address: string;
  env: Record<string, string>;
  daemon: DaemonProcess | null;
  twins: TwinProcess[];
}

const ALICE = 'alice-operator-token-0123456789';
const BOB = 'bob-operator-token-0123456789ab';

const call = async (h: Host, method: string, url: string, body?: unknown, token = TEST_TOKEN): Promise<{ status: number; body: Json; host: string | null }> => {
  const r = await fetch(`${h.daemon!.url}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Json) : {}, host: r.headers.get('x-tinyrig-host') };
};

const boardId = (h: number, b: number): string => `h${h}-b${b}`;

describe.runIf(ready)('many rig hosts sharing one PostgreSQL', () => {
  let net: HostNetwork;
  let cluster: PgCluster;
  const hosts: Host[] = [];
  const dir = tempDir('tinyrig-hosts-');

  const start = async (h: Host, i: number): Promise<void> => {
    h.daemon = await startDaemon({ ...h.env }, 60_000, { wrap: net.wrap(i) });
  };

  const allOnline = async (from: Host, n: number): Promise<void> =>
    until(
      async () => {
        const r = await call(from, 'GET', '/v1/devices');
        return r.status === 200 && (r.body.devices as Json[]).filter((d) => d.state === 'online').length === n;
      },
      30_000,
      `${n} boards online as seen from ${from.id}`,
    );

  beforeAll(async () => {
    net = await HostNetwork.create(HOSTS, { prefix: 'trmh' });
    console.log(
      net.mode === 'netns'
        ? `hosts in network namespaces: ${net.hosts.map((h) => `${h.name} ${h.address}`).join(', ')}; PostgreSQL at ${net.gateway}`
        : `network namespaces unavailable (${net.reason}): hosts on loopback addresses ${net.hosts.map((h) => h.address).join(', ')}; the partition test cannot run`,
    );
    cluster = await PgCluster.create({ listen: net.mode === 'netns' ? [net.gateway] : [] });
    const url = cluster.urlOf(cluster.database, net.gateway);
    const suites = path.join(dir, 'suites');
    fs.mkdirSync(suites);
    // every host reads the suites: a host runs its boards' part of a run another host started
    fs.writeFileSync(
      path.join(suites, 'spread.yaml'),
      `name: spread
boards:
  - ids: [${boardId(0, 1)}, ${boardId(1, 1)}, ${boardId(2, 1)}]
model: { name: cnn, seed: 2 }
train: { dataset: fashion-mnist, split: train, offset: 0, count: 32 }
evaluate: { dataset: fashion-mnist, split: test, offset: 0, count: 32 }
`,
    );
    const tokensFile = path.join(dir, 'tokens.json');
    fs.writeFileSync(tokensFile, JSON.stringify([{ token: ALICE, role: 'operator', name: 'alice' }, { token: BOB, role: 'operator', name: 'bob' }]));
    for (let i = 0; i < HOSTS; i++) {
      const hostDir = path.join(dir, `host${i}`);
      fs.mkdirSync(hostDir, { recursive: true });
      const twins = await startTwins(hostDir, BOARDS, `h${i}-`);
      const devicesFile = path.join(hostDir, 'devices.json');
      fs.writeFileSync(
        devicesFile,
        JSON.stringify({ devices: twins.map((t, b) => ({ id: boardId(i, b), path: t.path, board: 'host-twin', tags: ['fleet', `host${i}`] })) }),
      );
      const address = net.hosts[i].address;
      hosts.push({
        id: `host${i}`,
        address,
        twins,
        daemon: null,
        env: {
          HOST: address,
          TINYRIG_VAR: path.join(hostDir, 'var'),
          TINYRIG_DEVICES: devicesFile,
          TINYRIG_TOKEN: TEST_TOKEN,
          TINYRIG_TOKENS_FILE: tokensFile,
          TINYRIG_SUITES: suites,
          TINYRIG_DATABASE_URL: url,
          TINYRIG_HOST_ID: `host${i}`,
          TINYRIG_HEARTBEAT_MS: '300',
          TINYRIG_HOST_OFFLINE_MS: '2500',
          TINYRIG_RECONNECT_MIN_MS: '50',
          TINYRIG_DURABLE: 'false',
          LOG_LEVEL: 'warn',
        },
      });
    }
    // three daemons starting at once against one new database: it is migrated once
    await Promise.all(hosts.map((h, i) => start(h, i)));
    for (const h of hosts) h.env.TINYRIG_HOST_URL = h.daemon!.url;
    await allOnline(hosts[0], HOSTS * BOARDS);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(hosts.map((h) => h.daemon?.kill9()));
    await Promise.all(hosts.map((h) => stopTwins(h.twins)));
    await cluster?.destroy();
    await net?.destroy();
  }, 60_000);

  it('every host lists the whole fleet, with the host of each board', async () => {
    for (const h of hosts) {
      const r = await call(h, 'GET', '/v1/devices');
      expect(r.status).toBe(200);
      const byId = new Map((r.body.devices as Json[]).map((d) => [d.id as string, d]));
      expect([...byId.keys()].sort()).toEqual(hosts.flatMap((_, i) => [boardId(i, 0), boardId(i, 1)]).sort());
      for (let i = 0; i < HOSTS; i++) expect(byId.get(boardId(i, 1))!.host).toBe(`host${i}`);
      const list = (await call(h, 'GET', '/v1/hosts')).body.hosts as Json[];
      expect(list.map((x) => [x.id, x.online, x.boards, x.self])).toEqual(hosts.map((x) => [x.id, true, BOARDS, x.id === h.id]));
      const health = await call(h, 'GET', '/v1/health');
      expect(health.body).toMatchObject({ status: 'ok', store: { engine: 'postgres', reachable: true }, host: { id: h.id, acceptingWork: true, fleet: { hosts: HOSTS, online: HOSTS } } });
    }
  });

  it("trains a board of host 1 and rolls it back through host 0's API, job and events visible from any host", async () => {
    const [a, b] = hosts;
    const id = boardId(1, 0);
    const deploy = await call(a, 'POST', `/v1/devices/${id}/model`, { model: 'cnn', seed: 3 });
    expect(deploy.status, JSON.stringify(deploy.body)).toBe(200);
    expect(deploy.host).toBe('host1');
    const snap = await call(a, 'POST', `/v1/devices/${id}/snapshots`, { tags: ['before'] });
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);

    const train = await call(a, 'POST', `/v1/devices/${id}/train`, { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 64, sparse: { lambdaMin: 0.1, lambdaMax: 1 } });
    expect(train.status, JSON.stringify(train.body)).toBe(202);
    const jobId = train.body.jobId as string;
    // server-sent events from host 2, which neither asked for the job nor runs it
    const events = await fetch(`${hosts[2].daemon!.url}/v1/jobs/${jobId}/events`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } }).then((r) => r.text());
    expect(events).toMatch(/event: result/);
    const job = await call(hosts[2], 'GET', `/v1/jobs/${jobId}`);
    expect(job.body).toMatchObject({ state: 'succeeded', deviceId: id });
    expect((await call(a, 'GET', `/v1/devices/${id}`)).body.model.weightsSha256).not.toBe(snap.body.sha256);

    const back = await call(a, 'POST', `/v1/devices/${id}/rollback`, { snapshotId: snap.body.id });
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body).toMatchObject({ verified: true, sha256: snap.body.sha256 });
    expect((await call(b, 'GET', `/v1/devices/${id}`)).body.model.weightsSha256).toBe(snap.body.sha256);
    // a refusal of the owning host comes back with its own code
    const bad = await call(a, 'POST', `/v1/devices/${id}/rollback`, { snapshotId: 'snap_nope' });
    expect(bad.status).toBe(404);
    expect(bad.body.code).toBe('TR_SNAPSHOT_NOT_FOUND');
    // host 1 ran those requests from its queue: their wait from enqueue to start is in its /metrics
    const metrics = await fetch(`${b.daemon!.url}/metrics`).then((r) => r.text());
    expect(Number(/^tinyrig_remote_queue_seconds_count (\d+)$/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
  }, 120_000);

  it("a reservation taken on one host holds the board on its own host: others get 409 naming the holder", async () => {
    const [a, b, c] = hosts;
    const id = boardId(2, 1);
    const lease = await call(a, 'POST', '/v1/leases', { devices: [id], ttlMs: 60_000, reason: 'calibration' }, ALICE);
    expect(lease.status, JSON.stringify(lease.body)).toBe(201);
    const refused = await call(b, 'POST', `/v1/devices/${id}/snapshots`, {}, BOB);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'TR_DEVICE_RESERVED', details: { holder: 'alice' } });
    expect(refused.host).toBe('host2');
    expect((await call(c, 'POST', `/v1/devices/${id}/model`, { model: 'cnn', seed: 1 }, ALICE)).status).toBe(200);
    const listed = (await call(b, 'GET', '/v1/devices')).body.devices as Json[];
    await until(async () => ((await call(b, 'GET', '/v1/devices')).body.devices as Json[]).find((d) => d.id === id)?.reservation?.holder === 'alice', 5_000, 'the reservation in the fleet list');
    expect(listed.length).toBe(HOSTS * BOARDS);
    expect((await call(b, 'DELETE', `/v1/leases/${lease.body.id}`, undefined, ALICE)).status).toBe(200);
    expect((await call(a, 'POST', `/v1/devices/${id}/snapshots`, {}, BOB)).status).toBe(201);
    // a board no host has is refused before anything is held
    expect((await call(a, 'POST', '/v1/leases', { devices: [id, 'nowhere'], ttlMs: 60_000 }, ALICE)).body.code).toBe('TR_DEVICE_NOT_FOUND');
  }, 60_000);

  let target = '';

  it('rolls the fleet of three hosts back from one host: canary first, every board verified', async () => {
    const a = hosts[0];
    for (let i = 0; i < HOSTS; i++) {
      for (let j = 0; j < BOARDS; j++) expect((await call(a, 'POST', `/v1/devices/${boardId(i, j)}/model`, { model: 'cnn', seed: 11 })).status).toBe(200);
    }
    const snap = await call(a, 'POST', `/v1/devices/${boardId(2, 1)}/snapshots`, { tags: ['fleet'] });
    expect(snap.status).toBe(201);
    target = snap.body.id as string;
    for (let i = 0; i < HOSTS; i++) {
      await call(a, 'POST', `/v1/devices/${boardId(i, 0)}/model`, { model: 'cnn', seed: 12 });
    }
    const r = await call(hosts[1], 'POST', '/v1/fleet/rollback?wait=true', { selector: { tag: 'fleet' }, to: target, canary: 1, maxFailures: 0 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.state).toBe('succeeded');
    const result = r.body.result as Json;
    expect(result).toMatchObject({ succeeded: HOSTS * BOARDS, failed: 0, halted: false, hosts: ['host0', 'host1', 'host2'] });
    for (const d of result.devices as Json[]) expect(d).toMatchObject({ state: 'succeeded', verified: true, after: snap.body.sha256 });
    expect((result.devices as Json[]).filter((d) => d.phase === 'canary')).toHaveLength(1);
  }, 180_000);

  it('left idle for three offline windows, every host stays online and its queue still answers at once', async () => {
    const view = (r: Json): string[] => (r.devices as Json[]).map((d) => `${d.id}@${d.host}:${d.state}:${d.model?.weightsSha256 ?? '-'}`).sort();
    // the list as the hosts publish it once the last test's work has reached every heartbeat
    let before = await call(hosts[0], 'GET', '/v1/devices');
    await until(async () => {
      await new Promise((r) => setTimeout(r, 1000));
      const again = await call(hosts[0], 'GET', '/v1/devices');
      const same = JSON.stringify(view(again.body)) === JSON.stringify(view(before.body));
      before = again;
      return same;
    }, 20_000, 'a settled fleet list');
    await new Promise((r) => setTimeout(r, 3 * 2500));
    for (const h of hosts) {
      const health = (await call(h, 'GET', '/v1/health')).body;
      expect(health).toMatchObject({ status: 'ok', host: { fleet: { hosts: HOSTS, online: HOSTS } } });
    }
    const after = await call(hosts[0], 'GET', '/v1/devices');
    expect(view(after.body)).toEqual(view(before.body));
    expect(((await call(hosts[0], 'GET', '/v1/jobs?state=running')).body.jobs as Json[])).toHaveLength(0);
    const remote = await call(hosts[0], 'GET', `/v1/devices/${boardId(2, 0)}?refresh=true`);
    expect(remote.status).toBe(200);
    expect(remote.host).toBe('host2');
    expect(remote.body.state).toBe('online');
  }, 60_000);

  it('a host killed mid fleet rollback: its boards reported unknown, the others finish, the halt rule holds', async () => {
    const [a, , c] = hosts;
    // every board on another model, so each rollback has work to do
    for (let i = 0; i < HOSTS; i++) {
      for (let j = 0; j < BOARDS; j++) await call(a, 'POST', `/v1/devices/${boardId(i, j)}/model`, { model: 'cnn', seed: 13 });
    }
    const started = await call(a, 'POST', '/v1/fleet/rollback', {
      selector: { devices: [boardId(0, 0), boardId(2, 0), boardId(2, 1), boardId(0, 1), boardId(1, 0), boardId(1, 1)] },
      to: target, canary: 1, maxFailures: 2,
    });
    expect(started.status).toBe(202);
    await c.daemon!.kill9(); // host 2 dies with the fleet's requests queued for it
    const jobId = started.body.jobId as string;
    await until(async () => ['succeeded', 'failed'].includes((await call(a, 'GET', `/v1/jobs/${jobId}`)).body.state), 60_000, 'rollback ended');
    const job = (await call(a, 'GET', `/v1/jobs/${jobId}`)).body;
    const devices = job.result.devices as Json[];
    const of = (id: string): Json => devices.find((d) => d.deviceId === id)!;
    for (const id of [boardId(0, 0), boardId(0, 1), boardId(1, 0), boardId(1, 1)]) expect(of(id)).toMatchObject({ state: 'succeeded', verified: true });
    for (const id of [boardId(2, 0), boardId(2, 1)]) {
      expect(['unknown', 'failed']).toContain(of(id).state);
      expect(of(id).error.code).toBe('TR_HOST_OFFLINE');
    }
    expect(job.result).toMatchObject({ failed: 2, halted: false });
    expect(job.state).toBe('succeeded');

    // the fleet shows host 2 and its boards offline; jobs it left running are failed, none stays running
    await until(async () => ((await call(a, 'GET', '/v1/hosts')).body.hosts as Json[]).find((h) => h.id === 'host2')?.online === false, 15_000, 'host 2 listed offline');
    await until(async () => {
      const list = (await call(a, 'GET', '/v1/devices')).body.devices as Json[];
      return list.filter((d) => d.host === 'host2').every((d) => d.state === 'offline' && d.hostOnline === false);
    }, 15_000, 'host 2 offline');
    await until(async () => ((await call(a, 'GET', '/v1/jobs?state=running')).body.jobs as Json[]).every((j) => j.host !== 'host2'), 15_000, 'no job of host 2 left running');
    // with a tighter limit the same loss halts the rollback
    const halted = await call(a, 'POST', '/v1/fleet/rollback?wait=true', { selector: { tag: 'fleet' }, to: target, canary: 0, maxFailures: 0 });
    expect(halted.body.state).toBe('failed');
    expect(halted.body.error.code).toBe('TR_FLEET_HALTED');

    await start(c, 2);
    await allOnline(a, HOSTS * BOARDS);
  }, 180_000);

  it('PostgreSQL restarted mid-job: hosts reconnect, the job finishes once, every step recorded once', async () => {
    const [a] = hosts;
    const id = boardId(1, 1);
    expect((await call(a, 'POST', `/v1/devices/${id}/model`, { model: 'cnn', seed: 5 })).status).toBe(200);
    const train = await call(a, 'POST', `/v1/devices/${id}/train`, { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 3000 });
    expect(train.status, JSON.stringify(train.body)).toBe(202);
    const jobId = train.body.jobId as string;
    await until(async () => ((await call(a, 'GET', `/v1/jobs/${jobId}`)).body.progress?.done ?? 0) > 20, 30_000, 'training under way');
    const before = (await call(a, 'GET', `/v1/jobs/${jobId}`)).body;
    expect(before.state).toBe('running');
    expect(before.progress.done).toBeLessThan(3000);
    await cluster.restart();
    await until(async () => {
      const r = await call(a, 'GET', `/v1/jobs/${jobId}`).catch(() => null);
      return !!r && ['succeeded', 'failed'].includes(r.body.state);
    }, 120_000, 'training ended');
    const job = (await call(a, 'GET', `/v1/jobs/${jobId}`)).body;
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.result.steps).toBe(3000);
    const steps = (await call(hosts[2], 'GET', `/v1/devices/${id}/metrics?jobId=${jobId}&limit=10000`)).body.steps as Json[];
    const stepIds = steps.map((s) => `${s.stepId}/${s.sampleIndex}`);
    expect(new Set(stepIds).size).toBe(stepIds.length);
    expect(steps.length).toBe(3000);
    // the queues work again: host 0 reaches host 1's board through it
    const snap = await call(a, 'POST', `/v1/devices/${id}/snapshots`, {});
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    expect(snap.host).toBe('host1');
    const jobs = ((await call(a, 'GET', `/v1/jobs?deviceId=${id}&limit=50`)).body.jobs as Json[]).filter((j) => j.kind === 'train');
    expect(jobs.filter((j) => j.id === jobId)).toHaveLength(1);
  }, 240_000);

  it('a regression run started on one host trains and checks boards of all three, each equal to the twin', async () => {
    const r = await call(hosts[2], 'POST', '/v1/runs?wait=true', { suite: 'spread' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.state, JSON.stringify(r.body.boards?.map((b: Json) => b.failure))).toBe('passed');
    const boards = r.body.boards as Json[];
    expect(boards.map((b) => b.deviceId)).toEqual([boardId(0, 1), boardId(1, 1), boardId(2, 1)]);
    expect(boards.map((b) => b.host ?? 'host2')).toEqual(['host0', 'host1', 'host2']);
    for (const b of boards) {
      expect(b.state).toBe('passed');
      expect(b.figures).toMatchObject({ steps: 32, weightsMatch: true });
      expect(b.figures.accuracy).toBeGreaterThanOrEqual(0);
      expect(b.stages.map((s: Json) => s.state)).toEqual(['passed', 'passed', 'passed', 'passed', 'passed']);
    }
    // the record is one, in the shared store: any host shows it
    expect((await call(hosts[0], 'GET', `/v1/runs/${r.body.id}`)).body.state).toBe('passed');
  }, 240_000);

  it('a host cut off from PostgreSQL takes no new work and says so in /v1/health, then comes back', async (ctx) => {
    if (net.mode !== 'netns') {
      console.log(`partition test did NOT run: ${net.reason}`);
      ctx.skip();
    }
    const b = hosts[1];
    net.partition(1, net.gateway);
    try {
      await until(async () => (await call(b, 'GET', '/v1/health')).body.status === 'degraded', 60_000, 'host 1 degraded');
      const health = (await call(b, 'GET', '/v1/health')).body;
      expect(health).toMatchObject({ store: { reachable: false }, host: { acceptingWork: false } });
      const refused = await call(b, 'POST', `/v1/devices/${boardId(1, 0)}/snapshots`, {});
      expect(refused.status).toBe(503);
      expect(refused.body.code).toBe('TR_STORE_UNREACHABLE');
    } finally {
      net.heal(1);
    }
    await until(async () => (await call(b, 'GET', '/v1/health')).body.status === 'ok', 60_000, 'host 1 back');
    expect((await call(b, 'POST', `/v1/devices/${boardId(1, 0)}/snapshots`, {})).status).toBe(201);
  }, 180_000);
});
