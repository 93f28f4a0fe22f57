// bench:report — gathers bench/results/*.json into bench/REPORT.md: one table
// per benchmark, each figure beside its target. It only reads results; run the
// benchmarks themselves to refresh them (npm run bench:<name>).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

type Json = Record<string, any>;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = path.join(root, 'bench', 'results');

function load(name: string): Json | null {
  const file = path.join(resultsDir, `${name}.json`);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Json) : null;
}

function table(head: string[], rows: unknown[][]): string {
  const cell = (v: unknown): string => (v === null || v === undefined ? '—' : String(v));
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

const pct = (x: unknown): string | null => (typeof x === 'number' ? `${(x * 100).toFixed(2)} %` : null);
const num = (x: unknown, digits = 2): string | null => (typeof x === 'number' ? x.toFixed(digits) : null);
const int = (x: unknown): string | null => (typeof x === 'number' ? Math.round(x).toLocaleString('en-US') : null);
const meets = (ok: boolean | null): string => (ok === null ? '—' : ok ? 'met' : '**not met**');
const stamp = (j: Json): string => `_${j.generated_by ?? ''}, ${j.date ?? 'undated'}_`;

function engine(j: Json): string {
  const f = j.fashion_mnist ?? {};
  const s = j.sparse ?? {};
  const m = j.memory ?? {};
  const d = j.determinism ?? {};
  const cnn = m.cnn ?? {};
  const out = [
    `## Engine (\`npm run bench:engine\`)`,
    stamp(j),
    '',
    String(j.network ?? ''),
    '',
    table(
      ['figure', 'value', 'target', ''],
      [
        ['int8 test accuracy (Fashion-MNIST, from scratch)', pct(f.int8_test_accuracy), '≥ 86 %', meets(typeof f.int8_test_accuracy === 'number' ? f.int8_test_accuracy >= 0.86 : null)],
        ['float32 test accuracy (same network, loop, seed)', pct(f.float_test_accuracy), '', ''],
        ['int8 − float gap', num(f.gap_points) && `${num(f.gap_points)} pts`, '≤ 1.5 pts', meets(typeof f.gap_points === 'number' ? f.gap_points <= 1.5 : null)],
        ['epochs / train / test samples', `${f.epochs} / ${f.train_samples} / ${f.test_samples}`, '', ''],
        ['sparse backward instructions, dense ÷ sparse', num(s.backward_instr_ratio) && `${num(s.backward_instr_ratio)}×`, '≥ 5×', meets(typeof s.backward_instr_ratio === 'number' ? s.backward_instr_ratio >= 5 : null)],
        ['sparse accuracy drop (from scratch)', num(s.accuracy_drop_points) && `${num(s.accuracy_drop_points)} pts`, '≤ 1 pt', meets(typeof s.accuracy_drop_points === 'number' ? s.accuracy_drop_points <= 1 : null)],
        ['sparse accuracy drop (fine-tuning)', num(s.finetune_accuracy_drop_points) && `${num(s.finetune_accuracy_drop_points)} pts`, '', ''],
        ['cnn training RAM (arena incl. weights)', int(cnn.train_peak_bytes) && `${int(cnn.train_peak_bytes)} B`, '≤ 65,536 B', meets(typeof cnn.train_peak_bytes === 'number' ? cnn.train_peak_bytes <= 65536 : null)],
        ['identical runs give identical weights', d.sha256_run1 ? String(d.sha256_run1 === d.sha256_run2) : null, 'true', meets(d.sha256_run1 ? d.sha256_run1 === d.sha256_run2 : null)],
      ],
    ),
    '',
    table(
      ['model', 'weights B', 'train planned B', 'train peak B', 'infer peak B'],
      Object.entries(m).map(([name, v]: [string, any]) => [name, int(v.weights_bytes), int(v.train_planned_bytes), int(v.train_peak_bytes), int(v.infer_peak_bytes)]),
    ),
  ];
  return out.join('\n');
}

function wire(j: Json): string {
  const links: Json[] = j.links ?? [];
  return [
    `## Serial link (\`npm run bench:wire\`)`,
    stamp(j),
    '',
    'Through the link simulator at the given line rate, no faults. Line utilization = payload bytes ÷ (seconds × baud/10); target ≥ 0.95 for bulk transfers. SMP: the same payload in Zephyr MCUmgr SMP console framing through the same simulator.',
    '',
    table(
      ['baud', 'transfer', 'payload B', 'wire B', 'seconds', 'utilization', 'SMP utilization', 'target'],
      links.map((l) => [
        l.baud,
        l.transfer,
        int(l.payload_bytes),
        int(l.wire_bytes),
        num(l.seconds),
        num(l.line_utilization, 3),
        num(l.smp_line_utilization, 3),
        meets(typeof l.line_utilization === 'number' ? l.line_utilization >= 0.95 : null),
      ]),
    ),
  ].join('\n');
}

/** Benchmarks without a dedicated layout: every scalar, flattened. */
function generic(name: string, j: Json): string {
  const rows: unknown[][] = [];
  const walk = (v: unknown, key: string): void => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, key ? `${key}.${k}` : k);
    } else if (Array.isArray(v) && v.every((x) => x && typeof x === 'object')) {
      v.forEach((x, i) => walk(x, `${key}[${i}]`));
    } else if (key !== 'generated_by' && key !== 'date') {
      rows.push([key, Array.isArray(v) ? v.join(', ') : v]);
    }
  };
  walk(j, '');
  return [`## ${name} (\`npm run bench:${name}\`)`, stamp(j), '', table(['figure', 'value'], rows)].join('\n');
}

const layouts: Record<string, (j: Json) => string> = { engine, wire };
const order = ['engine', 'wire', 'kernels', 'rig', 'daemon'];
const names = fs
  .readdirSync(resultsDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5))
  .sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));

const sections = names.map((n) => (layouts[n] ?? ((j: Json) => generic(n, j)))(load(n)!));
const missing = order.filter((n) => !names.includes(n));
const report = [
  '# Benchmark report',
  '',
  'Generated by `npm run bench:report` from `bench/results/*.json`. Counts of instructions come from QEMU `-icount` or valgrind and repeat run to run; seconds are wall time on a shared 2-core machine and are only compared as ratios within one run.',
  ...(missing.length ? ['', `Not measured yet: ${missing.map((n) => `\`bench:${n}\``).join(', ')}.`] : []),
  '',
  sections.join('\n\n'),
  '',
].join('\n');
fs.writeFileSync(path.join(root, 'bench', 'REPORT.md'), report);
process.stdout.write(report);
