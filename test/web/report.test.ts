// The run report (HTML) and the JUnit file, from fixture runs: what they show,
// that nothing from a run can inject markup, and that the XML parses.
import { describe, expect, it } from 'vitest';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { renderJunit } from '../../server/src/regression/junit.js';
import { HISTORY_RUNS, renderReport } from '../../server/src/regression/report.js';
import { FIGURES } from '../../server/src/regression/types.js';
import { EVIL_ID, SUITE, baselineRun, boardRun, failedBoardRun, passedRun, regressedHistory, runView, steadyFigures } from './fixtures.js';

/** The <svg> plots of a report, each with its figure, device and circles. */
function plots(html: string): { figure: string; device: string; circles: string[]; body: string }[] {
  return [...html.matchAll(/<svg class="plot" data-figure="([^"]*)" data-device="([^"]*)"[^>]*>([\s\S]*?)<\/svg>/g)].map((m) => ({
    figure: m[1]!,
    device: m[2]!,
    body: m[3]!,
    circles: [...m[3]!.matchAll(/<circle [^>]*>/g)].map((c) => c[0]),
  }));
}

/** A summary table row of the report, by its (escaped) device id. */
function row(html: string, device: string): string {
  const m = new RegExp(`<tr data-device="${device.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"[^>]*>([\\s\\S]*?)</tr>`).exec(html);
  if (!m) throw new Error(`no summary row for ${device}`);
  return m[1]!;
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => name === 'testcase' || name === 'property' });

describe('renderReport', () => {
  it('a passed run: a summary row per board with every figure, its baseline and delta, and nothing highlighted', () => {
    const run = passedRun();
    const html = renderReport(run, [baselineRun(), run], baselineRun());
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<span class="badge passed">passed</span>');
    for (const board of run.boards) {
      const r = row(html, board.deviceId);
      expect(r).toContain('<span class="state passed">passed</span>');
      for (const f of FIGURES) expect(r).toContain(`data-figure="${f.name}"`);
      expect(r).toContain('baseline 80.0 %');
      expect(r).not.toContain('regressed');
    }
    expect(html).not.toContain('<h2>Regressions</h2>');
    // one plot per board and figure, a point per run
    const ps = plots(html);
    expect(ps).toHaveLength(run.boards.length * FIGURES.length);
    for (const p of ps) expect(p.circles).toHaveLength(2);
  });

  it('a regressed run over 30 runs: regressions highlighted in the table and plotted, one point per run, the baseline as a line', () => {
    const { run, history, baseline } = regressedHistory();
    expect(history).toHaveLength(30);
    const html = renderReport(run, history, baseline);
    expect(html).toContain('<span class="badge regressed">regressed</span>');
    expect(html).toContain('<h2>Regressions</h2>');
    expect(html).toContain('Figures over the last 30 runs');

    const m4 = row(html, 'qemu-m4-0');
    expect(m4).toMatch(/<td class="figure regressed worse" data-figure="accuracy"[^>]*><div class="value">71\.0 %<\/div><div class="sub">baseline 80\.0 %<\/div><div class="delta">−9\.0 pp<\/div>/);
    expect(m4).toMatch(/<td class="figure regressed worse" data-figure="counterPerStep"[^>]*><div class="value">990,000<\/div><div class="sub">baseline 812,000<\/div><div class="delta">\+178,000 \(\+21\.9 %\)<\/div>/);
    expect(m4).toMatch(/<td class="figure same" data-figure="peakRam"/);
    expect(row(html, 'twin-0')).not.toContain('regressed');

    const ps = plots(html);
    expect(ps).toHaveLength(2 * FIGURES.length);
    for (const p of ps) {
      expect(p.circles, `${p.device} ${p.figure}`).toHaveLength(30);
      expect(p.body).toContain('<line class="baseline"');
      expect(p.body).toMatch(/<path class="series" d="M[\d. LM]+"/);
      // the newest point is this run
      expect(p.circles.at(-1)).toContain('data-run="run_29"');
      expect(p.circles.at(-1)).toContain('current');
    }
    const acc = ps.find((p) => p.device === 'qemu-m4-0' && p.figure === 'accuracy')!;
    expect(acc.circles.filter((c) => c.includes('regressed'))).toEqual([acc.circles.at(-1)]);
    // the baseline line sits at the baseline's value
    expect(acc.body).toContain('data-baseline="0.8"');
    expect(ps.find((p) => p.device === 'twin-0' && p.figure === 'accuracy')!.circles.some((c) => c.includes('regressed'))).toBe(false);
  });

  it('keeps the last 30 runs of a longer history, oldest first, whatever order they come in', () => {
    const { run, history, baseline } = regressedHistory();
    const older = [1, 2, 3, 4, 5].map((i) => runView(`run_old${i}`, new Date(Date.UTC(2024, 11, i)), history[1]!.boards));
    const html = renderReport(run, [...history, ...older].reverse(), baseline);
    const acc = plots(html).find((p) => p.device === 'qemu-m4-0' && p.figure === 'accuracy')!;
    expect(acc.circles).toHaveLength(30);
    expect(acc.circles[0]).toContain('data-run="run_base"');
    expect(html).not.toContain('run_old');
    // this run is plotted even when the caller left it out of history
    expect(plots(renderReport(run, history.slice(0, 10), baseline))[0]!.circles).toHaveLength(11);
  });

  it('a failed board: its failure class, stage and message in the table, no points for what it did not measure', () => {
    const run = failedBoardRun();
    const earlier = runView('run_prev', new Date(Date.UTC(2025, 0, 30)), [boardRun(EVIL_ID, steadyFigures(2), null), run.boards[1]!]);
    const html = renderReport(run, [earlier, run], baselineRun());
    const escapedId = '&lt;img src=x onerror=alert(1)&gt;';
    const r = row(html, escapedId);
    expect(r).toContain('<span class="state failed">failed</span>');
    expect(r).toContain('<strong>link-lost</strong> in train');
    expect(r).toContain('link lost in TRAIN after step 118 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;');
    expect(r).toContain('<span class="stage failed"');
    const acc = plots(html).find((p) => p.device === escapedId && p.figure === 'accuracy')!;
    expect(acc.circles).toHaveLength(1); // the earlier run measured it, this run did not
    expect(acc.circles[0]).toContain('data-run="run_prev"');
    const ram = plots(html).find((p) => p.device === escapedId && p.figure === 'peakRam')!;
    expect(ram.circles).toHaveLength(2);
  });

  it('escapes every string from the run: a device id with markup appears only escaped', () => {
    const run = failedBoardRun();
    const html = renderReport(run, [run], null);
    expect(html).not.toContain(EVIL_ID);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html.match(/&lt;img src=x onerror=alert\(1\)&gt;/g)!.length).toBeGreaterThan(5);
  });

  it('is self-contained: no scripts, no external URLs, no stylesheet links', () => {
    const { run, history, baseline } = regressedHistory();
    const html = renderReport(run, history, baseline);
    expect(html).not.toMatch(/<script|<link rel="stylesheet"|<img|@import|url\(/);
    // the only URL-like text is the SVG namespace, which is never fetched
    const urls = [...html.matchAll(/(?:href|src)="([^"]*)"/g)].map((m) => m[1]);
    expect(urls).toEqual(['data:,']);
  });
});

