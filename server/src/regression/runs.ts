// Regression runs: a suite's boards reserved, then on each board, side by
// side, its stages — flash (or restart), deploy, train, evaluate, snapshot —
// each a recorded board job with a time-out, and the same stream trained on a
// host twin as the golden reference. Every figure is compared with the
// suite's baseline; a regression names the board, the figure, before and
// after. A run is a document in the store, written after every stage, so a
// daemon that stops mid-run leaves it interrupted with its finished stages.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { Cron } from 'croner';
import type { Board } from '../devices/board.js';
import type { FleetBoard } from '../hosts/presence.js';
import { matchesSelector } from '../routes/views.js';
import { Errors, RigError } from '../errors.js';
import type { JobContext } from '../jobs/runner.js';
import { deployModel, takeSnapshot } from '../operations/snapshots.js';
import { evaluateSlice, runTraining, withTrainDefaults, withWholeSplit, type TrainParams } from '../operations/training.js';
import type { Rig } from '../rig.js';
import { newId } from '../store/store.js';
import { DEFAULT_TIMEOUTS_S, DEFAULT_TOLERANCES, type Suite, Suites } from './suite.js';
import {
  FIGURES,
  type BoardFigures,
  type BoardRun,
  type FailureClass,
  type FigureCheck,
  type Regression,
  type RunView,
  type StageName,
  type StageResult,
} from './types.js';

const run = promisify(execFile);

const emptyFigures = (): BoardFigures => ({
  accuracy: null, counterPerStep: null, counterUnit: null, peakRam: null, stackPeak: null, energyPerStepUj: null,
  energySource: null, steps: null, weightsSha256: null, twinSha256: null, weightsMatch: null, wallMs: null,
});

class StageFailure extends Error {
  constructor(
    readonly failure: FailureClass,
    message: string,
    readonly code = 'TR_RUN_STAGE_FAILED',
  ) {
    super(message);
  }
}

/** The failure class of an error a stage ended with; a board whose boot id changed was reset. */
function classify(err: unknown, reset: boolean): StageFailure {
  if (err instanceof StageFailure) return err;
  const e = err instanceof RigError ? err : null;
  const message = (err as Error)?.message ?? String(err);
  if (reset) return new StageFailure('board-reset', `the board was reset during the stage: ${message}`, e?.code);
  if (e?.code === 'TR_DEVICE_DISCONNECTED' || e?.code === 'TR_DEVICE_OFFLINE') return new StageFailure('link-lost', message, e.code);
  if (e?.code === 'TR_DEVICE_TIMEOUT') return new StageFailure('timeout', message, e.code);
  if (e?.code === 'TR_JOB_CANCELLED') return new StageFailure('cancelled', 'the run was cancelled', e.code);
  return new StageFailure('device-error', message, e?.code);
}

/** Resolves with `p`, or fails with a time-out after `ms` (the work it waited for goes on and ends on its own). */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new StageFailure('timeout', `${what} did not end within ${ms / 1000} s`, 'TR_RUN_TIMEOUT')), ms);
      t.unref();
    }),
  ]);
}

interface LiveRun {
  doc: RunView;
  cancelled: boolean;
  done: Promise<void>;
}

/** A board of a run: this host's (board), or another host's (remote), whose part that host runs. */
interface RunTarget {
  id: string;
  board?: Board;
  remote?: FleetBoard;
}

export class RunService {
  readonly suites: Suites;
  private readonly live = new Map<string, LiveRun>();
  private readonly crons: Cron[] = [];
  /** Docs of board parts run here for a run another host started: that host keeps the run's record. */
  private readonly ephemeral = new WeakSet<RunView>();

  constructor(private readonly rig: Rig) {
    this.suites = new Suites(rig.config.suitesDir);
  }

