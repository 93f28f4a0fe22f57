// Work for a board on another rig host goes through that host's pg-boss
// queue: the host that owns the serial port fetches it, runs it and completes
// the pg-boss job with the answer, which the asking host reads back. pg-boss
// keeps the queue durable (a request is never lost, and with retryLimit 0 it
// never runs twice); PostgreSQL LISTEN/NOTIFY only wakes the worker and the
// waiter early, polling covers a lost notification.
import { EventEmitter } from 'node:events';
import PgBoss from 'pg-boss';
import pg from 'pg';
import type { Logger } from 'pino';
import { Errors } from '../errors.js';

/** What a host asks of another: an API request, as the owning host should run it. */
export interface RemoteRequest {
  method: string;
  url: string;
  contentType: string | null;
  /** The body, base64 (absent: no body). */
  body: string | null;
  /** Who sent it to the first host: the token's name and role, already authenticated there. */
  actor: string | null;
  role: string | null;
}

export interface RemoteAnswer {
  status: number;
  contentType: string | null;
  /** base64 */
  body: string;
  /** From enqueue to the start of the work on the owning host. */
  queueMs: number;
}

interface QueuedRequest extends RemoteRequest {
  replyTo: string;
  sentAt: number;
}

export const queueOf = (hostId: string): string => `tinyrig-host-${hostId}`;

