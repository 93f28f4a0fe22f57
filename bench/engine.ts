// bench:engine — what the int8 training engine learns, costs and needs.
//   npm run bench:engine [-- --epochs N] [--long-epochs N] [--lambda-max X] [--compare-lambda-max X] [--out FILE]
// Runs firmware/build/host/tinyrig-train (make -C firmware builds it) on
// Fashion-MNIST (/usr/share/datasets/fashion-mnist), batch size 1:
//  - int8 and float32 runs of the same network and loop (cnn, SGD with
//    quantization-aware scaling, stochastic rounding for int8), test accuracy
//    on the 10,000 test images; optionally a longer pair (--long-epochs);
//  - dynamic sparse updates at lambda-min 0.1 (DESIGN §2.1): accuracy from
//    scratch and when fine-tuning a trained model, and the backward pass's
//    instruction count (valgrind callgrind, --toggle-collect=
//    tr_engine_backward_pass) dense ÷ sparse over the same steps, both on
//    fine-tuning steps of the trained model and on the first steps from
//    scratch; every figure of one lambda pair is measured with that pair. A
//    second pair (--compare-lambda-max, default 1: high-loss samples update
//    more channels) is measured the same way for comparison;
//  - arena bytes per zoo model (planned vs measured peak) via `tinyrig-train memory`;
//  - determinism: the same seeded run twice, SHA-256 of the final weights.
// Writes bench/results/engine.json and prints a table; never fails on timing.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { TRAIN_BIN as TRAIN, repoRoot as root } from '../tools/proc/paths.js';

const FMNIST = '/usr/share/datasets/fashion-mnist';
const BASE = ['--model', 'cnn', '--seed', '1', '--lr', '0.02', '--qas', '--json'];

interface TrainJson {
  test_accuracy: number;
  seconds: number;
  sha256_weights: string;
  arena_peak: number;
  train: { updated_fraction: number; train_loss_first: number; train_loss_last: number };
}

interface MemoryJson {
  weights_bytes: number;
  infer_planned_bytes: number;
  train_planned_bytes: number;
  infer_peak_bytes: number;
  train_peak_bytes: number;
}

const round = (x: number, d = 4): number => Math.round(x * 10 ** d) / 10 ** d;