describe('renderJunit', () => {
  it('a passed run: one testsuite named after the suite, a testcase per board and check, no failures, well-formed', () => {
    const run = passedRun();
    const xml = renderJunit(run);
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = parser.parse(xml);
    const suite = doc.testsuites.testsuite;
    expect(suite.name).toBe(SUITE);
    // five figure checks and the weights comparison per board
    expect(suite.testcase).toHaveLength(run.boards.length * (FIGURES.length + 1));
    expect(suite.tests).toBe(String(suite.testcase.length));
    expect(suite.failures).toBe('0');
    expect(suite.testcase.filter((c: { failure?: unknown }) => c.failure)).toEqual([]);
    expect(suite.testcase.map((c: { classname: string; name: string }) => `${c.classname} ${c.name}`)).toContain(`${SUITE}.twin-0 accuracy`);
  });

  it('a regressed run: a <failure> for each regression with the figures before and after', () => {
    const { run } = regressedHistory();
    const xml = renderJunit(run);
    expect(XMLValidator.validate(xml)).toBe(true);
    const suite = parser.parse(xml).testsuites.testsuite;
    const failures = suite.testcase.filter((c: { failure?: unknown }) => c.failure);
    expect(failures.map((c: { classname: string; name: string }) => `${c.classname} ${c.name}`)).toEqual([
      `${SUITE}.qemu-m4-0 accuracy`,
      `${SUITE}.qemu-m4-0 counterPerStep`,
    ]);
    expect(suite.failures).toBe('2');
    const acc = failures[0].failure;
    expect(acc.type).toBe('regression');
    expect(acc.message).toBe('accuracy regressed on qemu-m4-0: 80.0 % → 71.0 % (tolerance 2.0 pp)');
    expect(acc['#text']).toContain('baseline (before): 80.0 %');
    expect(acc['#text']).toContain('this run (after): 71.0 %');
    expect(failures[1].failure['#text']).toContain('this run (after): 990,000');
  });

  it('a failed board: a testcase for its failed stage with the failure class; markup and control characters escaped, the XML still parses', () => {
    const run = failedBoardRun();
    const xml = renderJunit(run);
    expect(xml).not.toContain('<img');
    expect(xml).not.toContain('<script');
    expect(xml).not.toContain('\u0001');
    expect(XMLValidator.validate(xml)).toBe(true);
    const suite = parser.parse(xml).testsuites.testsuite;
    const evil = suite.testcase.filter((c: { classname: string }) => c.classname === `${SUITE}.${EVIL_ID}`);
    // five checks (two not measured, so skipped) and the failed train stage; no weights comparison
    expect(evil.map((c: { name: string }) => c.name)).toEqual([...FIGURES.map((f) => f.name), 'stage train']);
    expect(evil.filter((c: { skipped?: unknown }) => c.skipped !== undefined).map((c: { name: string }) => c.name)).toEqual(['accuracy', 'energyPerStepUj']);
    const stage = evil.at(-1);
    expect(stage.time).toBe('2.100');
    expect(stage.failure.type).toBe('link-lost');
    expect(stage.failure.message).toContain('train: TR_DEVICE_DISCONNECTED: link lost in TRAIN after step 118 <script>alert("x")</script> & "quotes"');
    expect(suite.failures).toBe('1');
    expect(parser.parse(xml).testsuites.failures).toBe('1');
  });
});
