// bench:daemon — the daemon as a real process over 32 host twin boards, every
// board training: latency of GET /v1/devices and of job submission (p50/p99,
// from client threads of their own), the daemon's CPU % and RSS (from
// /proc), and fleet rollback time for 32 boards against one board.
// Writes bench/results/daemon.json and prints a table. Measures; never fails on time.
// Each board sits behind the link simulator at BENCH_LINK_BAUD (default 921600,
// a USB-serial board's line; 0 = the twins' raw PTYs), so a fleet rollback
// moves its weights at a real line rate on every board at once.
// Twins and line simulators run at the lowest CPU priority (BENCH_BOARD_NICE,
// default 19): on a rig their work happens on the boards and in the USB-serial
// adapters, not on the host, so they must not stand between the daemon and a CPU.
// A host twin steps ~80x faster than a board, so each board trains at most at
// one step per BENCH_STEP_MS (default 83 ms: the M4 class's 5.3 M instructions
// per step, bench/results/rig.json, at the nRF52840's 64 MHz); 0 = flat out.
//   npm run bench:daemon   (BENCH_BOARDS=32 BENCH_SECONDS=30 BENCH_CONCURRENCY=4 BENCH_LINK_BAUD=921600 BENCH_STEP_MS=83 BENCH_SUBMIT_BOARDS=8 BENCH_BOARD_NICE=19)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { startDaemon, type DaemonProcess } from '../tools/proc/daemon.js';
import { LinkSim } from '../tools/proc/linksim.js';
import { TWIN_BIN, repoRoot } from '../tools/proc/paths.js';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../tools/proc/twin.js';

