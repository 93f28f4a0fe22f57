// Many rig hosts, one fleet: this host's presence in the shared store, its
// queue of requests from the other hosts, and requests to the host that owns
// a board. Present only with the PostgreSQL store (TINYRIG_DATABASE_URL).
import type { Logger } from 'pino';
import { Errors, RigError } from '../errors.js';
import { HostPresence, type FleetBoard } from './presence.js';
import { HostQueue, type RemoteAnswer, type RemoteRequest } from './queue.js';
import type { Store } from '../store/store.js';

export interface FleetOptions {
  store: Store;
  databaseUrl: string;
  url: string;
  version: string;
  heartbeatMs: number;
  offlineMs: number;
  concurrency: number;
  timeoutMs: number;
  log: Logger;
  boards: () => Promise<{ deviceId: string; doc: Record<string, unknown> }[]>;
  /** Runs a request of another host on this one (fastify.inject). */
  handle: (req: RemoteRequest) => Promise<Omit<RemoteAnswer, 'queueMs'>>;
}

export class Fleet {
  private constructor(
    readonly presence: HostPresence,
    readonly queue: HostQueue,
    private readonly opts: FleetOptions,
  ) {}

  static async start(opts: FleetOptions): Promise<Fleet> {
    const presence = new HostPresence({
      store: opts.store, url: opts.url, version: opts.version, heartbeatMs: opts.heartbeatMs, offlineMs: opts.offlineMs,
      log: opts.log, boards: opts.boards,
    });
    const queue = await HostQueue.start({
      url: opts.databaseUrl, hostId: opts.store.hostId, concurrency: opts.concurrency, log: opts.log, handle: opts.handle,
    });
    await presence.start();
    opts.log.info({ hostId: opts.store.hostId, url: opts.url }, 'rig host registered in the shared store');
    return new Fleet(presence, queue, opts);
  }

  get hostId(): string {
    return this.opts.store.hostId;
  }

  /** Sends a request to the host that owns the board; the answer as that host gave it. */
  async send(hostId: string, req: RemoteRequest, timeoutMs = this.opts.timeoutMs): Promise<RemoteAnswer> {
    if (!(await this.presence.isOnline(hostId))) throw Errors.HOST_OFFLINE(`rig host ${hostId} is offline`, { hostId });
    return this.queue.call(hostId, req, { timeoutMs, alive: () => this.presence.isOnline(hostId) });
  }

  /** A JSON request to another host's API; its error answers become RigErrors with their own code. */
  async json<T>(
    hostId: string,
    method: string,
    url: string,
    body: unknown,
    who: { actor: string | null; role: string | null },
    timeoutMs?: number,
  ): Promise<T> {
    const answer = await this.send(hostId, {
      method, url,
      contentType: body === undefined ? null : 'application/json',
      body: body === undefined ? null : Buffer.from(JSON.stringify(body)).toString('base64'),
      actor: who.actor, role: who.role,
    }, timeoutMs);
    const text = Buffer.from(answer.body, 'base64').toString('utf8');
    const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (answer.status >= 400) {
      throw new RigError(String(parsed.code ?? 'TR_INTERNAL'), answer.status, String(parsed.message ?? text), parsed.details);
    }
    return parsed as T;
  }

  remoteBoards(maxAgeMs?: number): Promise<FleetBoard[]> {
    return this.presence.remoteBoards(maxAgeMs);
  }

  async stop(): Promise<void> {
    await this.queue.stop();
    await this.presence.stop();
  }
}