  /** After a restart: this host's runs left running are interrupted, with what they finished kept. */
  async recover(): Promise<string[]> {
    const mine = (d: RunView): boolean => (d.host ?? this.rig.config.hostId) === this.rig.config.hostId;
    const stuck = [
      ...(await this.rig.store.listRuns<RunView>({ state: 'running', limit: 1000 })),
      ...(await this.rig.store.listRuns<RunView>({ state: 'queued', limit: 1000 })),
    ].filter(mine);
    for (const doc of stuck) {
      doc.state = 'interrupted';
      doc.finishedAt = new Date().toISOString();
      for (const b of doc.boards) {
        if (b.state === 'running' || b.state === 'pending') {
          b.state = 'interrupted';
          const at = b.stages.find((s) => s.state === 'running');
          b.failure = { class: 'interrupted', stage: at?.name ?? null, message: 'the daemon stopped during the run' };
          for (const s of b.stages) if (s.state === 'running' || s.state === 'pending') s.state = s.state === 'running' ? 'failed' : 'skipped';
        }
      }
      this.summarize(doc);
      await this.rig.store.putRun(doc.id, doc.suite, doc.state, doc, true);
    }
    return stuck.map((d) => d.id);
  }

  /** Starts the suites of the schedule setting (croner patterns). */
  schedule(): void {
    for (const { suite, cron } of this.rig.config.schedule) {
      const job = new Cron(cron, { protect: true }, () => {
        this.start(suite, 'schedule', null).catch((err: unknown) => {
          this.rig.log.warn({ suite, err: (err as Error).message }, 'scheduled run not started');
        });
      });
      this.crons.push(job);
      this.rig.log.info({ suite, cron, next: job.nextRun()?.toISOString() }, 'suite scheduled');
    }
  }

  async close(): Promise<void> {
    for (const c of this.crons) c.stop();
    for (const r of this.live.values()) r.cancelled = true;
  }

  async get(id: string): Promise<RunView> {
    const doc = this.live.get(id)?.doc ?? (await this.rig.store.getRun<RunView>(id));
    if (!doc) throw Errors.RUN_NOT_FOUND(`no run '${id}'`);
    return { ...doc, isBaseline: (await this.rig.store.baselineOf(doc.suite)) === doc.id };
  }

  async list(opts: { suite?: string; state?: string; limit?: number }): Promise<RunView[]> {
    const docs = await this.rig.store.listRuns<RunView>(opts);
    const baselines = new Map<string, string | null>();
    for (const d of docs) if (!baselines.has(d.suite)) baselines.set(d.suite, await this.rig.store.baselineOf(d.suite));
    return docs.map((d) => ({ ...(this.live.get(d.id)?.doc ?? d), isBaseline: baselines.get(d.suite) === d.id }));
  }

  /** Waits for a live run to end. */
  async wait(id: string): Promise<RunView> {
    await this.live.get(id)?.done;
    return this.get(id);
  }

  async cancel(id: string): Promise<RunView> {
    const live = this.live.get(id);
    if (!live) {
      await this.get(id);
      throw Errors.RUN_FINISHED(`run ${id} has ended`);
    }
    live.cancelled = true;
    // the stages under way stop at their next board request
    for (const b of live.doc.boards) for (const s of b.stages) if (s.state === 'running' && s.jobId) this.rig.jobs.cancel(s.jobId);
    return live.doc;
  }

  async promote(id: string, actor: string | null): Promise<RunView> {
    const doc = await this.get(id);
    if (this.live.has(id)) throw Errors.BAD_REQUEST(`run ${id} is still running`);
    if (doc.boards.some((b) => b.figures.accuracy === null)) throw Errors.BAD_REQUEST(`run ${id} has boards without figures; a baseline needs every board's`);
    await this.rig.store.setBaseline(doc.suite, id, actor);
    return this.get(id);
  }

