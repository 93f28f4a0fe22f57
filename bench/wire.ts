// bench:wire — how much of a serial line our link uses for bulk transfers,
// beside Zephyr MCUmgr SMP console framing on the same simulated line.
//   npm run bench:wire [-- --samples N] [--smp-samples N] [--bauds 115200,921600] [--out FILE]
// For each baud: a host twin behind tinyrig-linksim (no faults) streams
// Fashion-MNIST samples (784 B + label), writes and commits a 64 KiB weights
// blob and reads it back; then the same payloads go through an SMP client and
// device at the same baud. line_utilization = payload / (seconds × baud/10).
// Writes bench/results/wire.json and prints a table; never fails on timing.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { readIdxGz } from '../server/src/datasets/idx.js';
import { LinkSim, linksimBuilt } from '../tools/proc/linksim.js';
import { TRAIN_BIN, repoRoot } from '../tools/proc/paths.js';
import { TwinProcess, twinBuilt } from '../tools/proc/twin.js';
import { BoardSession } from '../protocol/src/index.js';
import { closePort, openPort } from '../server/src/devices/open-serial.js';
import { smpDownload, smpUpload, startSmpRig } from './lib/smp-transfer.js';
import { SMP_DEFAULT_MTU } from './lib/smp.js';

const FMNIST = '/usr/share/datasets/fashion-mnist';
const SAMPLE_BYTES = 784;
const WEIGHTS_BYTES = 64 * 1024;

interface Row {
  baud: number;
  transfer: 'samples' | 'weights_write' | 'weights_read';
  payload_bytes: number;
  /* null: this run could not measure our link (see `ours_missing`) */
  wire_bytes: number | null;
  seconds: number | null;
  line_utilization: number | null;
  smp_line_utilization: number;
  smp_payload_bytes: number;
  smp_wire_bytes: number;
  smp_seconds: number;
  retransmits: number | null;
}

function loadSamples(n: number): { labels: Uint8Array; data: Uint8Array; source: string } {
  const imgFile = path.join(FMNIST, 'train-images-idx3-ubyte.gz');
  const lblFile = path.join(FMNIST, 'train-labels-idx1-ubyte.gz');
  if (fs.existsSync(imgFile) && fs.existsSync(lblFile)) {
    const img = readIdxGz(imgFile);
    const lbl = readIdxGz(lblFile);
    const avail = img.dims[0]!;
    const data = new Uint8Array(n * SAMPLE_BYTES);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const j = i % avail;
      data.set(img.data.subarray(j * SAMPLE_BYTES, (j + 1) * SAMPLE_BYTES), i * SAMPLE_BYTES);
      labels[i] = lbl.data[j]!;
    }
    return { labels, data, source: 'fashion-mnist train' };
  }
  return { labels: new Uint8Array(randomBytes(n)).map((b) => b % 10), data: new Uint8Array(randomBytes(n * SAMPLE_BYTES)), source: 'random' };
}

const util = (payload: number, seconds: number, baud: number): number => payload / (seconds * (baud / 10));
const round = (x: number, d = 4): number => Math.round(x * 10 ** d) / 10 ** d;

async function timed<T>(sim: LinkSim, fn: () => Promise<T>): Promise<{ value: T; seconds: number; wire: number }> {
  const before = await sim.stats();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = await sim.stats();
  return { value, seconds, wire: after.h2d_out - before.h2d_out + (after.d2h_out - before.d2h_out) };
}

function buildModelBlob(dir: string, [model, input]: [string, string]): Uint8Array {
  const out = path.join(dir, `${model}-${input}.blob`);
  execFileSync(TRAIN_BIN, ['build', '--model', model, '--seed', '1', '--input', input, '--out', out], {
    stdio: 'ignore',
  });
  return new Uint8Array(fs.readFileSync(out));
}

async function ours(dir: string, baud: number, samples: { labels: Uint8Array; data: Uint8Array }, weights: Uint8Array, log: (s: string) => void) {
  const twin = await TwinProcess.start();
  const sim = await LinkSim.start({ device: twin.ptyPath, baud, link: path.join(dir, `board-${baud}`) });
  const port = await openPort(sim.ptyPath, baud);
  let session: BoardSession | null = null;
  try {
    session = await BoardSession.open(port, { timeoutMs: 10_000 });
    const s = session;
    const h = s.hello;
    log(`  twin: max_frame ${h.maxFrame}, window ${h.window}, sample_slots ${h.sampleSlots}, blob_max ${h.blobMax}, engine ${h.engine}`);
    const n = samples.labels.length;
    const smp = await timed(sim, () => s.sendSamples(0, SAMPLE_BYTES, samples.labels, samples.data));
    const rt1 = s.counters.retransmits;
    if (h.engine) {
      // With the engine, weights must fit the live model: the mlp for a 32x32 input holds ~64 KiB
      // of parameters; fall back to the cnn when the board stages less.
      const blob = buildModelBlob(dir, h.blobMax >= 67 * 1024 ? ['mlp', '32x32x1'] : ['cnn', '28x28x1']);
      await s.loadModel(blob);
      weights = new Uint8Array((await s.readWeights()).bytes);
    } else if (weights.length > h.blobMax) {
      weights = weights.subarray(0, h.blobMax - (h.blobMax % 64));
    }
    log(`  weights blob: ${weights.length} bytes`);
    const wr = await timed(sim, () => s.writeWeights(weights));
    const rt2 = s.counters.retransmits;
    const rd = await timed(sim, () => s.readWeights());
    const rt3 = s.counters.retransmits;
    const want = createHash('sha256').update(weights).digest('hex');
    if (!Buffer.from(rd.value.bytes).equals(Buffer.from(weights)) || rd.value.sha256 !== want)
      throw new Error('weights read back differ from what was written');
    return {
      weights,
      samples: { payload: n * (SAMPLE_BYTES + 1), seconds: smp.seconds, wire: smp.wire, retransmits: rt1 },
      weights_write: { payload: weights.length, seconds: wr.seconds, wire: wr.wire, retransmits: rt2 - rt1 },
      weights_read: { payload: weights.length, seconds: rd.seconds, wire: rd.wire, retransmits: rt3 - rt2 },
    };
  } finally {
    session?.close();
    await closePort(port);
    await sim.stop();
    await twin.stop();
  }
}

