// Power cut between every flash operation of a committed write, on the real
// Zephyr image (mps2/an386 or mps2/an500 under QEMU), injected from outside:
// QEMU's gdbstub breaks on the flash driver's erase and write entries, and
// after operation k = 1..N of a WEIGHTS (and a MODEL) store the machine is
// reset, and once more in the middle of the header's write (a torn commit).
// The board must boot, say in HELLO/STATS which stored copy it booted from,
// and hold the previously committed weights (cut before the header, the
// commit point, was written) or the new ones (after it) — never no model.
// Each cut runs in its own QEMU process whose simulated flash is seeded with
// the state saved (pmemsave) from the process that committed it, which also
// shows the slots persist across QEMU processes.
// CI cannot build Zephyr: this suite runs when RIG_ZEPHYR names a built
// zephyr.elf (RIG_ZEPHYR_CLASS=m4|m7) and says plainly that it did not run otherwise.
// RIG_ZEPHYR_CUT_STRIDE=n cuts after every n-th operation only (and the last), for a quicker run.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoardSession, type DeviceStats, type HelloInfo, type WeightsInfo } from '../../protocol/src/index.js';
import { closeSerial } from '../helpers/serial.js';
import { openBoardPort } from './qemu-port.js';
import { functionAddress, readElfSymbols } from '../../tools/proc/elf-symbols.js';
import { FlashCutter, type Cut, type FlashEntries, type FlashOp } from '../../tools/proc/flash-cut.js';
import { TRAIN_BIN } from '../../tools/proc/paths.js';
import { SIMFLASH_ADDR, ZephyrQemu } from '../../tools/proc/zephyr-qemu.js';

const elf = process.env.RIG_ZEPHYR;
const cls = process.env.RIG_ZEPHYR_CLASS ?? 'm4';
const stride = Math.max(1, Number(process.env.RIG_ZEPHYR_CUT_STRIDE ?? 1) || 1);
if (!elf) console.warn('Zephyr flash-cut suite NOT RUN: set RIG_ZEPHYR=path/to/zephyr.elf (built from firmware/ports/zephyr for mps2/an386 or mps2/an500)');

const SLOT_BYTES = 256 * 1024;

let dir = '';
let entries: FlashEntries;
/** The model stored first (mlp, seed 3). */
let firstModel: Uint8Array;
/** The model the MODEL store writes (seed 4) and the hashes its build printed. */
let nextModel: { bytes: Uint8Array; sha256_model: string; sha256_weights: string };
/** The simulated flash with the first model stored (seq 1) and its trained weights W1 committed (seq 2). */
let preFlash = '';
let w1: WeightsInfo;
/** Weights trained further from W1, never committed. */
let w2: Uint8Array;
let w2Sha = '';

interface Booted {
  hello: HelloInfo;
  stats: DeviceStats;
  weights: WeightsInfo;
  /** Sequence number in each slot's header (0: no valid magic). */
  headers: number[];
}

async function session(port: SerialPort): Promise<BoardSession> {
  return BoardSession.open(port, { helloTimeoutMs: 20_000, timeoutMs: 2_000 });
}

