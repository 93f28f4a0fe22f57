// bench:rig — what a training step costs on each board class, measured on the
// emulated rig (QEMU -icount: emulated instructions, identical run to run).
// For each class and zoo model: instructions per training step (dense, and
// sparse at λmin = λmax = 0.1), per inference, per forward MAC; RAM (arena
// peak, stack high-water, static); estimated energy per step; then the
// reference CNN trained on the board on Fashion-MNIST, its test accuracy, and
// whether its weights equal the host twin's after the same steps.
//   npm run bench:rig [-- --train N --test N]
// Writes bench/results/rig.json and prints a table.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { BoardSession, DeviceError } from '../protocol/src/index.js';
import { readIdxGz } from '../server/src/datasets/idx.js';
import { BOARDS_FILE, TRAIN_BIN as TRAIN_TOOL, repoRoot as root } from '../tools/proc/paths.js';
import { RigProcess } from '../tools/proc/rig.js';

const MODELS = ['cnn', 'mlp', 'dscnn'];
const SAMPLE = 784;
const CHUNK = 32; // samples per SAMPLES + TRAIN/EVAL round (every board holds at least 40)
const LR_PPM = 20_000;
const OPTIONS = 0x1 | 0x2; // QAS + stochastic rounding: the engine's best configuration (bench:engine)
const PROBE_STEPS = 8;

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N_TRAIN = arg('train', 640);
const N_TEST = arg('test', 320);

// Published per-sample training latency (DESIGN §2.1, EMNIST-digits, small
// CNN) on the boards the paper used, turned into a cycle budget at their clock.
const PUBLISHED: Record<string, { ms: number; clockHz: number; board: string; mj?: number }> = {
  m0plus: { ms: 817.1, clockHz: 133e6, board: 'RP2040 @ 133 MHz' },
  m4: { ms: 897.6, clockHz: 64e6, board: 'nRF52840 @ 64 MHz', mj: 23.95 },
  m7: { ms: 35.4, clockHz: 600e6, board: 'i.MX RT1062 @ 600 MHz' },
};

