// Regression runs over the emulated rig, through the REST API: the shipped
// nightly suite end to end (every board's weights equal to the golden twin's,
// figures recorded, a baseline promoted, the next run compared with it); a
// slower kernel built into the M4 image flagged on the M4's instruction
// count and nowhere else; a board reset mid-run reported as such while the
// others finish; the daemon killed mid-run leaves the run interrupted with
// its finished stages kept; the schedule starts a suite by itself.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { startDaemon, type DaemonProcess } from '../../tools/proc/daemon.js';
import { firmwareDir, repoRoot } from '../../tools/proc/paths.js';
import { RigProcess, qemuRigReady } from '../../tools/proc/rig.js';
import { apiClient, buildApp, TEST_TOKEN, tempDir, until, type Json } from '../server/helpers.js';
import { launchChromium, openPage, screenshot } from '../web/browser.js';

const run = promisify(execFile);
const ready = qemuRigReady();

/** A small suite on the M4 and a twin, for the fault tests (the shipped nightly is run whole above them). */
const QUICK = `name: quick
boards:
  - class: m4
    count: 1
  - class: twin
    count: 1
model: { name: cnn, seed: 2 }
train: { dataset: fashion-mnist, split: train, offset: 0, count: STEPS }
evaluate: { dataset: fashion-mnist, split: test, offset: 0, count: 64 }
timeouts: { train: 600 }
`;

function suitesDir(steps: number): string {
  const dir = tempDir('tinyrig-suites-');
  fs.writeFileSync(path.join(dir, 'quick.yaml'), QUICK.replace('STEPS', String(steps)));
  fs.copyFileSync(path.join(repoRoot, 'suites', 'nightly.yaml'), path.join(dir, 'nightly.yaml'));
  return dir;
}

