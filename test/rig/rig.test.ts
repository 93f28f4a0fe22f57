// The emulated rig end to end: QEMU Cortex-M0+/M4/M7 boards and a host twin
// started by scripts/rig, driven through the daemon's REST API. The same
// training steps give the same weights on every board, byte for byte; the
// counts are emulated instructions, identical run to run; a board whose RAM a
// model overflows refuses it at validation; a killed board comes back on the
// same path as a reset.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { apiClient, buildApp, tempDir, until, type Json } from '../server/helpers.js';
import { BOARDS_FILE } from '../../tools/proc/paths.js';
import { QEMU_CLASSES, RigProcess, requireBoardFirmware, type RigDevice } from '../../tools/proc/rig.js';

const boardsTable = JSON.parse(fs.readFileSync(BOARDS_FILE, 'utf8')) as {
  classes: { class: string; cpu: string; qemu: { machine: string }; boards: { clock_hz: number; ram_bytes: number }[] }[];
};
const IDS = ['m0plus-0', 'm4-0', 'm7-0', 'twin-0'];
/** How long a board may not answer before the rig counts it as hung (its default is 30 s). */
const HANG_MS = 10_000;
const TRAIN = { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 12, lr: 0.02, sparse: { lambdaMin: 0.1, lambdaMax: 1 } };

let rig: RigProcess;
let devices: RigDevice[];
let app: FastifyInstance;

const { post, get, job } = apiClient(() => app);

async function deploy(id: string, body: Json = { model: 'cnn', seed: 1 }): Promise<Json> {
  const r = await post(`/v1/devices/${id}/model`, body);
  expect(r.status, `${id}: ${JSON.stringify(r.body)}`).toBe(200);
  return r.body;
}