  /** Checks the suite and its boards, reserves them, and starts the run. */
  async start(suiteName: string, trigger: RunView['trigger'], actor: string | null): Promise<RunView> {
    const suite = this.suites.get(suiteName);
    const boards = await this.selectBoards(suite);
    const id = newId('run');
    const holder = `run:${id}`;
    // a reservation for the whole run: other users get 409 naming the run until it ends
    const lease = await this.rig.boardJobs.reservations.reserve(boards.map((b) => b.id), holder, this.rig.config.runLeaseMs, `suite ${suite.name}`);
    const baselineRunId = await this.rig.store.baselineOf(suite.name);
    const doc: RunView = {
      id,
      suite: suite.name,
      state: 'running',
      trigger,
      actor,
      host: this.rig.config.hostId,
      createdAt: new Date().toISOString(),
      startedAt: new Date().toISOString(),
      finishedAt: null,
      baselineRunId,
      isBaseline: false,
      boards: boards.map((t) =>
        t.board
          ? this.boardRun(suite, t.id, t.board.hello?.board ?? t.board.entry.board ?? null, t.board.entry.class ?? null)
          : this.boardRun(suite, t.id, (t.remote!.doc.board as string | null) ?? null, (t.remote!.doc.class as string | null) ?? null, t.remote!.hostId),
      ),
      summary: { boards: boards.length, passed: 0, regressed: 0, failed: 0, regressions: [] },
    };
    await this.save(doc);
    const live: LiveRun = { doc, cancelled: false, done: Promise.resolve() };
    this.live.set(id, live);
    const renew = setInterval(() => {
      this.rig.boardJobs.reservations.renew(lease.id, holder, this.rig.config.runLeaseMs).catch(() => {
        // ended (or broken by an admin): the run's stages then meet 409s of their own
      });
    }, Math.max(500, Math.floor(this.rig.config.runLeaseMs / 3)));
    renew.unref();
    live.done = this.execute(live, suite, boards, holder)
      .catch((err) => this.rig.log.error({ runId: id, err }, 'run failed'))
      .finally(async () => {
        clearInterval(renew);
        await this.rig.boardJobs.reservations.release(lease.id, holder, { admin: false }).catch(() => {
          // expired or broken already
        });
        this.live.delete(id);
      });
    this.rig.log.info({ runId: id, suite: suite.name, boards: boards.map((b) => b.id), trigger, actor }, 'run started');
    return doc;
  }

  private needsFirmware(suite: Suite): boolean {
    return suite.boards.some((b) => b.firmware !== undefined);
  }

  /** A board's record in a run, every stage pending. */
  private boardRun(suite: Suite, deviceId: string, board: string | null, cls: string | null, host?: string): BoardRun {
    const stages: StageName[] = [...(this.needsFirmware(suite) ? (['flash'] as const) : []), 'deploy', 'train', 'evaluate', 'snapshot'];
    return {
      deviceId,
      ...(host ? { host } : {}),
      board,
      class: cls,
      state: 'pending',
      failure: null,
      stages: [...stages, ...(suite.golden === false ? [] : (['golden'] as const))].map((name) => ({
        name, state: 'pending', startedAt: null, ms: null, jobId: null, error: null,
      })),
      figures: emptyFigures(),
      checks: [],
    };
  }

  /** The suite's boards from the whole fleet: this host's first, then those of the other hosts. */
  private async selectBoards(suite: Suite): Promise<RunTarget[]> {
    const remote = this.rig.fleet ? (await this.rig.fleet.remoteBoards()).filter((b) => b.hostOnline) : [];
    const chosen: RunTarget[] = [];
    for (const sel of suite.boards) {
      const match = { board: sel.class ?? sel.board, tag: sel.tag };
      const localIds = sel.ids?.filter((id) => this.rig.devices.has(id) || !remote.some((r) => r.deviceId === id));
      const candidates: RunTarget[] = [
        ...(sel.ids && localIds!.length === 0 ? [] : this.rig.devices.select({ devices: localIds, ...match }).map((b) => ({ id: b.id, board: b }))),
        ...remote
          .filter((r) => (sel.ids ? sel.ids.includes(r.deviceId) && !this.rig.devices.has(r.deviceId) : true) && matchesSelector(r.doc, match))
          .map((r) => ({ id: r.deviceId, remote: r })),
      ];
      // named boards in the suite's order, wherever they are
      if (sel.ids) candidates.sort((x, y) => sel.ids!.indexOf(x.id) - sel.ids!.indexOf(y.id));
      const pool = candidates.filter((b) => !chosen.some((c) => c.id === b.id));
      const take = pool.slice(0, sel.count ?? pool.length);
      if (take.length === 0) throw Errors.DEVICE_NOT_FOUND(`suite ${suite.name}: no board matches ${JSON.stringify(sel)}`);
      if (sel.count !== undefined && take.length < sel.count) {
        throw Errors.DEVICE_NOT_FOUND(`suite ${suite.name}: ${sel.count} boards wanted for ${JSON.stringify(sel)}, ${take.length} match`);
      }
      chosen.push(...take);
    }
    return chosen;
  }