describe.runIf(ready)('regression runs on the emulated rig', () => {
  let dir: string;
  let rig: RigProcess;
  let app: FastifyInstance | null = null;
  const { post, get } = apiClient(() => app!);

  const startApp = async (varDir: string, suites: string): Promise<void> => {
    app = await buildApp({ varDir, devices: rig.devices(), suitesDir: suites, runLeaseMs: 3000 });
    await until(() => app!.devices.list().every((b) => b.status === 'online'), 60_000, 'rig online');
  };

  beforeAll(async () => {
    dir = tempDir('tinyrig-runs-');
    rig = new RigProcess(path.join(dir, 'rig'), { m0plus: 1, m4: 1, m7: 1, twin: 1 });
    await rig.start();
  }, 120_000);
  afterEach(async () => {
    await app?.close();
    app = null;
  });
  afterAll(async () => {
    await rig?.stop();
  });

  it('runs the nightly suite end to end: weights equal the twin\'s on every board; a promoted baseline passes the next run', async () => {
    await startApp(path.join(dir, 'var'), path.join(repoRoot, 'suites'));
    const first = await post('/v1/runs?wait=true', { suite: 'nightly' });
    expect(first.status, JSON.stringify(first.body).slice(0, 2000)).toBe(200);
    const r = first.body;
    expect(r.state, JSON.stringify(r.boards.map((b: Json) => [b.deviceId, b.state, b.failure]))).toBe('passed');
    expect(r.boards.map((b: Json) => b.deviceId).sort()).toEqual(['m0plus-0', 'm4-0', 'm7-0', 'twin-0']);
    for (const b of r.boards as Json[]) {
      expect(b.stages.map((s: Json) => [s.name, s.state])).toEqual([
        ['flash', 'passed'], ['deploy', 'passed'], ['train', 'passed'], ['evaluate', 'passed'], ['snapshot', 'passed'], ['golden', 'passed'],
      ]);
      expect(b.figures.weightsMatch).toBe(true);
      expect(b.figures.weightsSha256).toBe(b.figures.twinSha256);
      expect(b.figures.steps).toBe(300);
      expect(b.figures.accuracy).toBeGreaterThan(0.3);
      expect(b.figures.peakRam).toBeGreaterThan(0);
      // energy is estimated from emulated instructions on the QEMU boards
      if (b.figures.counterUnit === 'instructions') expect(b.figures.energySource).toBe('estimated');
    }
    const m4 = r.boards.find((b: Json) => b.deviceId === 'm4-0');
    expect(m4.figures.counterUnit).toBe('instructions');
    console.log(JSON.stringify({ nightly: r.boards.map((b: Json) => ({ board: b.deviceId, ...b.figures })) }));
    // the boards were the run's alone while it ran, and are free again
    expect((await get('/v1/leases')).leases).toEqual([]);

    const promoted = await post(`/v1/runs/${r.id}/baseline`, {});
    expect(promoted.body.isBaseline).toBe(true);
    const second = (await post('/v1/runs?wait=true', { suite: 'nightly' })).body;
    expect(second).toMatchObject({ state: 'passed', baselineRunId: r.id });
    const m4again = second.boards.find((b: Json) => b.deviceId === 'm4-0');
    const counter = m4again.checks.find((c: Json) => c.figure === 'counterPerStep');
    // emulated instruction counts repeat to a timer tick or so in 300 steps
    expect(counter).toMatchObject({ baseline: m4.figures.counterPerStep, regression: false });
    expect(Math.abs(counter.value - counter.baseline) / counter.baseline).toBeLessThan(1e-5);
    expect(second.boards.find((b: Json) => b.deviceId === 'twin-0').checks.some((c: Json) => c.figure === 'counterPerStep')).toBe(false);
    const list = (await get('/v1/runs?suite=nightly')).runs;
    expect(list.map((x: Json) => x.id)).toEqual([second.id, r.id]);

    // the run's report in a real browser, served by the daemon under its own policy: plots drawn, no console error
    const junit = await app!.inject({ method: 'GET', url: `/v1/runs/${second.id}/junit.xml` });
    expect(junit.headers['content-type']).toMatch(/xml/);
    expect(junit.body).toMatch(/<testsuite[^>]* name="nightly"/);
    expect(junit.body).not.toMatch(/<failure/);
    await app!.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app!.server.address() as { port: number }).port}/v1/runs/${second.id}/report.html`;
    const browser = await launchChromium();
    try {
      const { page, problems } = await openPage(browser);
      await page.goto(url);
      const plots = await page.$$eval('svg[data-figure]', (els) => els.map((e) => ({ figure: e.getAttribute('data-figure'), points: e.querySelectorAll('circle').length })));
      expect(plots.length).toBeGreaterThanOrEqual(4 * 4);
      for (const p of plots.filter((x) => x.figure === 'accuracy')) expect(p.points).toBe(2);
      await screenshot(page, 'nightly-run-report');
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 1_200_000);

  it('flags a slower kernel built into the M4 image on the M4\'s instructions per step, and nothing else', async () => {
    // the candidate firmware: the M4 image with the portable reference kernels instead of the SIMD ones
    const build = path.join(dir, 'build-slow');
    await run('make', ['-s', '-C', firmwareDir, `BUILD=${build}`, 'QEMU_KERNELS_m4=', `${build}/qemu/m4/tinyrig-board.elf`], { maxBuffer: 1 << 24 });
    const suites = suitesDir(48);
    await startApp(path.join(dir, 'var-slow'), suites);
    const base = (await post('/v1/runs?wait=true', { suite: 'quick' })).body;
    expect(base.state).toBe('passed');
    await post(`/v1/runs/${base.id}/baseline`, {});
    await app!.close();
    app = null;
    await rig.stop();
    rig = new RigProcess(rig.dir, { m0plus: 1, m4: 1, m7: 1, twin: 1 }, [], { ...process.env, RIG_ELF_M4: `${build}/qemu/m4/tinyrig-board.elf` });
    await rig.start();
    await startApp(path.join(dir, 'var-slow'), suites);
    const slow = (await post('/v1/runs?wait=true', { suite: 'quick' })).body;
    expect(slow.state).toBe('regressed');
    // more instructions a step, so more energy a step (estimated from them): on the M4 alone
    expect(slow.summary.regressions.map((x: Json) => [x.deviceId, x.figure])).toEqual([['m4-0', 'counterPerStep'], ['m4-0', 'energyPerStepUj']]);
    const reg = slow.summary.regressions[0];
    expect(reg.after).toBeGreaterThan(reg.before * 1.05);
    // the same arithmetic either way: the weights still equal the twin's
    expect(slow.boards.every((b: Json) => b.figures.weightsMatch === true)).toBe(true);
    console.log(JSON.stringify({ injectedRegression: reg }));
    await app!.close();
    app = null;
    await rig.stop();
    rig = new RigProcess(rig.dir, { m0plus: 1, m4: 1, m7: 1, twin: 1 });
    await rig.start();
  }, 1_200_000);

  it('reports a board reset mid-run as a reset while the other boards finish', async () => {
    await startApp(path.join(dir, 'var-reset'), suitesDir(400));
    const started = await post('/v1/runs', { suite: 'quick' });
    expect(started.status).toBe(202);
    const id = started.body.id;
    const m4 = app!.devices.get('m4-0');
    await until(async () => ((await get(`/v1/runs/${id}`)).boards.find((b: Json) => b.deviceId === 'm4-0').stages.find((s: Json) => s.name === 'train').state === 'running'), 120_000, 'm4 training');
    await until(() => m4.counters.steps > 40, 120_000, 'some steps on the m4');
    // the board restarts under the run (its emulator is killed; the rig starts it again)
    const qemu = rig.boards().find((p) => p.cmd.includes('mps2-an386'))!;
    process.kill(qemu.pid, 'SIGKILL');
    const done = await app!.runs.wait(id);
    const b4 = done.boards.find((b) => b.deviceId === 'm4-0')!;
    expect(b4).toMatchObject({ state: 'failed', failure: { class: 'board-reset', stage: 'train' } });
    expect(b4.stages.find((s) => s.name === 'evaluate')!.state).toBe('skipped');
    const twin = done.boards.find((b) => b.deviceId === 'twin-0')!;
    expect(twin.state).toBe('passed');
    expect(done.state).toBe('failed');
  }, 600_000);
});

describe.runIf(ready)('a run when the daemon is killed, and the schedule', () => {
  let daemon: DaemonProcess | null = null;
  let rig: RigProcess;
  let dir: string;
  beforeAll(async () => {
    dir = tempDir('tinyrig-runs-kill-');
    rig = new RigProcess(path.join(dir, 'rig'), { m4: 1, twin: 1 });
    await rig.start();
  }, 120_000);
  afterEach(async () => {
    await daemon?.kill9();
    daemon = null;
  });
  afterAll(async () => {
    await rig?.stop();
  });

  const req = async (method: string, url: string, body?: unknown): Promise<Json> => {
    const r = await fetch(`${daemon!.url}${url}`, {
      method,
      headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return (await r.json()) as Json;
  };

  it('marks a run interrupted at the next start, keeping the stages it finished', async () => {
    const env = {
      TINYRIG_VAR: path.join(dir, 'var'), TINYRIG_DEVICES: rig.devicesFile, TINYRIG_TOKEN: TEST_TOKEN, TINYRIG_SUITES: suitesDir(2000),
      TINYRIG_RUN_LEASE_MS: '3000',
    };
    daemon = await startDaemon(env);
    await until(async () => (await req('GET', '/v1/health')).devices.online === 2, 60_000, 'rig online');
    const { id } = await req('POST', '/v1/runs', { suite: 'quick' });
    await until(async () => (await req('GET', `/v1/runs/${id}`)).boards.every((b: Json) => b.stages[0].state === 'passed'), 120_000, 'deploy done');
    await daemon.kill9();
    daemon = await startDaemon(env);
    const after = await req('GET', `/v1/runs/${id}`);
    expect(after.state).toBe('interrupted');
    for (const b of after.boards as Json[]) {
      expect(b.stages.find((s: Json) => s.name === 'deploy').state).toBe('passed');
      expect(b.state).toBe('interrupted');
      expect(b.failure.class).toBe('interrupted');
    }
    // its reservation lapses by itself: the boards take new work
    await until(async () => (await req('GET', '/v1/leases')).leases.length === 0, 90_000, 'the run\'s reservation to lapse');
  }, 600_000);

  it('cancels a run: the training under way stops at its next TRAIN, the rest is cancelled, the boards are free', async () => {
    daemon = await startDaemon({ TINYRIG_VAR: path.join(dir, 'var-cancel'), TINYRIG_DEVICES: rig.devicesFile, TINYRIG_TOKEN: TEST_TOKEN, TINYRIG_SUITES: suitesDir(5000) });
    await until(async () => (await req('GET', '/v1/health')).devices.online === 2, 60_000, 'rig online');
    const { id } = await req('POST', '/v1/runs', { suite: 'quick' });
    const training = async (): Promise<boolean> =>
      ((await req('GET', `/v1/runs/${id}`)).boards as Json[]).every((b) => b.stages.find((s: Json) => s.name === 'train').state === 'running');
    await until(training, 120_000, 'both boards training');
    const t0 = Date.now();
    await req('POST', `/v1/runs/${id}/cancel`);
    await until(async () => (await req('GET', `/v1/runs/${id}`)).state === 'cancelled', 60_000, 'the run cancelled');
    expect(Date.now() - t0).toBeLessThan(30_000); // not the 5,000 steps
    const r = await req('GET', `/v1/runs/${id}`);
    for (const b of r.boards as Json[]) {
      expect(b.state).toBe('cancelled');
      expect(b.stages.find((s: Json) => s.name === 'evaluate').state).toBe('cancelled');
    }
    const job = await req('GET', `/v1/jobs/${r.boards[0].stages.find((s: Json) => s.name === 'train').jobId}`);
    expect(job).toMatchObject({ state: 'failed', error: { code: 'TR_JOB_CANCELLED' } });
    expect(job.result.steps).toBeLessThan(5000);
    await until(async () => (await req('GET', '/v1/leases')).leases.length === 0, 10_000, 'the boards free');
  }, 300_000);

  it('starts a suite from the schedule by itself', async () => {
    daemon = await startDaemon({
      TINYRIG_VAR: path.join(dir, 'var-cron'), TINYRIG_DEVICES: rig.devicesFile, TINYRIG_TOKEN: TEST_TOKEN,
      TINYRIG_SUITES: suitesDir(8), TINYRIG_SCHEDULE: 'quick@*/3 * * * * *',
    });
    await until(async () => ((await req('GET', '/v1/runs?suite=quick')).runs as Json[]).some((r) => r.trigger === 'schedule'), 60_000, 'a scheduled run');
  }, 120_000);

  it('runs a suite from the CLI with its figures, exit 0 when it passed', async () => {
    daemon = await startDaemon({ TINYRIG_VAR: path.join(dir, 'var-cli'), TINYRIG_DEVICES: rig.devicesFile, TINYRIG_TOKEN: TEST_TOKEN, TINYRIG_SUITES: suitesDir(8) });
    await until(async () => (await req('GET', '/v1/health')).devices.online === 2, 60_000, 'rig online');
    const cli = await run(process.execPath, [path.join(repoRoot, 'bin', 'tinyrig.js'), 'run', 'quick'], {
      env: { ...process.env, TINYRIG_URL: daemon.url, TINYRIG_TOKEN: TEST_TOKEN },
    });
    expect(cli.stdout).toMatch(/m4-0 +passed/);
    expect(cli.stdout).toMatch(/run run_\S+ passed: 2 passed, 0 regressed, 0 failed/);
  }, 300_000);
});

describe.runIf(!ready)('regression runs (QEMU or board firmware missing)', () => {
  it('needs qemu-system-arm and the QEMU board firmware', () => {
    throw new Error('regression run tests not run: install qemu-system-arm and build the firmware (make -C firmware)');
  });
});
