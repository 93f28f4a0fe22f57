// The shapes of regression suites and runs: what GET /v1/runs/:id answers,
// what the report, the JUnit file and the lab page read.

/** A figure a run measures on every board, compared with the suite's baseline. */
export type FigureName = 'accuracy' | 'counterPerStep' | 'peakRam' | 'stackPeak' | 'energyPerStepUj';

export const FIGURES: { name: FigureName; label: string; unit: string; better: 'higher' | 'lower' }[] = [
  { name: 'accuracy', label: 'accuracy', unit: '', better: 'higher' },
  { name: 'counterPerStep', label: 'instructions or cycles per step', unit: 'per step', better: 'lower' },
  { name: 'peakRam', label: 'arena peak', unit: 'B', better: 'lower' },
  { name: 'stackPeak', label: 'stack peak', unit: 'B', better: 'lower' },
  { name: 'energyPerStepUj', label: 'energy per step', unit: 'µJ', better: 'lower' },
];

export type StageName = 'flash' | 'deploy' | 'train' | 'evaluate' | 'snapshot' | 'golden';
export type StageState = 'pending' | 'running' | 'passed' | 'failed' | 'skipped' | 'cancelled';
/** Why a board's run failed: the stage said, in words a lab uses. */
export type FailureClass = 'flash-error' | 'timeout' | 'board-reset' | 'link-lost' | 'weights-mismatch' | 'device-error' | 'cancelled' | 'interrupted';

export interface StageResult {
  name: StageName;
  state: StageState;
  startedAt: string | null;
  ms: number | null;
  jobId: string | null;
  error: { code: string; message: string } | null;
}

export interface BoardFigures {
  accuracy: number | null;
  counterPerStep: number | null;
  /** cycles, instructions (emulated) or ns (host twin) */
  counterUnit: string | null;
  peakRam: number | null;
  stackPeak: number | null;
  energyPerStepUj: number | null;
  energySource: 'measured' | 'estimated' | null;
  steps: number | null;
  weightsSha256: string | null;
  /** The host twin's weights after the same stream (the golden reference). */
  twinSha256: string | null;
  weightsMatch: boolean | null;
  wallMs: number | null;
}

export interface FigureCheck {
  figure: FigureName;
  baseline: number | null;
  value: number | null;
  /** Relative (counter, RAM, energy) or absolute (accuracy) slack the suite allows. */
  tolerance: number;
  ok: boolean;
  /** Worse than the baseline beyond the tolerance. */
  regression: boolean;
}

export interface BoardRun {
  deviceId: string;
  /** The rig host whose board it is, when another host than the run's ran its part. */
  host?: string;
  board: string | null;
  class: string | null;
  state: 'pending' | 'running' | 'passed' | 'regressed' | 'failed' | 'cancelled' | 'interrupted';
  failure: { class: FailureClass; stage: StageName | null; message: string } | null;
  stages: StageResult[];
  figures: BoardFigures;
  checks: FigureCheck[];
}

export interface Regression {
  deviceId: string;
  figure: FigureName | 'weights';
  before: number | string | null;
  after: number | string | null;
  message: string;
}

export interface RunView {
  id: string;
  suite: string;
  state: 'queued' | 'running' | 'passed' | 'regressed' | 'failed' | 'cancelled' | 'interrupted';
  trigger: 'api' | 'schedule' | 'cli';
  actor: string | null;
  /** The rig host that runs it (keeps its record; only its own restart interrupts it). */
  host?: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The run whose figures this one was compared with (the suite's baseline then), or null. */
  baselineRunId: string | null;
  /** Whether this run is the suite's baseline now. */
  isBaseline: boolean;
  boards: BoardRun[];
  summary: { boards: number; passed: number; regressed: number; failed: number; regressions: Regression[] };
}