describe('emulated rig: QEMU boards and a twin behind the daemon', () => {
  beforeAll(async () => {
    requireBoardFirmware();
    rig = new RigProcess(tempDir('tinyrig-rig-'), { m0plus: 1, m4: 1, m7: 1, twin: 1 }, ['--hang-timeout-ms', String(HANG_MS)]);
    devices = await rig.start();
    app = await buildApp({ devicesFile: rig.devicesFile, devices: undefined });
    await until(() => app.devices.list().every((b) => b.status === 'online'), 30_000, 'every rig board online').catch(() => {
      throw new Error(app.devices.list().map((b) => `${b.id}: ${b.status} (${b.lastError ?? ''})`).join('; '));
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    const pids = rig?.boards().map((b) => b.pid) ?? [];
    await rig?.stop();
    expect(pids.filter((pid) => RigProcess.alive(pid)), 'board processes left after the rig stopped').toEqual([]);
  });

  it('writes a devices file with a stable path per board and HELLO tells each class its real board', async () => {
    expect(devices.map((d) => d.id)).toEqual(IDS);
    for (const d of devices) expect(fs.realpathSync(d.path)).toMatch(/^\/dev\/pts\/\d+$/);
    for (const cls of QEMU_CLASSES) {
      const row = boardsTable.classes.find((c) => c.class === cls)!;
      const view = await get(`/v1/devices/${cls}-0`);
      expect(view).toMatchObject({
        state: 'online',
        board: `qemu-${row.qemu.machine}`,
        cpu: row.cpu,
        clockHz: row.boards[0].clock_hz,
        counterUnit: 'instructions',
        emulated: true,
      });
      expect(view.ram.total).toBe(row.boards[0].ram_bytes);
      // static RAM, stack and arena come from the firmware and fit the real SRAM
      expect(view.ram.static).toBeGreaterThan(view.ram.arena);
      expect(view.ram.static + view.ram.stack).toBeLessThanOrEqual(row.boards[0].ram_bytes);
      expect(view.ram.stackPeak).toBeGreaterThan(0);
    }
  });

  it('the same steps give the same weights on the M0+, M4, M7 and the twin, byte for byte', async () => {
    const deployed = await Promise.all(IDS.map((id) => deploy(id)));
    const initial = deployed[0].weightsSha256;
    expect(deployed.map((d) => d.weightsSha256)).toEqual(IDS.map(() => initial));
    const trained = await Promise.all(IDS.map((id) => job(`/v1/devices/${id}/train`, TRAIN)));
    for (const t of trained) expect(t.result).toMatchObject({ steps: TRAIN.count, stepsApplied: TRAIN.count });
    const snaps = await Promise.all(IDS.map((id) => post(`/v1/devices/${id}/snapshots`, { tags: ['rig-test'] })));
    for (const s of snaps) expect(s.status, JSON.stringify(s.body)).toBe(201);
    const sha = snaps.map((s) => s.body.sha256);
    expect(sha[0]).not.toBe(initial);
    expect(sha).toEqual(IDS.map(() => sha[0]));
    // the sparse update skipped channels on some steps, the same ones everywhere
    const fractions = trained.map((t) => t.result.meanUpdatedFraction);
    expect(fractions[0]).toBeLessThan(1);
    expect(fractions).toEqual(IDS.map(() => fractions[0]));
  });

  it('samples streamed to the board then trained with {steps} give the twin\'s weights too', async () => {
    const pair = ['m0plus-0', 'twin-0'];
    await Promise.all(pair.map((id) => deploy(id, { model: 'cnn', seed: 7 })));
    for (const id of pair) {
      const r = await post(`/v1/devices/${id}/samples`, { dataset: 'fashion-mnist', split: 'train', offset: 300, count: 8 });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.count).toBe(8);
    }
    const trained = await Promise.all(pair.map((id) => job(`/v1/devices/${id}/train`, { steps: 8, lr: 0.02, sparse: { lambdaMin: 0.1, lambdaMax: 1 } })));
    for (const t of trained) expect(t.result.steps).toBe(8);
    const evals = await Promise.all(pair.map((id) => job(`/v1/devices/${id}/evaluate`, {})));
    // the same answers on the board as on the twin (only the counters differ: instructions vs ns)
    const outcome = ({ count, correct, accuracy, loss, weightsSha256 }: Json): Json => ({ count, correct, accuracy, loss, weightsSha256 });
    expect(outcome(evals[0].result)).toEqual(outcome(evals[1].result));
    expect(evals[0].result.count).toBe(8);
    const snaps = await Promise.all(pair.map((id) => post(`/v1/devices/${id}/snapshots`, {})));
    expect(snaps[0].body.sha256).toBe(snaps[1].body.sha256);
  });

  it('counts emulated instructions, identical run to run, with estimated energy per step', async () => {
    const steps = async (id: string): Promise<Json[]> => {
      await deploy(id);
      const t = await job(`/v1/devices/${id}/train`, { ...TRAIN, count: 4 });
      const m = await get(`/v1/devices/${id}/metrics`);
      return m.steps.filter((s: Json) => s.jobId === t.id);
    };
    const first = await steps('m4-0');
    const second = await steps('m4-0');
    expect(first).toHaveLength(4);
    for (const s of first) {
      expect(s).toMatchObject({ counterUnit: 'instructions', cycles: null, energySource: 'estimated' });
      expect(s.instructions).toBeGreaterThan(100_000);
      expect(s.energyUj).toBeGreaterThan(0);
    }
    // Identical to the instruction: the firmware reads TIMER0 at tick edges
    // and masks interrupts while it works, so nothing else lands in a step.
    expect(second.map((s) => s.instructions)).toEqual(first.map((s) => s.instructions));
    // the M0+ runs the same step in more instructions (no 32-bit multiply-accumulate)
    const m0 = await steps('m0plus-0');
    expect(m0[0].instructions).toBeGreaterThan(first[0].instructions);
  });

  it('evaluates on the board, and a damaged board is rolled back with its own hash verified', async () => {
    await deploy('m7-0');
    await job('/v1/devices/m7-0/train', { ...TRAIN, count: 16 });
    const snap = await post('/v1/devices/m7-0/snapshots', {});
    expect(snap.status).toBe(201);
    const ev = await job('/v1/devices/m7-0/evaluate', { dataset: 'fashion-mnist', split: 'test', offset: 0, count: 16 });
    expect(ev.result.count ?? ev.result.samples).toBe(16);
    expect(ev.result.accuracy).toBeGreaterThanOrEqual(0);
    expect(ev.result.accuracy).toBeLessThanOrEqual(1);
    await job('/v1/devices/m7-0/train', { ...TRAIN, offset: 100, count: 4, lr: 100 });
    const damaged = await get('/v1/devices/m7-0');
    expect(damaged.model.weightsSha256 ?? damaged.model.sha256).not.toBe(snap.body.sha256);
    const rb = await post('/v1/devices/m7-0/rollback', { snapshotId: snap.body.id });
    expect(rb.status, JSON.stringify(rb.body)).toBe(200);
    expect(rb.body).toMatchObject({ snapshotId: snap.body.id, sha256: snap.body.sha256, verified: true });
  });

  it('a model larger than the board RAM is refused by validation with the bytes it needs, not a fault', async () => {
    // cnn on 40x40 inputs: 118,688 bytes to train; the M4 (256 KiB SRAM) has a 96 KiB arena, the M7 160 KiB
    const body = { model: 'cnn', seed: 1, input: [40, 40, 1] };
    const refused = await post('/v1/devices/m4-0/model', body);
    expect(refused.status, JSON.stringify(refused.body)).toBeGreaterThanOrEqual(400);
    expect(refused.status).toBeLessThan(500);
    expect(JSON.stringify(refused.body)).toMatch(/MODEL_TOO_LARGE/);
    expect((await get('/v1/devices/m4-0')).state).toBe('online');
    const accepted = await deploy('m7-0', body);
    expect(accepted.model.trainBytes).toBeGreaterThan(98_304);
  });

  it('a board that dies is started again on the same path and the daemon sees a reset', async () => {
    const before = await get('/v1/devices/m0plus-0');
    const qemu = rig.boards().find((b) => b.cmd.includes('mps2-an385'));
    expect(qemu, rig.log).toBeTruthy();
    process.kill(qemu!.pid, 'SIGKILL');
    await until(async () => {
      const v = await get('/v1/devices/m0plus-0');
      return v.state === 'online' && v.firmware?.bootId !== before.firmware.bootId;
    }, 40_000, 'm0plus-0 back online with a new boot id');
    expect(rig.log).toMatch(/board exited: restarting it on the same path.*m0plus-0/);
    expect(devices.find((d) => d.id === 'm0plus-0')!.path).toBe(rig.devices().find((d) => d.id === 'm0plus-0')!.path);
  });

  it('a hung board (its emulator stops answering) is killed and started again on the same path as a reset', async () => {
    const before = await get('/v1/devices/m4-0');
    const qemu = rig.boards().find((b) => b.cmd.includes('mps2-an386'));
    expect(qemu, rig.log).toBeTruthy();
    process.kill(qemu!.pid, 'SIGSTOP');
    await until(() => !RigProcess.alive(qemu!.pid), HANG_MS + 15_000, 'the rig kills the hung m4-0');
    await until(() => /board hung: killing it.*m4-0/.test(rig.log), 5_000, "the rig's log line for the hung m4-0");
    await until(async () => {
      const v = await get('/v1/devices/m4-0');
      return v.state === 'online' && v.firmware?.bootId !== before.firmware.bootId;
    }, 40_000, 'm4-0 back online with a new boot id');
    // and it trains again
    await deploy('m4-0');
    const t = await job('/v1/devices/m4-0/train', { ...TRAIN, count: 2 });
    expect(t.result).toMatchObject({ steps: 2, stepsApplied: 2 });
  }, 90_000);
});
