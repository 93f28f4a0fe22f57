// The Zephyr app's watchdog on an emulated Zephyr target (the CMSDK watchdog
// of mps2/an386 or mps2/an500 under QEMU), as test/rig/watchdog-idle.test.ts
// checks the bare-metal boards': left idle for several periods a board keeps
// its boot id, model, weights and steps and sends no event; a main loop that
// really hangs is caught, the board reboots and says so (EVENT WATCHDOG), its
// committed model still live. The period is shortened to 1 s with the word
// the app reads at boot on mps2 (CONFIG_TINYRIG_WATCHDOG_MS_ADDR, written by
// QEMU's -device loader): the same code path as the default 30 s, checked
// through HELLO's watchdog_ms. The hang is made from outside: the debugger
// writes a branch-to-self over the dispatcher's entry, and the ELF's reset
// restores the code.
// CI cannot build Zephyr: this suite runs when RIG_ZEPHYR names a built
// zephyr.elf (RIG_ZEPHYR_CLASS=m4|m7) and says plainly that it did not run otherwise.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoardSession, type DeviceEvent } from '../../protocol/src/index.js';
import { closeSerial } from '../helpers/serial.js';
import { openBoardPort } from './qemu-port.js';
import { until } from '../../tools/proc/child.js';
import { functionAddress, readElfSymbols, type ElfSymbol } from '../../tools/proc/elf-symbols.js';
import { TRAIN_BIN } from '../../tools/proc/paths.js';
import { WATCHDOG_MS_ADDR, ZephyrQemu } from '../../tools/proc/zephyr-qemu.js';

const elf = process.env.RIG_ZEPHYR;
const cls = process.env.RIG_ZEPHYR_CLASS ?? 'm4';
if (!elf) console.warn('Zephyr watchdog suite NOT RUN: set RIG_ZEPHYR=path/to/zephyr.elf (built from firmware/ports/zephyr for mps2/an386 or mps2/an500)');

/** The period the test gives the board, and how long it idles: four periods and a half. */
const WATCHDOG_MS = 1_000;
const IDLE_MS = 4_500;
/** The hang test's period, shorter: until the watchdog fires, the hung loop runs
 * a million instructions a millisecond (-icount), seconds of host time a period of 1 s. */
const HANG_WATCHDOG_MS = 250;
/** Zephyr's kernel tick count (CONFIG_SYS_CLOCK_TICKS_PER_SEC on mps2). */
const TICKS_PER_SEC = 10_000;

let dir = '';
let model: Uint8Array;
let syms: Map<string, ElfSymbol>;
const boards: { q: ZephyrQemu; port: SerialPort | null }[] = [];

async function board(words: { addr: number; value: number }[]): Promise<{ q: ZephyrQemu; port: SerialPort }> {
  const q = new ZephyrQemu({ elf: elf!, cls, dir, words });
  const b: { q: ZephyrQemu; port: SerialPort | null } = { q, port: null };
  boards.push(b);
  await q.start();
  b.port = await openBoardPort(q);
  return { q, port: b.port };
}

/** The board's own clock: Zephyr's tick count, read from its RAM. */
async function kernelMs(q: ZephyrQemu): Promise<number> {
  const tick = syms.get('curr_tick');
  if (!tick) throw new Error(`${elf} has no curr_tick`);
  return Number((await q.readMemory(tick.value, 8)).readBigUInt64LE(0)) / (TICKS_PER_SEC / 1000);
}

async function deployAndTrain(s: BoardSession): Promise<void> {
  const info = await s.loadModel(model);
  const labels = Uint8Array.of(0, 1, 2, 3);
  const data = Uint8Array.from({ length: 4 * info.inputBytes }, (_, i) => (i * 37) & 0xff);
  await s.sendSamples(0, info.inputBytes, labels, data);
  expect((await s.train({ stepId: 1, index: 0, count: 4, lrPpm: 20_000 })).stepsApplied).toBe(4);
}

