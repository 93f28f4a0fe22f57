// bench:fleet — rig hosts sharing one PostgreSQL, as one fleet: BENCH_HOSTS
// daemons (4) with BENCH_BOARDS_PER_HOST host twins each (250: 1,000 boards),
// one twin process a board on a PTY of its own. From host 0:
//   - fleet rollback of every board to one snapshot (canary 1) against the same
//     rollback of one board (of host 0, and of another host), wall time and ratio;
//   - GET /v1/devices on every host at a steady rate while the big rollback runs:
//     client p50/p99, and the daemon's own from its /metrics histogram;
//   - queue latency (enqueue on host 0 → start on the owning host) from each
//     host's tinyrig_remote_queue_seconds histogram;
//   - the daemons' CPU and RSS, PostgreSQL's CPU, idle (heartbeats only) and during the rollback.
// Then the same rollback with SQLite: one daemon, no TINYRIG_DATABASE_URL, over
// host 0's BENCH_BOARDS_PER_HOST twins. Each board first holds other weights
// than the target (same model, a trained step apart), so every rollback writes
// and verifies. The smallest zoo model is used (BENCH_MODEL to choose).
// Writes bench/results/fleet.json and prints a table. Measures; never fails on time.
//   npm run bench:fleet   (BENCH_HOSTS=4 BENCH_BOARDS_PER_HOST=250 BENCH_DEVICES_RPS=1 BENCH_ONE_REPEATS=5
//                          BENCH_FLEET_REPEATS=3 BENCH_BOARD_NICE=19 BENCH_PG_FSYNC=0 BENCH_SQLITE=1
//                          TINYRIG_FLEET_CONCURRENCY, TINYRIG_REMOTE_CONCURRENCY, TINYRIG_HEARTBEAT_MS: the daemon's defaults unless set)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { startDaemon, type DaemonProcess } from '../tools/proc/daemon.js';
import { PgCluster, pgAvailable } from '../tools/proc/postgres.js';
import { TWIN_BIN, repoRoot } from '../tools/proc/paths.js';
import { TwinProcess, twinBuilt } from '../tools/proc/twin.js';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 4);
const PER_HOST = Number(process.env.BENCH_BOARDS_PER_HOST ?? 250);
const BOARDS = HOSTS * PER_HOST;
const DEVICES_RPS = Number(process.env.BENCH_DEVICES_RPS ?? 1);
const ONE_REPEATS = Number(process.env.BENCH_ONE_REPEATS ?? 5);
const FLEET_REPEATS = Number(process.env.BENCH_FLEET_REPEATS ?? 3);
const BOARD_NICE = Number(process.env.BENCH_BOARD_NICE ?? 19);
const PG_FSYNC = process.env.BENCH_PG_FSYNC === '1';
const SQLITE = process.env.BENCH_SQLITE !== '0';
const MODEL = process.env.BENCH_MODEL;
/** Daemon settings the bench passes on when set, and records either way (the daemon's defaults otherwise: server/src/config.ts). */
const DAEMON_DEFAULTS = { TINYRIG_FLEET_CONCURRENCY: 32, TINYRIG_REMOTE_CONCURRENCY: 16, TINYRIG_HEARTBEAT_MS: 2000, TINYRIG_HOST_OFFLINE_MS: 10_000 };
const daemonSetting = (k: keyof typeof DAEMON_DEFAULTS): number => Number(process.env[k] ?? DAEMON_DEFAULTS[k]);
const RESULT = path.join(repoRoot, 'bench', 'results', 'fleet.json');
const TARGETS = { fleet_rollback_ratio: 3, devices_p99_ms: 50 };

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const round = (x: number, d = 1): number => Number(x.toFixed(d));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (msg: string): void => void process.stderr.write(`[bench:fleet ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
const median = (xs: number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5);

// ---------------------------------------------------------------- the file-descriptor limit

/** Open files the bench needs: two pipes a twin here, a port a board in each daemon, sockets besides. */
const FDS_NEEDED = 3 * BOARDS + 2048;

function openFilesLimit(): { soft: number; hard: number } {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft: soft!, hard: hard! };
}

/** Node cannot raise its own limit: below what the bench needs, it runs itself again under `ulimit -n`. */
function ensureOpenFiles(): boolean {
  const { soft, hard } = openFilesLimit();
  if (soft >= FDS_NEEDED) return false;
  if (hard < FDS_NEEDED || process.env.BENCH_FLEET_REEXEC) {
    throw new Error(`${BOARDS} boards need ${FDS_NEEDED} open files; the limit is ${soft} (hard ${hard}): raise it (ulimit -n) or set BENCH_BOARDS_PER_HOST lower`);
  }
  log(`open files limit ${soft} < ${FDS_NEEDED}: running again under ulimit -n ${FDS_NEEDED}`);
  const child = spawn('sh', ['-c', `ulimit -n ${FDS_NEEDED} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_FLEET_REEXEC: '1' },
  });
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 1 : 0)));
  return true;
}

// ---------------------------------------------------------------- HTTP

// node:http, not fetch: a rollback of every board may take longer than fetch waits for headers (300 s)
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
let token = '';