async function smp(dir: string, baud: number, samples: { labels: Uint8Array; data: Uint8Array }, weights: Uint8Array) {
  const rig = await startSmpRig(dir, baud, SMP_DEFAULT_MTU);
  try {
    // the same payload as ours: per sample its label then its 784 bytes
    const n = samples.labels.length;
    const stream = new Uint8Array(n * (SAMPLE_BYTES + 1));
    for (let i = 0; i < n; i++) {
      stream[i * (SAMPLE_BYTES + 1)] = samples.labels[i]!;
      stream.set(samples.data.subarray(i * SAMPLE_BYTES, (i + 1) * SAMPLE_BYTES), i * (SAMPLE_BYTES + 1) + 1);
    }
    const s = await smpUpload(rig, stream, 'samples');
    const w = await smpUpload(rig, weights, 'weights');
    const r = await smpDownload(rig, weights);
    return {
      samples: { payload: stream.length, ...s },
      weights_write: { payload: weights.length, ...w },
      weights_read: { payload: weights.length, ...r },
    };
  } finally {
    await rig.stop();
  }
}

async function main(): Promise<void> {
  const opts = new Command()
    .option('--samples <n>', 'Fashion-MNIST samples to stream', '10000')
    .option('--smp-samples <n>', 'samples for the SMP run (utilization is a rate; the SMP run is ~2x slower)', '1000')
    .option('--bauds <list>', 'line rates', '115200,921600')
    .option('--out <file>', 'JSON results', path.join(repoRoot, 'bench', 'results', 'wire.json'))
    .parse()
    .opts<{ samples: string; smpSamples: string; bauds: string; out: string }>();
  if (!linksimBuilt()) throw new Error('run `make -C firmware` first (tinyrig-linksim)');
  // Without the host twin or the protocol session only the SMP side can be measured; say so.
  const oursMissing = !twinBuilt()
    ? 'firmware/build/host/tinyrig-twin is not built'
    : !fs.existsSync(path.join(repoRoot, 'protocol', 'src', 'index.ts'))
      ? 'protocol/src/index.ts (the session) is not in the tree'
      : null;
  const nSamples = Number(opts.samples);
  const nSmp = Math.min(nSamples, Number(opts.smpSamples));
  const bauds = opts.bauds.split(',').map(Number);
  const all = loadSamples(nSamples);
  const smpSamples = { labels: all.labels.subarray(0, nSmp), data: all.data.subarray(0, nSmp * SAMPLE_BYTES) };
  const weights = new Uint8Array(randomBytes(WEIGHTS_BYTES));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-wire-'));
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const rows: Row[] = [];
  try {
    for (const baud of bauds) {
      log(`baud ${baud}: tinyrig link, ${nSamples} samples (${all.source}), 64 KiB weights`);
      const o = oursMissing ? null : await ours(dir, baud, all, weights, log);
      if (oursMissing) log(`  not measured: ${oursMissing}`);
      log(`baud ${baud}: SMP console framing (MTU ${SMP_DEFAULT_MTU}), ${nSmp} samples, 64 KiB weights`);
      // the SMP run moves the very weights blob our link moved
      const m = await smp(dir, baud, smpSamples, o ? o.weights : weights);
      for (const t of ['samples', 'weights_write', 'weights_read'] as const) {
        rows.push({
          baud,
          transfer: t,
          payload_bytes: o ? o[t].payload : t === 'samples' ? nSamples * (SAMPLE_BYTES + 1) : WEIGHTS_BYTES,
          wire_bytes: o ? o[t].wire : null,
          seconds: o ? round(o[t].seconds, 3) : null,
          line_utilization: o ? round(util(o[t].payload, o[t].seconds, baud)) : null,
          smp_line_utilization: round(util(m[t].payload, m[t].seconds, baud)),
          smp_payload_bytes: m[t].payload,
          smp_wire_bytes: m[t].wire_bytes,
          smp_seconds: round(m[t].seconds, 3),
          retransmits: o ? o[t].retransmits : null,
        });
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const result = {
    generated_by: 'npm run bench:wire',
    date: new Date().toISOString(),
    samples: nSamples,
    smp_samples: nSmp,
    sample_source: all.source,
    smp_mtu: SMP_DEFAULT_MTU,
    ours_missing: oursMissing,
    links: rows,
  };
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result));
  console.log('');
  console.log('| baud | transfer | payload B | wire B | s | line util | SMP util | SMP wire B | SMP s |');
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows)
    console.log(
      `| ${r.baud} | ${r.transfer} | ${r.payload_bytes} | ${r.wire_bytes ?? 'n/a'} | ${r.seconds ?? 'n/a'} | ${r.line_utilization === null ? 'n/a' : r.line_utilization.toFixed(3)} | ${r.smp_line_utilization.toFixed(3)} | ${r.smp_wire_bytes} | ${r.smp_seconds} |`,
    );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
