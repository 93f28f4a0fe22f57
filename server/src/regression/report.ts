// A run as one self-contained HTML page: a summary table per board (state,
// failure, each figure against its baseline) and a plot of each figure per
// board over the suite's recent runs. No scripts and no external requests, so
// the file reads the same from disk, from a CI artifact store or from the daemon.
import { FIGURES, type BoardRun, type FigureCheck, type FigureName, type RunView } from './types.js';

/** Most runs a plot shows (the newest ones, this run last). */
export const HISTORY_RUNS = 30;

type Figure = (typeof FIGURES)[number];

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in element content and in quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

function groupDigits(n: number): string {
  const [int, frac] = Math.abs(n).toString().split('.');
  const grouped = int!.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (n < 0 ? '−' : '') + grouped + (frac ? `.${frac}` : '');
}

/** A figure's value as a lab reads it: accuracy in %, counts grouped, energy to 4 significant digits. */
export function formatFigure(name: FigureName, v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  switch (name) {
    case 'accuracy':
      return `${(v * 100).toFixed(1)} %`;
    case 'energyPerStepUj':
      return `${groupDigits(Number(v.toPrecision(4)))} µJ`;
    case 'peakRam':
    case 'stackPeak':
      return `${groupDigits(Math.round(v))} B`;
    default:
      return groupDigits(Math.round(v));
  }
}

/** value − baseline, in the figure's terms: accuracy in points, others absolute and relative. */
export function formatDelta(name: FigureName, value: number | null, baseline: number | null): string {
  if (value === null || baseline === null) return '–';
  const d = value - baseline;
  const sign = d > 0 ? '+' : d < 0 ? '−' : '±';
  if (name === 'accuracy') return `${sign}${Math.abs(d * 100).toFixed(1)} pp`;
  const abs = formatFigure(name, Math.abs(d));
  if (baseline === 0) return `${sign}${abs}`;
  return `${sign}${abs} (${sign}${Math.abs((d / baseline) * 100).toFixed(1)} %)`;
}

/** Whether a change is for the better, the worse or neither, by the figure's direction. */
function direction(fig: Figure, value: number | null, baseline: number | null): 'better' | 'worse' | 'same' {
  if (value === null || baseline === null || value === baseline) return 'same';
  return (value > baseline) === (fig.better === 'higher') ? 'better' : 'worse';
}

function checkOf(board: BoardRun | undefined, name: FigureName): FigureCheck | undefined {
  return board?.checks.find((c) => c.figure === name);
}

function boardOf(run: RunView | null | undefined, deviceId: string): BoardRun | undefined {
  return run?.boards.find((b) => b.deviceId === deviceId);
}

/** The baseline a board's figure was judged against: the check's own, else the baseline run's figure. */
function baselineValue(board: BoardRun, baseline: RunView | null, name: FigureName): number | null {
  const check = checkOf(board, name);
  if (check && check.baseline !== null) return check.baseline;
  return boardOf(baseline, board.deviceId)?.figures[name] ?? null;
}

function formatMs(ms: number | null): string {
  if (ms === null) return '';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The runs a plot shows: the given history plus this run, each once, oldest → newest, the last HISTORY_RUNS. */
export function plotRuns(run: RunView, history: RunView[]): RunView[] {
  const byId = new Map<string, RunView>();
  for (const r of history) byId.set(r.id, r);
  byId.set(run.id, run);
  return [...byId.values()]
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0))
    .slice(-HISTORY_RUNS);
}

const PLOT = { w: 420, h: 160, left: 64, right: 12, top: 12, bottom: 28 };