async function api(base: string, method: string, route: string, body?: unknown): Promise<{ status: number; body: Json; ms: number; bytes: number }> {
  const t0 = performance.now();
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const u = new URL(route, base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname, port: u.port, path: u.pathname + u.search, method, agent,
        headers: { authorization: `Bearer ${token}`, ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(parts);
          const text = raw.toString('utf8');
          let parsed: Json = {};
          try {
            parsed = text && res.headers['content-type']?.includes('json') ? (JSON.parse(text) as Json) : { text };
          } catch {
            parsed = { text };
          }
          resolve({ status: res.statusCode!, body: parsed, ms: performance.now() - t0, bytes: raw.length });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function ok(base: string, method: string, route: string, body?: unknown): Promise<Json> {
  const r = await api(base, method, route, body);
  if (r.status >= 300) throw new Error(`${method} ${base}${route} → ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
  return r.body;
}

/** Runs fn over items, n at a time. */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

// ---------------------------------------------------------------- /proc and /metrics

const CLK_TCK = 100; // Linux USER_HZ

/** utime + stime in clock ticks and the resident set in MiB, of one process (0 when it is gone). */
function procSample(pid: number): { ticks: number; rssMb: number } {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return { ticks: Number(f[11]) + Number(f[12]), rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024 };
  } catch {
    return { ticks: 0, rssMb: 0 };
  }
}

/** A process and its children (PostgreSQL's postmaster and its backends, each in a session of its own), with their reaped children's ticks. */
function familyTicks(parent: number): number {
  let ticks = 0;
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(e) === parent || Number(f[1]) === parent) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks;
}

/** CPU % of one core used by each named set of processes between start() and stop(), and the largest RSS seen. */
class CpuWindow {
  private t0 = 0;
  private before = new Map<string, number>();
  private rss = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly sets: Record<string, () => { ticks: number; rssMb: number }>) {}

  start(): void {
    this.t0 = performance.now();
    for (const [k, f] of Object.entries(this.sets)) this.before.set(k, f().ticks);
    this.timer = setInterval(() => {
      for (const [k, f] of Object.entries(this.sets)) this.rss.set(k, Math.max(this.rss.get(k) ?? 0, f().rssMb));
    }, 500);
  }

  stop(): Record<string, { cpu_percent: number; rss_mb_max: number }> {
    clearInterval(this.timer!);
    const s = (performance.now() - this.t0) / 1000;
    const out: Record<string, { cpu_percent: number; rss_mb_max: number }> = {};
    for (const [k, f] of Object.entries(this.sets)) {
      const now = f();
      out[k] = { cpu_percent: round(((now.ticks - this.before.get(k)!) / CLK_TCK / s) * 100), rss_mb_max: round(Math.max(this.rss.get(k) ?? 0, now.rssMb)) };
    }
    return out;
  }
}

/** Cumulative bucket counts (upper bound in ms → count) of one histogram series of a /metrics text. */
function buckets(text: string, name: string, match: (labels: string) => boolean = () => true): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\d+)$`, 'gm'))) {
    if (!match(m[1]!)) continue;
    const le = /le="([^"]+)"/.exec(m[1]!)![1]!;
    const bound = le === '+Inf' ? Infinity : Number(le) * 1000;
    out.set(bound, (out.get(bound) ?? 0) + Number(m[2]));
  }
  return out;
}

/** What a histogram gained between two scrapes: count, and the bucket bounds (ms) holding 50 % and 99 % of it. */
function windowQuantiles(before: Map<number, number>, after: Map<number, number>): { count: number; p50_ms_at_most: number | null; p99_ms_at_most: number | null } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const gained = new Map(bounds.map((b) => [b, (after.get(b) ?? 0) - (before.get(b) ?? 0)]));
  const count = gained.get(Infinity) ?? 0;
  const at = (q: number): number | null => {
    const b = bounds.find((x) => gained.get(x)! >= q * count);
    return b === undefined || !Number.isFinite(b) ? null : b;
  };
  return count > 0 ? { count, p50_ms_at_most: at(0.5), p99_ms_at_most: at(0.99) } : { count: 0, p50_ms_at_most: null, p99_ms_at_most: null };
}

const metricsOf = async (base: string): Promise<string> => String((await api(base, 'GET', '/metrics')).body.text ?? '');
const devicesRoute = (labels: string): boolean => labels.includes('route="/v1/devices"') && labels.includes('method="GET"') && labels.includes('status="200"');

// ---------------------------------------------------------------- GET /v1/devices at a steady rate

/**
 * On a worker thread of its own, so the main thread's polling never delays a
 * request: every host gets GET /v1/devices every 1000/rps ms (at most 32 in
 * flight a host: past that a tick is counted as skipped), until told to stop.
 */
const HAMMER = `
const { parentPort, workerData: w } = require('node:worker_threads');
const auth = { authorization: 'Bearer ' + w.token };
let stop = false;
parentPort.on('message', () => { stop = true; });
const one = async (url) => {
  const out = { ms: [], errors: 0, skipped: 0, bytes: 0 };
  let inFlight = 0;
  const pending = new Set();
  const interval = 1000 / w.rps;
  let next = performance.now();
  const end = Date.now() + w.maxSeconds * 1000;
  while (!stop && Date.now() < end) {
    if (inFlight >= 32) out.skipped++;
    else {
      inFlight++;
      const t0 = performance.now();
      const p = fetch(url + '/v1/devices', { headers: auth })
        .then(async (r) => { const b = await r.arrayBuffer(); if (r.status === 200) { out.ms.push(performance.now() - t0); out.bytes = b.byteLength; } else out.errors++; })
        .catch(() => { out.errors++; })
        .finally(() => { inFlight--; pending.delete(p); });
      pending.add(p);
    }
    next += interval;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all([...pending]);
  return out;
};
Promise.all(w.urls.map(one)).then((hosts) => parentPort.postMessage(hosts));
`;

interface HammerHost { ms: number[]; errors: number; skipped: number; bytes: number }

/** Hammers still running: a bench that fails mid-rollback ends them in cleanup(). */
const hammers = new Set<Worker>();

function startHammer(urls: string[]): { stop: () => Promise<HammerHost[]> } {
  const w = new Worker(HAMMER, { eval: true, workerData: { urls, token, rps: DEVICES_RPS, maxSeconds: 3600 } });
  hammers.add(w);
  const done = new Promise<HammerHost[]>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  return {
    stop: async () => {
      w.postMessage('stop');
      const r = await done;
      await w.terminate();
      hammers.delete(w);
      return r;
    },
  };
}