const BOARDS = Number(process.env.BENCH_BOARDS ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const TRAIN_COUNT = Number(process.env.BENCH_TRAIN_COUNT ?? 32);
const FLEET_REPEATS = Number(process.env.BENCH_FLEET_REPEATS ?? 3);
const LINK_BAUD = Number(process.env.BENCH_LINK_BAUD ?? 921600);
const SUBMIT_BOARDS = Math.min(BOARDS, Number(process.env.BENCH_SUBMIT_BOARDS ?? 8));
const STEP_MS = Number(process.env.BENCH_STEP_MS ?? 83);
const BOARD_NICE = Number(process.env.BENCH_BOARD_NICE ?? 19);
const RESULT = path.join(repoRoot, 'bench', 'results', 'daemon.json');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let daemon: DaemonProcess | null = null;
let twins: TwinProcess[] = [];
let lines: LinkSim[] = [];
let token = '';

async function api(method: string, route: string, body?: unknown): Promise<{ status: number; body: Json; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(daemon!.url + route, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  const ms = performance.now() - t0;
  return { status: r.status, body: text ? (JSON.parse(text) as Json) : {}, ms };
}

async function ok(method: string, route: string, body?: unknown): Promise<Json> {
  const r = await api(method, route, body);
  if (r.status >= 300) throw new Error(`${method} ${route} → ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Resolves when the job's event stream ends (the job ended); returns the job. */
async function jobEnd(jobId: string): Promise<Json> {
  const r = await fetch(`${daemon!.url}/v1/jobs/${jobId}/events`, { headers: { accept: 'text/event-stream' } });
  const reader = r.body!.getReader();
  while (!(await reader.read()).done) {
    // drain until the daemon closes the stream at the job's end
  }
  return ok('GET', `/v1/jobs/${jobId}`);
}

/** Upper bucket bounds (ms) holding 50 % and 99 % of the daemon's own request durations for a route. */
async function serverQuantiles(route: string, method: string, status = 200): Promise<{ p50: number | null; p99: number | null }> {
  const text = await (await fetch(`${daemon!.url}/metrics`)).text();
  const buckets = new Map<number, number>();
  const re = /^tinyrig_http_request_duration_seconds_bucket\{([^}]*)\} (\d+)$/gm;
  for (const m of text.matchAll(re)) {
    const labels = m[1]!;
    if (!labels.includes(`route="${route}"`) || !labels.includes(`method="${method}"`) || !labels.includes(`status="${status}"`)) continue;
    const le = /le="([^"]+)"/.exec(labels)![1]!;
    const bound = le === '+Inf' ? Infinity : Number(le) * 1000;
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(m[2]));
  }
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = Math.max(...buckets.values(), 0);
  const at = (q: number): number | null => bounds.find((b) => (buckets.get(b) ?? 0) >= q * total) ?? null;
  return total > 0 ? { p50: at(0.5), p99: at(0.99) } : { p50: null, p99: null };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

const round = (x: number, d = 2) => Number(x.toFixed(d));

/** utime + stime of a process in clock ticks, and its resident set in MiB. */
function procSample(pid: number): { ticks: number; rssMb: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { ticks, rssMb: rssKb / 1024 };
}
const CLK_TCK = 100; // Linux USER_HZ

async function fleetRollback(devices: string[], to: string, canary: number): Promise<{ wallMs: number; jobMs: number; verified: number; state: string }> {
  const t0 = performance.now();
  const r = await api('POST', '/v1/fleet/rollback?wait=true', { selector: { devices }, to, canary, maxFailures: 0 });
  const wallMs = performance.now() - t0;
  if (r.status !== 200) throw new Error(`fleet rollback → ${r.status} ${JSON.stringify(r.body)}`);
  const res = r.body.result as Json;
  return { wallMs, jobMs: res?.ms ?? wallMs, verified: (res?.devices ?? []).filter((d: Json) => d.verified).length, state: r.body.state };
}

/**
 * The two timed clients, each on a worker thread of its own: the main thread
 * follows the other boards' jobs through their event streams (hundreds of step
 * events a second), and a request timed on that event loop would include the
 * client's own backlog instead of the daemon's answer.
 *   devices: GET /v1/devices from `concurrency` clients, back to back.
 *   submit: on each of its boards, POST train → 202 (timed), poll the job
 *           to its end, keep the board's pace, again.
 */
const TIMED_CLIENT = `
const { parentPort, workerData: w } = require('node:worker_threads');
const auth = { authorization: 'Bearer ' + w.token };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const end = Date.now() + w.seconds * 1000;
const ms = [];
let steps = 0;
async function devices() {
  while (Date.now() < end) {
    const t0 = performance.now();
    const r = await fetch(w.url + '/v1/devices', { headers: auth });
    await r.text();
    if (r.status === 200) ms.push(performance.now() - t0);
  }
}
async function submit(device, k) {
  let offset = k * 1000;
  while (Date.now() < end) {
    const jobStart = performance.now();
    const body = JSON.stringify({ ...w.train, offset: (offset++ * w.train.count) % 50000 });
    const r = await fetch(w.url + '/v1/devices/' + device + '/train', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
    const job = await r.json();
    if (r.status !== 202) { await sleep(100); continue; }
    ms.push(performance.now() - jobStart);
    for (;;) {
      await sleep(50);
      const j = await (await fetch(w.url + '/v1/jobs/' + job.jobId, { headers: auth })).json();
      if (j.state === 'queued' || j.state === 'running') continue;
      if (j.state === 'succeeded') steps += (j.result && j.result.steps) || 0;
      break;
    }
    const pace = w.train.count * w.stepMs - (performance.now() - jobStart);
    if (pace > 0) await sleep(pace);
  }
}
(w.mode === 'devices' ? Promise.all(Array.from({ length: w.concurrency }, devices)) : Promise.all(w.devices.map(submit))).then(() => parentPort.postMessage({ ms, steps }));
`;

function timedClient(workerData: Record<string, unknown>): Promise<{ ms: number[]; steps: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(TIMED_CLIENT, { eval: true, workerData: { url: daemon!.url, token, seconds: SECONDS, ...workerData } });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  if (!twinBuilt()) throw new Error(`host twin not built (${TWIN_BIN}): make -C firmware`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-bench-daemon-'));
  const varDir = path.join(dir, 'var');
  console.error(`starting ${BOARDS} host twins`);
  twins = await startTwins(dir, BOARDS);
  const ids = twins.map((_, i) => `twin-${i}`);
  const devicesFile = path.join(dir, 'devices.json');
  if (LINK_BAUD > 0) {
    console.error(`each board behind the link simulator at ${LINK_BAUD} baud`);
    lines = await Promise.all(twins.map((t, i) => LinkSim.start({ device: t.path, link: path.join(dir, `line-${i}`), baud: LINK_BAUD })));
  }
  for (const c of [...twins.map((t) => t.child), ...lines.map((l) => l.child)]) if (c?.pid) os.setPriority(c.pid, BOARD_NICE);
  const portOf = (i: number): string => (LINK_BAUD > 0 ? lines[i]!.path : twins[i]!.path);
  fs.writeFileSync(devicesFile, JSON.stringify({ devices: twins.map((_, i) => ({ id: ids[i], path: portOf(i), board: 'host-twin', emulated: true, tags: ['bench'] })) }));
  daemon = await startDaemon({
    TINYRIG_VAR: varDir,
    TINYRIG_DEVICES: devicesFile,
    TINYRIG_RATE_LIMIT: '100000000',
    LOG_LEVEL: 'warn',
  });
  token = fs.readFileSync(path.join(varDir, 'admin.token'), 'utf8').trim();
  const pid = daemon.child.pid!;

  const t0 = Date.now();
  for (;;) {
    const { devices } = await ok('GET', '/v1/devices');
    if (devices.filter((d: Json) => d.state === 'online').length === BOARDS) break;
    if (Date.now() - t0 > 60_000) throw new Error('boards did not come online within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  console.error(`daemon pid ${pid} at ${daemon.url}, ${BOARDS} boards online; deploying cnn`);
  await Promise.all(ids.map((id) => ok('POST', `/v1/devices/${id}/model`, { model: 'cnn', seed: 1 })));
  const fresh = await ok('POST', `/v1/devices/${ids[0]}/snapshots`, { tags: ['bench', 'fresh'] });

  // Every board but the first SUBMIT_BOARDS trains continuously, its jobs followed by their
  // event streams; those take the timed submissions while the daemon's latency is measured.
  const trainBody = { dataset: 'fashion-mnist', split: 'train', count: TRAIN_COUNT, lr: 0.01, sparse: { lambdaMin: 0.1, lambdaMax: 1 } };
  let stopTraining = false;
  let trainJobs = 0;
  let trainSteps = 0;
  let submitErrors = 0;
  let offsetCounter = 0;
  const keepers = ids.slice(SUBMIT_BOARDS).map(async (id) => {
    while (!stopTraining) {
      const jobStart = performance.now();
      const offset = (offsetCounter++ * TRAIN_COUNT) % 50_000;
      const r = await api('POST', `/v1/devices/${id}/train`, { ...trainBody, offset });
      if (r.status !== 202) {
        submitErrors++;
        await new Promise((res) => setTimeout(res, 100));
        continue;
      }
      const job = await jobEnd(r.body.jobId);
      trainJobs++;
      if (job.state === 'succeeded') trainSteps += job.result?.steps ?? 0;
      const boardPace = TRAIN_COUNT * STEP_MS - (performance.now() - jobStart);
      if (boardPace > 0 && !stopTraining) await new Promise((res) => setTimeout(res, boardPace));
    }
  });

  // Let training reach steady state before measuring.
  await new Promise((r) => setTimeout(r, 3000));
  const stepsAtStart = trainSteps;

  let rssMax = 0;
  const cpu0 = procSample(pid);
  const wall0 = performance.now();
  const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, procSample(pid).rssMb);
  }, 250);
  console.error(`measuring for ${SECONDS} s: GET /v1/devices with ${CONCURRENCY} concurrent clients, ${BOARDS} boards training`);
  const [devicesRun, submitRun] = await Promise.all([
    timedClient({ mode: 'devices', concurrency: CONCURRENCY }),
    timedClient({ mode: 'submit', devices: ids.slice(0, SUBMIT_BOARDS), train: trainBody, stepMs: STEP_MS }),
  ]);
  const devicesMs = devicesRun.ms;
  const cpu1 = procSample(pid);
  const hostLoad = os.loadavg()[0]!; // other work on the host during the measurement, which client latencies include
  const wallS = (performance.now() - wall0) / 1000;
  clearInterval(sampler);
  rssMax = Math.max(rssMax, cpu1.rssMb);
  const cpuPercent = ((cpu1.ticks - cpu0.ticks) / CLK_TCK / wallS) * 100;
  const stepsPerS = (trainSteps - stepsAtStart + submitRun.steps) / wallS;
  const submits = submitRun.ms;

  // The daemon's own view (request in to response out, from its histogram):
  // set against the client's figures it tells time spent in the daemon from
  // time spent waiting for a CPU on a saturated host.
  const serverP = await serverQuantiles('/v1/devices', 'GET');
  const serverSubmitP = await serverQuantiles('/v1/devices/:id/train', 'POST', 202);
  console.error('stopping training');
  stopTraining = true;
  await Promise.all(keepers);

  // Fleet rollback: alternate between two weight sets so every rollback writes.
  const trained = await ok('POST', `/v1/devices/${ids[0]}/snapshots`, { tags: ['bench', 'trained'] });
  const targets = [fresh.id as string, trained.id as string];
  const one: number[] = [];
  const all: number[] = [];
  const allCanary: number[] = [];
  let verifiedAll = 0;
  console.error(`fleet rollback: 1 board vs ${BOARDS}, ${FLEET_REPEATS} times each`);
  for (let i = 0; i < FLEET_REPEATS; i++) {
    for (const [k, to] of targets.entries()) {
      // every board leaves the other weight set first, so the timed rollbacks all write
      const prep = targets[1 - k];
      await fleetRollback(ids, prep, 0);
      const a = await fleetRollback([ids[0]], to, 0);
      if (a.state !== 'succeeded') throw new Error('single-board rollback failed');
      one.push(a.wallMs);
      await fleetRollback([ids[0]], prep, 0);
      const b = await fleetRollback(ids, to, 0);
      if (b.state !== 'succeeded') throw new Error(`fleet rollback failed: ${JSON.stringify(b)}`);
      all.push(b.wallMs);
      verifiedAll = b.verified;
      await fleetRollback(ids, prep, 0);
      const c = await fleetRollback(ids, to, 1);
      allCanary.push(c.wallMs);
    }
  }

  devicesMs.sort((a, b) => a - b);
  submits.sort((a, b) => a - b);
  const result = {
    boards: BOARDS,
    p50_ms: round(quantile(devicesMs, 0.5)),
    p99_ms: round(quantile(devicesMs, 0.99)),
    submit_p50_ms: round(quantile(submits, 0.5)),
    submit_p99_ms: round(quantile(submits, 0.99)),
    cpu_percent: round(cpuPercent, 1),
    rss_mb: round(rssMax, 1),
    fleet_rollback_ratio: round(median(all) / median(one)),
    fleet_rollback_canary1_ratio: round(median(allCanary) / median(one)),
    fleet_rollback_one_ms: round(median(one), 1),
    fleet_rollback_all_ms: round(median(all), 1),
    fleet_rollback_all_canary1_ms: round(median(allCanary), 1),
    fleet_rollback_verified: verifiedAll,
    devices_requests: devicesMs.length,
    devices_rps: round(devicesMs.length / wallS, 1),
    submissions: submits.length,
    submit_errors: submitErrors,
    train_jobs: trainJobs,
    train_steps_per_s: round(stepsPerS, 1),
    measure_s: round(wallS, 1),
    concurrency: CONCURRENCY,
    train_count_per_job: TRAIN_COUNT,
    link_baud: LINK_BAUD > 0 ? LINK_BAUD : null,
    board_nice: BOARD_NICE,
    submit_boards: SUBMIT_BOARDS,
    step_ms_at_least: STEP_MS,
    server_devices_p50_ms_at_most: serverP.p50,
    server_devices_p99_ms_at_most: serverP.p99,
    server_submit_p50_ms_at_most: serverSubmitP.p50,
    server_submit_p99_ms_at_most: serverSubmitP.p99,
    host: { cpus: os.cpus().length, load_avg_1m: round(hostLoad, 1), model: os.cpus()[0]?.model ?? 'unknown', node: process.version },
    targets: { p99_ms: 50, fleet_rollback_ratio: 3 },
    notes:
      'Daemon, load generator and all twins share the host CPUs; twins and line simulators run at nice board_nice (their work is the boards\', not the host\'s); each board steps at most once per step_ms_at_least (the pace of a real board); cpu_percent is of one core. GET /v1/devices and submissions are timed on worker threads of their own; submit = POST /v1/devices/:id/train → 202 on an idle board while the others train, from submit_boards boards that then train at the same pace. ' +
      'fleet_rollback_ratio: wall time of POST /v1/fleet/rollback?wait=true (canary 0) over 32 boards / over 1 board, median of repeats; canary1 variant rolls one board first.',
    measuredAt: new Date().toISOString(),
  };
  fs.mkdirSync(path.dirname(RESULT), { recursive: true });
  fs.writeFileSync(RESULT, JSON.stringify(result, null, 2) + '\n');

  const rows: [string, string, string][] = [
    ['boards (all training)', String(result.boards), ''],
    ['GET /v1/devices p50', `${result.p50_ms} ms`, ''],
    ['GET /v1/devices p99', `${result.p99_ms} ms`, `target < 50 ms: ${result.p99_ms < 50 ? 'met' : 'missed'}`],
    ['  inside the daemon', `p50 <= ${result.server_devices_p50_ms_at_most} ms, p99 <= ${result.server_devices_p99_ms_at_most} ms`, 'its own histogram: the rest is waiting for a CPU'],
    ['GET /v1/devices rate', `${result.devices_rps} req/s`, `${CONCURRENCY} clients, ${result.devices_requests} requests`],
    ['job submission p50', `${result.submit_p50_ms} ms`, `${result.submissions} submissions`],
    ['job submission p99', `${result.submit_p99_ms} ms`, `target < 50 ms: ${result.submit_p99_ms < 50 ? 'met' : 'missed'}`],
    ['  inside the daemon', `p50 <= ${result.server_submit_p50_ms_at_most} ms, p99 <= ${result.server_submit_p99_ms_at_most} ms`, 'its own histogram (the job row is a synchronous SQLite commit)'],
    ['daemon CPU', `${result.cpu_percent} %`, 'of one core'],
    ['host load average (1 min)', String(result.host.load_avg_1m), `${result.host.cpus} CPUs`],
    ['daemon RSS (max)', `${result.rss_mb} MiB`, ''],
    ['training throughput', `${result.train_steps_per_s} steps/s`, `all boards together; one step per board per ${STEP_MS} ms at most`],
    ['fleet rollback 1 board', `${result.fleet_rollback_one_ms} ms`, ''],
    [`fleet rollback ${BOARDS} boards`, `${result.fleet_rollback_all_ms} ms`, `${result.fleet_rollback_verified}/${BOARDS} verified`],
    ['fleet rollback ratio', `${result.fleet_rollback_ratio}x`, `target < 3: ${result.fleet_rollback_ratio < 3 ? 'met' : 'missed'}`],
    [`  with 1 canary`, `${result.fleet_rollback_canary1_ratio}x`, `${result.fleet_rollback_all_canary1_ms} ms`],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(JSON.stringify(result));
  console.log(['metric'.padEnd(w0), 'value'.padEnd(w1), 'note'].join('  '));
  for (const r of rows) console.log([r[0].padEnd(w0), r[1].padEnd(w1), r[2]].join('  ').trimEnd());
}

async function cleanup(): Promise<void> {
  await daemon?.stop().catch(() => {});
  await Promise.all(lines.map((l) => l.stop().catch(() => null)));
  await stopTwins(twins).catch(() => {});
}

main()
  .then(cleanup)
  .catch(async (e) => {
    console.error(e instanceof Error ? e.message : e);
    if (daemon) console.error(daemon.output().split('\n').slice(-20).join('\n'));
    await cleanup();
    process.exitCode = 1;
  });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanup().then(() => process.exit(130)));