  private async save(doc: RunView): Promise<void> {
    if (this.ephemeral.has(doc)) return;
    this.summarize(doc);
    const finished = !['running', 'queued'].includes(doc.state);
    await this.rig.store.putRun(doc.id, doc.suite, doc.state, doc, finished);
  }

  private summarize(doc: RunView): void {
    const regressions: Regression[] = [];
    for (const b of doc.boards) {
      for (const c of b.checks) {
        if (c.regression) {
          regressions.push({
            deviceId: b.deviceId,
            figure: c.figure,
            before: c.baseline,
            after: c.value,
            message: `${b.deviceId}: ${c.figure} ${c.baseline} -> ${c.value} (tolerance ${c.tolerance})`,
          });
        }
      }
      if (b.figures.weightsMatch === false) {
        regressions.push({
          deviceId: b.deviceId,
          figure: 'weights',
          before: b.figures.twinSha256,
          after: b.figures.weightsSha256,
          message: `${b.deviceId}: weights ${b.figures.weightsSha256} differ from the host twin's ${b.figures.twinSha256} after the same stream`,
        });
      }
    }
    doc.summary = {
      boards: doc.boards.length,
      passed: doc.boards.filter((b) => b.state === 'passed').length,
      regressed: doc.boards.filter((b) => b.state === 'regressed').length,
      failed: doc.boards.filter((b) => ['failed', 'cancelled', 'interrupted'].includes(b.state)).length,
      regressions,
    };
  }

  private trainParams(suite: Suite): TrainParams {
    const { sparse, ...rest } = suite.train;
    return withWholeSplit(this.rig, withTrainDefaults({ ...rest, split: rest.split ?? 'train', ...(sparse ? { sparse } : {}) }), 'train') as TrainParams;
  }

  /** One stage as a board job (holding the board's lease, actor the run), with the stage's time-out. */
  private async stage<T>(
    live: LiveRun,
    b: BoardRun,
    board: Board,
    name: StageName,
    actor: string,
    fn: (ctx: JobContext) => Promise<T>,
    timeoutS: number,
    total?: number,
  ): Promise<T> {
    const s = b.stages.find((x) => x.name === name)!;
    if (live.cancelled) throw new StageFailure('cancelled', 'the run was cancelled', 'TR_RUN_CANCELLED');
    s.state = 'running';
    s.startedAt = new Date().toISOString();
    await this.save(live.doc);
    const t0 = Date.now();
    const boot = board.hello?.bootId ?? null;
    const resets = board.counters.resets;
    let value: T;
    try {
      const { row, outcome } = await this.rig.boardJobs.track(board, `run-${name}`, { runId: live.doc.id, stage: name }, fn, { total, actor });
      s.jobId = row.id;
      value = await withTimeout(outcome, timeoutS * 1000, `${name} on ${board.id}`);
    } catch (err) {
      const wasReset = (): boolean =>
        board.counters.resets !== resets || (boot !== null && board.hello?.bootId !== undefined && board.hello.bootId !== boot);
      let f = classify(err, wasReset());
      if (f.failure === 'link-lost') {
        // a lost link is often a board restarting: give it the time to come back and say which it was
        const end = Date.now() + 20_000;
        while (Date.now() < end && !wasReset()) await new Promise((r) => setTimeout(r, 100));
        if (wasReset()) f = classify(err, true);
      }
      // a stage past its time-out stops at its next board request instead of holding the board on
      if (f.failure === 'timeout' && s.jobId) this.rig.jobs.cancel(s.jobId);
      s.state = 'failed';
      s.ms = Date.now() - t0;
      s.error = { code: f.code, message: f.message };
      throw f;
    }
    s.state = 'passed';
    s.ms = Date.now() - t0;
    return value as T;
  }