const latencyFigures = (h: HammerHost) => {
  const s = [...h.ms].sort((a, b) => a - b);
  return { requests: s.length, p50_ms: round(quantile(s, 0.5), 2), p99_ms: round(quantile(s, 0.99), 2), max_ms: round(s[s.length - 1] ?? NaN, 2), errors: h.errors, skipped: h.skipped, response_bytes: h.bytes };
};

// ---------------------------------------------------------------- the rig

interface Host {
  id: string;
  dir: string;
  twins: TwinProcess[];
  devicesFile: string;
  boardIds: string[];
  daemon: DaemonProcess | null;
}

const boardId = (h: number, b: number): string => `h${h}-b${b}`;
const hosts: Host[] = [];
let cluster: PgCluster | null = null;
let sqliteDaemon: DaemonProcess | null = null;
let benchDir = '';

/** Twins a host, started 50 at a time (a thousand spawns at once starve the PTY handshakes), each at nice BENCH_BOARD_NICE. */
async function startBoards(dir: string, n: number, prefix: string): Promise<TwinProcess[]> {
  const twins = Array.from({ length: n }, (_, i) => new TwinProcess({ link: path.join(dir, `${prefix}${i}.pty`), quiet: true }));
  for (let i = 0; i < n; i += 50) {
    await Promise.all(twins.slice(i, i + 50).map((t) => t.start(30_000)));
  }
  for (const t of twins) if (t.child?.pid) os.setPriority(t.child.pid, BOARD_NICE);
  return twins;
}

function daemonEnv(h: Host, extra: Record<string, string>): Record<string, string> {
  const passOn = Object.fromEntries(Object.keys(DAEMON_DEFAULTS).filter((k) => process.env[k]).map((k) => [k, process.env[k]!]));
  return {
    TINYRIG_VAR: path.join(h.dir, extra.TINYRIG_DATABASE_URL ? 'var' : 'var-sqlite'),
    TINYRIG_DEVICES: h.devicesFile,
    TINYRIG_TOKEN: token,
    TINYRIG_RATE_LIMIT: '100000000',
    TINYRIG_DURABLE: 'false',
    LOG_LEVEL: 'warn',
    ...passOn,
    ...extra,
  };
}

async function waitOnline(base: string, n: number, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await api(base, 'GET', '/v1/devices').catch(() => null);
    const online = r?.status === 200 ? (r.body.devices as Json[]).filter((d) => d.state === 'online').length : 0;
    if (online >= n) return;
    if (Date.now() > end) throw new Error(`${what}: ${online}/${n} boards online after ${timeoutMs} ms`);
    await sleep(250);
  }
}

interface RollbackRun {
  wall_ms: number;
  job_ms: number | null;
  state: string;
  succeeded: number;
  verified: number;
  boards: number;
  /** Boards not rolled back (failed, unknown, skipped), by error code. */
  failures: Record<string, number>;
  /** Per host: boards, and each board's rollback time (ms, from its start in the job). */
  by_host: Record<string, { boards: number; verified: number; board_ms_p50: number; board_ms_p99: number; board_ms_max: number }>;
}

/**
 * POST /v1/fleet/rollback?wait=true from `base`, timed from the request to the
 * answer. It never halts (maxFailures: every board), so its time covers every
 * board; boards it could not roll back are counted by error code, not thrown.
 */
async function fleetRollback(base: string, selector: Json, to: string, canary: number, expectSha: string): Promise<RollbackRun> {
  const r = await api(base, 'POST', '/v1/fleet/rollback?wait=true', { selector, to, canary, maxFailures: 1_000_000 });
  if (r.status !== 200) throw new Error(`fleet rollback → ${r.status} ${JSON.stringify(r.body).slice(0, 800)}`);
  const res = (r.body.result ?? r.body.error?.details ?? {}) as Json;
  const devices = (res.devices ?? []) as Json[];
  const failures: Record<string, number> = {};
  for (const d of devices) {
    if (d.state === 'succeeded' && d.verified && d.after === expectSha) continue;
    const code = d.error?.code ?? (d.state === 'succeeded' ? 'not at the target' : d.state);
    failures[code] = (failures[code] ?? 0) + 1;
  }
  if (r.body.state !== 'succeeded' || Object.keys(failures).length) {
    log(`fleet rollback ${r.body.state}: ${JSON.stringify(failures)} ${JSON.stringify(r.body.error ?? {}).slice(0, 300)}`);
  }
  const by: RollbackRun['by_host'] = {};
  for (const host of [...new Set(devices.map((d) => d.host as string))].sort()) {
    const of = devices.filter((d) => d.host === host);
    const ms = of.map((d) => d.ms as number).sort((a, b) => a - b);
    by[host] = { boards: of.length, verified: of.filter((d) => d.verified).length, board_ms_p50: quantile(ms, 0.5), board_ms_p99: quantile(ms, 0.99), board_ms_max: ms[ms.length - 1]! };
  }
  return {
    wall_ms: round(r.ms), job_ms: typeof res.ms === 'number' ? res.ms : null, state: r.body.state as string,
    succeeded: res.succeeded ?? 0, verified: devices.filter((d) => d.verified).length, boards: devices.length, failures, by_host: by,
  };
}

