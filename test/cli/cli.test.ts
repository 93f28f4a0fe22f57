// The tinyrig CLI as a child process (bin/tinyrig.js) against a real daemon
// process: exit codes and error messages, the token file, and with host twins
// the whole operator flow — deploy, train with progress, snapshot, damage,
// rollback verified, fleet rollback with a canary and a failing board, jobs
// --follow, metrics.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startDaemon, type DaemonProcess } from '../../tools/proc/daemon.js';
import { repoRoot } from '../../tools/proc/paths.js';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';
import { tempDir, until } from '../server/helpers.js';

const BIN = path.join(repoRoot, 'bin', 'tinyrig.js');

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

// Run from an empty directory: a var/admin.token left in the checkout by
// ./scripts/start must not stand in for the test daemon's token.
const cleanCwd = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-cli-cwd-'));

function cli(args: string[], env: Record<string, string | undefined> = {}, cwd = cleanCwd): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, TINYRIG_TOKEN: undefined, TINYRIG_URL: undefined, TINYRIG_VAR: undefined, ...env };
    for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: childEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d.toString()));
    child.stderr.on('data', (d) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

const json = <T = any>(r: CliRun): T => JSON.parse(r.stdout) as T; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('tinyrig CLI without boards', () => {
  let daemon: DaemonProcess;
  let varDir: string;
  let token: string;

  beforeAll(async () => {
    varDir = tempDir('tinyrig-cli-');
    // two boards configured but never plugged in
    const devicesFile = path.join(varDir, 'devices.json');
    fs.writeFileSync(
      devicesFile,
      JSON.stringify({ devices: ['ghost-0', 'ghost-1'].map((id) => ({ id, path: path.join(varDir, `${id}.pty`), board: 'host-twin', tags: ['lab'] })) }),
    );
    daemon = await startDaemon({ TINYRIG_VAR: varDir, TINYRIG_DEVICES: devicesFile });
    token = fs.readFileSync(path.join(varDir, 'admin.token'), 'utf8').trim();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('prints help and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['devices', 'deploy', 'train', 'evaluate', 'snapshot', 'snapshots', 'rollback', 'fleet-rollback', 'jobs', 'metrics']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    }
  });

  it('reads the daemon address from --url or TINYRIG_URL', async () => {
    const a = await cli(['--url', daemon.url, '--json', 'health']);
    expect(a.code, a.stderr).toBe(0);
    expect(json(a).status).toBe('ok');
    const b = await cli(['--json', 'devices'], { TINYRIG_URL: daemon.url });
    expect(b.code, b.stderr).toBe(0);
    expect(json(b).devices.map((d: { id: string; state: string }) => [d.id, d.state])).toEqual([
      ['ghost-0', 'offline'],
      ['ghost-1', 'offline'],
    ]);
    const human = await cli(['devices'], { TINYRIG_URL: daemon.url });
    const lines = human.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+HOST\s+BOARD\s+CLASS\s+STATE/);
    expect(lines.slice(1)).toHaveLength(2);
    expect(lines[1]).toMatch(/^ghost-0\s+\S+\s+host-twin\s+-\s+offline\s/);
  });

  it('exits 3 with the address when no daemon listens', async () => {
    const port = await freePort();
    const r = await cli(['devices'], { TINYRIG_URL: `http://127.0.0.1:${port}` });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`cannot reach the tinyrig daemon at http://127.0.0.1:${port}: ECONNREFUSED`);
  });

  it('exits 2 on bad usage before sending anything', async () => {
    const noTarget = await cli(['--url', daemon.url, 'deploy', 'x']);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toMatch(/exactly one of --model <name> or --snapshot <id>/);
    const badLr = await cli(['--url', daemon.url, 'train', 'x', '--count', '10', '--lr', 'fast']);
    expect(badLr.code).toBe(2);
    expect(badLr.stderr).toMatch(/--lr must be a number/);
    const noSelector = await cli(['--url', daemon.url, 'fleet-rollback', '--to', 'last-good']);
    expect(noSelector.code).toBe(2);
    expect(noSelector.stderr).toMatch(/needs a selector/);
    const unknown = await cli(['--url', daemon.url, 'frobnicate']);
    expect(unknown.code).toBe(2);
  });

  it('refuses a mutating command without a token: 401 with the code and a hint, exit 1', async () => {
    const r = await cli(['--url', daemon.url, 'deploy', 'twin-0', '--model', 'cnn'], { TINYRIG_VAR: path.join(varDir, 'elsewhere') }, varDir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: 401 TR_UNAUTHORIZED: /m);
    expect(r.stderr).toMatch(/hint: pass --token/);
  });

  it('takes the token from --token, TINYRIG_TOKEN or the admin.token file of TINYRIG_VAR', async () => {
    // authorised, so the daemon gets as far as looking the board up
    const expectNotFound = (r: CliRun) => {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: 404 TR_DEVICE_NOT_FOUND: .*nope/m);
    };
    expectNotFound(await cli(['--url', daemon.url, '--token', token, 'deploy', 'nope', '--model', 'cnn']));
    expectNotFound(await cli(['--url', daemon.url, 'deploy', 'nope', '--model', 'cnn'], { TINYRIG_TOKEN: token }));
    expectNotFound(await cli(['--url', daemon.url, 'deploy', 'nope', '--model', 'cnn'], { TINYRIG_VAR: varDir }));
    const wrong = await cli(['--url', daemon.url, '--token', 'not-a-valid-token-at-all', 'deploy', 'nope', '--model', 'cnn']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/401 TR_UNAUTHORIZED/);
  });

  it('reports unknown jobs and snapshots with their codes', async () => {
    const j = await cli(['--url', daemon.url, 'jobs', 'job_missing', '--follow']);
    expect(j.code).toBe(1);
    expect(j.stderr).toMatch(/404 TR_JOB_NOT_FOUND/);
    const s = await cli(['--url', daemon.url, 'snapshots', 'snap_missing']);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/404 TR_SNAPSHOT_NOT_FOUND/);
    const list = await cli(['--url', daemon.url, '--json', 'snapshots']);
    expect(json(list)).toEqual({ snapshots: [] });
  });

  it('follows a fleet rollback that halts: per-board table, the halt on stderr, exit 4', async () => {
    const env = { TINYRIG_URL: daemon.url, TINYRIG_TOKEN: token };
    const r = await cli(['fleet-rollback', '--tag', 'lab', '--to', 'last-good', '--canary', '1', '--max-failures', '0', '--wait'], env);
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/^ghost-0\s+canary\s+failed\s.*TR_NO_GOOD_SNAPSHOT/m);
    expect(r.stdout).toMatch(/^ghost-1\s+fleet\s+skipped\b/m);
    expect(r.stdout).toMatch(/fleet rollback failed: 0 succeeded, 1 failed, 1 skipped, halted/);
    expect(r.stderr).toMatch(/^canary ghost-0: failed TR_NO_GOOD_SNAPSHOT/m);
    expect(r.stderr).toMatch(/error: job job_\S+ failed: TR_FLEET_HALTED/);

    const jobs = await cli(['--json', 'jobs', '--limit', '1'], env);
    const job = json(jobs).jobs[0];
    expect(job).toMatchObject({ kind: 'fleet-rollback', state: 'failed', error: { code: 'TR_FLEET_HALTED' } });
    // a finished job: show and follow both report its failure
    const show = await cli(['jobs', job.id], env);
    expect(show.code).toBe(4);
    expect(show.stdout).toMatch(/^ghost-0\s+canary\s+failed/m);
    const follow = await cli(['--json', 'jobs', job.id, '--follow'], env);
    expect(follow.code).toBe(4);
    const events = follow.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    expect(events.map((e) => e.event)).toContain('device');
    expect(events[events.length - 1].event).toBe('job');

    const unknown = await cli(['fleet-rollback', '--tag', 'lab', '--to', 'snap_missing', '--wait'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^error: 404 TR_SNAPSHOT_NOT_FOUND/m);
  });
});

