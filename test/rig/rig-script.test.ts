// scripts/rig itself, without the daemon: the devices file and the symlinks it
// writes, `status`, and `stop` from another process (by its pid file) leaving
// no board process, symlink or file behind; a pid file left by an unclean stop
// blocks nothing.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../../tools/proc/child.js';
import { BOARDS_FILE, repoRoot } from '../../tools/proc/paths.js';
import { RigProcess, requireBoardFirmware } from '../../tools/proc/rig.js';
import { tempDir } from '../server/helpers.js';

const run = promisify(execFile);
const rigScript = path.join(repoRoot, 'scripts', 'rig');
const boardsTable = JSON.parse(fs.readFileSync(BOARDS_FILE, 'utf8')) as {
  classes: { class: string; qemu: { machine: string }; boards: { zephyr: string }[] }[];
};

describe('scripts/rig', () => {
  let rig: RigProcess | undefined;
  afterAll(async () => {
    await rig?.stop();
  });

  it('starts a QEMU board and twins behind stable symlinks, and `stop --dir` ends them all', async () => {
    requireBoardFirmware();
    const dir = tempDir('tinyrig-rigscript-');
    rig = new RigProcess(dir, { m0plus: 1, twin: 2 });
    const devices = await rig.start();
    const m0 = boardsTable.classes.find((c) => c.class === 'm0plus')!;
    expect(devices).toEqual([
      {
        id: 'm0plus-0',
        path: path.join(dir, 'm0plus-0'),
        board: `qemu-${m0.qemu.machine}`,
        class: 'm0plus',
        emulated: true,
        tags: ['emulated', 'm0plus'],
        powerBoard: m0.boards[0].zephyr,
      },
      ...[0, 1].map((i) => ({
        id: `twin-${i}`,
        path: path.join(dir, `twin-${i}`),
        board: 'host-twin',
        class: 'twin',
        emulated: true,
        tags: ['emulated', 'twin'],
      })),
    ]);
    const ptys = devices.map((d) => fs.realpathSync(d.path));
    for (const p of ptys) expect(p).toMatch(/^\/dev\/pts\/\d+$/);
    expect(new Set(ptys).size).toBe(3);
    // no temporary file is left beside the devices file (it is written whole, then renamed)
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const boards = rig.boards();
    expect(boards).toHaveLength(3);
    const status = JSON.parse((await run(rigScript, ['status', '--dir', dir])).stdout);
    expect(status).toMatchObject({ running: true, pid: rig.child!.pid });
    expect(status.devices.map((d: { id: string }) => d.id)).toEqual(['m0plus-0', 'twin-0', 'twin-1']);

    // a second rig in the same directory is refused while the first one runs
    await expect(run(rigScript, ['start', '--twin', '1', '--dir', dir])).rejects.toMatchObject({
      stderr: expect.stringMatching(/already runs in/),
    });

    const exited = new Promise<number | null>((r) => rig!.child!.once('exit', (code) => r(code)));
    await run(rigScript, ['stop', '--dir', dir]);
    expect(await exited).toBe(0);
    expect(boards.filter((b) => RigProcess.alive(b.pid)), 'board processes left behind').toEqual([]);
    expect(fs.readdirSync(dir).sort()).toEqual([]);
    expect(JSON.parse((await run(rigScript, ['status', '--dir', dir])).stdout)).toMatchObject({ running: false, devices: [] });
  }, 60_000);

  it('without an emulator, QEMU boards are refused with the reason, or left out and said so with --skip-missing', async () => {
    const env = { ...process.env, PATH: '/nonexistent' };
    const dir = tempDir('tinyrig-rigscript-');
    await expect(
      run(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts', 'rig.ts'), 'start', '--m4', '1', '--twin', '1', '--dir', dir], { env, cwd: repoRoot }),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/cannot start m4 boards: qemu-system-arm is not installed/) });
    rig = new RigProcess(dir, { m4: 1, twin: 1 }, ['--skip-missing'], env);
    const devices = await rig.start();
    expect(devices.map((d) => d.id)).toEqual(['twin-0']);
    expect(rig.log).toMatch(/NOT starting 1 m4 board\(s\): qemu-system-arm is not installed/);
    await rig.stop();
    expect(fs.existsSync(path.join(dir, 'devices.json'))).toBe(false);
  }, 30_000);

  it('starts over a stale pid file naming a live process that is not a rig of its directory, and `stop` leaves that process alone', async () => {
    // after an unclean stop rig.pid stays on the volume; in the next container its pid is some other live process
    const unrelated = spawn('sleep', ['120'], { stdio: 'ignore' });
    const dir = tempDir('tinyrig-rigscript-');
    const otherDir = tempDir('tinyrig-rigscript-');
    const pidFile = path.join(dir, 'rig.pid');
    const rigs: RigProcess[] = [];
    try {
      fs.writeFileSync(pidFile, String(unrelated.pid));
      expect(JSON.parse((await run(rigScript, ['status', '--dir', dir])).stdout)).toMatchObject({ running: false, pid: null });
      const first = new RigProcess(dir, { twin: 1 });
      rigs.push(first);
      expect((await first.start()).map((d) => d.id)).toEqual(['twin-0']);
      expect(first.log).toMatch(/stale pid file.*pid=\d+/);
      expect(fs.readFileSync(pidFile, 'utf8')).toBe(String(first.child!.pid));

      // a live rig of another directory does not block this one either
      fs.writeFileSync(path.join(otherDir, 'rig.pid'), String(first.child!.pid));
      const second = new RigProcess(otherDir, { twin: 1 });
      rigs.push(second);
      expect((await second.start()).map((d) => d.id)).toEqual(['twin-0']);

      const exited = new Promise((r) => first.child!.once('exit', r));
      await run(rigScript, ['stop', '--dir', dir]);
      await exited;
      fs.writeFileSync(pidFile, String(unrelated.pid));
      const stopped = await run(rigScript, ['stop', '--dir', dir]);
      expect(stopped.stderr).toMatch(/stale pid file removed/);
      expect(fs.existsSync(pidFile)).toBe(false);
      expect(pidAlive(unrelated.pid!), 'the unrelated process was signalled').toBe(true);
      expect(second.child!.exitCode, 'the other directory\'s rig was stopped').toBeNull();
    } finally {
      unrelated.kill('SIGKILL');
      await Promise.all(rigs.map((r) => r.stop()));
    }
  }, 60_000);
});