/** Deploys the model (one seed) on every board, each by its own host, and takes snapshots A (fresh) and B (a few steps later) on the first board. */
async function prepareWeights(urlOf: (boardIdx: { h: number; b: number }) => string, owners: { h: number; b: number; id: string }[], model: string): Promise<{ a: Json; b: Json }> {
  const first = owners[0]!;
  // the first deploy builds the model blob into the store; the rest reuse it
  await ok(urlOf(first), 'POST', `/v1/devices/${first.id}/model`, { model, seed: 1 });
  const t0 = performance.now();
  await pool(owners.slice(1), 16, async (o) => void (await ok(urlOf(o), 'POST', `/v1/devices/${o.id}/model`, { model, seed: 1 })));
  log(`deployed ${model} on ${owners.length} boards in ${round((performance.now() - t0) / 1000)} s`);
  const base = urlOf(first);
  const a = await ok(base, 'POST', `/v1/devices/${first.id}/snapshots`, { tags: ['bench', 'fresh'] });
  const train = await ok(base, 'POST', `/v1/devices/${first.id}/train?wait=true`, { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 16 });
  if (train.state !== 'succeeded') throw new Error(`training ${model} on ${first.id}: ${JSON.stringify(train.error)}`);
  const b = await ok(base, 'POST', `/v1/devices/${first.id}/snapshots`, { tags: ['bench', 'trained'] });
  if (a.sha256 === b.sha256) throw new Error('16 training steps left the weights as they were: the snapshots would be the same');
  return { a, b };
}

interface Phase {
  engine: 'postgres' | 'sqlite';
  hosts: number;
  boards: number;
  all: RollbackRun[];
  /** The run of median wall time: the latency, queue and CPU figures are of its window. */
  median: RollbackRun;
  one_local: RollbackRun[];
  one_remote: RollbackRun[];
  devices: Record<string, ReturnType<typeof latencyFigures> & { server_p50_ms_at_most: number | null; server_p99_ms_at_most: number | null; server_requests: number }>;
  queue: Record<string, { requests: number; p50_ms_at_most: number | null; p99_ms_at_most: number | null; mean_ms: number | null }>;
  cpu_rollback: Record<string, { cpu_percent: number; rss_mb_max: number }>;
  /** The host's load average right after the timed rollback: other work on the machine shows here. */
  load_avg_1m: number;
}

/**
 * The timed part, the same for both engines: every board to B (untimed), then
 * to A with canary 1 from host 0 while GET /v1/devices runs on every host;
 * then one board, of host 0 and (with several hosts) of host 1, B then A, timed A.
 */
async function measure(engine: Phase['engine'], urls: string[], ids: { local: string; remote: string | null }, snaps: { a: Json; b: Json }, cpuSets: Record<string, () => { ticks: number; rssMb: number }>, boards: number): Promise<Phase> {
  const [base] = urls as [string];
  const sel = { tag: 'fleet' };
  const phase: Phase = { engine, hosts: urls.length, boards, all: [], median: null!, one_local: [], one_remote: [], devices: {}, queue: {}, cpu_rollback: {}, load_avg_1m: 0 };
  const windows: { devices: Phase['devices']; queue: Phase['queue']; cpu: Phase['cpu_rollback']; load: number }[] = [];
  for (let k = 0; k < FLEET_REPEATS; k++) {
    log(`${engine}: every board to snapshot B (untimed, so each timed rollback writes)`);
    await fleetRollback(base, sel, snaps.b.id, 0, snaps.b.sha256);
    const before = await Promise.all(urls.map(metricsOf));
    const cpu = new CpuWindow(cpuSets);
    const hammer = startHammer(urls);
    cpu.start();
    log(`${engine}: fleet rollback of ${boards} boards to snapshot A, canary 1, GET /v1/devices at ${DEVICES_RPS}/s on each of ${urls.length} hosts`);
    const run = await fleetRollback(base, sel, snaps.a.id, 1, snaps.a.sha256);
    const load = await hammer.stop();
    const cpuFig = cpu.stop();
    const after = await Promise.all(urls.map(metricsOf));
    log(`${engine}: ${run.verified}/${run.boards} verified in ${round(run.wall_ms / 1000, 2)} s`);
    phase.all.push(run);
    const w: (typeof windows)[number] = { devices: {}, queue: {}, cpu: cpuFig, load: round(os.loadavg()[0]!) };
    windows.push(w);
    urls.forEach((_, i) => {
      const host = engine === 'sqlite' ? 'sqlite' : `host${i}`;
      const server = windowQuantiles(buckets(before[i]!, 'tinyrig_http_request_duration_seconds', devicesRoute), buckets(after[i]!, 'tinyrig_http_request_duration_seconds', devicesRoute));
      w.devices[host] = { ...latencyFigures(load[i]!), server_p50_ms_at_most: server.p50_ms_at_most, server_p99_ms_at_most: server.p99_ms_at_most, server_requests: server.count };
      if (engine === 'postgres' && i > 0) {
        const q = windowQuantiles(buckets(before[i]!, 'tinyrig_remote_queue_seconds'), buckets(after[i]!, 'tinyrig_remote_queue_seconds'));
        const sum = (t: string): number => Number(/^tinyrig_remote_queue_seconds_sum (\S+)$/m.exec(t)?.[1] ?? 0);
        const n = (t: string): number => Number(/^tinyrig_remote_queue_seconds_count (\S+)$/m.exec(t)?.[1] ?? 0);
        const dn = n(after[i]!) - n(before[i]!);
        w.queue[host] = { requests: q.count, p50_ms_at_most: q.p50_ms_at_most, p99_ms_at_most: q.p99_ms_at_most, mean_ms: dn > 0 ? round(((sum(after[i]!) - sum(before[i]!)) / dn) * 1000, 1) : null };
      }
    });
  }
  // the figures of the run of median wall time
  const mid = phase.all.map((r, i) => [r.wall_ms, i] as const).sort((a, b) => a[0] - b[0])[Math.ceil(phase.all.length / 2) - 1]![1];
  Object.assign(phase, { median: phase.all[mid], devices: windows[mid]!.devices, queue: windows[mid]!.queue, cpu_rollback: windows[mid]!.cpu, load_avg_1m: windows[mid]!.load });
  log(`${engine}: one board, ${ONE_REPEATS} times${ids.remote ? ' of host 0 and of host 1' : ''}`);
  for (let k = 0; k < ONE_REPEATS; k++) {
    for (const [id, into] of [[ids.local, phase.one_local], [ids.remote, phase.one_remote]] as const) {
      if (!id) continue;
      await fleetRollback(base, { devices: [id] }, snaps.b.id, 0, snaps.b.sha256);
      into.push(await fleetRollback(base, { devices: [id] }, snaps.a.id, 1, snaps.a.sha256));
    }
  }
  return phase;
}

