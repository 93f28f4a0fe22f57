// bench:report — gathers bench/results/*.json into bench/REPORT.md: one table
// per benchmark, each figure beside its target. It only reads results; run the
// benchmarks themselves to refresh them (npm run bench:<name>).
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot as root } from '../tools/proc/paths.js';

type Json = Record<string, any>;
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
const stamp = (j: Json): string => `_${j.generated_by ?? 'bench'}, ${j.date ?? j.measuredAt ?? 'undated'}_`;

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
        ['sparse backward instructions, dense ÷ sparse (fine-tuning steps)', num(s.backward_instr_ratio) && `${num(s.backward_instr_ratio)}×`, '≥ 5×', meets(typeof s.backward_instr_ratio === 'number' ? s.backward_instr_ratio >= 5 : null)],
        ['sparse accuracy drop (from scratch)', num(s.accuracy_drop_points) && `${num(s.accuracy_drop_points)} pts`, '≤ 1 pt', meets(typeof s.accuracy_drop_points === 'number' ? s.accuracy_drop_points <= 1 : null)],
        ['sparse accuracy drop (fine-tuning)', num(s.finetune_accuracy_drop_points) && `${num(s.finetune_accuracy_drop_points)} pts`, '≤ 1 pt', meets(typeof s.finetune_accuracy_drop_points === 'number' ? s.finetune_accuracy_drop_points <= 1 : null)],
        ['sparse backward, dense ÷ sparse, from-scratch steps', num(s.backward_instr_ratio_from_scratch) && `${num(s.backward_instr_ratio_from_scratch)}×`, '≥ 5×', meets(typeof s.backward_instr_ratio_from_scratch === 'number' ? s.backward_instr_ratio_from_scratch >= 5 : null)],
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

function rig(j: Json): string {
  const boards: Json[] = j.boards ?? [];
  const M = (x: unknown): string | null => (typeof x === 'number' ? `${(x / 1e6).toFixed(2)} M` : null);
  const models = [...new Set(boards.flatMap((b) => Object.keys(b.models ?? {})))];
  return [
    `## Emulated boards (\`npm run bench:rig\`)`,
    stamp(j),
    '',
    String(j.counts ?? ''),
    '',
    table(
      ['class', 'machine', 'train step', 'sparse step (λ 0.1)', 'inference', 'instr / forward MAC', 'arena / stack / static B', 'µJ / step (estimated)', 'accuracy', 'weights = twin', 'published budget (estimate)', 'cheaper', 'target'],
      boards.map((b) => [
        b.class, b.machine, M(b.train_step_instructions), M(b.train_step_sparse_instructions), M(b.infer_instructions),
        b.instructions_per_mac, `${int(b.ram?.arena_peak)} / ${int(b.ram?.stack_peak)} / ${int(b.ram?.static)}`,
        num(b.energy_uj_per_step, 1), pct(b.test_accuracy), b.weights_match_twin,
        `${M(b.published?.cycles_per_sample)} (${b.published?.board})`,
        b.published?.cheaper_by && `${b.published.cheaper_by}×`,
        meets(typeof b.published?.cheaper_by === 'number' ? b.published.cheaper_by >= 4 : null),
      ]),
    ),
    '',
    `Targets: a training step at least 4× under the published per-sample cost at the same clock; ≤ 4 instructions per forward MAC on the M4 (${boards.find((b) => b.class === 'm4')?.instructions_per_mac ?? '—'}: ${meets(typeof boards.find((b) => b.class === 'm4')?.instructions_per_mac === 'number' ? boards.find((b) => b.class === 'm4')!.instructions_per_mac <= 4 : null)}). Accuracy: the CNN trained on the board with ${boards[0]?.train_samples ?? '?'} samples, tested on ${boards[0]?.test_samples ?? '?'}.`,
    '',
    table(
      ['class', ...models.flatMap((m) => [`${m} step`, `${m} inference`, `${m} instr/MAC`])],
      boards.map((b) => [b.class, ...models.flatMap((m) => {
        const x = b.models?.[m] ?? {};
        return x.refused ? ['refused', '', ''] : [M(x.train_step_instructions), M(x.infer_instructions), x.instructions_per_mac];
      })]),
    ),
  ].join('\n');
}

function daemon(j: Json): string {
  return [
    `## Daemon (\`npm run bench:daemon\`)`,
    stamp(j),
    '',
    `${j.boards} host twins${j.link_baud ? ` behind the link simulator at ${j.link_baud} baud` : ''}, all training, daemon and boards on ${j.host?.cpus ?? '?'} shared cores.`,
    '',
    table(
      ['figure', 'value', 'target', ''],
      [
        ['GET /v1/devices p50 / p99 (client)', `${j.p50_ms} / ${j.p99_ms} ms`, 'p99 < 50 ms', meets(j.p99_ms < 50)],
        ['GET /v1/devices inside the daemon, p50 / p99 at most', `${j.server_devices_p50_ms_at_most} / ${j.server_devices_p99_ms_at_most} ms`, '', ''],
        ['job submission p50 / p99', `${j.submit_p50_ms} / ${j.submit_p99_ms} ms`, 'p99 < 50 ms', meets(j.submit_p99_ms < 50)],
        ['daemon CPU (one core) / RSS', `${j.cpu_percent} % / ${j.rss_mb} MiB`, '', ''],
        ['training throughput, all boards', `${j.train_steps_per_s} steps/s`, '', ''],
        ['fleet rollback: 1 board / all', `${j.fleet_rollback_one_ms} / ${j.fleet_rollback_all_ms} ms (${j.fleet_rollback_verified} verified)`, '', ''],
        ['fleet rollback ratio', `${j.fleet_rollback_ratio}×`, '< 3×', meets(j.fleet_rollback_ratio < 3)],
      ],
    ),
  ].join('\n');
}