async function withBoard<T>(flash: string | undefined, fn: (q: ZephyrQemu, port: SerialPort) => Promise<T>): Promise<T> {
  const q = new ZephyrQemu({ elf: elf!, cls, dir, flash });
  let port: SerialPort | null = null;
  try {
    await q.start();
    port = await openBoardPort(q);
    return await fn(q, port);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nQEMU: ${q.log}`);
  } finally {
    if (port) await closeSerial(port);
    await q.stop();
  }
}

/** HELLO, STATS, the live weights, and the slot headers read through the debugger. */
async function booted(q: ZephyrQemu, port: SerialPort): Promise<Booted> {
  const s = await session(port);
  try {
    const hello = s.hello;
    const stats = await s.stats();
    const weights = await s.weightsInfo();
    const headers: number[] = [];
    for (const slot of [0, 1]) {
      const h = await q.readMemory(SIMFLASH_ADDR + slot * SLOT_BYTES, 12);
      headers.push(h.readUInt32LE(0) === 0x42415254 ? h.readUInt32LE(8) : 0);
    }
    return { hello, stats, weights, headers };
  } finally {
    await s.close();
  }
}

interface Outcome {
  cut: string;
  op?: FlashOp;
  bootSeq: number;
  storedSeq: number;
  live: 'previous' | 'new' | string;
  ops: number;
}

/** One QEMU process from the saved flash: arm, start the write, cut, boot, look. */
async function cutRun(write: (s: BoardSession) => Promise<unknown>, cut: Cut | undefined, newWeights: string): Promise<Outcome & { booted: Booted; opsSeen: FlashOp[] }> {
  return withBoard(preFlash, async (q, port) => {
    const cutter = new FlashCutter(q, entries);
    await cutter.arm();
    const s = await session(port);
    const bootBefore = s.hello.bootId;
    expect(s.hello.storedLoaded, 'the saved flash booted').toBe(2);
    const work = write(s);
    work.catch(() => undefined);
    const wasCut = await cutter.follow(work, cut);
    await s.close();
    if (!wasCut) {
      await work; // the write completed: now a reset, to see what it left
      await q.systemReset();
    }
    const b = await booted(q, port);
    expect(b.hello.bootId, 'a new boot after the cut').not.toBe(bootBefore);
    const live = b.weights.sha256 === w1.sha256 && b.weights.modelSha256 === w1.modelSha256 ? 'previous' : b.weights.sha256 === newWeights ? 'new' : `other ${b.weights.sha256} (model ${b.weights.modelSha256 || 'none'})`;
    const label = !cut ? 'none (write completed, then reset)' : 'afterOp' in cut ? `after op ${cut.afterOp}` : `torn: op ${cut.inOp} at its write of flash offset 0x${cut.atByte.toString(16)}`;
    const op = cut && 'afterOp' in cut ? cutter.ops[cut.afterOp - 1] : cutter.ops.at(-1);
    return { cut: label, op, bootSeq: b.hello.storedLoaded ?? -1, storedSeq: b.stats.storedSeq ?? -1, live, ops: cutter.ops.length, booted: b, opsSeen: cutter.ops };
  });
}

function opsSummary(ops: FlashOp[]): string {
  const writes = ops.filter((o) => o.kind === 'write');
  const erases = ops.filter((o) => o.kind === 'erase');
  return `${ops.length} operations: ${erases.length} erase (${erases.map((o) => `0x${o.offset.toString(16)}+0x${o.len.toString(16)}`).join(', ')}), ${writes.length} writes (${[...new Set(writes.map((o) => o.len))].join('/')} B), the last at 0x${ops.at(-1)!.offset.toString(16)} (${ops.at(-1)!.len} B)`;
}

/** Cuts after op k for every k (stride permitting), and once torn in the header; checks each outcome. */
async function cutEverywhere(what: string, write: (s: BoardSession) => Promise<unknown>, newWeights: string, newModel: string): Promise<void> {
  const full = await cutRun(write, undefined, newWeights);
  const ops = full.opsSeen;
  const n = ops.length;
  console.log(JSON.stringify({ [what]: { flashOps: n, summary: opsSummary(ops) } }));
  expect(full.live, `${what}: the completed write is live after a reset`).toBe('new');
  expect(full.booted.weights.modelSha256).toBe(newModel);
  expect(full.bootSeq).toBe(3);
  expect(ops[0].kind, 'a store starts with the erase of the target slot').toBe('erase');
  const target = ops[0].offset;
  expect(ops.at(-1), 'and ends with its header (the commit)').toMatchObject({ kind: 'write', offset: target, len: 128 });

  const outcomes: Outcome[] = [];
  const ks = Array.from({ length: n }, (_, i) => i + 1).filter((k) => k % stride === 0 || k === n || k === n - 1 || k === 1);
  for (const k of ks) {
    const r = await cutRun(write, { afterOp: k }, newWeights);
    outcomes.push({ cut: r.cut, op: r.op, bootSeq: r.bootSeq, storedSeq: r.storedSeq, live: r.live, ops: r.ops });
    const before = k < n;
    const where = `${what}: cut after op ${k}/${n} (${r.op?.kind} 0x${r.op?.offset.toString(16)}+${r.op?.len}, rc ${r.op?.rc})`;
    expect(r.ops, where).toBe(k);
    expect(r.op?.rc, `${where}: the operation completed`).toBe(0);
    expect(r.booted.stats.modelSha256, `${where}: a model is live`).not.toBe('');
    expect(r.live, where).toBe(before ? 'previous' : 'new');
    expect(r.bootSeq, `${where}: HELLO stored_loaded`).toBe(before ? 2 : 3);
    expect(r.storedSeq, `${where}: STATS stored_seq`).toBe(before ? 2 : 3);
    // the target slot holds no valid header until the last operation
    expect(r.booted.headers[target / SLOT_BYTES] === 3, `${where}: header of the target slot`).toBe(!before);
  }
  // torn: reset while the header is half written (its 65th byte)
  const torn = await cutRun(write, { inOp: n, atByte: target + 64 }, newWeights);
  outcomes.push({ cut: torn.cut, op: torn.op, bootSeq: torn.bootSeq, storedSeq: torn.storedSeq, live: torn.live, ops: torn.ops });
  expect(torn.ops, `${what}: torn in the header`).toBe(n);
  expect(torn.booted.headers[target / SLOT_BYTES], `${what}: the torn header's first half (magic, seq 3) is in flash`).toBe(3);
  expect(torn.live, `${what}: torn in the header`).toBe('previous');
  expect(torn.bootSeq).toBe(2);

  const tally: Record<string, number> = {};
  for (const o of outcomes) tally[`${o.live} (boot seq ${o.bootSeq})`] = (tally[`${o.live} (boot seq ${o.bootSeq})`] ?? 0) + 1;
  console.log(JSON.stringify({ [what]: { cuts: outcomes.length, stride, tally, last: outcomes.slice(-3) } }));
}

describe.skipIf(!elf || !fs.existsSync(elf))(`power cuts between flash operations on the Zephyr app under QEMU (${cls})`, () => {
  beforeAll(async () => {
    if (!fs.existsSync(TRAIN_BIN)) throw new Error(`${TRAIN_BIN} is missing: run \`make -C firmware\` first`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tr-cut-'));
    const syms = readElfSymbols(elf!);
    entries = { erase: functionAddress(syms, 'flash_sim_erase', elf), write: functionAddress(syms, 'flash_sim_write', elf) };
    const blob = (seed: number): { bytes: Uint8Array; sha256_model: string; sha256_weights: string } => {
      const out = path.join(dir, `mlp${seed}.blob`);
      const built = JSON.parse(execFileSync(TRAIN_BIN, ['build', '--model', 'mlp', '--seed', String(seed), '--input', '8x8x1', '--classes', '4', '--out', out]).toString());
      return { bytes: new Uint8Array(fs.readFileSync(out)), sha256_model: built.sha256_model, sha256_weights: built.sha256_weights };
    };
    firstModel = blob(3).bytes;
    nextModel = blob(4);

    // The state every cut starts from, made through the protocol and saved.
    preFlash = path.join(dir, 'committed.bin');
    await withBoard(undefined, async (q, port) => {
      await q.resume();
      const s = await session(port);
      try {
        expect(s.hello.storedLoaded, 'a fresh flash holds no copy').toBe(0);
        const info = await s.loadModel(firstModel); // stored: seq 1
        const labels = Uint8Array.of(0, 1, 2, 3);
        const data = Uint8Array.from({ length: 4 * info.inputBytes }, (_, i) => (i * 37) & 0xff);
        await s.sendSamples(0, info.inputBytes, labels, data);
        expect((await s.train({ stepId: 1, index: 0, count: 4, lrPpm: 20_000 })).records).toHaveLength(4);
        const trained = await s.readWeights();
        await s.writeWeights(trained.bytes); // stored: seq 2
        w1 = await s.weightsInfo();
        expect((await s.stats()).storedSeq).toBe(2);
        expect((await s.train({ stepId: 2, index: 0, count: 4, lrPpm: 20_000 })).records).toHaveLength(4);
        const further = await s.readWeights();
        w2 = further.bytes;
        w2Sha = further.sha256;
        expect(w2Sha).not.toBe(w1.sha256);
      } finally {
        await s.close();
      }
      await q.saveFlash(preFlash);
    });
  }, 120_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the committed weights across QEMU processes: the flash saved, then seeded into a new process', async () => {
    const b = await withBoard(preFlash, async (q, port) => {
      await q.resume();
      return booted(q, port);
    });
    expect(b.hello.storedLoaded).toBe(2);
    expect(b.stats.storedSeq).toBe(2);
    expect(b.weights.sha256, 'the committed weights, not the later uncommitted training').toBe(w1.sha256);
    expect(b.weights.modelSha256).toBe(w1.modelSha256);
    expect(b.headers.sort()).toEqual([1, 2]);
  });

  it('a WEIGHTS store cut after each of its flash operations leaves the previous weights live until its header is written', async () => {
    await cutEverywhere('weights', (s) => s.writeWeights(w2), w2Sha, w1.modelSha256);
  }, 3_600_000);

  it('a MODEL store cut after each of its flash operations leaves the previous model live until its header is written', async () => {
    await cutEverywhere('model', (s) => s.loadModel(nextModel.bytes), nextModel.sha256_weights, nextModel.sha256_model);
  }, 3_600_000);
});