function daemonSets(list: { name: string; pid: () => number }[]): Record<string, () => { ticks: number; rssMb: number }> {
  return Object.fromEntries(list.map((d) => [d.name, () => procSample(d.pid())]));
}

function twinsSet(twins: TwinProcess[]): () => { ticks: number; rssMb: number } {
  return () => twins.reduce((acc, t) => {
    const s = t.child?.pid ? procSample(t.child.pid) : { ticks: 0, rssMb: 0 };
    return { ticks: acc.ticks + s.ticks, rssMb: acc.rssMb + s.rssMb };
  }, { ticks: 0, rssMb: 0 });
}

async function main(): Promise<void> {
  if (ensureOpenFiles()) return;
  if (!twinBuilt()) throw new Error(`host twin not built (${TWIN_BIN}): make -C firmware`);
  const pgOk = pgAvailable();
  if (!pgOk.ok) throw new Error(pgOk.reason);
  const ptyMax = Number(fs.readFileSync('/proc/sys/kernel/pty/max', 'utf8'));
  const ptyInUse = Number(fs.readFileSync('/proc/sys/kernel/pty/nr', 'utf8'));
  if (ptyMax - ptyInUse < BOARDS) throw new Error(`${BOARDS} twins need ${BOARDS} PTYs; ${ptyInUse} of ${ptyMax} are in use (/proc/sys/kernel/pty/max)`);
  const benchStart = performance.now();
  const timings: Record<string, number> = {};
  const lap = (name: string, t0: number): void => void (timings[name] = round((performance.now() - t0) / 1000));
  token = `bench-${randomBytes(16).toString('hex')}`;
  const dir = (benchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-bench-fleet-')));

  let t0 = performance.now();
  cluster = await PgCluster.create({ fsync: PG_FSYNC });
  const pgPid = Number(fs.readFileSync(path.join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  lap('postgres_start_s', t0);

  t0 = performance.now();
  log(`starting ${BOARDS} host twins (${HOSTS} hosts x ${PER_HOST})`);
  const memBefore = os.freemem();
  for (let i = 0; i < HOSTS; i++) {
    const hostDir = path.join(dir, `host${i}`);
    fs.mkdirSync(hostDir, { recursive: true });
    const twins = await startBoards(hostDir, PER_HOST, `h${i}-`);
    const boardIds = twins.map((_, b) => boardId(i, b));
    const devicesFile = path.join(hostDir, 'devices.json');
    fs.writeFileSync(devicesFile, JSON.stringify({ devices: twins.map((t, b) => ({ id: boardIds[b], path: t.path, board: 'host-twin', emulated: true, tags: ['fleet', `host${i}`] })) }));
    hosts.push({ id: `host${i}`, dir: hostDir, twins, devicesFile, boardIds, daemon: null });
  }
  lap('twins_start_s', t0);
  const allTwins = hosts.flatMap((h) => h.twins);
  const twinsRssMb = twinsSet(allTwins)().rssMb;
  log(`${BOARDS} twins up in ${timings.twins_start_s} s, ${round(twinsRssMb)} MiB resident together (free memory ${round(memBefore / 2 ** 30, 1)} → ${round(os.freemem() / 2 ** 30, 1)} GiB)`);

  t0 = performance.now();
  log(`starting ${HOSTS} daemons on one PostgreSQL (fsync ${PG_FSYNC ? 'on' : 'off'})`);
  await Promise.all(hosts.map(async (h) => {
    h.daemon = await startDaemon(daemonEnv(h, { TINYRIG_DATABASE_URL: cluster!.url, TINYRIG_HOST_ID: h.id }), 120_000);
  }));
  lap('daemons_listening_s', t0);
  const urls = hosts.map((h) => h.daemon!.url);
  await Promise.all(urls.map((u, i) => waitOnline(u, BOARDS, 300_000, `host${i}`)));
  lap('all_boards_online_everywhere_s', t0);
  log(`every host sees ${BOARDS} boards online, ${timings.all_boards_online_everywhere_s} s after the daemons were started`);

  const pgSet = (): { ticks: number; rssMb: number } => ({ ticks: familyTicks(pgPid), rssMb: 0 });
  const sets = { ...daemonSets(hosts.map((h) => ({ name: h.id, pid: () => h.daemon!.child.pid! }))), postgres: pgSet, twins: twinsSet(allTwins) };
  const idleWindow = new CpuWindow(sets);
  idleWindow.start();
  await sleep(10_000);
  const idle = idleWindow.stop();
  log(`idle (heartbeats only), CPU % of one core: ${Object.entries(idle).map(([k, v]) => `${k} ${v.cpu_percent}`).join(', ')}`);

  // GET /v1/devices at the same rate with nothing else under way: the baseline for the figures during the rollback
  const idleBefore = await Promise.all(urls.map(metricsOf));
  const idleLoad = startHammer(urls);
  await sleep(10_000);
  const idleHammer = await idleLoad.stop();
  const idleAfter = await Promise.all(urls.map(metricsOf));
  const devicesIdle = Object.fromEntries(urls.map((_, i) => {
    const server = windowQuantiles(buckets(idleBefore[i]!, 'tinyrig_http_request_duration_seconds', devicesRoute), buckets(idleAfter[i]!, 'tinyrig_http_request_duration_seconds', devicesRoute));
    return [`host${i}`, { ...latencyFigures(idleHammer[i]!), server_p50_ms_at_most: server.p50_ms_at_most, server_p99_ms_at_most: server.p99_ms_at_most, server_requests: server.count }];
  }));
  log(`GET /v1/devices idle, p99 ms: ${Object.entries(devicesIdle).map(([h, d]) => `${h} ${d.p99_ms}`).join(', ')}`);

  const models = (await ok(urls[0]!, 'GET', '/v1/models')).models as Json[];
  const zoo = models.filter((m) => m.builtIn).sort((a, b) => a.weightsBytes - b.weightsBytes);
  const model = zoo.find((m) => m.name === (MODEL ?? zoo[0]?.name));
  if (!model) throw new Error(`no zoo model ${MODEL ?? ''} (known: ${zoo.map((m) => m.name).join(', ')})`);
  log(`model ${model.name}: ${model.weightsBytes} B of weights (blob ${model.bytes} B)`);

  t0 = performance.now();
  const owners = hosts.flatMap((h, i) => h.boardIds.map((id, b) => ({ h: i, b, id })));
  const snaps = await prepareWeights((o) => urls[o.h]!, owners, model.name as string);
  lap('deploy_s', t0);

  t0 = performance.now();
  const pgPhase = await measure('postgres', urls, { local: boardId(0, 0), remote: HOSTS > 1 ? boardId(1, 0) : null }, snaps, sets, BOARDS);
  lap('postgres_measure_s', t0);
  const rowsPg = await cluster.sql<{ n: string }>(cluster.database, 'SELECT count(*) AS n FROM jobs').catch(() => [{ n: 'unknown' }]);

  for (const h of hosts) await h.daemon!.stop();
  for (const h of hosts) h.daemon = null;

  let sqPhase: Phase | null = null;
  let sqOnlineS: number | null = null;
  if (SQLITE) {
    const h = hosts[0]!;
    t0 = performance.now();
    log(`SQLite: one daemon, no TINYRIG_DATABASE_URL, over host 0's ${PER_HOST} twins`);
    sqliteDaemon = await startDaemon(daemonEnv(h, { TINYRIG_HOST_ID: 'sqlite' }), 120_000);
    await waitOnline(sqliteDaemon.url, PER_HOST, 300_000, 'sqlite');
    sqOnlineS = round((performance.now() - t0) / 1000);
    const sqOwners = h.boardIds.map((id, b) => ({ h: 0, b, id }));
    const sqSnaps = await prepareWeights(() => sqliteDaemon!.url, sqOwners, model.name as string);
    const sqSets = { sqlite: () => procSample(sqliteDaemon!.child.pid!), twins: twinsSet(h.twins) };
    sqPhase = await measure('sqlite', [sqliteDaemon.url], { local: boardId(0, 0), remote: null }, sqSnaps, sqSets, PER_HOST);
    lap('sqlite_s', t0);
  }

  // ------------------------------------------------------------ results
  const all = pgPhase.median.wall_ms;
  const oneLocal = median(pgPhase.one_local.map((r) => r.wall_ms));
  const oneRemote = pgPhase.one_remote.length ? median(pgPhase.one_remote.map((r) => r.wall_ms)) : null;
  const ratio = round(all / oneLocal, 2);
  const sqAll = sqPhase ? sqPhase.median.wall_ms : null;
  const sqOne = sqPhase ? median(sqPhase.one_local.map((r) => r.wall_ms)) : null;
  const worstP99 = Math.max(...Object.values(pgPhase.devices).map((d) => d.p99_ms));
  const worstServerP99 = Math.max(...Object.values(pgPhase.devices).map((d) => d.server_p99_ms_at_most ?? Infinity));
  const queueAll = Object.values(pgPhase.queue);
  const result = {
    generated_by: 'npm run bench:fleet',
    date: new Date().toISOString(),
    method: {
      boards: 'host twins: firmware/build/host/tinyrig-twin, one process a board, each on a PTY of its own (no link simulator: raw PTYs)',
      simulator: false,
      why_no_simulator: `${BOARDS} twin processes fit: ${round(twinsRssMb)} MiB resident together, ${timings.twins_start_s} s to start, no CPU when idle; open files limit ${openFilesLimit().soft}`,
      hosts: HOSTS,
      boards_per_host: PER_HOST,
      board_count: BOARDS,
      network: 'every daemon on 127.0.0.1 (a port each), no network namespaces',
      model: model.name,
      weights_bytes: model.weightsBytes,
      model_blob_bytes: model.bytes,
      snapshot_bytes: snaps.a.bytes,
      weights_before: 'every board on snapshot B (the same model 16 training steps on) before each timed rollback to snapshot A',
      fleet_concurrency: daemonSetting('TINYRIG_FLEET_CONCURRENCY'),
      remote_concurrency: daemonSetting('TINYRIG_REMOTE_CONCURRENCY'),
      heartbeat_ms: daemonSetting('TINYRIG_HEARTBEAT_MS'),
      postgres: { fsync: PG_FSYNC, synchronous_commit: PG_FSYNC, full_page_writes: PG_FSYNC },
      sqlite: { durable: false, synchronous: 'NORMAL' },
      devices_rps_per_host: DEVICES_RPS,
      one_board_repeats: ONE_REPEATS,
      fleet_repeats: FLEET_REPEATS,
      board_nice: BOARD_NICE,
      open_files_limit: openFilesLimit().soft,
      requester: 'host0 (POST /v1/fleet/rollback?wait=true, selector tag fleet, canary 1, maxFailures 0)',
      queue_latency: 'tinyrig_remote_queue_seconds on each owning host (enqueue on host0 to the start of the work there), scraped before and after the rollback',
      daemon_side: 'from each daemon\'s /metrics histograms, scraped before and after the rollback: upper bucket bounds (ms) holding 50 % / 99 % of the requests in that window',
    },
    postgres: {
      startup: { twins_s: timings.twins_start_s, twins_rss_mb: round(twinsRssMb), daemons_listening_s: timings.daemons_listening_s, all_boards_online_everywhere_s: timings.all_boards_online_everywhere_s },
      idle_cpu: idle,
      fleet_rollback_all_ms: all,
      fleet_rollback_all_job_ms: pgPhase.median.job_ms,
      fleet_rollback_all_verified: pgPhase.median.verified,
      fleet_rollback_all_state: pgPhase.median.state,
      fleet_rollback_all_failures: pgPhase.median.failures,
      load_avg_1m_after_rollback: pgPhase.load_avg_1m,
      fleet_rollback_one_local_ms: oneLocal,
      fleet_rollback_one_remote_ms: oneRemote,
      fleet_rollback_ratio: ratio,
      fleet_rollback_ratio_remote_one: oneRemote ? round(all / oneRemote, 2) : null,
      fleet_rollback_ratio_target: TARGETS.fleet_rollback_ratio,
      fleet_rollback_ratio_met: ratio <= TARGETS.fleet_rollback_ratio,
      // the canary, then each host's boards fleet_concurrency at a time: the ratio if every board took as long as one alone
      fleet_rollback_ratio_floor: 1 + Math.ceil(PER_HOST / daemonSetting('TINYRIG_FLEET_CONCURRENCY')),
      boards_per_s: round(BOARDS / (all / 1000)),
      by_host: pgPhase.median.by_host,
      devices_idle: devicesIdle,
      devices_during_rollback: pgPhase.devices,
      devices_p99_target_ms: TARGETS.devices_p99_ms,
      devices_p99_met_client: worstP99 < TARGETS.devices_p99_ms,
      devices_p99_met_daemon: worstServerP99 < TARGETS.devices_p99_ms,
      queue_latency: pgPhase.queue,
      queue_requests: queueAll.reduce((n, q) => n + q.requests, 0),
      cpu_during_rollback: pgPhase.cpu_rollback,
      job_rows: rowsPg[0]?.n ?? null,
      runs: { all: pgPhase.all.map((r) => r.wall_ms), all_verified: pgPhase.all.map((r) => r.verified), one_local: pgPhase.one_local.map((r) => r.wall_ms), one_remote: pgPhase.one_remote.map((r) => r.wall_ms) },
    },
    sqlite: sqPhase && {
      boards: PER_HOST,
      all_boards_online_s: sqOnlineS,
      fleet_rollback_all_ms: sqAll,
      fleet_rollback_all_verified: sqPhase.median.verified,
      fleet_rollback_all_failures: sqPhase.median.failures,
      load_avg_1m_after_rollback: sqPhase.load_avg_1m,
      fleet_rollback_one_ms: sqOne,
      fleet_rollback_ratio: round(sqAll! / sqOne!, 2),
      boards_per_s: round(PER_HOST / (sqAll! / 1000)),
      devices_during_rollback: sqPhase.devices.sqlite,
      cpu_during_rollback: sqPhase.cpu_rollback,
      runs: { all: sqPhase.all.map((r) => r.wall_ms), all_verified: sqPhase.all.map((r) => r.verified), one: sqPhase.one_local.map((r) => r.wall_ms) },
    },
    bench_s: round((performance.now() - benchStart) / 1000),
    timings_s: timings,
    host: { cpus: os.cpus().length, memory_gib: round(os.totalmem() / 2 ** 30), model: os.cpus()[0]?.model ?? 'unknown', node: process.version, load_avg_1m: round(os.loadavg()[0]!) },
    notes:
      'All daemons, PostgreSQL, the twins and the load generator share the host\'s CPUs; twins run at nice board_nice. Client latencies include the wait for a CPU; the daemon-side figures are from each daemon\'s own request histogram. ' +
      'fleet_rollback_ratio: wall time of the rollback of every board over that of one board of the requesting host, both with canary 1, in the same run (the remote variant: one board of another host, through its queue).',
  };
  fs.mkdirSync(path.dirname(RESULT), { recursive: true });
  fs.writeFileSync(RESULT, JSON.stringify(result, null, 2) + '\n');
  console.log(table(result));
  log(`wrote ${path.relative(repoRoot, RESULT)}; the bench took ${result.bench_s} s`);
}

function table(r: Json): string {
  const p = r.postgres as Json;
  const m = r.method as Json;
  const met = (x: boolean): string => (x ? 'met' : '**not met**');
  const failed = (f: Json): string => (Object.keys(f).length ? `; not rolled back: ${Object.entries(f).map(([c, n]) => `${n} ${c}`).join(', ')}` : '');
  const rows: string[][] = [
    ['boards', `${m.board_count} host twins (${m.hosts} daemons × ${m.boards_per_host}), one process a board`, ''],
    ['model', `${m.model}: ${m.weights_bytes} B of weights (snapshot ${m.snapshot_bytes} B)`, ''],
    ['settings', `fleet concurrency ${m.fleet_concurrency}/host, remote concurrency ${m.remote_concurrency}, heartbeat ${m.heartbeat_ms} ms, PostgreSQL fsync ${m.postgres.fsync ? 'on' : 'off'}`, ''],
    ['all boards online (every host sees all)', `${p.startup.all_boards_online_everywhere_s} s after start`, `twins: ${p.startup.twins_s} s to start, ${p.startup.twins_rss_mb} MiB resident`],
    [`fleet rollback, ${m.board_count} boards`, `${round(p.fleet_rollback_all_ms)} ms`, `${p.fleet_rollback_all_verified}/${m.board_count} verified, ${p.boards_per_s} boards/s, median of ${m.fleet_repeats} (${p.runs.all.map((x: number) => round(x)).join(', ')} ms)${failed(p.fleet_rollback_all_failures)}`],
    ['fleet rollback, 1 board of host0', `${round(p.fleet_rollback_one_local_ms)} ms`, `median of ${m.one_board_repeats}`],
    ['fleet rollback, 1 board of host1', p.fleet_rollback_one_remote_ms === null ? '—' : `${round(p.fleet_rollback_one_remote_ms)} ms`, 'through host1\'s queue'],
    ['ratio all ÷ 1 board', `${p.fleet_rollback_ratio}×`, `target ≤ ${p.fleet_rollback_ratio_target}×: ${met(p.fleet_rollback_ratio_met)}${p.fleet_rollback_ratio_remote_one ? ` (÷ remote board: ${p.fleet_rollback_ratio_remote_one}×)` : ''}`],
    ['  floor set by the concurrency', `${p.fleet_rollback_ratio_floor}×`, `canary + ⌈${m.boards_per_host} / ${m.fleet_concurrency}⌉ rounds a host, were each board as quick as one alone`],
    ...Object.entries(p.by_host as Json).map(([h, v]: [string, Json]) => [`  ${h}: boards, per-board ms p50 / p99`, `${v.boards}, ${v.board_ms_p50} / ${v.board_ms_p99} ms`, h === 'host0' ? 'local to the requester' : 'through its queue']),
    ...Object.entries(p.devices_idle as Json).map(([h, d]: [string, Json]) => [
      `GET /v1/devices on ${h}, idle`,
      `p50 ${d.p50_ms} / p99 ${d.p99_ms} ms`,
      `daemon ≤ ${d.server_p50_ms_at_most} / ≤ ${d.server_p99_ms_at_most} ms; ${d.requests} requests`,
    ]),
    ...Object.entries(p.devices_during_rollback as Json).map(([h, d]: [string, Json]) => [
      `GET /v1/devices on ${h} during it`,
      `p50 ${d.p50_ms} / p99 ${d.p99_ms} ms`,
      `daemon ≤ ${d.server_p50_ms_at_most} / ≤ ${d.server_p99_ms_at_most} ms; ${d.requests} requests, ${Math.round(d.response_bytes / 1024)} KiB each${d.errors ? `, ${d.errors} errors` : ''}`,
    ]),
    ['GET /v1/devices p99 target < 50 ms', `client: ${met(p.devices_p99_met_client)}`, `daemon: ${met(p.devices_p99_met_daemon)}`],
    ...Object.entries(p.queue_latency as Json).map(([h, q]: [string, Json]) => [`queue latency on ${h}`, `p50 ≤ ${q.p50_ms_at_most} / p99 ≤ ${q.p99_ms_at_most} ms`, `mean ${q.mean_ms} ms over ${q.requests} requests (enqueue on host0 → start)`]),
    ...Object.entries(p.cpu_during_rollback as Json).map(([k, v]: [string, Json]) => [`CPU during the rollback: ${k}`, `${v.cpu_percent} %`, `${k.startsWith('host') ? `RSS ≤ ${v.rss_mb_max} MiB; ` : ''}idle ${(p.idle_cpu as Json)[k]?.cpu_percent ?? '—'} %`]),
  ];
  const s = r.sqlite as Json | null;
  if (s) {
    rows.push(
      [`SQLite, 1 daemon: fleet rollback, ${s.boards} boards`, `${round(s.fleet_rollback_all_ms)} ms`, `${s.fleet_rollback_all_verified}/${s.boards} verified, ${s.boards_per_s} boards/s${failed(s.fleet_rollback_all_failures)}`],
      ['SQLite: fleet rollback, 1 board', `${round(s.fleet_rollback_one_ms)} ms`, `ratio ${s.fleet_rollback_ratio}×`],
      ['SQLite: GET /v1/devices during it', `p50 ${s.devices_during_rollback.p50_ms} / p99 ${s.devices_during_rollback.p99_ms} ms`, `daemon ≤ ${s.devices_during_rollback.server_p50_ms_at_most} / ≤ ${s.devices_during_rollback.server_p99_ms_at_most} ms; ${s.devices_during_rollback.requests} requests, ${Math.round(s.devices_during_rollback.response_bytes / 1024)} KiB each`],
      ['SQLite: daemon CPU during it', `${s.cpu_during_rollback.sqlite.cpu_percent} %`, `RSS ≤ ${s.cpu_during_rollback.sqlite.rss_mb_max} MiB`],
    );
  }
  return [
    '| figure | value | note |',
    '|---|---|---|',
    ...rows.map((x) => `| ${x.join(' | ')} |`),
    '',
    `CPU % is of one core (the host has ${r.host.cpus}); load average ${p.load_avg_1m_after_rollback} right after the rollback. Bench ${r.bench_s} s.`,
  ].join('\n');
}

async function cleanup(): Promise<void> {
  await Promise.all([...hammers].map((w) => w.terminate()));
  await sqliteDaemon?.stop().catch(() => undefined);
  await Promise.all(hosts.map((h) => h.daemon?.stop().catch(() => undefined)));
  for (let i = 0; i < hosts.length; i++) await Promise.all(hosts[i]!.twins.map((t) => t.kill().catch(() => undefined)));
  await cluster?.destroy().catch(() => undefined);
  if (benchDir) fs.rmSync(benchDir, { recursive: true, force: true });
  agent.destroy();
}

main()
  .then(cleanup)
  .catch(async (e) => {
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    for (const d of [sqliteDaemon, ...hosts.map((h) => h.daemon)]) if (d) console.error(d.output().split('\n').slice(-15).join('\n'));
    await cleanup();
    process.exitCode = 1;
  });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanup().then(() => process.exit(130)));
