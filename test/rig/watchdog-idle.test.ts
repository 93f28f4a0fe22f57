// QEMU boards of every class left idle for several watchdog periods: they keep
// their boot id, model and trained weights, and answer at once. (The watchdog
// runs on while a board sleeps; an expiry that finds it asleep is cleared,
// firmware/ports/qemu/qemu_watchdog.c.) The rig shortens the period with
// --watchdog-ms, a word the firmware reads at boot: the same code path as the
// default 30 s, checked here through HELLO's watchdog_ms.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BoardSession,
  FrameSplitter,
  MsgType,
  decodeMessage,
  encodeFrame,
  encodeRequest,
  type DeviceEvent,
  type WeightsInfo,
} from '../../protocol/src/index.js';
import { closeSerial, openSerial, writeRaw } from '../helpers/serial.js';
import { TRAIN_BIN } from '../../tools/proc/paths.js';
import { QEMU_CLASSES, RigProcess, requireBoardFirmware, type RigDevice } from '../../tools/proc/rig.js';

/** The period the rig gives the boards, and how long they idle: four periods and a half. */
const WATCHDOG_MS = 1_000;
const IDLE_MS = 4_500;

let dir = '';
let rig: RigProcess;
let devices: RigDevice[];
const ports: SerialPort[] = [];

/** HELLO on a port without a session, sent until answered (a QEMU board may drop the first bytes). */
async function rawHello(port: SerialPort, seq: number): Promise<Record<string, unknown>> {
  let answer: Record<string, unknown> | null = null;
  const split = new FrameSplitter((wire) => {
    const m = decodeMessage(wire);
    if (m.direction === 'response' && m.frame.type === MsgType.HELLO) answer = m.values;
  });
  const onData = (d: Buffer): void => split.push(d);
  port.on('data', onData);
  try {
    const frame = encodeFrame({ ver: 1, type: MsgType.HELLO, seq, flags: 0, body: encodeRequest(MsgType.HELLO, {}) });
    for (let i = 0; i < 40 && !answer; i++) {
      await writeRaw(port, frame);
      for (let t = 0; t < 25 && !answer; t++) await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    port.off('data', onData);
  }
  if (!answer) throw new Error('no HELLO answer within 10 s');
  return answer;
}

interface BoardState {
  id: string;
  bootId: number;
  weights: WeightsInfo;
}

describe('QEMU boards idle past their watchdog period', () => {
  beforeAll(async () => {
    requireBoardFirmware();
    if (!fs.existsSync(TRAIN_BIN)) throw new Error(`${TRAIN_BIN} is missing: run \`make -C firmware\` first`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-wdog-'));
    rig = new RigProcess(dir, { m0plus: 1, m4: 1, m7: 1 }, ['--watchdog-ms', String(WATCHDOG_MS), '--hang-timeout-ms', '20000']);
    devices = await rig.start();
  }, 90_000);

  afterAll(async () => {
    for (const p of ports.splice(0)) await closeSerial(p);
    await rig?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keep boot id, model and weights, and send no event, after idling four watchdog periods', async () => {
    expect(devices.map((d) => d.class)).toEqual([...QEMU_CLASSES]);
    const blob = path.join(dir, 'mlp.blob');
    execFileSync(TRAIN_BIN, ['build', '--model', 'mlp', '--seed', '3', '--input', '8x8x1', '--classes', '4', '--out', blob]);
    const model = new Uint8Array(fs.readFileSync(blob));
    const events: string[] = [];

    // Deploy and train on every board, then leave each one alone.
    const before: BoardState[] = await Promise.all(
      devices.map(async (d, n): Promise<BoardState> => {
        const port = await openSerial(d.path);
        port.on('error', () => undefined);
        ports.push(port);
        const hello = await rawHello(port, 100 + n);
        expect(hello.watchdogMs, `${d.id}: the rig's period is the board's`).toBe(WATCHDOG_MS);
        const session = await BoardSession.open(port);
        session.on('event', (e: DeviceEvent) => events.push(`${d.id}: ${e.kindName} ${e.text ?? ''}`));
        expect(session.hello.bootId, `${d.id}: reset before the idle\n${rig.log}`).toBe(Number(hello.bootId));
        const info = await session.loadModel(model);
        const labels = Uint8Array.of(0, 1, 2, 3);
        const data = Uint8Array.from({ length: 4 * info.inputBytes }, (_, i) => (i * 37) & 0xff);
        await session.sendSamples(0, info.inputBytes, labels, data);
        const t = await session.train({ stepId: 1, index: 0, count: 4, lrPpm: 20_000 });
        expect(t.stepsApplied).toBe(4);
        const weights = await session.weightsInfo();
        session.close();
        return { id: d.id, bootId: Number(hello.bootId), weights };
      }),
    );
    await new Promise((r) => setTimeout(r, IDLE_MS));

    // Ask each board again: the same board, the same model, the same weights.
    for (const [n, d] of devices.entries()) {
      const port = ports[n];
      const session = await BoardSession.open(port);
      session.on('event', (e: DeviceEvent) => events.push(`${d.id}: ${e.kindName} ${e.text ?? ''}`));
      expect(session.hello.bootId, `${d.id}: boot id after ${IDLE_MS} ms idle\n${rig.log}`).toBe(before[n].bootId);
      const weights = await session.weightsInfo();
      expect(weights, `${d.id}: model and weights after ${IDLE_MS} ms idle`).toEqual(before[n].weights);
      const st = await session.stats();
      expect(st.stepsApplied).toBe(4);
      expect(st.lastStepId).toBe(1);
      session.close();
    }
    expect(events, 'no EVENT (BOOT, FAULT, WATCHDOG) from an idle board').toEqual([]);
    expect(rig.log).not.toMatch(/board (exited|hung)/);
  }, 120_000);
});