  /** A board's stages in order; a failure ends them (the rest skipped) and names its class. */
  private async runBoard(live: LiveRun, suite: Suite, b: BoardRun, board: Board, actor: string, golden: Promise<string | null>): Promise<void> {
    const t = { ...DEFAULT_TIMEOUTS_S, ...suite.timeouts };
    const sel = suite.boards.find((s) => (s.ids ?? []).includes(board.id)) ?? suite.boards[0];
    const params = this.trainParams(suite);
    b.state = 'running';
    try {
      if (b.stages.some((s) => s.name === 'flash')) {
        await this.stage(live, b, board, 'flash', actor, () => this.flash(board, sel.firmware), t.flash);
      }
      await this.stage(live, b, board, 'deploy', actor, () => deployModel(this.rig, board, { model: suite.model.name, seed: suite.model.seed }), t.deploy);
      const t0 = Date.now();
      const trained = (await this.stage(live, b, board, 'train', actor, (ctx) => runTraining(this.rig, board, ctx, params), t.train, params.count! * (params.epochs ?? 1))) as {
        steps: number; counterTotal: number; counterUnit: string; peakRam: number; weightsSha256: string;
      };
      const f = b.figures;
      f.wallMs = Date.now() - t0;
      f.steps = trained.steps;
      f.counterPerStep = trained.steps ? trained.counterTotal / trained.steps : null;
      f.counterUnit = trained.counterUnit;
      f.peakRam = trained.peakRam;
      f.weightsSha256 = trained.weightsSha256;
      const jobId = b.stages.find((s) => s.name === 'train')!.jobId!;
      const steps = await this.rig.store.listSteps(board.id, { jobId, limit: 1_000_000 });
      const withEnergy = steps.filter((s) => s.energyUj !== null);
      f.energyPerStepUj = withEnergy.length ? withEnergy.reduce((a, s) => a + s.energyUj!, 0) / withEnergy.length : null;
      f.energySource = withEnergy.length ? (withEnergy.every((s) => s.energySource === 'measured') ? 'measured' : 'estimated') : null;
      const evalSlice = withWholeSplit(this.rig, { ...suite.evaluate, split: suite.evaluate.split ?? 'test', offset: suite.evaluate.offset ?? 0 }, 'test');
      const ev = await this.stage(live, b, board, 'evaluate', actor, (ctx) => evaluateSlice(this.rig, board, ctx, evalSlice), t.evaluate, evalSlice.count);
      f.accuracy = ev.accuracy;
      await this.stage(live, b, board, 'snapshot', actor, async (ctx) => {
        const stats = await board.refreshStats();
        f.stackPeak = stats.stackPeak || null;
        return takeSnapshot(this.rig, board, { tags: ['run', live.doc.id, suite.name], jobId: ctx.id });
      }, t.snapshot);
      await this.settleGolden(b, golden);
      b.checks = await this.check(suite, live.doc.baselineRunId, b);
      b.state = b.failure ? 'failed' : b.checks.some((c) => c.regression) ? 'regressed' : 'passed';
    } catch (err) {
      const f = err instanceof StageFailure ? err : classify(err, false);
      const at = b.stages.find((s) => s.state === 'failed' || s.state === 'running');
      b.failure = { class: f.failure, stage: at?.name ?? null, message: f.message };
      b.state = f.failure === 'cancelled' ? 'cancelled' : 'failed';
      for (const s of b.stages) if (s.state === 'pending' || s.state === 'running') s.state = f.failure === 'cancelled' ? 'cancelled' : 'skipped';
    }
    await this.save(live.doc);
  }

