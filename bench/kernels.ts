// bench:kernels — instructions per forward MAC of the reference CNN (zoo `cnn`,
// 28x28x1, 10 classes) on the M4 and M7 stand-ins, with the portable reference
// kernels and with the ARMv7E-M SIMD kernels (TR_KERNELS_DSP). Counts are
// emulated instructions under QEMU -icount shift=0, identical run to run:
// whole inference ÷ forward MACs, a dense training step, and the forward MAC
// kernels alone at the CNN's spans (firmware/tests/qemu-engine/bench_kernels.c).
//   npm run bench:kernels
// Writes bench/results/kernels.json and prints a table.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot as root } from '../tools/proc/paths.js';

interface SpanFigure {
  span: string;
  kernel: string;
  n: number;
  ref: number;
  dsp: number | null;
}

interface ImageRun {
  kernels_linked: 'ref' | 'dsp';
  model: string;
  forward_macs: number;
  infer_instructions: number;
  infer_instructions_per_mac: number;
  train_step_instructions: number;
  logits_checksum: number;
  spans: SpanFigure[];
}

interface ClassResult {
  class: string;
  machine: string;
  forward_macs: number;
  infer_instructions: { ref: number; dsp: number };
  instructions_per_mac: { ref: number; dsp: number };
  train_step_instructions: { ref: number; dsp: number };
  speedup_inference: number;
  same_logits: boolean;
  kernels: SpanFigure[];
}

// `make qemu-kernels-bench` prints "KERNELS_RUN <class> <kernels> <machine>"
// before each image's one "KERNELS_JSON {...}" line.
function parse(out: string): Map<string, { machine: string; runs: Partial<Record<'ref' | 'dsp', ImageRun>> }> {
  const byClass = new Map<string, { machine: string; runs: Partial<Record<'ref' | 'dsp', ImageRun>> }>();
  let current: { cls: string; kernels: 'ref' | 'dsp' } | null = null;
  for (const line of out.split('\n')) {
    const run = /^KERNELS_RUN (\S+) (ref|dsp) (\S+)/.exec(line);
    if (run) {
      current = { cls: run[1], kernels: run[2] as 'ref' | 'dsp' };
      if (!byClass.has(run[1])) byClass.set(run[1], { machine: run[3], runs: {} });
      continue;
    }
    const json = /^KERNELS_JSON (.*)$/.exec(line);
    if (json && current) {
      const img = JSON.parse(json[1]) as ImageRun;
      if (img.kernels_linked !== current.kernels) throw new Error(`image mismatch: ${line}`);
      byClass.get(current.cls)!.runs[current.kernels] = img;
    }
  }
  return byClass;
}

function main(): void {
  const started = Date.now();
  const out = execFileSync('make', ['-s', '-C', path.join(root, 'firmware'), '-j2', 'qemu-kernels-bench'], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const classes: ClassResult[] = [];
  for (const [cls, { machine, runs }] of parse(out)) {
    const ref = runs.ref;
    const dsp = runs.dsp;
    if (!ref || !dsp) throw new Error(`${cls}: missing a run (ref ${!!ref}, dsp ${!!dsp})`);
    classes.push({
      class: cls,
      machine,
      forward_macs: dsp.forward_macs,
      infer_instructions: { ref: ref.infer_instructions, dsp: dsp.infer_instructions },
      instructions_per_mac: { ref: ref.infer_instructions_per_mac, dsp: dsp.infer_instructions_per_mac },
      train_step_instructions: { ref: ref.train_step_instructions, dsp: dsp.train_step_instructions },
      speedup_inference: Number((ref.infer_instructions / dsp.infer_instructions).toFixed(2)),
      same_logits: ref.logits_checksum === dsp.logits_checksum,
      kernels: dsp.spans,
    });
  }

  const result = {
    generated_by: 'npm run bench:kernels',
    date: new Date().toISOString(),
    counts:
      'emulated instructions under QEMU -icount shift=0 (CMSDK timer, 40-instruction granularity per read; identical run to run)',
    model: 'cnn (zoo), 28x28x1, 10 classes, seed 3; one inference and one dense training step (QAS) on a random sample',
    instructions_per_mac:
      'whole inference (every layer: patch gathering, requantization, pooling, softmax) ÷ forward MACs of conv and dense layers',
    kernels:
      'the forward MAC kernel alone, 64 calls over the span: conv1 and conv2 through dot2 (two filters, one patch), dense1 through dot',
    target: { class: 'm4', instructions_per_mac: 4 },
    wall_seconds: Math.round((Date.now() - started) / 1000),
    classes,
  };
  fs.mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bench', 'results', 'kernels.json'), `${JSON.stringify(result, null, 2)}\n`);

  const M = (x: number) => `${(x / 1e6).toFixed(3)} M`;
  const rows: string[][] = [];
  for (const c of classes) {
    rows.push([c.class, 'inference', 'cnn', String(c.forward_macs), M(c.infer_instructions.ref), M(c.infer_instructions.dsp),
      c.instructions_per_mac.ref.toFixed(2), c.instructions_per_mac.dsp.toFixed(2), String(c.same_logits)]);
    rows.push([c.class, 'train step', 'cnn', '', M(c.train_step_instructions.ref), M(c.train_step_instructions.dsp), '', '', '']);
    for (const k of c.kernels) {
      rows.push([c.class, `${k.kernel} (${k.span})`, `n=${k.n}`, '', '', '', k.ref.toFixed(2), k.dsp === null ? '—' : k.dsp.toFixed(2), '']);
    }
  }
  const head = ['class', 'what', 'shape', 'forward MACs', 'instr ref', 'instr dsp', 'instr/MAC ref', 'instr/MAC dsp', 'same logits'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((cell, i) => cell.padEnd(w[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log('\nemulated instructions (QEMU -icount shift=0); target: <= 4 instructions per forward MAC on the M4');
}

main();