/** Runs `fn` again (after a random pause) while PostgreSQL picks it as a deadlock victim (40P01). */
async function untilNoDeadlock<T>(fn: () => Promise<T>, attempts = 8): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200 * i));
    }
  }
}
const channelOf = (hostId: string): string => `tinyrig_host_${hostId.replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 63);

export interface HostQueueOptions {
  url: string;
  hostId: string;
  /** Requests of other hosts this host runs at once. */
  concurrency: number;
  log: Logger;
  /** Runs one request of another host here and answers it. */
  handle: (req: RemoteRequest) => Promise<Omit<RemoteAnswer, 'queueMs'>>;
  /** How long a request may run on its host before pg-boss fails it (a host that dies is noticed sooner, by its heartbeat). */
  expireSeconds?: number;
  pollMs?: number;
}

export class HostQueue {
  private readonly boss: PgBoss;
  private listener: pg.Client | null = null;
  private readonly wake = new EventEmitter();
  private running = false;
  private inFlight = 0;
  private loop: Promise<void> | null = null;
  private readonly known = new Set<string>();
  /** Queue latencies (ms) of the requests this host ran, newest last (for metrics and the fleet bench). */
  readonly latencies: number[] = [];
  /** Told each request's queue latency (ms) as it starts here: the hosts plugin feeds /metrics with it. */
  onQueued: ((queueMs: number) => void) | null = null;

  private constructor(private readonly opts: HostQueueOptions) {
    this.boss = new PgBoss({
      connectionString: opts.url,
      max: 4,
      schedule: false,
      supervise: true,
      application_name: `tinyrig ${opts.hostId} queue`,
    });
    this.boss.on('error', (err: Error) => opts.log.warn({ err: err.message }, 'job queue error'));
    this.wake.setMaxListeners(0);
  }

  static async start(opts: HostQueueOptions): Promise<HostQueue> {
    const q = new HostQueue(opts);
    // daemons starting together install pg-boss and add their queues (partitions of one table) at once
    await untilNoDeadlock(() => q.boss.start());
    await untilNoDeadlock(() => q.ensureQueue(opts.hostId));
    q.running = true;
    await q.listen();
    q.loop = q.work();
    return q;
  }

  private async ensureQueue(hostId: string): Promise<void> {
    const name = queueOf(hostId);
    if (this.known.has(name)) return;
    if (!(await this.boss.getQueue(name))) {
      try {
        await this.boss.createQueue(name, { name, retryLimit: 0, expireInSeconds: this.opts.expireSeconds ?? 12 * 3600 });
      } catch (err) {
        // another daemon created it at the same moment
        if (!(await this.boss.getQueue(name))) throw err;
      }
    }
    this.known.add(name);
  }

  /** LISTENs on this host's channel; reconnects while the queue runs. */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.url, application_name: `tinyrig ${this.opts.hostId} listen` });
    const again = (): void => {
      if (this.listener === client) this.listener = null;
      client.removeAllListeners();
      void client.end().catch(() => undefined);
      if (this.running) setTimeout(() => void this.listen().catch(() => undefined), 1000).unref();
    };
    client.on('error', again);
    client.on('end', again);
    client.on('notification', (n) => {
      const p = n.payload ?? '';
      if (p === 'work') this.wake.emit('work');
      else if (p.startsWith('done:')) this.wake.emit(p);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${channelOf(this.opts.hostId)}"`);
      this.listener = client;
      // anything sent while the listener was away
      this.wake.emit('work');
    } catch {
      again();
    }
  }

  private async notify(hostId: string, payload: string): Promise<void> {
    const db = (this.boss as unknown as { getDb(): { executeSql(sql: string, args: unknown[]): Promise<unknown> } }).getDb();
    await db.executeSql('SELECT pg_notify($1, $2)', [channelOf(hostId), payload]).catch(() => undefined);
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.wake.off('work', done);
        this.wake.off('slot', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake.once('work', done);
      this.wake.once('slot', done);
    });
  }

  /** Fetches this host's requests while there is room, runs them, completes each with its answer. */
  private async work(): Promise<void> {
    const name = queueOf(this.opts.hostId);
    while (this.running) {
      const room = this.opts.concurrency - this.inFlight;
      const jobs = room > 0 ? await this.boss.fetch<QueuedRequest>(name, { batchSize: room }).catch(() => [] as PgBoss.Job<QueuedRequest>[]) : [];
      for (const job of jobs ?? []) {
        this.inFlight++;
        void this.runOne(name, job).finally(() => {
          this.inFlight--;
          this.wake.emit('slot');
        });
      }
      if (!jobs || jobs.length === 0 || this.inFlight >= this.opts.concurrency) await this.idle(this.opts.pollMs ?? 1000);
    }
  }

  private async runOne(name: string, job: PgBoss.Job<QueuedRequest>): Promise<void> {
    const req = job.data;
    const queueMs = Date.now() - req.sentAt;
    this.latencies.push(queueMs);
    if (this.latencies.length > 100_000) this.latencies.splice(0, 50_000);
    this.onQueued?.(queueMs);
    let answer: RemoteAnswer;
    try {
      answer = { ...(await this.opts.handle(req)), queueMs };
    } catch (err) {
      const body = { code: 'TR_INTERNAL', error: 'Internal Server Error', statusCode: 500, message: (err as Error).message };
      answer = { status: 500, contentType: 'application/json', body: Buffer.from(JSON.stringify(body)).toString('base64'), queueMs };
    }
    // completing may meet PostgreSQL restarting: try until it takes it (the answer is the outcome of work done)
    for (let attempt = 0; ; attempt++) {
      try {
        await this.boss.complete(name, job.id, answer as unknown as object);
        break;
      } catch (err) {
        if (!this.running || attempt >= 60) {
          this.opts.log.warn({ jobId: job.id, err: (err as Error).message }, 'remote request ran, but its answer could not be stored');
          return;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    await this.notify(req.replyTo, `done:${job.id}`);
  }

  /**
   * Sends a request to the host that owns the board and waits for its answer.
   * `alive` is asked while waiting: when it says the host is gone, the wait
   * ends with TR_HOST_OFFLINE (what the host did is unknown).
   */
  async call(hostId: string, req: RemoteRequest, opts: { timeoutMs: number; alive: () => Promise<boolean> }): Promise<RemoteAnswer> {
    await this.ensureQueue(hostId);
    const name = queueOf(hostId);
    const data: QueuedRequest = { ...req, replyTo: this.opts.hostId, sentAt: Date.now() };
    const id = await this.boss.send(name, data as unknown as object, { retryLimit: 0 });
    if (!id) throw Errors.INTERNAL(`the queue of host ${hostId} did not take the request`);
    await this.notify(hostId, 'work');
    const deadline = Date.now() + opts.timeoutMs;
    let checks = 0;
    for (;;) {
      const job = await this.boss.getJobById<QueuedRequest>(name, id).catch(() => undefined);
      if (job?.state === 'completed' && job.output) return job.output as unknown as RemoteAnswer;
      if (job && (job.state === 'failed' || job.state === 'cancelled')) {
        throw Errors.HOST_OFFLINE(`host ${hostId} did not run the request (its queue entry ${job.state}; it expired unrun or the host stopped)`, { hostId });
      }
      if (Date.now() > deadline) throw Errors.HOST_TIMEOUT(`host ${hostId} did not answer within ${opts.timeoutMs} ms`, { hostId });
      if (++checks % 4 === 0 && !(await opts.alive())) {
        throw Errors.HOST_OFFLINE(`host ${hostId} stopped answering while it had the request; what it did is unknown`, { hostId, unknown: true });
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.wake.off(`done:${id}`, done);
          resolve();
        };
        const t = setTimeout(done, 250);
        this.wake.once(`done:${id}`, done);
      });
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake.emit('work');
    await this.loop;
    const l = this.listener;
    this.listener = null;
    if (l) {
      l.removeAllListeners();
      l.on('error', () => undefined);
      await l.end().catch(() => undefined);
    }
    await this.boss.stop({ graceful: true, wait: true, timeout: 5000 }).catch(() => undefined);
  }
}
