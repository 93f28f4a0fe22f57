// One service for work on a board: holding its lease (one user of a board at
// a time: 409 while another holds it) and running that work as a recorded
// job. Routes, fleet rollback and regression runs all go through it.
import type { FastifyRequest } from 'fastify';
import type { Board } from '../devices/board.js';
import { Errors } from '../errors.js';
import { jobView } from '../routes/views.js';
import type { JobRow } from '../store/store.js';
import type { Reservations } from './reservations.js';
import type { JobContext, JobRunner } from './runner.js';

/** Name of the token a request came with (recorded on the jobs it starts). */
export const actorOf = (req: FastifyRequest): string | null => req.principal?.name ?? null;

export type JobAnswer =
  | { status: 200; body: ReturnType<typeof jobView> }
  | { status: 202; body: { jobId: string; state: string; href: string } };

export class BoardJobs {
  constructor(
    private readonly jobs: JobRunner,
    readonly reservations: Reservations,
  ) {}

  /**
   * Takes the board's lease for `owner` on behalf of `actor`: 409
   * TR_DEVICE_RESERVED when someone else has reserved the board,
   * TR_DEVICE_BUSY when other work holds it. Returns its release.
   */
  async lease(board: Board, owner: string, actor: string | null): Promise<() => void> {
    await this.reservations.check(board.id, actor);
    return board.acquire(owner);
  }

  /** Runs `fn` holding the board's lease, without a job (a quick request such as samples or reset). */
  async withLease<T>(board: Board, owner: string, actor: string | null, fn: () => Promise<T>): Promise<T> {
    const release = await this.lease(board, owner, actor);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Submits a job that holds the board's lease until it ends; 409 when another holds it. */
  async submit<T>(
    board: Board,
    kind: string,
    params: unknown,
    fn: (ctx: JobContext) => Promise<T>,
    opts: { total?: number; actor: string | null },
  ): Promise<JobRow> {
    const release = await this.lease(board, `a ${kind} request`, opts.actor);
    let row: JobRow;
    try {
      row = await this.jobs.submit(kind, board.id, params, fn, {
        total: opts.total,
        actor: opts.actor,
        release: () => {
          release();
          // cached figures follow the board after every job
          if (board.status === 'online') void board.refreshStats().catch(() => undefined);
        },
      });
    } catch (err) {
      release();
      throw err;
    }
    board.relabel(`job ${row.id}`);
    return row;
  }

  /** Starts a board job; with wait, answers once it ended, otherwise 202 {jobId}. */
  async start<T>(
    board: Board,
    kind: string,
    params: unknown,
    fn: (ctx: JobContext) => Promise<T>,
    opts: { total?: number; wait?: boolean; actor: string | null },
  ): Promise<JobAnswer> {
    const row = await this.submit(board, kind, params, fn, opts);
    if (opts.wait) return { status: 200, body: jobView((await this.jobs.wait(row.id))!) };
    return { status: 202, body: { jobId: row.id, state: row.state, href: `/v1/jobs/${row.id}` } };
  }

  /**
   * Submits a board job and hands back, besides its row, its outcome: the
   * value `fn` returned, or the very error it threw, once the job has ended.
   */
  async track<T>(
    board: Board,
    kind: string,
    params: unknown,
    fn: (ctx: JobContext) => Promise<T>,
    opts: { total?: number; actor: string | null },
  ): Promise<{ row: JobRow; outcome: Promise<T> }> {
    let value: T | undefined;
    let failure: unknown;
    const row = await this.submit(
      board,
      kind,
      params,
      async (ctx) => {
        try {
          value = await fn(ctx);
          return value;
        } catch (err) {
          failure = err;
          throw err;
        }
      },
      opts,
    );
    const outcome = this.jobs.wait(row.id).then(() => {
      if (failure !== undefined) throw failure;
      return value as T;
    });
    outcome.catch(() => undefined); // a caller that stops waiting (a time-out) leaves no unhandled rejection
    return { row, outcome };
  }

  /** Runs a short operation as a recorded job and answers with its result, or throws its error. */
  async operation<T>(
    board: Board,
    kind: string,
    params: unknown,
    fn: (ctx: JobContext) => Promise<T>,
    actor: string | null,
  ): Promise<T & { jobId: string }> {
    const { row, outcome } = await this.track(board, kind, params, fn, { actor });
    return { ...(await outcome), jobId: row.id };
  }
}
