// bench:engine — what the int8 training engine learns, costs and needs.
//   npm run bench:engine [-- --epochs N] [--long-epochs N] [--lambda-max X] [--out FILE]
// Runs firmware/build/host/tinyrig-train (make -C firmware builds it) on
// Fashion-MNIST (/usr/share/datasets/fashion-mnist), batch size 1:
//  - int8 and float32 runs of the same network and loop (cnn, SGD with
//    quantization-aware scaling, stochastic rounding for int8), test accuracy
//    on the 10,000 test images; optionally a longer pair (--long-epochs);
//  - dynamic sparse updates at lambda-min 0.1: accuracy from scratch and when
//    fine-tuning a trained model, and the backward pass's instruction count
//    (valgrind callgrind, --toggle-collect=tr_engine_backward_pass) dense ÷
//    sparse, from the trained model;
//  - arena bytes per zoo model (planned vs measured peak) via `tinyrig-train memory`;
//  - determinism: the same seeded run twice, SHA-256 of the final weights.
// Writes bench/results/engine.json and prints a table; never fails on timing.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TRAIN = path.join(root, 'firmware/build/host/tinyrig-train');
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
    .option('--callgrind-steps <n>', 'training steps measured under callgrind', '300')
    .option('--out <file>', 'JSON output', path.join(root, 'bench/results/engine.json'))
    .parse()
    .opts<{ epochs: string; longEpochs: string; lambdaMax: string; callgrindSteps: string; out: string }>();
  if (!fs.existsSync(TRAIN)) {
    throw new Error(`${TRAIN} is missing: run make -C firmware first`);
  }
  if (!fs.existsSync(path.join(FMNIST, 'train-images-idx3-ubyte.gz'))) {
    throw new Error(`Fashion-MNIST not found in ${FMNIST} (Debian package dataset-fashion-mnist)`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-bench-engine-'));
  const epochs = opts.epochs;
  const sparseArgs = ['--lambda-min', '0.1', '--lambda-max', opts.lambdaMax];
  const trained = path.join(tmp, 'trained.cbor');
  try {
    const int8 = train(`int8, ${epochs} epoch(s)`, ['--epochs', epochs, '--stochastic', '--out', trained]);
    const float = train(`float32, ${epochs} epoch(s)`, ['--epochs', epochs, '--float']);
    const sparse = train(`int8 sparse from scratch, ${epochs} epoch(s)`, ['--epochs', epochs, '--stochastic', ...sparseArgs]);
    // fine-tuning a trained model for one more epoch: dense vs sparse
    const ftDense = train('int8 fine-tune dense, 1 epoch', ['--epochs', '1', '--stochastic', '--in', trained, '--lr', '0.005']);
    const ftSparse = train('int8 fine-tune sparse, 1 epoch', ['--epochs', '1', '--stochastic', '--in', trained, '--lr', '0.005', ...sparseArgs]);

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

    process.stderr.write('engine bench: backward instruction counts (callgrind) ...\n');
    const steps = ['--epochs', '1', '--train-count', opts.callgrindSteps, '--test-count', '10', '--stochastic', '--in', trained, '--lr', '0.005'];
    const denseInstr = backwardInstructions(steps, tmp, 'dense');
    const sparseInstr = backwardInstructions([...steps, ...sparseArgs], tmp, 'sparse');

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
        lambda_min: 0.1,
        lambda_max: Number(opts.lambdaMax),
        backward_instr_ratio: denseInstr !== null && sparseInstr ? round(denseInstr / sparseInstr, 2) : null,
        backward_instr_dense: denseInstr,
        backward_instr_sparse: sparseInstr,
        backward_instr_steps: Number(opts.callgrindSteps),
        accuracy_drop_points: round((int8.test_accuracy - sparse.test_accuracy) * 100, 2),
        sparse_test_accuracy: round(sparse.test_accuracy),
        updated_fraction: round(sparse.train.updated_fraction),
        finetune_accuracy_drop_points: round((ftDense.test_accuracy - ftSparse.test_accuracy) * 100, 2),
        finetune_dense_test_accuracy: round(ftDense.test_accuracy),
        finetune_sparse_test_accuracy: round(ftSparse.test_accuracy),
        finetune_updated_fraction: round(ftSparse.train.updated_fraction),
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
      [`sparse λ 0.1..${opts.lambdaMax}: backward instr ratio`, String(result.sparse.backward_instr_ratio)],
      ['sparse: accuracy drop from scratch', `${result.sparse.accuracy_drop_points} points`],
      ['sparse: accuracy drop fine-tuning', `${result.sparse.finetune_accuracy_drop_points} points`],
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