/** One figure of one board over the runs: a point per run that measured it, the baseline as a line. */
function renderPlot(fig: Figure, board: BoardRun, runs: RunView[], currentId: string, base: number | null): string {
  const points = runs
    .map((r, i) => {
      const b = boardOf(r, board.deviceId);
      const v = b?.figures[fig.name] ?? null;
      return v === null || !Number.isFinite(v) ? null : { i, run: r, v, regression: checkOf(b, fig.name)?.regression === true };
    })
    .filter((p): p is NonNullable<typeof p> => p !== null);
  const attrs = `class="plot" data-figure="${escapeHtml(fig.name)}" data-device="${escapeHtml(board.deviceId)}" data-points="${points.length}"`;
  const title = `${fig.label} on ${board.deviceId}`;
  const head = `<svg ${attrs} viewBox="0 0 ${PLOT.w} ${PLOT.h}" width="${PLOT.w}" height="${PLOT.h}" role="img" aria-label="${escapeHtml(title)}" xmlns="http://www.w3.org/2000/svg"><title>${escapeHtml(title)}</title>`;
  if (points.length === 0) {
    return `${head}<text class="empty" x="${PLOT.w / 2}" y="${PLOT.h / 2}" text-anchor="middle">not measured</text></svg>`;
  }
  const values = points.map((p) => p.v);
  if (base !== null) values.push(base);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi === lo) {
    const pad = Math.abs(hi) * 0.05 || 1;
    lo -= pad;
    hi += pad;
  } else {
    const pad = (hi - lo) * 0.08;
    lo -= pad;
    hi += pad;
  }
  const plotW = PLOT.w - PLOT.left - PLOT.right;
  const plotH = PLOT.h - PLOT.top - PLOT.bottom;
  const x = (i: number): number => PLOT.left + (runs.length === 1 ? plotW / 2 : (i / (runs.length - 1)) * plotW);
  const y = (v: number): number => PLOT.top + (1 - (v - lo) / (hi - lo)) * plotH;
  const r2 = (n: number): string => n.toFixed(1);
  const parts: string[] = [head];
  parts.push(`<rect class="frame" x="${PLOT.left}" y="${PLOT.top}" width="${plotW}" height="${plotH}"/>`);
  parts.push(`<text class="tick" x="${PLOT.left - 4}" y="${r2(PLOT.top + 4)}" text-anchor="end">${escapeHtml(formatFigure(fig.name, hi))}</text>`);
  parts.push(`<text class="tick" x="${PLOT.left - 4}" y="${r2(PLOT.top + plotH)}" text-anchor="end">${escapeHtml(formatFigure(fig.name, lo))}</text>`);
  const first = runs[0]!.createdAt.slice(0, 10);
  const last = runs[runs.length - 1]!.createdAt.slice(0, 10);
  parts.push(`<text class="tick" x="${PLOT.left}" y="${PLOT.h - 8}">${escapeHtml(first)}</text>`);
  parts.push(`<text class="tick" x="${PLOT.w - PLOT.right}" y="${PLOT.h - 8}" text-anchor="end">${escapeHtml(last)} (${runs.length} runs)</text>`);
  if (base !== null) {
    parts.push(
      `<line class="baseline" data-baseline="${base}" x1="${PLOT.left}" x2="${PLOT.left + plotW}" y1="${r2(y(base))}" y2="${r2(y(base))}"><title>baseline ${escapeHtml(formatFigure(fig.name, base))}</title></line>`,
    );
  }
  const d = points.map((p, k) => `${k === 0 ? 'M' : 'L'}${r2(x(p.i))} ${r2(y(p.v))}`).join(' ');
  parts.push(`<path class="series" d="${d}"/>`);
  for (const p of points) {
    const cls = ['point', p.regression ? 'regressed' : '', p.run.id === currentId ? 'current' : ''].filter(Boolean).join(' ');
    const label = `${p.run.id} (${p.run.createdAt}): ${formatFigure(fig.name, p.v)}${p.regression ? ' — regression' : ''}`;
    parts.push(
      `<circle class="${cls}" data-run="${escapeHtml(p.run.id)}" cx="${r2(x(p.i))}" cy="${r2(y(p.v))}" r="${p.regression || p.run.id === currentId ? 4 : 3}"><title>${escapeHtml(label)}</title></circle>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

/** A plot's caption: the figure, its unit on this board (counter kind, energy source) and its direction. */
function figureCaption(fig: Figure, board: BoardRun): string {
  const f = board.figures;
  let text = fig.label;
  if (fig.name === 'counterPerStep' && f.counterUnit) text = `${f.counterUnit} per step`;
  else if (fig.name === 'energyPerStepUj') text += f.energySource ? ` (µJ, ${f.energySource})` : ' (µJ)';
  else if (fig.unit) text += ` (${fig.unit})`;
  return `${text}, ${fig.better} is better`;
}

function renderStages(board: BoardRun): string {
  return board.stages
    .map((s) => {
      const title = s.error ? `${s.error.code}: ${s.error.message}` : s.state;
      return `<span class="stage ${escapeHtml(s.state)}" title="${escapeHtml(title)}">${escapeHtml(s.name)} ${escapeHtml(s.state)}${s.ms !== null ? ` ${escapeHtml(formatMs(s.ms))}` : ''}</span>`;
    })
    .join(' ');
}

function renderSummaryRow(board: BoardRun, baseline: RunView | null): string {
  const cells: string[] = [];
  cells.push(`<th scope="row" class="device">${escapeHtml(board.deviceId)}<div class="sub">${escapeHtml([board.board, board.class].filter(Boolean).join(' · '))}</div></th>`);
  cells.push(`<td><span class="state ${escapeHtml(board.state)}">${escapeHtml(board.state)}</span></td>`);
  cells.push(
    board.failure
      ? `<td class="failure"><strong>${escapeHtml(board.failure.class)}</strong>${board.failure.stage ? ` in ${escapeHtml(board.failure.stage)}` : ''}<div class="message">${escapeHtml(board.failure.message)}</div></td>`
      : '<td class="failure">–</td>',
  );
  for (const fig of FIGURES) {
    const value = board.figures[fig.name];
    const base = baselineValue(board, baseline, fig.name);
    const check = checkOf(board, fig.name);
    const cls = ['figure', check?.regression ? 'regressed' : '', direction(fig, value, base)].filter(Boolean).join(' ');
    const tol = check ? `tolerance ${fig.name === 'accuracy' ? `${(check.tolerance * 100).toFixed(1)} pp` : `${(check.tolerance * 100).toFixed(1)} %`}` : 'no check';
    cells.push(
      `<td class="${cls}" data-figure="${fig.name}" title="${escapeHtml(tol)}"><div class="value">${escapeHtml(formatFigure(fig.name, value))}</div>` +
        `<div class="sub">baseline ${escapeHtml(formatFigure(fig.name, base))}</div><div class="delta">${escapeHtml(formatDelta(fig.name, value, base))}</div></td>`,
    );
  }
  const w = board.figures.weightsMatch;
  cells.push(`<td class="weights ${w === false ? 'regressed' : ''}">${w === null ? '–' : w ? 'match twin' : 'differ from twin'}</td>`);
  cells.push(`<td class="stages">${renderStages(board)}</td>`);
  const rowCls = board.state === 'regressed' || board.state === 'failed' ? ` class="${board.state}"` : '';
  return `<tr data-device="${escapeHtml(board.deviceId)}"${rowCls}>${cells.join('')}</tr>`;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d232a;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}h3{font-size:14px;margin:16px 0 6px}
.meta{color:#555;margin:0 0 12px}.meta span{margin-right:14px}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #d8dde3;padding:4px 6px;text-align:left;vertical-align:top}
thead th{background:#f3f5f7;font-weight:600}.sub{color:#666;font-size:12px}
td.figure .value{font-variant-numeric:tabular-nums;font-weight:600}.delta{font-size:12px;font-variant-numeric:tabular-nums}
td.better .delta{color:#1a7f37}td.worse .delta{color:#9a6700}
td.regressed{background:#ffebe9}td.regressed .delta{color:#cf222e;font-weight:600}
tr.failed th,tr.failed td.failure{background:#fff1f0}.failure .message{font-size:12px;color:#57606a;white-space:pre-wrap;word-break:break-word}
.state{display:inline-block;padding:0 6px;border-radius:8px;background:#eaeef2}.state.passed{background:#dafbe1}.state.regressed{background:#ffd8d3}
.state.failed{background:#cf222e;color:#fff}.state.cancelled,.state.interrupted{background:#fff8c5}
.stage{display:inline-block;font-size:11px;padding:0 4px;margin:1px;border-radius:4px;background:#eaeef2}
.stage.passed{background:#dafbe1}.stage.failed{background:#ffd8d3}.stage.skipped,.stage.cancelled{background:#fff8c5}
ul.regressions li{margin:2px 0}.badge{font-weight:600;padding:2px 8px;border-radius:10px}
.badge.passed{background:#dafbe1}.badge.regressed{background:#ffd8d3}.badge.failed{background:#cf222e;color:#fff}
.plots{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0}figcaption{font-size:12px;color:#444}
svg.plot{background:#fbfcfd;border:1px solid #e3e7eb}svg .frame{fill:none;stroke:#d8dde3}
svg .tick{font-size:10px;fill:#666}svg .empty{font-size:12px;fill:#888}
svg .series{fill:none;stroke:#0969da;stroke-width:1.5}svg .baseline{stroke:#6e7781;stroke-dasharray:4 3;stroke-width:1.2}
svg .point{fill:#0969da}svg .point.current{stroke:#1d232a;stroke-width:1.5}svg .point.regressed{fill:#cf222e}
.legend span{margin-right:12px;font-size:12px}
`;

/** The run's report: summary table, regressions, plots of every figure per board over `history` (this run included). */
export function renderReport(run: RunView, history: RunView[], baseline: RunView | null): string {
  const runs = plotRuns(run, history);
  const s = run.summary;
  const out: string[] = [];
  out.push('<!doctype html><html lang="en"><head><meta charset="utf-8">');
  out.push('<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">');
  out.push(`<title>${escapeHtml(`${run.suite} ${run.id}: ${run.state}`)}</title><style>${CSS}</style></head><body>`);
  out.push(`<h1>Suite ${escapeHtml(run.suite)} · run ${escapeHtml(run.id)} <span class="badge ${escapeHtml(run.state)}">${escapeHtml(run.state)}</span></h1>`);
  const meta: [string, string | null][] = [
    ['created', run.createdAt],
    ['started', run.startedAt],
    ['finished', run.finishedAt],
    ['trigger', run.trigger],
    ['by', run.actor],
    ['baseline', run.baselineRunId ?? 'none'],
  ];
  out.push(
    `<p class="meta">${meta
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `<span>${k} <b>${escapeHtml(v)}</b></span>`)
      .join('')}${run.isBaseline ? '<span><b>this run is the suite baseline</b></span>' : ''}</p>`,
  );
  out.push(
    `<p class="meta counts"><span>${s.boards} boards</span><span>${s.passed} passed</span><span>${s.regressed} regressed</span><span>${s.failed} failed</span></p>`,
  );

  if (s.regressions.length > 0) {
    out.push('<h2>Regressions</h2><ul class="regressions">');
    for (const r of s.regressions) {
      const fig = FIGURES.find((f) => f.name === r.figure);
      const fmt = (v: number | string | null): string => (fig && typeof v === 'number' ? formatFigure(fig.name, v) : v === null ? '–' : String(v));
      out.push(
        `<li data-device="${escapeHtml(r.deviceId)}"><b>${escapeHtml(r.deviceId)}</b> ${escapeHtml(fig?.label ?? r.figure)}: ${escapeHtml(fmt(r.before))} → ${escapeHtml(fmt(r.after))} — ${escapeHtml(r.message)}</li>`,
      );
    }
    out.push('</ul>');
  }

  out.push('<h2>Boards</h2><table class="summary"><thead><tr><th>board</th><th>state</th><th>failure</th>');
  for (const fig of FIGURES) out.push(`<th>${escapeHtml(fig.label)}</th>`);
  out.push('<th>weights</th><th>stages</th></tr></thead><tbody>');
  for (const board of run.boards) out.push(renderSummaryRow(board, baseline));
  out.push('</tbody></table>');

  out.push(
    `<h2>Figures over the last ${runs.length} run${runs.length === 1 ? '' : 's'}</h2>` +
      '<p class="legend"><span>● a run (outlined: this run)</span><span style="color:#cf222e">● regressed</span><span>- - - baseline</span></p>',
  );
  for (const board of run.boards) {
    out.push(`<section class="board-plots" data-device="${escapeHtml(board.deviceId)}"><h3>${escapeHtml(board.deviceId)}</h3><div class="plots">`);
    for (const fig of FIGURES) {
      out.push(
        `<figure>${renderPlot(fig, board, runs, run.id, baselineValue(board, baseline, fig.name))}<figcaption>${escapeHtml(figureCaption(fig, board))}</figcaption></figure>`,
      );
    }
    out.push('</div></section>');
  }
  out.push('</body></html>\n');
  return out.join('');
}
