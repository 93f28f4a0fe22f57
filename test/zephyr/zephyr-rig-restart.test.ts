// The Zephyr app as a board of the rig (scripts/rig with RIG_ZEPHYR), checked
// as test/rig/rig.test.ts checks the bare-metal boards: a board whose QEMU the
// rig starts again, after it died or hung, comes back on the same path with a
// new boot id, and the daemon counts a reset. Under -icount every fresh QEMU
// process boots alike, so the new id comes from the word the rig writes at
// 0x003FFF00 for each start (CONFIG_TINYRIG_BOOT_ID_ADDR on mps2); the rig's
// --watchdog-ms word reaches the board the same way (HELLO watchdog_ms).
// CI cannot build Zephyr: this suite runs when RIG_ZEPHYR names a built
// zephyr.elf (RIG_ZEPHYR_CLASS=m4|m7) and says plainly that it did not run otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { RigProcess } from '../../tools/proc/rig.js';
import { apiClient, buildApp, tempDir, until, type Json } from '../server/helpers.js';

const elf = process.env.RIG_ZEPHYR;
const cls = process.env.RIG_ZEPHYR_CLASS ?? 'm4';
const id = `zephyr-${cls}-0`;
if (!elf) console.warn('Zephyr rig restart suite NOT RUN: set RIG_ZEPHYR=path/to/zephyr.elf (built from firmware/ports/zephyr for mps2/an386 or mps2/an500)');

/** How long the board may not answer before the rig counts it as hung (its default is 30 s). */
const HANG_MS = 10_000;
/** The rig's --watchdog-ms for its QEMU boards, this one included. */
const WATCHDOG_MS = 20_000;

let app: FastifyInstance;
let rig: RigProcess;
const { post, get, job } = apiClient(() => app);

/** The board's QEMU, as the rig started it. */
function qemu(): { pid: number; cmd: string } {
  const q = rig.boards().find((b) => b.cmd.includes(elf!));
  expect(q, rig.log).toBeTruthy();
  return q!;
}

/** Waits until the daemon has the board online again after a reset it noticed. */
async function backWithNewBoot(before: Json, what: string): Promise<Json> {
  let view: Json = {};
  await until(async () => {
    view = await get(`/v1/devices/${id}`);
    return view.state === 'online' && view.firmware?.bootId !== before.firmware.bootId;
  }, 60_000, `${id} back online with a new boot id (${what})`).catch((e: Error) => {
    throw new Error(`${e.message}; last view: ${JSON.stringify({ state: view.state, firmware: view.firmware, lastError: view.lastError })}\n${rig.log}`);
  });
  expect(view.counters.resets, 'the daemon counts the reset').toBeGreaterThan(before.counters.resets);
  return view;
}

describe.skipIf(!elf || !fs.existsSync(elf))(`the Zephyr app restarted by the rig (${cls})`, () => {
  beforeAll(async () => {
    const dir = tempDir('tinyrig-zephyr-rig-');
    rig = new RigProcess(path.join(dir, 'rig'), {}, ['--hang-timeout-ms', String(HANG_MS), '--watchdog-ms', String(WATCHDOG_MS)]);
    const devices = await rig.start();
    app = await buildApp({ varDir: path.join(dir, 'var'), devices });
    await until(() => app.devices.get(id)?.status === 'online', 60_000, `${id} online`);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    const pids = rig?.boards().map((b) => b.pid) ?? [];
    await rig?.stop();
    expect(pids.filter((pid) => RigProcess.alive(pid)), 'board processes left after the rig stopped').toEqual([]);
  });

  it('gets the rig\'s boot-id and watchdog words, as the bare-metal boards do', () => {
    const { cmd } = qemu();
    expect(cmd).toMatch(/loader,addr=0x003FFF00,data=\d+,data-len=4/);
    expect(cmd).toContain(`loader,addr=0x003FFF04,data=${WATCHDOG_MS},data-len=4`);
    expect(app.devices.get(id).hello!.watchdogMs, "HELLO says the rig's period").toBe(WATCHDOG_MS);
  });

  it('a board that dies is started again on the same path with a new boot id, and the daemon sees a reset', async () => {
    const before = await get(`/v1/devices/${id}`);
    const path0 = rig.devices().find((d) => d.id === id)!.path;
    const q = qemu();
    process.kill(q.pid, 'SIGKILL');
    const view = await backWithNewBoot(before, 'killed');
    console.log(JSON.stringify({ zephyrRestart: { killed: q.pid, bootIds: [before.firmware.bootId, view.firmware.bootId], resets: view.counters.resets } }));
    expect(rig.log).toMatch(new RegExp(`board exited: restarting it on the same path.*${id}`));
    expect(rig.devices().find((d) => d.id === id)!.path).toBe(path0);
    expect(qemu().pid).not.toBe(q.pid);
    expect(app.devices.get(id).hello!.watchdogMs, 'the watchdog word again').toBe(WATCHDOG_MS);
  }, 90_000);

  it('a hung board (its emulator stops answering) is killed and started again with a new boot id, as a reset', async () => {
    const before = await get(`/v1/devices/${id}`);
    const q = qemu();
    process.kill(q.pid, 'SIGSTOP');
    await until(() => !RigProcess.alive(q.pid), HANG_MS + 15_000, `the rig kills the hung ${id}`);
    await until(() => new RegExp(`board hung: killing it.*${id}`).test(rig.log), 5_000, `the rig's log line for the hung ${id}`);
    await backWithNewBoot(before, 'hung');
    // and it trains again
    expect((await post(`/v1/devices/${id}/model`, { model: 'cnn', seed: 1 })).status).toBe(200);
    const t = await job(`/v1/devices/${id}/train`, { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 2, lr: 0.02 });
    expect(t.result).toMatchObject({ steps: 2, stepsApplied: 2 });
  }, 120_000);
});
