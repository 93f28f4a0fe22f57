// Runs long operations (training, evaluation, fleet rollback) as jobs: a row in
// the store that moves queued → running → succeeded | failed, progress
// updates, and a stream of events that server-sent-event clients follow.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Errors, RigError } from '../errors.js';
import type { JobRow, Store } from '../store/store.js';

export interface JobEvent {
  /** Increasing per job, so an SSE client can resume with Last-Event-ID. */
  id: number;
  type: string;
  data: unknown;
}

export interface JobContext {
  readonly id: string;
  /** Name of the token (or the run) that started the job. */
  readonly actor: string | null;
  readonly log: Logger;
  progress(done: number, total?: number): void;
  emit(type: string, data: unknown): void;
  /**
   * Records what the job has achieved so far as its result: what a job cut
   * off (failure, daemon restart, kill -9) keeps. Written at once, or at most
   * every `minIntervalMs` (the latest is always written when the job ends).
   */
  checkpoint(partial: unknown, minIntervalMs?: number): void;
  /** Throws TR_JOB_CANCELLED once someone cancelled the job: long jobs call it between board requests. */
  throwIfCancelled(): void;
}

interface LiveJob {
  events: JobEvent[];
  emitter: EventEmitter;
  done: number;
  total: number;
  lastProgressWrite: number;
  partial: unknown;
  lastCheckpointWrite: number;
  /** A checkpoint write is queued and not started: the next checkpoint only updates `partial`, which it writes. */
  checkpointQueued: boolean;
  cancelled: boolean;
  /** Row writes of this job, in order: progress and checkpoints never block the job, and never overtake its end. */
  writes: Promise<void>;
}

const MAX_EVENTS_KEPT = 5000;

export type JobMetricsHook = (kind: string, state: 'succeeded' | 'failed', seconds: number) => void;

export class JobRunner {
  private readonly live = new Map<string, LiveJob>();
  private readonly running = new Map<string, Promise<unknown>>();
  onFinished: JobMetricsHook | null = null;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  /**
   * Creates the job row and starts `fn` on the next tick. `release` runs when
   * the job ends whichever way (it frees the device lease).
   */
  async submit<T>(
    kind: string,
    deviceId: string | null,
    params: unknown,
    fn: (ctx: JobContext) => Promise<T>,
    opts: { total?: number; release?: () => void; actor?: string | null } = {},
  ): Promise<JobRow> {
    const actor = opts.actor ?? null;
    let row: JobRow;
    try {
      row = await this.store.createJob(kind, deviceId, params, opts.total ?? 0, actor);
    } catch (err) {
      opts.release?.();
      throw err;
    }
    const live: LiveJob = {
      events: [], emitter: new EventEmitter(), done: 0, total: opts.total ?? 0, lastProgressWrite: 0,
      partial: undefined, lastCheckpointWrite: 0, checkpointQueued: false, cancelled: false, writes: Promise.resolve(),
    };
    live.emitter.setMaxListeners(0);
    this.live.set(row.id, live);
    const log = this.log.child({ jobId: row.id, deviceId: deviceId ?? undefined, kind, actor });
    const write = (what: string, w: () => Promise<void>): Promise<void> =>
      (live.writes = live.writes.then(w).catch((err: unknown) => log.warn({ err }, `job row not updated (${what})`)));
    let seq = 0;
    const emit = (type: string, data: unknown): void => {
      const ev: JobEvent = { id: ++seq, type, data };
      live.events.push(ev);
      if (live.events.length > MAX_EVENTS_KEPT) live.events.splice(0, live.events.length - MAX_EVENTS_KEPT);
      live.emitter.emit('event', ev);
    };
    const ctx: JobContext = {
      id: row.id,
      actor,
      log,
      progress: (done, total) => {
        live.done = done;
        if (total !== undefined) live.total = total;
        const t = Date.now();
        // the row is for GET /v1/jobs/:id; write it at most every 100 ms
        if (t - live.lastProgressWrite >= 100 || done === live.total) {
          live.lastProgressWrite = t;
          const { done: d, total: n } = live;
          void write('progress', () => this.store.progressJob(row.id, d, n));
        }
        emit('progress', { done: live.done, total: live.total });
      },
      emit,
      throwIfCancelled: () => {
        if (live.cancelled) throw Errors.JOB_CANCELLED(`job ${row.id} was cancelled`);
      },
      checkpoint: (partial, minIntervalMs = 0) => {
        live.partial = partial;
        const t = Date.now();
        if (t - live.lastCheckpointWrite >= minIntervalMs && !live.checkpointQueued) {
          live.lastCheckpointWrite = t;
          // one queued write, of the newest partial when it runs: checkpoints faster than the store writes do not pile up
          live.checkpointQueued = true;
          void write('checkpoint', () => {
            live.checkpointQueued = false;
            return this.store.checkpointJob(row.id, live.partial);
          });
        }
      },
    };
    const started = Date.now();
    const p = (async () => {
      await new Promise((r) => setImmediate(r));
      await write('start', () => this.store.startJob(row.id));
      emit('state', { state: 'running' });
      log.info('job started');
      try {
        const result = await fn(ctx);
        await this.finish(write, row.id, live, 'succeeded', result ?? null, null);
        emit('result', result ?? null);
        emit('state', { state: 'succeeded' });
        log.info({ ms: Date.now() - started }, 'job succeeded');
        this.onFinished?.(kind, 'succeeded', (Date.now() - started) / 1000);
      } catch (err) {
        const error = toJobError(err);
        await this.finish(write, row.id, live, 'failed', partialResult(err) ?? live.partial ?? null, error);
        emit('error', error);
        emit('state', { state: 'failed' });
        log.warn({ err: error }, 'job failed');
        this.onFinished?.(kind, 'failed', (Date.now() - started) / 1000);
      } finally {
        opts.release?.();
        live.emitter.emit('end');
        // keep the event history a while for late SSE clients
        setTimeout(() => this.live.delete(row.id), 10 * 60_000).unref();
      }
    })();
    this.running.set(row.id, p);
    void p.finally(() => this.running.delete(row.id));
    return row;
  }