function run(args: string[]): string {
  return execFileSync('nice', [TRAIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
}

function train(label: string, args: string[]): TrainJson {
  process.stderr.write(`engine bench: ${label} ...\n`);
  const out = JSON.parse(run(['train', ...BASE, ...args])) as TrainJson;
  process.stderr.write(`engine bench: ${label}: ${(out.test_accuracy * 100).toFixed(2)} % in ${out.seconds.toFixed(1)} s\n`);
  return out;
}

/** Instructions executed inside tr_engine_backward_pass, or null without valgrind. */
function backwardInstructions(args: string[], tmp: string, tag: string): number | null {
  const file = path.join(tmp, `callgrind.${tag}`);
  const r = spawnSync(
    'nice',
    ['valgrind', '--tool=callgrind', `--callgrind-out-file=${file}`, '--toggle-collect=tr_engine_backward_pass', TRAIN, 'train', ...BASE, ...args],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const m = /Collected\s*:\s*(\d+)/.exec(r.stderr ?? '');
  return r.status === 0 && m ? Number(m[1]) : null;
}

function main(): void {
  const opts = new Command()
    .option('--epochs <n>', 'epochs of the accuracy runs', '1')
    .option('--long-epochs <n>', 'epochs of a second, longer int8/float pair (0: skip)', '3')
    .option('--lambda-max <x>', 'lambda-max of the sparse runs (lambda-min is 0.1)', '0.1')
    .option('--compare-lambda-max <x>', 'lambda-max of a second set of sparse runs (0: skip)', '1')
    .option('--callgrind-steps <n>', 'training steps measured under callgrind', '300')
    .option('--out <file>', 'JSON output', path.join(root, 'bench/results/engine.json'))
    .parse()
    .opts<{ epochs: string; longEpochs: string; lambdaMax: string; compareLambdaMax: string; callgrindSteps: string; out: string }>();
  if (!fs.existsSync(TRAIN)) {
    throw new Error(`${TRAIN} is missing: run make -C firmware first`);
  }
  if (!fs.existsSync(path.join(FMNIST, 'train-images-idx3-ubyte.gz'))) {
    throw new Error(`Fashion-MNIST not found in ${FMNIST} (Debian package dataset-fashion-mnist)`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-bench-engine-'));
  const epochs = opts.epochs;
  const sparseArgs = ['--lambda-min', '0.1', '--lambda-max', opts.lambdaMax];
  const FT_LR = '0.005';
  const trained = path.join(tmp, 'trained.cbor');
  try {
    const int8 = train(`int8, ${epochs} epoch(s)`, ['--epochs', epochs, '--stochastic', '--out', trained]);
    const float = train(`float32, ${epochs} epoch(s)`, ['--epochs', epochs, '--float']);
    // fine-tuning a trained model for one more epoch: dense vs sparse
    const ftDense = train('int8 fine-tune dense, 1 epoch', ['--epochs', '1', '--stochastic', '--in', trained, '--lr', FT_LR]);
    const scratchSteps = ['--epochs', '1', '--train-count', opts.callgrindSteps, '--test-count', '10', '--stochastic'];
    const ftSteps = [...scratchSteps, '--in', trained, '--lr', FT_LR];
    process.stderr.write('engine bench: dense backward instruction counts (callgrind) ...\n');
    const denseInstr = backwardInstructions(ftSteps, tmp, 'dense');
    const denseInstrScratch = backwardInstructions(scratchSteps, tmp, 'dense-scratch');
    const ratio = (d: number | null, s: number | null): number | null => (d !== null && s ? round(d / s, 2) : null);

    /** Accuracy (from scratch, fine-tuning) and backward cost of one lambda pair. */
    const sparseSet = (lambdaMax: string) => {
      const args = ['--lambda-min', '0.1', '--lambda-max', lambdaMax];
      const tag = `λ 0.1..${lambdaMax}`;
      const scratch = train(`int8 sparse ${tag} from scratch, ${epochs} epoch(s)`, ['--epochs', epochs, '--stochastic', ...args]);
      const ft = train(`int8 fine-tune sparse ${tag}, 1 epoch`, ['--epochs', '1', '--stochastic', '--in', trained, '--lr', FT_LR, ...args]);
      process.stderr.write(`engine bench: sparse ${tag} backward instruction counts (callgrind) ...\n`);
      const instr = backwardInstructions([...ftSteps, ...args], tmp, `sparse-${lambdaMax}`);
      const instrScratch = backwardInstructions([...scratchSteps, ...args], tmp, `sparse-scratch-${lambdaMax}`);
      return {
        lambda_min: 0.1,
        lambda_max: Number(lambdaMax),
        backward_instr_ratio: ratio(denseInstr, instr),
        backward_instr_dense: denseInstr,
        backward_instr_sparse: instr,
        backward_instr_steps: Number(opts.callgrindSteps),
        backward_instr_ratio_from_scratch: ratio(denseInstrScratch, instrScratch),
        backward_instr_dense_from_scratch: denseInstrScratch,
        backward_instr_sparse_from_scratch: instrScratch,
        accuracy_drop_points: round((int8.test_accuracy - scratch.test_accuracy) * 100, 2),
        sparse_test_accuracy: round(scratch.test_accuracy),
        updated_fraction: round(scratch.train.updated_fraction),
        finetune_accuracy_drop_points: round((ftDense.test_accuracy - ft.test_accuracy) * 100, 2),
        finetune_dense_test_accuracy: round(ftDense.test_accuracy),
        finetune_sparse_test_accuracy: round(ft.test_accuracy),
        finetune_updated_fraction: round(ft.train.updated_fraction),
      };
    };
    const sparse = sparseSet(opts.lambdaMax);
    const compare = Number(opts.compareLambdaMax) > 0 && opts.compareLambdaMax !== opts.lambdaMax ? sparseSet(opts.compareLambdaMax) : undefined;

    let long: Record<string, unknown> | undefined;
    if (Number(opts.longEpochs) > 0) {
      const li = train(`int8, ${opts.longEpochs} epochs`, ['--epochs', opts.longEpochs, '--stochastic']);
      const lf = train(`float32, ${opts.longEpochs} epochs`, ['--epochs', opts.longEpochs, '--float']);
      long = {
        epochs: Number(opts.longEpochs),
        int8_test_accuracy: round(li.test_accuracy),
        float_test_accuracy: round(lf.test_accuracy),
        int8_wall_seconds: round(li.seconds, 1),
        float_wall_seconds: round(lf.seconds, 1),
      };
    }


    process.stderr.write('engine bench: determinism and memory ...\n');
    const det = ['--epochs', '1', '--train-count', '10000', '--test-count', '100', '--stochastic'];
    const run1 = train('determinism run 1', det);
    const run2 = train('determinism run 2', det);
    const memory: Record<string, Record<string, number>> = {};
    const zoo = JSON.parse(run(['zoo', '--json'])) as { name: string }[];
    for (const z of zoo) {
      const m = JSON.parse(run(['memory', '--model', z.name, '--json'])) as MemoryJson;
      memory[z.name] = {
        train_planned_bytes: m.train_planned_bytes,
        train_peak_bytes: m.train_peak_bytes,
        infer_planned_bytes: m.infer_planned_bytes,
        infer_peak_bytes: m.infer_peak_bytes,
        weights_bytes: m.weights_bytes,
      };
    }

    const result = {
      generated_by: 'bench/engine.ts (npm run bench:engine)',
      date: new Date().toISOString(),
      host: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown' },
      network: 'cnn 28x28x1: conv3x3(8)+relu, maxpool2, conv3x3(16)+relu, maxpool2, dense(32)+relu, dense(10); batch size 1',
      optimizer: 'SGD with quantization-aware scaling, lr 0.02 linear decay; int8: stochastic rounding of updates and errors',
      fashion_mnist: {
        epochs: Number(epochs),
        train_samples: 60000,
        test_samples: 10000,
        int8_test_accuracy: round(int8.test_accuracy),
        float_test_accuracy: round(float.test_accuracy),
        int8_wall_seconds: round(int8.seconds, 1),
        float_wall_seconds: round(float.seconds, 1),
        gap_points: round((float.test_accuracy - int8.test_accuracy) * 100, 2),
        ...(long ? { long } : {}),
      },
      sparse: {
        ...sparse,
        selection:
          'per hidden layer k = floor(min(lambda_min + loss/max_loss x (lambda_max - lambda_min), 1) x channels), at least 1; ' +
          'the k channels are drawn at random weighted by error magnitude (key = sum |e| x (1 + 8 PRNG bits), k largest keys); ' +
          'channels left out update their bias only; the classifier always updates densely',
        accuracy_reference: `drop from scratch: dense int8 run above (${epochs} epoch(s)); fine-tuning: 1 epoch from that model at lr ${FT_LR}, dense vs sparse`,
        backward_instr_measured_on: `tr_engine_backward_pass over ${opts.callgrindSteps} fine-tuning steps of the trained model (backward_instr_*) and over the first ${opts.callgrindSteps} steps from scratch (*_from_scratch)`,
        ...(compare ? { compare } : {}),
      },
      memory,
      determinism: {
        sha256_run1: run1.sha256_weights,
        sha256_run2: run2.sha256_weights,
        identical: run1.sha256_weights === run2.sha256_weights,
      },
    };
    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    fs.writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');

    const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;
    const rows: [string, string][] = [
      [`int8 test accuracy (${epochs} ep)`, pct(int8.test_accuracy)],
      [`float32 test accuracy (${epochs} ep)`, pct(float.test_accuracy)],
      ...(long
        ? ([
            [`int8 test accuracy (${opts.longEpochs} ep)`, pct(long.int8_test_accuracy as number)],
            [`float32 test accuracy (${opts.longEpochs} ep)`, pct(long.float_test_accuracy as number)],
          ] as [string, string][])
        : []),
      ...[sparse, ...(compare ? [compare] : [])].flatMap(
        (x) =>
          [
            [`sparse λ 0.1..${x.lambda_max}: backward instr ratio (fine-tune / scratch)`, `${x.backward_instr_ratio} / ${x.backward_instr_ratio_from_scratch}`],
            [`sparse λ 0.1..${x.lambda_max}: accuracy drop from scratch`, `${x.accuracy_drop_points} points (${pct(x.sparse_test_accuracy)})`],
            [`sparse λ 0.1..${x.lambda_max}: accuracy drop fine-tuning`, `${x.finetune_accuracy_drop_points} points (${pct(x.finetune_sparse_test_accuracy)} vs ${pct(x.finetune_dense_test_accuracy)})`],
          ] as [string, string][],
      ),
      ...Object.entries(memory).map(
        ([name, m]) => [`${name}: train peak / planned, weights`, `${m.train_peak_bytes} / ${m.train_planned_bytes} B, ${m.weights_bytes} B`] as [string, string],
      ),
      ['determinism', result.determinism.identical ? `identical ${run1.sha256_weights.slice(0, 16)}…` : 'DIFFERENT'],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n'));
    console.log(`wrote ${path.relative(root, opts.out)}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main();
