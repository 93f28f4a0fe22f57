// tinyrig: the command line over the daemon's REST API.
//   tinyrig devices | deploy | samples | train | evaluate | snapshot | snapshots |
//           rollback | fleet-rollback | jobs | metrics | health
// Exit codes: 0 done, 1 the daemon refused or failed the request, 2 bad usage,
// 3 daemon unreachable, 4 the job ran and failed.
import type { Static } from '@fastify/type-provider-typebox';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ApiClient, ApiError, ConnectError, resolveToken, type Query } from './client.js';
import { datasetCommands } from './datasets.js';
import { modelCommands } from './models.js';
import { runCommands } from './runs.js';
import { followJob, type JobView } from './follow.js';
import type { SnapshotView } from '../routes/schemas.js';
import { kib, num, pct, record, shortHash, table } from './format.js';

export const EXIT = { ok: 0, api: 1, usage: 2, unreachable: 3, jobFailed: 4 } as const;

class JobFailed extends Error {
  constructor(readonly job: JobView) {
    super(`job ${job.id} failed: ${job.error ? `${job.error.code}: ${job.error.message}` : 'no error given'}`);
  }
}

class UsageError extends Error {}

/** A regression run that did not pass (exit code 1). */
class RunNotPassed extends Error {}

const int = (name: string, min = 0) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  return Number(v);
};
const float = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
  return n;
};
const intList = (name: string) => (v: string) =>
  v.split(',').map((s) => {
    const t = s.trim();
    if (!/^\d+$/.test(t)) throw new InvalidArgumentError(`${name} must be a comma-separated list of layer indexes`);
    return Number(t);
  });
const strList = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** --dataset/--split/--offset/--count of a dataset slice; `count` says whether --count is required. */
function sliceOptions(cmd: Command, split: 'train' | 'test', count: 'required' | string): Command {
  cmd
    .option('--dataset <name>', 'dataset', 'fashion-mnist')
    .option('--split <split>', 'train or test', split)
    .option('--offset <n>', 'first sample', int('--offset'), 0);
  return count === 'required' ? cmd.requiredOption('--count <n>', 'samples', int('--count', 1)) : cmd.option('--count <n>', count, int('--count', 1));
}

interface Globals {
  url: string;
  token?: string;
  json: boolean;
}

interface Device {
  id: string;
  host?: string;
  board: string | null;
  class: string | null;
  state: string;
  busy: string | null;
  emulated: boolean;
  tags: string[];
  model: { name: string | null; weightsSha256?: string | null } | null;
  steps: number | null;
  ram: { total: number | null; peak: number | null } | null;
  counters?: { linkErrors: number; resets: number };
  lastError: unknown;
}

type Snapshot = Static<typeof SnapshotView>;

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: CliIo = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
};

