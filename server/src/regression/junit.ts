// A run as a JUnit XML file, the format CI systems list as tests: one
// testsuite for the suite, a testcase per board and check (and per failed
// stage), a <failure> for every regression and failure with the figures before
// and after in its text.
import { FIGURES, type BoardRun, type FigureCheck, type RunView, type StageResult } from './types.js';
import { formatFigure } from './report.js';

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Text safe in XML content and attributes; characters XML 1.0 cannot hold become U+FFFD. */
export function escapeXml(value: unknown): string {
  return String(value ?? '')
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

const seconds = (ms: number | null | undefined): string => ((ms ?? 0) / 1000).toFixed(3);

interface Case {
  classname: string;
  name: string;
  ms: number | null;
  failure?: { type: string; message: string; text: string };
  skipped?: string;
  out?: string;
}

function checkCase(board: BoardRun, check: FigureCheck, classname: string): Case {
  const fig = FIGURES.find((f) => f.name === check.figure);
  const label = fig?.label ?? check.figure;
  const fmt = (v: number | null): string => formatFigure(check.figure, v);
  const tolerance = check.figure === 'accuracy' ? `${(check.tolerance * 100).toFixed(1)} pp` : `${(check.tolerance * 100).toFixed(1)} %`;
  const figures =
    `baseline (before): ${fmt(check.baseline)}\nthis run (after): ${fmt(check.value)}\ntolerance: ${tolerance}` +
    `${fig ? `, ${fig.better} is better` : ''}\nboard: ${board.deviceId}${board.board ? ` (${board.board})` : ''}`;
  const c: Case = { classname, name: check.figure, ms: null };
  if (check.regression) {
    c.failure = { type: 'regression', message: `${label} regressed on ${board.deviceId}: ${fmt(check.baseline)} → ${fmt(check.value)} (tolerance ${tolerance})`, text: figures };
  } else if (check.value === null) {
    c.skipped = `${label} was not measured on ${board.deviceId}`;
  } else {
    c.out = figures;
  }
  return c;
}

function stageCase(board: BoardRun, stage: StageResult, classname: string): Case {
  const cls = board.failure && (board.failure.stage === stage.name || board.failure.stage === null) ? board.failure.class : 'failed';
  const why = stage.error ? `${stage.error.code}: ${stage.error.message}` : (board.failure?.message ?? 'stage failed');
  const text = [
    `stage ${stage.name} failed on ${board.deviceId}${board.board ? ` (${board.board})` : ''}`,
    `failure class: ${cls}`,
    stage.error ? `error: ${stage.error.code}: ${stage.error.message}` : null,
    board.failure && board.failure.message !== stage.error?.message ? `board: ${board.failure.message}` : null,
    stage.jobId ? `job: ${stage.jobId}` : null,
  ]
    .filter(Boolean)
    .join('\n');
  return { classname, name: `stage ${stage.name}`, ms: stage.ms, failure: { type: cls, message: `${stage.name}: ${why}`, text } };
}

/** The testcases of one board: each check, the weights against the twin, each failed stage. */
function boardCases(run: RunView, board: BoardRun): Case[] {
  const classname = `${run.suite}.${board.deviceId}`;
  const cases = board.checks.map((c) => checkCase(board, c, classname));
  const f = board.figures;
  if (f.weightsMatch !== null) {
    const text = `weights: ${f.weightsSha256 ?? '–'}\ntwin:    ${f.twinSha256 ?? '–'}`;
    cases.push(
      f.weightsMatch
        ? { classname, name: 'weights', ms: null, out: text }
        : { classname, name: 'weights', ms: null, failure: { type: 'weights-mismatch', message: `weights on ${board.deviceId} differ from the host twin's after the same stream`, text } },
    );
  }
  const failedStages = board.stages.filter((s) => s.state === 'failed');
  for (const s of failedStages) cases.push(stageCase(board, s, classname));
  // a board that failed before any stage said so (or was cancelled) still shows as a failure
  if (board.failure && failedStages.length === 0) {
    cases.push({
      classname,
      name: board.failure.stage ? `stage ${board.failure.stage}` : 'run',
      ms: null,
      failure: { type: board.failure.class, message: board.failure.message, text: `${board.failure.class} on ${board.deviceId}: ${board.failure.message}` },
    });
  }
  if (cases.length === 0) cases.push({ classname, name: 'run', ms: null, skipped: `board ${board.state}: nothing measured` });
  return cases;
}

function renderCase(c: Case): string {
  const open = `    <testcase classname="${escapeXml(c.classname)}" name="${escapeXml(c.name)}" time="${seconds(c.ms)}"`;
  const body: string[] = [];
  if (c.failure) body.push(`      <failure type="${escapeXml(c.failure.type)}" message="${escapeXml(c.failure.message)}">${escapeXml(c.failure.text)}</failure>`);
  if (c.skipped) body.push(`      <skipped message="${escapeXml(c.skipped)}"/>`);
  if (c.out) body.push(`      <system-out>${escapeXml(c.out)}</system-out>`);
  return body.length ? `${open}>\n${body.join('\n')}\n    </testcase>` : `${open}/>`;
}

/** JUnit XML of a run: one <testsuite name=suite>, a <testcase> per board × check and per failed stage. */
export function renderJunit(run: RunView): string {
  const cases = run.boards.flatMap((b) => boardCases(run, b));
  const failures = cases.filter((c) => c.failure).length;
  const skipped = cases.filter((c) => c.skipped).length;
  const wallMs = run.startedAt && run.finishedAt ? Date.parse(run.finishedAt) - Date.parse(run.startedAt) : null;
  const time = seconds(wallMs !== null && Number.isFinite(wallMs) ? wallMs : null);
  const props: [string, string | null][] = [
    ['run', run.id],
    ['state', run.state],
    ['trigger', run.trigger],
    ['actor', run.actor],
    ['baselineRunId', run.baselineRunId],
  ];
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="tinyrig" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${time}">`,
    `  <testsuite name="${escapeXml(run.suite)}" id="${escapeXml(run.id)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${time}" timestamp="${escapeXml((run.startedAt ?? run.createdAt).replace(/Z$/, ''))}">`,
    '    <properties>',
    ...props.filter(([, v]) => v !== null).map(([k, v]) => `      <property name="${k}" value="${escapeXml(v)}"/>`),
    '    </properties>',
    ...cases.map(renderCase),
    '  </testsuite>',
    '</testsuites>',
    '',
  ];
  return lines.join('\n');
}
