// The image builds from what the Dockerfile copies, checked without a Docker
// engine: the image's files are assembled in a temporary directory from the
// Dockerfile's COPY lines (honouring .dockerignore), then its RUN steps run
// there in order. Not run: the apt-get step (root and the network; this
// machine has the packages from scripts/lib/bootstrap.sh) and the npm ci step
// (its node_modules is a link to this checkout's). Then what the services run
// must load from the image's files alone.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../tools/proc/paths.js';
import { assembleImage, type BuildStep } from './dockerfile.js';

const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');

/** Runs a command to its end without blocking the test worker (a firmware build takes a minute). */
function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('the image, built from what the Dockerfile copies', () => {
  let image = '';
  let app = '';
  let steps: BuildStep[] = [];

  beforeAll(() => {
    image = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-image-'));
    ({ steps, workdir: app } = assembleImage(dockerfile, repoRoot, image));
  });
  afterAll(() => {
    if (image) fs.rmSync(image, { recursive: true, force: true });
  });

  it('runs every build step in the copied tree: make -C firmware builds the twin, the tools and the QEMU images', async () => {
    const ran: string[] = [];
    for (const step of steps) {
      const shown = step.run.replace(/\s+/g, ' ').slice(0, 60);
      if (/\bapt-get\b/.test(step.run)) {
        console.info(`not run here (needs root and the network): RUN ${shown}…`);
        continue;
      }
      if (/\bnpm ci\b/.test(step.run)) {
        console.info(`not run here (needs the network): RUN ${shown}…; node_modules links to this checkout's`);
        fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(step.cwd, 'node_modules'));
        continue;
      }
      const r = await run('sh', ['-c', step.run], { cwd: step.cwd, env: { ...process.env, ...step.env } });
      expect(r.status, `RUN ${step.run} failed in the image's files:\n${r.stdout}${r.stderr}`).toBe(0);
      ran.push(step.run);
    }
    expect(ran.some((r) => /\bmake\b.*-C firmware/.test(r)), 'a RUN builds the firmware').toBe(true);
    const built = ['build/host/tinyrig-twin', 'build/host/tinyrig-train', 'build/host/tinyrig-linksim', ...['m0plus', 'm4', 'm7'].map((c) => `build/qemu/${c}/tinyrig-board.elf`)];
    for (const f of built) expect(fs.existsSync(path.join(app, 'firmware', f)), `firmware/${f} in the image`).toBe(true);
  }, 600_000);

  it("loads the emulated service's rig script and the daemon from the image's files alone", async () => {
    const tsx = (args: string[]) => run(process.execPath, ['--import', 'tsx', ...args], { cwd: app });
    const rigDir = path.join(image, 'rig-status');
    const status = await tsx(['scripts/rig.ts', 'status', '--dir', rigDir]);
    expect(status.status, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: false, devices: [] });
    const daemon = await tsx(['-e', "await import('./server/src/app.ts')"]);
    expect(daemon.status, daemon.stderr).toBe(0);
  }, 120_000);
});