describe.skipIf(!elf || !fs.existsSync(elf))(`the Zephyr app's watchdog under QEMU (${cls})`, () => {
  beforeAll(() => {
    if (!fs.existsSync(TRAIN_BIN)) throw new Error(`${TRAIN_BIN} is missing: run \`make -C firmware\` first`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tr-zwd-'));
    const blob = path.join(dir, 'mlp.blob');
    execFileSync(TRAIN_BIN, ['build', '--model', 'mlp', '--seed', '3', '--input', '8x8x1', '--classes', '4', '--out', blob]);
    model = new Uint8Array(fs.readFileSync(blob));
    syms = readElfSymbols(elf!);
  });

  afterAll(async () => {
    for (const b of boards.splice(0)) {
      if (b.port) await closeSerial(b.port);
      await b.q.stop();
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports the Kconfig period in HELLO when nothing sets another', async () => {
    const { q, port } = await board([]);
    await q.resume();
    const s = await BoardSession.open(port);
    console.log(JSON.stringify({ zephyrWatchdogMs: s.hello.watchdogMs, board: s.hello.board }));
    expect(s.hello.watchdogMs).toBe(30_000);
    await s.close();
  });

  it('keeps boot id, model, weights and steps, and sends no event, after idling four watchdog periods', async () => {
    const { q, port } = await board([{ addr: WATCHDOG_MS_ADDR, value: WATCHDOG_MS }]);
    await q.resume();
    const events: string[] = [];
    const s = await BoardSession.open(port);
    s.on('event', (e: DeviceEvent) => events.push(`${e.kindName} ${e.text ?? ''}`));
    expect(s.hello.watchdogMs, "the test's period is the board's").toBe(WATCHDOG_MS);
    await deployAndTrain(s);
    const weights = await s.weightsInfo();
    const bootId = s.hello.bootId;

    const t0 = await kernelMs(q);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idled = (await kernelMs(q)) - t0;
    console.log(JSON.stringify({ zephyrIdle: { watchdogMs: WATCHDOG_MS, boardMs: idled, hostMs: IDLE_MS } }));
    expect(idled, 'the board itself saw four periods pass').toBeGreaterThanOrEqual(4 * WATCHDOG_MS);

    const again = await BoardSession.open(port);
    expect(again.hello.bootId, `boot id after ${IDLE_MS} ms idle`).toBe(bootId);
    expect(await again.weightsInfo(), 'model and weights after the idle').toEqual(weights);
    const st = await again.stats();
    expect(st.stepsApplied).toBe(4);
    expect(st.lastStepId).toBe(1);
    await again.close();
    await s.close();
    expect(events, 'no EVENT (BOOT, WATCHDOG) from an idle board').toEqual([]);
  }, 60_000);

  it('catches a main loop that hangs: the board reboots, sends EVENT WATCHDOG and keeps its committed model', async () => {
    const { q, port } = await board([{ addr: WATCHDOG_MS_ADDR, value: HANG_WATCHDOG_MS }]);
    const feed = functionAddress(syms, 'tr_device_feed', elf);
    await q.gdb.resume();
    const s = await BoardSession.open(port, { timeoutMs: 500, retries: 2 });
    await deployAndTrain(s);
    const weights = await s.weightsInfo();
    const bootId = s.hello.bootId;
    const events: DeviceEvent[] = [];
    s.on('event', (e: DeviceEvent) => events.push(e));

    // the hang: `b .` (0xe7fe) over the dispatcher's first instruction, then a request
    await q.gdb.interrupt();
    await q.gdb.writeMemory(feed, Uint8Array.of(0xfe, 0xe7));
    await q.gdb.resume();
    const t0 = Date.now();
    await s.ping().catch(() => undefined);
    await until(() => events.some((e) => e.kindName === 'WATCHDOG'), 60_000, 'EVENT WATCHDOG').catch((e: Error) => {
      throw new Error(`${e.message}; events: ${JSON.stringify(events)}\nQEMU: ${q.log}`);
    });
    console.log(JSON.stringify({ zephyrHang: { events, hostMs: Date.now() - t0 } }));
    expect(events.map((e) => e.kindName)).toEqual(['BOOT', 'WATCHDOG']);
    expect(events[1].text).toMatch(/watchdog/);
    await s.close();

    const after = await BoardSession.open(port);
    expect(after.hello.bootId, 'a new boot').not.toBe(bootId);
    expect(after.hello.watchdogMs, 'the period again after the reset').toBe(HANG_WATCHDOG_MS);
    expect(after.hello.storedLoaded, 'booted from the stored model').toBe(1);
    const live = await after.weightsInfo();
    expect(live.modelSha256).toBe(weights.modelSha256);
    expect(live.stepsApplied, 'steps are not kept across a reset').toBe(0);
    // the dispatcher's code is the image's again: the board answers
    expect((await after.ping()).data).toEqual(new Uint8Array(0));
    await after.close();
  }, 90_000);
});