export function buildProgram(io: CliIo = defaultIo): Command {
  const program = new Command('tinyrig');
  program
    .description('Drive a tinyrig daemon: boards, on-device training, weight snapshots and rollbacks')
    .addOption(new Option('--url <url>', 'daemon address').env('TINYRIG_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--token <token>', 'bearer token (default: $TINYRIG_TOKEN, else $TINYRIG_VAR/admin.token, var/admin.token)'))
    .option('--json', 'print the daemon answers as JSON', false)
    .showHelpAfterError('(tinyrig <command> --help for usage)')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride();

  const ctx = () => {
    const g = program.opts<Globals>();
    return { g, api: new ApiClient(g.url, resolveToken(g.token)) };
  };
  const print = (json: unknown, human: () => string) => {
    const { g } = ctx();
    io.out(g.json ? JSON.stringify(json, null, 2) : human());
  };

  /** 202 → job id (print or follow); 200 with ?wait → finished job. */
  const jobCommand = async (route: string, body: unknown, wait: boolean, summary: (j: JobView) => string) => {
    const { g, api } = ctx();
    const { body: accepted } = await api.post<{ jobId: string; href: string }>(route, body);
    if (!wait) {
      print(accepted, () => `job ${accepted.jobId} queued; follow it with: tinyrig jobs ${accepted.jobId} --follow`);
      return;
    }
    if (!g.json) io.err(`job ${accepted.jobId}`);
    const job = await followJob(api, accepted.jobId, { json: g.json, write: io.out, log: io.err });
    if (!g.json) io.out(summary(job));
    else io.out(JSON.stringify({ event: 'job', data: job }));
    if (job.state === 'failed') throw new JobFailed(job);
  };

  program
    .command('health')
    .description('daemon status')
    .action(async () => {
      const h = await ctx().api.get<Record<string, unknown>>('/v1/health');
      print(h, () => record(h));
    });

  program
    .command('devices [id]')
    .description('list boards, or show one')
    .option('--tag <tag>', 'only boards with this tag')
    .option('--board <board>', 'only boards of this kind')
    .option('--refresh', 'read STATS from the board now (one board)')
    .action(async (id: string | undefined, o: { tag?: string; board?: string; refresh?: boolean }) => {
      const { api } = ctx();
      if (id) {
        const d = await api.get<Record<string, unknown>>(`/v1/devices/${encodeURIComponent(id)}`, { refresh: o.refresh });
        print(d, () => record(d));
        return;
      }
      const r = await api.get<{ devices: Device[] }>('/v1/devices', { tag: o.tag, board: o.board });
      print(r, () =>
        table(
          ['ID', 'HOST', 'BOARD', 'CLASS', 'STATE', 'BUSY', 'MODEL', 'WEIGHTS', 'STEPS', 'RAM PEAK/TOTAL', 'TAGS'],
          r.devices.map((d) => [
            d.id,
            d.host,
            d.board,
            d.class,
            d.state,
            d.busy,
            d.model?.name,
            shortHash(d.model?.weightsSha256),
            d.steps,
            d.ram ? `${kib(d.ram.peak)}/${kib(d.ram.total)}` : null,
            d.tags.join(','),
          ]),
        ),
      );
    });

  program
    .command('deploy <device>')
    .description('load a zoo model with a fresh seeded init, or a stored snapshot')
    .option('--model <name>', 'zoo model, e.g. cnn')
    .option('--seed <n>', 'init seed', int('--seed'), 1)
    .option('--snapshot <id>', 'a stored snapshot instead of a fresh model')
    .action(async (device: string, o: { model?: string; seed: number; snapshot?: string }) => {
      if (!!o.model === !!o.snapshot) throw new UsageError('deploy needs exactly one of --model <name> or --snapshot <id>');
      const body = o.snapshot ? { snapshotId: o.snapshot } : { model: o.model, seed: o.seed };
      const { body: r } = await ctx().api.post<Record<string, unknown>>(`/v1/devices/${encodeURIComponent(device)}/model`, body);
      print(r, () => record(r));
    });

  sliceOptions(program.command('samples <device>').description('stream a dataset slice into the board sample ring'), 'train', 'required')
    .action(async (device: string, o: { dataset: string; split: string; offset: number; count: number }) => {
      const { body: r } = await ctx().api.post<Record<string, unknown>>(`/v1/devices/${encodeURIComponent(device)}/samples`, o);
      print(r, () => record(r));
    });

  sliceOptions(
    program.command('train <device>').description('train on the board: a dataset slice (one step per sample) or --steps over the samples it holds'),
    'train',
    'samples to stream and train on',
  )
    .option('--steps <n>', 'steps over the samples already on the board (the newest)', int('--steps', 1))
    .option('--epochs <n>', 'passes over the slice (the whole split without --count), each in a seeded shuffled order', int('--epochs', 1))
    .option('--seed <n>', 'seeds the shuffle (the same seed, the same weights)', int('--seed'))
    .option('--schedule <kind>', 'learning-rate schedule: constant, step or cosine')
    .option('--lr-min <x>', 'cosine: the rate it ends at', float('--lr-min'))
    .option(
      '--lr <x>',
      'learning rate (default 0.002 with standardized gradients, useful 0.001-0.005; 0.005 with --qas, useful 0.005-0.02)',
      float('--lr'),
    )
    .option('--lambda-min <x>', 'sparse update: smallest fraction of channels updated', float('--lambda-min'))
    .option('--lambda-max <x>', 'sparse update: largest fraction of channels updated', float('--lambda-max'))
    .option('--trainable <layers>', 'only these layers learn (comma-separated indexes)', intList('--trainable'))
    .option('--bias-only <layers>', 'these layers update only their biases', intList('--bias-only'))
    .option('--qas', 'optimizer: int8 SGD with quantization-aware gradient scaling (default: standardized gradients)')
    .option('--stochastic-rounding', 'stochastic rounding of updates')
    .option('--guard <margin|off>', 'evaluate before and after, roll back when accuracy drops by more than margin')
    .option('--wait', 'follow the job with a progress bar until it ends')
    .addHelpText(
      'after',
      '\nSamples are uint8, one byte per input element (the model scales it as value/255).\n' +
        'The default optimizer is standardized gradients: each channel\'s gradient divided by its spread, batch size 1.',
    )
    .action(async (device: string, o: Record<string, unknown>) => {
      const slice = o.count !== undefined || o.epochs !== undefined;
      if (slice === (o.steps !== undefined)) {
        throw new UsageError('train needs a dataset slice (--count <n> and/or --epochs <n>) or --steps <n>, not both');
      }
      if (o.schedule !== undefined && !['constant', 'step', 'cosine'].includes(String(o.schedule))) {
        throw new UsageError('--schedule is constant, step or cosine');
      }
      const body: Record<string, unknown> = {};
      if (o.lr !== undefined) body.lr = o.lr;
      if (slice) Object.assign(body, { dataset: o.dataset, split: o.split, offset: o.offset, count: o.count });
      else body.steps = o.steps;
      for (const k of ['epochs', 'seed', 'schedule', 'lrMin'] as const) if (o[k] !== undefined) body[k] = o[k];
      if (o.lambdaMin !== undefined || o.lambdaMax !== undefined) {
        body.sparse = { lambdaMin: o.lambdaMin ?? o.lambdaMax, lambdaMax: o.lambdaMax ?? 1 };
      }
      if (o.trainable) body.trainableLayers = o.trainable;
      if (o.biasOnly) body.biasOnlyLayers = o.biasOnly;
      if (o.qas) body.qas = true;
      if (o.stochasticRounding) body.stochasticRounding = true;
      if (o.guard !== undefined) {
        if (o.guard === 'off') body.guard = false;
        else body.guard = { margin: float('--guard')(String(o.guard)) };
      }
      await jobCommand(`/v1/devices/${encodeURIComponent(device)}/train`, body, !!o.wait, (j) => {
        const r = (j.result ?? {}) as Record<string, number | null | string | object>;
        if (j.state !== 'succeeded') return `job ${j.id} ${j.state}`;
        const epochs = (r.epochs as { epoch: number; meanLoss: number; trainAccuracy: number }[] | undefined)
          ?.map((e) => `\n  epoch ${e.epoch}: mean loss ${num(e.meanLoss)}, train accuracy ${pct(e.trainAccuracy)}`)
          .join('') ?? '';
        return `trained ${r.steps} steps on ${device}: mean loss ${num(r.meanLoss as number)}, train accuracy ${pct(r.trainAccuracy as number)}, weights ${shortHash(r.weightsSha256 as string)}${r.guard ? `, guard ${JSON.stringify(r.guard)}` : ''}${epochs}`;
      });
    });

  sliceOptions(
    program
      .command('evaluate <device>')
      .alias('eval')
      .description('accuracy, loss, per-class figures and confusion matrix on the board: a dataset slice, or the samples it holds'),
    'test',
    'samples (none: the samples on the board)',
  )
    .option('--wait', 'follow the job until it ends')
    .option('--held', 'evaluate the samples the board holds instead of a dataset slice')
    .action(async (device: string, o: { dataset: string; split: string; offset: number; count?: number; wait?: boolean; held?: boolean }) => {
      // a dataset slice (to the end of the split without --count), or with --held the board's ring
      const body = o.held ? {} : { dataset: o.dataset, split: o.split, offset: o.offset, count: o.count };
      await jobCommand(`/v1/devices/${encodeURIComponent(device)}/evaluate`, body, !!o.wait, (j) => {
        const r = (j.result ?? {}) as {
          accuracy?: number; loss?: number; count?: number; correct?: number;
          classes?: { label: number; name: string | null; count: number; correct: number; accuracy: number | null; loss: number | null }[] | null;
          confusion?: number[][] | null;
        };
        if (j.state !== 'succeeded') return `job ${j.id} ${j.state}`;
        const head = `accuracy ${pct(r.accuracy)} (${r.correct}/${r.count}), loss ${num(r.loss)}`;
        if (!r.classes || !r.confusion) return head;
        const perClass = table(
          ['CLASS', 'NAME', 'SAMPLES', 'CORRECT', 'ACCURACY', 'LOSS', ...r.confusion.map((_, i) => `>${i}`)],
          r.classes.map((c) => [c.label, c.name, c.count, c.correct, pct(c.accuracy), num(c.loss), ...r.confusion![c.label]]),
        );
        return `${head}\n${perClass}\n(>k: samples of the class predicted as k)`;
      });
    });

  program
    .command('snapshot <device>')
    .description('pull the board weights, verify their hash and store them')
    .option('--tag <tags>', 'tags (repeat or comma-separate)', strList)
    .option('--evaluate <count>', 'evaluate on this many test samples first (marks it good when accurate enough)', int('--evaluate', 1))
    .action(async (device: string, o: { tag?: string[]; evaluate?: number }) => {
      const body: Record<string, unknown> = {};
      if (o.tag?.length) body.tags = o.tag;
      if (o.evaluate) body.evaluate = { dataset: 'fashion-mnist', split: 'test', offset: 0, count: o.evaluate };
      const { body: s } = await ctx().api.post<Snapshot>(`/v1/devices/${encodeURIComponent(device)}/snapshots`, body);
      print(s, () => record(s as unknown as Record<string, unknown>));
    });

  program
    .command('snapshots [id]')
    .description('list stored snapshots, or show one')
    .option('--device <id>', 'of this board')
    .option('--good', 'only snapshots marked good')
    .option('--tag <tag>', 'with this tag')
    .option('--limit <n>', 'most recent n', int('--limit', 1))
    .action(async (id: string | undefined, o: { device?: string; good?: boolean; tag?: string; limit?: number }) => {
      const { api } = ctx();
      if (id) {
        const s = await api.get<Snapshot>(`/v1/snapshots/${encodeURIComponent(id)}`);
        print(s, () => record(s as unknown as Record<string, unknown>));
        return;
      }
      const q: Query = { deviceId: o.device, good: o.good ? true : undefined, tag: o.tag, limit: o.limit };
      const r = await api.get<{ snapshots: Snapshot[] }>('/v1/snapshots', q);
      print(r, () =>
        table(
          ['ID', 'DEVICE', 'MODEL', 'STEP', 'SHA256', 'BYTES', 'ACCURACY', 'GOOD', 'TAGS', 'CREATED'],
          r.snapshots.map((s) => [s.id, s.device, s.model, s.step, shortHash(s.sha256), s.bytes, pct(s.accuracy), s.good ? 'yes' : 'no', s.tags.join(','), s.createdAt]),
        ),
      );
    });

  program
    .command('rollback <device> <snapshotId>')
    .description('write a snapshot to the board and verify the hash it reports (snapshotId may be last-good)')
    .action(async (device: string, snapshotId: string) => {
      const { body: r } = await ctx().api.post<{ snapshotId: string; sha256: string; verified: boolean; before: string | null }>(
        `/v1/devices/${encodeURIComponent(device)}/rollback`,
        { snapshotId },
      );
      print(r, () => `${device} rolled back to ${r.snapshotId}: ${shortHash(r.before)} -> ${shortHash(r.sha256)}, ${r.verified ? 'hash verified on the board' : 'NOT verified'}`);
    });

  program
    .command('fleet-rollback')
    .description('roll many boards back: canaries one by one, then the rest in parallel')
    .option('--devices <ids>', 'these boards (comma-separated)', strList)
    .option('--board <kind>', 'boards of this kind')
    .option('--tag <tag>', 'boards with this tag')
    .requiredOption('--to <snapshotId|last-good>', 'target snapshot, or last-good per board')
    .option('--canary <n>', 'boards rolled back first, one by one', int('--canary'))
    .option('--max-failures <n>', 'halt once more boards than this fail', int('--max-failures'))
    .option('--wait', 'follow the job until it ends and print every board')
    .action(async (o: { devices?: string[]; board?: string; tag?: string; to: string; canary?: number; maxFailures?: number; wait?: boolean }) => {
      const selector: Record<string, unknown> = {};
      if (o.devices?.length) selector.devices = o.devices;
      if (o.board) selector.board = o.board;
      if (o.tag) selector.tag = o.tag;
      if (Object.keys(selector).length === 0) throw new UsageError('fleet-rollback needs a selector: --devices a,b, --board <kind> and/or --tag <tag>');
      const body: Record<string, unknown> = { selector, to: o.to };
      if (o.canary !== undefined) body.canary = o.canary;
      if (o.maxFailures !== undefined) body.maxFailures = o.maxFailures;
      await jobCommand('/v1/fleet/rollback', body, !!o.wait, (j) => fleetSummary(j));
    });

  program
    .command('jobs [id]')
    .description('list recent jobs, show one, or follow one live')
    .option('--follow', 'stream its events with a progress bar until it ends')
    .option('--device <id>', 'jobs of this board')
    .option('--state <state>', 'queued, running, succeeded or failed')
    .option('--limit <n>', 'most recent n', int('--limit', 1))
    .action(async (id: string | undefined, o: { follow?: boolean; device?: string; state?: string; limit?: number }) => {
      const { g, api } = ctx();
      if (!id) {
        if (o.follow) throw new UsageError('--follow needs a job id');
        const r = await api.get<{ jobs: JobView[] }>('/v1/jobs', { deviceId: o.device, state: o.state, limit: o.limit });
        print(r, () =>
          table(
            ['ID', 'KIND', 'DEVICE', 'STATE', 'PROGRESS', 'ERROR', 'CREATED'],
            r.jobs.map((j) => [j.id, j.kind, j.deviceId, j.state, `${j.progress.done}/${j.progress.total}`, j.error?.code, j.createdAt]),
          ),
        );
        return;
      }
      let job: JobView;
      if (o.follow) {
        job = await followJob(api, id, { json: g.json, write: io.out, log: io.err });
        if (g.json) io.out(JSON.stringify({ event: 'job', data: job }));
        else io.out(jobSummary(job));
      } else {
        job = await api.get<JobView>(`/v1/jobs/${encodeURIComponent(id)}`);
        print(job, () => jobSummary(job));
      }
      if (job.state === 'failed') throw new JobFailed(job);
    });

  program
    .command('metrics <device>')
    .description('recorded training steps: loss, cycles or instructions, peak RAM, updated fraction, energy')
    .option('--limit <n>', 'steps', int('--limit', 1), 50)
    .option('--after <seq>', 'steps after this sequence number', int('--after'))
    .option('--job <id>', 'steps of this job')
    .action(async (device: string, o: { limit: number; after?: number; job?: string }) => {
      const r = await ctx().api.get<{
        deviceId: string;
        counterUnit: string;
        energy: { source: string; basis: string | null };
        steps: { seq: number; stepId: number; loss: number; counter: number | null; peakRam: number | null; updatedFraction: number | null; energyUj: number | null; energySource: string; correct: boolean | null }[];
        next: number | null;
      }>(`/v1/devices/${encodeURIComponent(device)}/metrics`, { limit: o.limit, after: o.after, jobId: o.job });
      print(r, () => {
        const head = `${r.deviceId}: counter in ${r.counterUnit}, energy ${r.energy.source}${r.energy.basis ? ` (${r.energy.basis})` : ''}`;
        const t = table(
          ['SEQ', 'STEP', 'LOSS', r.counterUnit.toUpperCase(), 'PEAK RAM', 'UPDATED', 'ENERGY uJ', 'CORRECT'],
          r.steps.map((s) => [s.seq, s.stepId, num(s.loss), s.counter, s.peakRam, pct(s.updatedFraction), num(s.energyUj, 2), s.correct === null ? null : s.correct ? 'yes' : 'no']),
        );
        return `${head}\n${t}${r.next !== null ? `\nmore: --after ${r.next}` : ''}`;
      });
    });

  // run <suite>
  runCommands(program, { api: () => ctx().api, json: () => ctx().g.json, out: io.out, err: io.err, failed: (m) => new RunNotPassed(m) });

  // model create | list | show | delete
  modelCommands(program, { api: () => ctx().api, json: () => ctx().g.json, out: io.out, usage: (message) => new UsageError(message) });

  // dataset upload | list | show | delete
  datasetCommands(program, {
    api: () => ctx().api,
    json: () => ctx().g.json,
    out: io.out,
    err: io.err,
    usage: (message) => new UsageError(message),
  });

  return program;
}