function fleet(j: Json): string {
  const m = j.method ?? {};
  const p = j.postgres ?? {};
  const s = j.sqlite ?? null;
  const devices = Object.entries((p.devices_during_rollback ?? {}) as Json);
  const queue = Object.entries((p.queue_latency ?? {}) as Json);
  const failures = (f: Json | undefined): string => (f && Object.keys(f).length ? `; not rolled back: ${Object.entries(f).map(([c, n]) => `${n} ${c}`).join(', ')}` : '');
  return [
    `## Fleet of rig hosts (\`npm run bench:fleet\`)`,
    stamp(j),
    '',
    `${m.board_count} boards, ${m.boards}. ${m.hosts} daemons × ${m.boards_per_host} sharing one PostgreSQL (fsync ${m.postgres?.fsync ? 'on' : 'off'}), ${m.network}. Model ${m.model} (${m.weights_bytes} B of weights); every board a trained snapshot away from the target. Fleet concurrency ${m.fleet_concurrency} a host, remote concurrency ${m.remote_concurrency}, heartbeat ${m.heartbeat_ms} ms. Rollbacks from host0 with canary 1; GET /v1/devices at ${m.devices_rps_per_host}/s on every host meanwhile. Load average ${p.load_avg_1m_after_rollback} after the rollback (${j.host?.cpus ?? '?'} CPUs, shared).`,
    '',
    table(
      ['figure', 'value', 'target', ''],
      [
        [`fleet rollback, ${m.board_count} boards`, `${num(p.fleet_rollback_all_ms, 0)} ms (${p.fleet_rollback_all_verified} verified${failures(p.fleet_rollback_all_failures)})`, '', ''],
        ['fleet rollback, 1 board of host0 / of host1', `${num(p.fleet_rollback_one_local_ms, 1)} / ${num(p.fleet_rollback_one_remote_ms, 1)} ms`, '', ''],
        ['ratio all ÷ 1 board (of host0)', `${p.fleet_rollback_ratio}×`, '≤ 3×', meets(typeof p.fleet_rollback_ratio === 'number' ? p.fleet_rollback_ratio <= 3 : null)],
        ['  floor set by the concurrency (canary + rounds a host, were each board as quick as one alone)', p.fleet_rollback_ratio_floor && `${p.fleet_rollback_ratio_floor}×`, '', ''],
        ...devices.map(([h, d]: [string, Json]) => [`GET /v1/devices on ${h} during it, p50 / p99 (client; daemon at most)`, `${d.p50_ms} / ${d.p99_ms} ms (≤ ${d.server_p50_ms_at_most} / ≤ ${d.server_p99_ms_at_most} ms)`, 'p99 < 50 ms', meets(typeof d.p99_ms === 'number' ? d.p99_ms < 50 : null)]),
        ...queue.map(([h, q]: [string, Json]) => [`queue latency on ${h}, p50 / p99 at most (mean)`, `≤ ${q.p50_ms_at_most} / ≤ ${q.p99_ms_at_most} ms (${q.mean_ms} ms, ${q.requests} requests)`, '', '']),
        ...(s
          ? [
              [`SQLite, one daemon: fleet rollback, ${s.boards} boards / 1 board`, `${num(s.fleet_rollback_all_ms, 0)} / ${num(s.fleet_rollback_one_ms, 1)} ms (${s.fleet_rollback_ratio}×${failures(s.fleet_rollback_all_failures)})`, '', ''],
              ['SQLite: GET /v1/devices during it, p50 / p99', `${s.devices_during_rollback?.p50_ms} / ${s.devices_during_rollback?.p99_ms} ms (${s.devices_during_rollback?.requests} requests)`, '', ''],
            ]
          : []),
      ],
    ),
  ].join('\n');
}

function kernels(j: Json): string {
  const cls: Json[] = j.classes ?? [];
  return [
    `## Kernels on the M4 and M7 (\`npm run bench:kernels\`)`,
    stamp(j),
    '',
    `${j.counts ?? ''}. ${j.instructions_per_mac ?? ''}.`,
    '',
    table(
      ['class', 'inference ref → SIMD', 'instr / forward MAC ref → SIMD', 'train step ref → SIMD', 'same logits', ...(cls[0]?.kernels ?? []).map((k: Json) => `${k.span} ${k.kernel} (n=${k.n}) instr/MAC`), 'target (M4)'],
      cls.map((c) => [
        c.class,
        `${int(c.infer_instructions?.ref)} → ${int(c.infer_instructions?.dsp)}`,
        `${c.instructions_per_mac?.ref} → ${c.instructions_per_mac?.dsp}`,
        `${int(c.train_step_instructions?.ref)} → ${int(c.train_step_instructions?.dsp)}`,
        c.same_logits,
        ...(c.kernels ?? []).map((k: Json) => `${k.ref} → ${k.dsp}`),
        c.class === 'm4' ? `≤ 4: ${meets(c.instructions_per_mac?.dsp <= 4)}` : '',
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

const layouts: Record<string, (j: Json) => string> = { engine, wire, kernels, rig, daemon, fleet };
const order = ['engine', 'wire', 'kernels', 'rig', 'daemon', 'fleet'];
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