  /** The golden stage: the board's weights against the host twin's after the same stream. */
  private async settleGolden(b: BoardRun, golden: Promise<string | null>): Promise<void> {
    const g = b.stages.find((s) => s.name === 'golden');
    if (!g) return;
    const f = b.figures;
    g.state = 'running';
    g.startedAt = new Date().toISOString();
    f.twinSha256 = await golden;
    f.weightsMatch = f.twinSha256 === null || f.weightsSha256 === null ? null : f.twinSha256 === f.weightsSha256;
    g.state = f.weightsMatch === false ? 'failed' : f.weightsMatch === null ? 'skipped' : 'passed';
    g.ms = Date.now() - Date.parse(g.startedAt);
    g.error = null;
    if (f.weightsMatch === false) {
      g.error = { code: 'TR_WEIGHTS_MISMATCH', message: `weights ${f.weightsSha256} differ from the host twin's ${f.twinSha256}` };
      b.failure = { class: 'weights-mismatch', stage: 'golden', message: g.error.message };
    }
  }

  /**
   * A board of another host: that host runs its stages (as the run, which
   * holds the board's reservation) and answers with its record; the golden
   * comparison is made here, against this run's twin.
   */
  private async runRemoteBoard(live: LiveRun, suite: Suite, b: BoardRun, t: RunTarget, holder: string, golden: Promise<string | null>): Promise<void> {
    const host = t.remote!.hostId;
    const tm = { ...DEFAULT_TIMEOUTS_S, ...suite.timeouts };
    b.state = 'running';
    await this.save(live.doc);
    try {
      const out = await this.rig.fleet!.json<BoardRun>(
        host,
        'POST',
        `/v1/runs/${live.doc.id}/boards/${encodeURIComponent(b.deviceId)}`,
        { suite: suite.name, baselineRunId: live.doc.baselineRunId, holder },
        { actor: holder, role: 'operator' },
        (tm.flash + tm.deploy + tm.train + tm.evaluate + tm.snapshot) * 1000 + 60_000,
      );
      Object.assign(b, out, { host });
      if (!['failed', 'cancelled'].includes(b.state as string)) {
        await this.settleGolden(b, golden);
        b.state = b.failure ? 'failed' : b.checks.some((c) => c.regression) ? 'regressed' : 'passed';
      }
    } catch (err) {
      const f = classify(err, false);
      b.failure = { class: f.failure, stage: null, message: `host ${host}: ${f.message}` };
      b.state = 'failed';
      for (const s of b.stages) if (s.state === 'pending' || s.state === 'running') s.state = 'skipped';
    }
    await this.save(live.doc);
  }

  /**
   * Runs this host's board's part of a run another host started (the
   * request came through this host's queue): its stages, figures and checks,
   * answered as its BoardRun; the run's record stays with the host that started it.
   */
  async runBoardFor(runId: string, suiteName: string, deviceId: string, baselineRunId: string | null, holder: string): Promise<BoardRun> {
    const suite = this.suites.get(suiteName);
    const board = this.rig.devices.get(deviceId);
    const b = this.boardRun(suite, deviceId, board.hello?.board ?? board.entry.board ?? null, board.entry.class ?? null);
    const doc = { id: runId, suite: suite.name, baselineRunId, boards: [b] } as unknown as RunView;
    this.ephemeral.add(doc);
    await this.runBoard({ doc, cancelled: false, done: Promise.resolve() }, suite, b, board, holder, Promise.resolve(null));
    return b;
  }

  /** Restart (emulated boards: RESET, then a HELLO with a new boot id) or run the suite's flash command. */
  private async flash(board: Board, fw: Suite['boards'][number]['firmware']): Promise<unknown> {
    if (!fw) return { skipped: true };
    const boot = board.hello?.bootId ?? null;
    if ('flash' in fw) {
      const cmd = fw.flash.replaceAll('{device}', board.id).replaceAll('{path}', board.entry.path);
      try {
        await run('/bin/sh', ['-c', cmd], { timeout: 300_000 });
      } catch (err) {
        throw new StageFailure('flash-error', `flash command failed: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`, 'TR_FLASH_FAILED');
      }
    } else {
      // the link drops as the board restarts: that is the expected outcome
      await board.run('reset', (l) => l.reset()).catch(() => undefined);
    }
    const end = Date.now() + 60_000;
    while (!(board.status === 'online' && board.hello && board.hello.bootId !== boot)) {
      if (Date.now() > end) throw new StageFailure('flash-error', `device ${board.id} did not come back with a new boot after its restart`, 'TR_FLASH_FAILED');
      await new Promise((r) => setTimeout(r, 50));
    }
    return { restarted: true, bootId: board.hello.bootId };
  }

