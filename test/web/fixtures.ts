// RunView fixtures for the report, JUnit and page tests: a passed run, a run
// that regressed after 29 steady ones, and a run with a failed board whose id
// and message try to inject markup.
import type { BoardFigures, BoardRun, FigureCheck, FigureName, RunView, StageResult } from '../../server/src/regression/types.js';
import { FIGURES } from '../../server/src/regression/types.js';

export const EVIL_ID = '<img src=x onerror=alert(1)>';
export const SUITE = 'nightly-m4';

const TOLERANCE: Record<FigureName, number> = { accuracy: 0.02, counterPerStep: 0.05, peakRam: 0.02, stackPeak: 0.05, energyPerStepUj: 0.05 };

export const steadyFigures = (i = 0): BoardFigures => ({
  accuracy: 0.8 + (i % 3) * 0.002,
  counterPerStep: 812_000 + (i % 5) * 500,
  counterUnit: 'instructions',
  peakRam: 40_960,
  stackPeak: 1_800 + (i % 2) * 8,
  energyPerStepUj: 134.5 + (i % 4) * 0.3,
  energySource: 'estimated',
  steps: 300,
  weightsSha256: 'a'.repeat(64),
  twinSha256: 'a'.repeat(64),
  weightsMatch: true,
  wallMs: 4200,
});

const STAGES = ['flash', 'deploy', 'train', 'evaluate', 'snapshot', 'golden'] as const;

export function stages(failedAt?: (typeof STAGES)[number], error?: { code: string; message: string }): StageResult[] {
  let failed = false;
  return STAGES.map((name) => {
    if (failed) return { name, state: 'skipped', startedAt: null, ms: null, jobId: null, error: null };
    if (name === failedAt) {
      failed = true;
      return { name, state: 'failed', startedAt: '2025-01-30T02:00:05.000Z', ms: 2100, jobId: 'job_fail', error: error ?? { code: 'TR_DEVICE_ERROR', message: 'failed' } };
    }
    return { name, state: 'passed', startedAt: '2025-01-30T02:00:01.000Z', ms: 900, jobId: `job_${name}`, error: null };
  });
}

/** Checks of `figures` against `baseline`, regressions where worse beyond the tolerance. */
export function checksOf(figures: BoardFigures, baseline: BoardFigures | null): FigureCheck[] {
  return FIGURES.map((f) => {
    const value = figures[f.name];
    const base = baseline ? baseline[f.name] : null;
    const tolerance = TOLERANCE[f.name];
    let regression = false;
    if (value !== null && base !== null) {
      const slack = f.name === 'accuracy' ? tolerance : Math.abs(base) * tolerance;
      regression = f.better === 'higher' ? value < base - slack : value > base + slack;
    }
    return { figure: f.name, baseline: base, value, tolerance, ok: value !== null && !regression, regression };
  });
}

export function boardRun(deviceId: string, figures: BoardFigures, baseline: BoardFigures | null, over: Partial<BoardRun> = {}): BoardRun {
  const checks = checksOf(figures, baseline);
  const regressed = checks.some((c) => c.regression) || figures.weightsMatch === false;
  return {
    deviceId,
    board: 'qemu-m4',
    class: 'm4',
    state: regressed ? 'regressed' : 'passed',
    failure: null,
    stages: stages(),
    figures,
    checks,
    ...over,
  };
}

export function runView(id: string, at: Date, boards: BoardRun[], over: Partial<RunView> = {}): RunView {
  const regressions = boards.flatMap((b) =>
    b.checks
      .filter((c) => c.regression)
      .map((c) => ({ deviceId: b.deviceId, figure: c.figure, before: c.baseline, after: c.value, message: `${c.figure} worse than the baseline beyond ${c.tolerance}` })),
  );
  const count = (s: BoardRun['state']): number => boards.filter((b) => b.state === s).length;
  const failed = count('failed');
  const regressed = count('regressed');
  const iso = at.toISOString();
  return {
    id,
    suite: SUITE,
    state: failed ? 'failed' : regressed ? 'regressed' : 'passed',
    trigger: 'schedule',
    actor: null,
    createdAt: iso,
    startedAt: iso,
    finishedAt: new Date(at.getTime() + 95_000).toISOString(),
    baselineRunId: 'run_base',
    isBaseline: false,
    boards,
    summary: { boards: boards.length, passed: count('passed'), regressed, failed, regressions },
    ...over,
  };
}

const DEVICES = ['qemu-m4-0', 'twin-0'];
const day = (i: number): Date => new Date(Date.UTC(2025, 0, 1 + i, 2, 0, 0));

export const baselineRun = (): RunView =>
  runView('run_base', day(0), DEVICES.map((d) => boardRun(d, steadyFigures(0), null)), { baselineRunId: null, isBaseline: true });

/** A run whose every figure is within tolerance of the baseline. */
export function passedRun(): RunView {
  const base = steadyFigures(0);
  return runView('run_pass', day(5), DEVICES.map((d, i) => boardRun(d, steadyFigures(i + 1), base)));
}

/** 29 steady runs and then one where qemu-m4-0's accuracy fell and its counter per step rose: 30 runs, oldest first. */
export function regressedHistory(): { run: RunView; history: RunView[]; baseline: RunView } {
  const base = steadyFigures(0);
  const history: RunView[] = [baselineRun()];
  for (let i = 1; i < 29; i++) history.push(runView(`run_${String(i).padStart(2, '0')}`, day(i), DEVICES.map((d) => boardRun(d, steadyFigures(i), base))));
  const worse = { ...steadyFigures(29), accuracy: 0.71, counterPerStep: 990_000 };
  const run = runView('run_29', day(29), [boardRun('qemu-m4-0', worse, base), boardRun('twin-0', steadyFigures(29), base)]);
  history.push(run);
  return { run, history, baseline: history[0]! };
}

/** A run where one board lost its link in training (its id and message carry markup) and one passed. */
export function failedBoardRun(): RunView {
  const base = steadyFigures(0);
  const message = 'link lost in TRAIN after step 118 <script>alert("x")</script> & "quotes" \u0001';
  const failedFigures: BoardFigures = { ...steadyFigures(3), accuracy: null, energyPerStepUj: null, weightsSha256: null, weightsMatch: null, steps: 118 };
  const failed = boardRun(EVIL_ID, failedFigures, base, {
    state: 'failed',
    failure: { class: 'link-lost', stage: 'train', message },
    stages: stages('train', { code: 'TR_DEVICE_DISCONNECTED', message }),
  });
  return runView('run_fail', day(31), [failed, boardRun('twin-0', steadyFigures(31), base)]);
}
