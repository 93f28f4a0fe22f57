// tinyrig run <suite>: starts a regression run, shows its progress (stages
// done on every board) until it ends, prints each board's figures and every
// regression; exits 1 when anything regressed or failed.
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { ApiClient } from './client.js';
import { num, pct, table } from './format.js';
import type { RunView } from '../regression/types.js';

export interface RunCliContext {
  api: () => ApiClient;
  json: () => boolean;
  out: (s: string) => void;
  err: (s: string) => void;
  /** The run ended with regressions or failures (exit code 1). */
  failed: (message: string) => Error;
}

const stagesDone = (r: RunView): [number, number] => {
  const all = r.boards.flatMap((b) => b.stages);
  return [all.filter((s) => !['pending', 'running'].includes(s.state)).length, all.length];
};

export function runCommands(program: Command, ctx: RunCliContext): void {
  program
    .command('run <suite>')
    .description('run a regression suite (suites/<suite>.yaml) on its boards; exit 1 when anything regressed or failed')
    .option('--poll <ms>', 'how often to read the run', (v) => Number(v), 1000)
    .action(async (suite: string, o: { poll: number }) => {
      const api = ctx.api();
      let r = (await api.post<RunView>('/v1/runs', { suite })).body;
      const bar = ctx.json()
        ? null
        : new cliProgress.SingleBar(
            { stream: process.stderr, format: `${r.id} ${suite} {bar} {value}/{total} stages | {state}`, noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 2000 },
            cliProgress.Presets.shades_classic,
          );
      bar?.start(stagesDone(r)[1], 0, { state: r.state });
      while (r.state === 'running' || r.state === 'queued') {
        await new Promise((res) => setTimeout(res, o.poll));
        r = await api.get<RunView>(`/v1/runs/${r.id}`);
        bar?.update(stagesDone(r)[0], { state: r.state });
      }
      bar?.stop();
      if (ctx.json()) ctx.out(JSON.stringify(r, null, 2));
      else {
        ctx.out(
          table(
            ['BOARD', 'STATE', 'FAILURE', 'ACCURACY', 'PER STEP', 'UNIT', 'ARENA PEAK', 'µJ/STEP', 'TWIN WEIGHTS'],
            r.boards.map((b) => [
              b.deviceId, b.state, b.failure ? `${b.failure.class} (${b.failure.stage})` : null, pct(b.figures.accuracy),
              b.figures.counterPerStep === null ? null : Math.round(b.figures.counterPerStep), b.figures.counterUnit, b.figures.peakRam,
              num(b.figures.energyPerStepUj, 2), b.figures.weightsMatch === null ? null : b.figures.weightsMatch ? 'equal' : 'DIFFER',
            ]),
          ),
        );
        for (const g of r.summary.regressions) ctx.out(`REGRESSION ${g.message}`);
        ctx.out(`run ${r.id} ${r.state}: ${r.summary.passed} passed, ${r.summary.regressed} regressed, ${r.summary.failed} failed; report ${api.url(`/v1/runs/${r.id}/report.html`)}`);
      }
      if (r.state !== 'passed') throw ctx.failed(`run ${r.id} ${r.state}`);
    });
}