  /** Each figure against the baseline run's figure of the same board, within the suite's tolerance. */
  private async check(suite: Suite, baselineRunId: string | null, b: BoardRun): Promise<FigureCheck[]> {
    const base = baselineRunId ? (await this.rig.store.getRun<RunView>(baselineRunId))?.boards.find((x) => x.deviceId === b.deviceId) : undefined;
    const tol = { ...DEFAULT_TOLERANCES, ...suite.tolerances };
    // host time (a twin's ns) moves with the machine's load: it is shown, not compared
    const hostTime = b.figures.counterUnit === 'ns';
    return FIGURES.filter(({ name }) => !(hostTime && (name === 'counterPerStep' || name === 'energyPerStepUj'))).map(({ name, better }) => {
      const value = b.figures[name] as number | null;
      const baseline = (base?.figures[name] as number | null | undefined) ?? null;
      const tolerance = tol[name];
      let regression = false;
      if (value !== null && baseline !== null) {
        regression = better === 'higher' ? value < baseline - tolerance : value > baseline * (1 + tolerance) + 1e-9;
      }
      return { figure: name, baseline, value, tolerance, ok: !regression, regression };
    });
  }

  /** The host twin's weights hash after the same deploy and training stream: the golden reference. */
  private async golden(suite: Suite, runId: string, actor: string): Promise<string | null> {
    const child: ChildProcess = spawn(this.rig.config.twinTool, ['--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let board: Board | null = null;
    try {
      const pty = await new Promise<string>((resolve, reject) => {
        let out = '';
        const t = setTimeout(() => reject(new Error('the host twin did not start')), 10_000);
        child.stdout!.on('data', (d) => {
          out += d;
          const m = /^PTY (\S+)$/m.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m[1]);
          }
        });
        child.on('error', reject);
        child.on('exit', (code) => reject(new Error(`the host twin exited (${code})`)));
      });
      board = this.rig.devices.transient({ id: `golden-${runId}`, path: pty, board: 'host-twin', emulated: true, tags: ['golden'] });
      await board.waitOnline(10_000);
      const params = this.trainParams(suite);
      const jobs = this.rig.boardJobs;
      await jobs.operation(board, 'run-golden-deploy', { runId }, () => deployModel(this.rig, board!, { model: suite.model.name, seed: suite.model.seed }), actor);
      const r = (await jobs.operation(board, 'run-golden-train', { runId }, (ctx) => runTraining(this.rig, board!, ctx, params), actor)) as unknown as {
        weightsSha256: string;
      };
      return r.weightsSha256;
    } catch (err) {
      this.rig.log.warn({ runId, err: (err as Error).message }, 'golden twin failed: weights not compared');
      return null;
    } finally {
      await board?.close();
      child.kill('SIGTERM');
    }
  }

  private async execute(live: LiveRun, suite: Suite, boards: RunTarget[], holder: string): Promise<void> {
    const golden = suite.golden === false ? Promise.resolve(null) : this.golden(suite, live.doc.id, holder);
    // every board on its own: one hung board never holds up the others
    await Promise.all(
      boards.map((t, i) =>
        t.board ? this.runBoard(live, suite, live.doc.boards[i], t.board, holder, golden) : this.runRemoteBoard(live, suite, live.doc.boards[i], t, holder, golden),
      ),
    );
    await golden;
    const doc = live.doc;
    this.summarize(doc);
    doc.state = live.cancelled ? 'cancelled' : doc.summary.failed ? 'failed' : doc.summary.regressed ? 'regressed' : 'passed';
    doc.finishedAt = new Date().toISOString();
    await this.save(doc);
    this.rig.log.info({ runId: doc.id, suite: doc.suite, state: doc.state, regressions: doc.summary.regressions.length }, 'run ended');
  }
}