  /**
   * The job's last row write, after every earlier one. A store that cannot
   * take it (PostgreSQL away longer than it retries) leaves the row as it
   * was and the failure is logged; the next start of this host fails it.
   */
  private async finish(
    write: (what: string, w: () => Promise<void>) => Promise<void>,
    id: string,
    live: LiveJob,
    state: 'succeeded' | 'failed',
    result: unknown,
    error: { code: string; message: string } | null,
  ): Promise<void> {
    await write('end', async () => {
      await this.store.progressJob(id, live.done, live.total);
      await this.store.finishJob(id, state, result, error);
    });
  }

  /** Asks a running job to stop at its next board request boundary; false when it is not running. */
  cancel(id: string): boolean {
    const live = this.live.get(id);
    if (!live || !this.running.has(id)) return false;
    live.cancelled = true;
    return true;
  }

  get(id: string): Promise<JobRow | null> {
    return this.store.getJob(id);
  }

  /** Past events of a live or recently finished job, and a subscription to new ones. */
  follow(id: string): { history: JobEvent[]; emitter: EventEmitter } | null {
    const live = this.live.get(id);
    if (!live) return null;
    return { history: [...live.events], emitter: live.emitter };
  }

  /** Resolves with the job's row once it has ended (at once if it already has). */
  async wait(id: string): Promise<JobRow | null> {
    await this.running.get(id);
    return this.store.getJob(id);
  }

  get activeCount(): number {
    return this.running.size;
  }

  /** Waits for every running job to end (used on close, after devices are closed). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }
}

/** An error a job may throw to keep what it achieved before failing. */
export class JobFailure extends RigError {
  constructor(
    code: string,
    message: string,
    readonly partial: unknown,
  ) {
    super(code, 500, message);
  }
}

function partialResult(err: unknown): unknown {
  return err instanceof JobFailure ? err.partial : undefined;
}

export function toJobError(err: unknown): { code: string; message: string } {
  if (err instanceof RigError) return { code: err.code, message: err.message };
  const e = err as { code?: unknown; name?: string; message?: string };
  return { code: 'TR_INTERNAL', message: e?.message ?? String(err) };
}