interface BoardRow {
  class: string;
  machine: string;
  cpu: string;
  clock_hz: number;
  ram_bytes: number;
  active_mw: number;
  power_source: string;
  models: Record<string, Record<string, number | string | null>>;
  instructions_per_mac: number | null;
  train_step_instructions: number | null;
  train_step_sparse_instructions: number | null;
  infer_instructions: number | null;
  ram: { arena_peak: number; stack_peak: number; static: number; stack: number; total: number };
  energy_uj_per_step: number | null;
  energy_source: 'estimated';
  test_accuracy: number | null;
  train_samples: number;
  test_samples: number;
  weights_sha256: string | null;
  weights_match_twin: boolean | null;
  published: { board: string; ms_per_sample: number; cycles_per_sample: number; mj_per_sample: number | null; cheaper_by: number | null };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** Forward multiply-accumulates of a zoo model, as the engine plans it. */
function forwardMacs(name: string): number {
  const out = execFileSync(TRAIN_TOOL, ['memory', '--model', name, '--json'], { encoding: 'utf8' });
  return (JSON.parse(out) as { forward_macs: number }).forward_macs;
}

function buildModel(name: string, dir: string): Uint8Array {
  const out = path.join(dir, `${name}.cbor`);
  execFileSync(TRAIN_TOOL, ['build', '--model', name, '--seed', '1', '--out', out]);
  return new Uint8Array(fs.readFileSync(out));
}

async function open(p: string): Promise<{ session: BoardSession; port: SerialPort }> {
  const port = new SerialPort({ path: p, baudRate: 115200 });
  await new Promise<void>((res, rej) => port.once('open', res).once('error', rej));
  const session = await BoardSession.open(port, { timeoutMs: 5000 });
  return { session, port };
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Trains N_TRAIN samples in order, then evaluates N_TEST: the same requests on every board. */
async function trainAndTest(s: BoardSession, blob: Uint8Array, data: Data): Promise<{ accuracy: number; sha256: string }> {
  await s.loadModel(blob);
  let index = 0;
  let stepId = 1;
  for (let i = 0; i < N_TRAIN; i += CHUNK) {
    const n = Math.min(CHUNK, N_TRAIN - i);
    await s.sendSamples(index, SAMPLE, data.trainLabels.subarray(i, i + n), data.trainImages.subarray(i * SAMPLE, (i + n) * SAMPLE));
    await s.train({ stepId: stepId++, index, count: n, lrPpm: LR_PPM, options: OPTIONS });
    index += n;
  }
  let correct = 0;
  for (let i = 0; i < N_TEST; i += CHUNK) {
    const n = Math.min(CHUNK, N_TEST - i);
    await s.sendSamples(index, SAMPLE, data.testLabels.subarray(i, i + n), data.testImages.subarray(i * SAMPLE, (i + n) * SAMPLE));
    correct += (await s.evaluate(index, n)).correct;
    index += n;
  }
  const w = await s.readWeights();
  return { accuracy: correct / N_TEST, sha256: sha(w.bytes) };
}

interface Data {
  trainImages: Uint8Array;
  trainLabels: Uint8Array;
  testImages: Uint8Array;
  testLabels: Uint8Array;
}

async function probeModel(s: BoardSession, name: string, blob: Uint8Array, data: Data): Promise<Record<string, number | string | null>> {
  try {
    await s.loadModel(blob);
  } catch (e) {
    if (e instanceof DeviceError) return { refused: e.message };
    throw e;
  }
  const labels = data.trainLabels.subarray(0, 2 * PROBE_STEPS);
  await s.sendSamples(0, SAMPLE, labels, data.trainImages.subarray(0, 2 * PROBE_STEPS * SAMPLE));
  const dense = await s.train({ stepId: 1, index: 0, count: PROBE_STEPS, lrPpm: LR_PPM, options: OPTIONS });
  const sparse = await s.train({
    stepId: 2, index: PROBE_STEPS, count: PROBE_STEPS, lrPpm: LR_PPM, options: OPTIONS, lambdaMinPpm: 100_000, lambdaMaxPpm: 100_000,
  });
  const infer: number[] = [];
  for (let i = 0; i < 4; i++) infer.push((await s.infer(data.testImages.subarray(i * SAMPLE, (i + 1) * SAMPLE))).counter);
  const st = await s.stats();
  const macs = forwardMacs(name);
  const inferInstr = median(infer);
  return {
    train_step_instructions: median(dense.records.map((r) => r.counter)),
    train_step_sparse_instructions: median(sparse.records.map((r) => r.counter)),
    sparse_updated_fraction: median(sparse.records.map((r) => r.updatedPpm)) / 1e6,
    infer_instructions: inferInstr,
    forward_macs: macs,
    instructions_per_mac: Number((inferInstr / macs).toFixed(2)),
    arena_peak: st.arenaPeak,
    stack_peak: st.stackPeak,
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-bench-rig-'));
  const table = JSON.parse(fs.readFileSync(BOARDS_FILE, 'utf8')) as {
    classes: { class: string; cpu: string; qemu: { machine: string }; boards: { clock_hz: number; ram_bytes: number; active_mw: number; power_source: string }[] }[];
  };
  const ds = '/usr/share/datasets/fashion-mnist';
  const data: Data = {
    trainImages: readIdxGz(`${ds}/train-images-idx3-ubyte.gz`).data,
    trainLabels: readIdxGz(`${ds}/train-labels-idx1-ubyte.gz`).data,
    testImages: readIdxGz(`${ds}/t10k-images-idx3-ubyte.gz`).data,
    testLabels: readIdxGz(`${ds}/t10k-labels-idx1-ubyte.gz`).data,
  };
  const blobs = Object.fromEntries(MODELS.map((m) => [m, buildModel(m, dir)]));
  const rig = new RigProcess(path.join(dir, 'rig'), { m0plus: 1, m4: 1, m7: 1, twin: 1 });
  const started = Date.now();
  await rig.start();
  const boards: BoardRow[] = [];
  let twinSha: string | null = null;
  try {
    const twin = await open(path.join(dir, 'rig', 'twin-0'));
    const twinRun = trainAndTest(twin.session, blobs.cnn, data).then((r) => (twinSha = r.sha256));
    // Boards one after another: two host cores, and QEMU's speed does not change the counts.
    for (const cls of table.classes) {
      const b = await open(path.join(dir, 'rig', `${cls.class}-0`));
      const h = b.session.hello;
      const models: BoardRow['models'] = {};
      for (const m of MODELS) models[m] = await probeModel(b.session, m, blobs[m], data);
      const trained = await trainAndTest(b.session, blobs.cnn, data);
      const st = await b.session.stats();
      const cnn = models.cnn;
      const stepInstr = (cnn.train_step_instructions as number) ?? null;
      const real = cls.boards[0];
      const pub = PUBLISHED[cls.class];
      const pubCycles = (pub.ms / 1000) * pub.clockHz;
      boards.push({
        class: cls.class,
        machine: cls.qemu.machine,
        cpu: h.cpu,
        clock_hz: h.clockHz,
        ram_bytes: h.ramBytes,
        active_mw: real.active_mw,
        power_source: real.power_source,
        models,
        instructions_per_mac: (cnn.instructions_per_mac as number) ?? null,
        train_step_instructions: stepInstr,
        train_step_sparse_instructions: (cnn.train_step_sparse_instructions as number) ?? null,
        infer_instructions: (cnn.infer_instructions as number) ?? null,
        ram: { arena_peak: st.arenaPeak, stack_peak: st.stackPeak, static: st.staticRam, stack: h.stackBytes, total: h.ramBytes },
        // µJ = instructions (as cycles) / clock × active power
        energy_uj_per_step: stepInstr ? Number(((stepInstr / h.clockHz) * real.active_mw * 1000).toFixed(1)) : null,
        energy_source: 'estimated',
        test_accuracy: trained.accuracy,
        train_samples: N_TRAIN,
        test_samples: N_TEST,
        weights_sha256: trained.sha256,
        weights_match_twin: null,
        published: {
          board: pub.board,
          ms_per_sample: pub.ms,
          cycles_per_sample: Math.round(pubCycles),
          mj_per_sample: pub.mj ?? null,
          cheaper_by: stepInstr ? Number((pubCycles / stepInstr).toFixed(1)) : null,
        },
      });
      b.session.close();
      await new Promise<void>((r) => b.port.close(() => r()));
      process.stderr.write(`bench:rig: ${cls.class} done\n`);
    }
    await twinRun;
    twin.session.close();
    await new Promise<void>((r) => twin.port.close(() => r()));
  } finally {
    await rig.stop();
  }
  for (const b of boards) b.weights_match_twin = twinSha !== null && b.weights_sha256 === twinSha;

  const result = {
    generated_by: 'npm run bench:rig',
    date: new Date().toISOString(),
    counts: 'emulated instructions under QEMU -icount shift=0, read at TIMER0 tick edges with interrupts masked during the work (identical run to run; per-step figures are medians of 8 steps); instructions stand in for cycles in the energy estimate and the published comparison',
    model: 'cnn (zoo), seed 1; Fashion-MNIST; lr 0.02, QAS, stochastic rounding, batch size 1; sparse = λmin = λmax = 0.1',
    twin_weights_sha256: twinSha,
    wall_seconds: Math.round((Date.now() - started) / 1000),
    boards,
  };
  fs.mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bench', 'results', 'rig.json'), `${JSON.stringify(result, null, 2)}\n`);

  const M = (x: number | null) => (x === null ? '—' : `${(x / 1e6).toFixed(2)} M`);
  const rows = boards.map((b) => [
    b.class, b.machine, M(b.train_step_instructions), M(b.train_step_sparse_instructions), M(b.infer_instructions),
    String(b.instructions_per_mac), `${b.ram.arena_peak}/${b.ram.stack_peak}/${b.ram.static}`, String(b.energy_uj_per_step),
    b.test_accuracy === null ? '—' : `${(b.test_accuracy * 100).toFixed(1)} %`, String(b.weights_match_twin),
    `${M(b.published.cycles_per_sample)} (${b.published.board})`, `${b.published.cheaper_by}×`,
  ]);
  const head = ['class', 'machine', 'train step', 'sparse step', 'inference', 'instr/MAC', 'arena/stack/static B', 'µJ/step (est.)', 'accuracy', '= twin', 'published cycles/sample (est.)', 'cheaper'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(`\ncnn trained on ${N_TRAIN} samples on each board, tested on ${N_TEST}; per-model figures in bench/results/rig.json`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