function jobSummary(j: JobView): string {
  if (j.kind === 'fleet-rollback') return fleetSummary(j);
  return record({
    id: j.id,
    kind: j.kind,
    device: j.deviceId,
    state: j.state,
    progress: `${j.progress.done}/${j.progress.total}`,
    result: j.result,
    error: j.error ? `${j.error.code}: ${j.error.message}` : null,
    created: j.createdAt,
    finished: j.finishedAt,
  });
}

function fleetSummary(j: JobView): string {
  const r = j.result as {
    succeeded: number;
    failed: number;
    skipped: number;
    halted: boolean;
    ms: number;
    devices: { deviceId: string; phase: string; state: string; snapshotId: string | null; before: string | null; after: string | null; verified: boolean; error: { code: string; message: string } | null; ms: number }[];
  } | null;
  if (!r) return `job ${j.id} ${j.state}${j.error ? `: ${j.error.code}: ${j.error.message}` : ''}`;
  const t = table(
    ['DEVICE', 'PHASE', 'STATE', 'SNAPSHOT', 'BEFORE', 'AFTER', 'VERIFIED', 'MS', 'ERROR'],
    r.devices.map((d) => [d.deviceId, d.phase, d.state, d.snapshotId, shortHash(d.before), shortHash(d.after), d.verified ? 'yes' : 'no', d.ms, d.error ? `${d.error.code}: ${d.error.message}` : null]),
  );
  return `${t}\nfleet rollback ${j.state}: ${r.succeeded} succeeded, ${r.failed} failed, ${r.skipped} skipped${r.halted ? ', halted' : ''} in ${r.ms} ms`;
}

/** Runs the CLI; resolves to the process exit code. */
export async function run(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      return EXIT.usage;
    }
    if (e instanceof ApiError) {
      io.err(`error: ${e.status} ${e.code}: ${e.message}`);
      if (e.status === 401) io.err('hint: pass --token, set TINYRIG_TOKEN, or run where var/admin.token is readable');
      return EXIT.api;
    }
    if (e instanceof ConnectError) {
      io.err(`error: ${e.message}`);
      return EXIT.unreachable;
    }
    if (e instanceof RunNotPassed) {
      io.err(`error: ${e.message}`);
      return EXIT.api;
    }
    if (e instanceof JobFailed) {
      io.err(`error: ${e.message}`);
      return EXIT.jobFailed;
    }
    io.err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT.api;
  }
}

if (process.argv[1] && /cli[\\/]main\.ts$/.test(process.argv[1])) {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