describe.runIf(twinBuilt())('tinyrig CLI over host twins', () => {
  const BOARDS = 3;
  let daemon: DaemonProcess;
  let twins: TwinProcess[] = [];
  let env: Record<string, string>;
  let snapId = '';
  let snapSha = '';

  const device = async (id: string) => json((await cli(['--json', 'devices', id], env)));

  beforeAll(async () => {
    const dir = tempDir('tinyrig-cli-twins-');
    twins = await startTwins(dir, BOARDS);
    const devicesFile = path.join(dir, 'devices.json');
    fs.writeFileSync(
      devicesFile,
      JSON.stringify({ devices: twins.map((t, i) => ({ id: `twin-${i}`, path: t.path, board: 'host-twin', emulated: true, tags: ['cli', i === 0 ? 'first' : 'rest'] })) }),
    );
    daemon = await startDaemon({ TINYRIG_VAR: path.join(dir, 'var'), TINYRIG_DEVICES: devicesFile, TINYRIG_GOOD_ACCURACY: '0' });
    env = { TINYRIG_URL: daemon.url, TINYRIG_VAR: path.join(dir, 'var') };
    await until(
      async () => {
        const r = await fetch(`${daemon.url}/v1/devices`);
        const { devices } = (await r.json()) as { devices: { state: string }[] };
        return devices.filter((d) => d.state === 'online').length === BOARDS;
      },
      20_000,
      'twins online',
    );
  });
  afterAll(async () => {
    await daemon?.stop();
    await stopTwins(twins);
  });

  it('lists the boards in a table', async () => {
    const r = await cli(['devices', '--tag', 'cli'], env);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1 + BOARDS);
    for (let i = 0; i < BOARDS; i++) expect(lines[1 + i]).toMatch(new RegExp(`^twin-${i}\\s+\\S+\\s+host-twin\\s+.*\\bonline\\b`));
  });

  it('deploys a seeded model on every board', async () => {
    for (let i = 0; i < BOARDS; i++) {
      const r = await cli(['--json', 'deploy', `twin-${i}`, '--model', 'cnn', '--seed', '1'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(json(r).deviceId).toBe(`twin-${i}`);
    }
    const [a, b] = await Promise.all([device('twin-0'), device('twin-1')]);
    expect(a.model.name).toBe('cnn');
    // same model and seed: same weights
    expect(a.model.weightsSha256).toBe(b.model.weightsSha256);
  });

  it('trains with --wait: progress on stderr, the result on stdout, exit 0', async () => {
    const r = await cli(['train', 'twin-0', '--count', '96', '--lr', '0.01', '--lambda-min', '0.1', '--lambda-max', '1', '--wait'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^job job_/m);
    expect(r.stderr).toMatch(/\d+\/96/);
    expect(r.stdout).toMatch(/^trained 96 steps on twin-0: mean loss \d/m);
    const d = await device('twin-0');
    expect(d.steps).toBeGreaterThanOrEqual(96);
  });

  it('snapshots with tags and lists it', async () => {
    const r = await cli(['--json', 'snapshot', 'twin-0', '--tag', 'base,cli', '--evaluate', '50'], env);
    expect(r.code, r.stderr).toBe(0);
    const s = json(r);
    expect(s.tags).toEqual(['base', 'cli']);
    expect(s.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(s.sha256).toBe((await device('twin-0')).model.weightsSha256);
    snapId = s.id;
    snapSha = s.sha256;
    const list = await cli(['snapshots', '--device', 'twin-0', '--tag', 'base'], env);
    expect(list.stdout).toContain(snapId);
  });

  it('damages the weights, then rolls back with the hash verified on the board', async () => {
    const damage = await cli(['train', 'twin-0', '--count', '32', '--lr', '100', '--wait'], env);
    expect(damage.code, damage.stderr).toBe(0);
    expect((await device('twin-0')).model.weightsSha256).not.toBe(snapSha);
    const r = await cli(['rollback', 'twin-0', snapId], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`twin-0 rolled back to ${snapId}: \\w+ -> ${snapSha.slice(0, 12)}, hash verified on the board`));
    expect((await device('twin-0')).model.weightsSha256).toBe(snapSha);
  });

  it('submits a job, follows it with jobs --follow and shows its steps in metrics', async () => {
    const sub = await cli(['--json', 'train', 'twin-1', '--count', '64', '--lr', '0.01'], env);
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = json(sub).jobId as string;
    const f = await cli(['--json', 'jobs', jobId, '--follow'], env);
    expect(f.code, f.stderr).toBe(0);
    const events = f.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; data: any }); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(events.some((e) => e.event === 'progress')).toBe(true);
    const last = events[events.length - 1];
    expect(last.event).toBe('job');
    expect(last.data).toMatchObject({ id: jobId, state: 'succeeded', progress: { done: 64, total: 64 } });
    const m = await cli(['--json', 'metrics', 'twin-1', '--job', jobId, '--limit', '1000'], env);
    expect(m.code, m.stderr).toBe(0);
    expect(json(m).steps).toHaveLength(64);
    const human = await cli(['metrics', 'twin-1', '--limit', '5'], env);
    expect(human.stdout).toMatch(/^SEQ\s+STEP\s+LOSS/m);
  });

  it('answers 409 with the code when the board is busy', async () => {
    const sub = await cli(['--json', 'train', 'twin-2', '--count', '2000', '--lr', '0.01'], env);
    expect(sub.code, sub.stderr).toBe(0);
    const busy = await cli(['deploy', 'twin-2', '--model', 'cnn'], env);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/^error: 409 TR_DEVICE_BUSY: /m);
    const done = await cli(['--json', 'jobs', json(sub).jobId, '--follow'], env);
    expect(done.code, done.stderr).toBe(0);
  });

  it('rolls the fleet back with a canary: every board verified', async () => {
    const r = await cli(['fleet-rollback', '--tag', 'cli', '--to', snapId, '--canary', '1', '--max-failures', '0', '--wait'], env);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/fleet rollback succeeded: 3 succeeded, 0 failed, 0 skipped/);
    for (let i = 0; i < BOARDS; i++) {
      expect(r.stdout).toMatch(new RegExp(`^twin-${i}\\s+(canary|fleet)\\s+succeeded\\s+${snapId}\\s+\\S+\\s+${snapSha.slice(0, 12)}\\s+yes`, 'm'));
      expect((await device(`twin-${i}`)).model.weightsSha256).toBe(snapSha);
    }
  });

  it('exits 4 and names the failed board when a fleet rollback halts', async () => {
    await twins[2].kill();
    const r = await cli(['fleet-rollback', '--devices', 'twin-2,twin-0,twin-1', '--to', snapId, '--canary', '1', '--max-failures', '0', '--wait'], env);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/TR_FLEET_HALTED/);
    expect(r.stdout).toMatch(/^twin-2\s+canary\s+failed\b.*TR_DEVICE_/m);
  });
});

describe.runIf(!twinBuilt())('tinyrig CLI over host twins (twin missing)', () => {
  it('needs the host twin binary', () => {
    throw new Error('firmware/build/host/tinyrig-twin is not built: run make -C firmware');
  });
});
