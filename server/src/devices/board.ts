// One board as the daemon sees it: its link (opened, handshaken, re-opened with
// back-off after an unplug), what it holds (model, samples, step ids), a
// command queue so nothing from two clients interleaves on the link, and a
// lease so one job at a time owns the board.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { DeviceEntry } from '../config.js';
import { Errors, RigError } from '../errors.js';
import type { EvalSlice, Store } from '../store/store.js';
import {
  DeviceError,
  DisconnectedError,
  TimeoutError,
  type BoardLink,
  type DeviceStats,
  type HelloInfo,
  type ModelInfo,
  type SessionLogger,
} from '../../../protocol/src/index.js';

export type BoardStatus = 'connecting' | 'online' | 'offline';

export interface OpenLinkOptions {
  path: string;
  baudRate: number;
  requestTimeoutMs: number;
  /** The board's logger ({deviceId} bound): retransmits, NAKs and a lost link are logged there. */
  log?: SessionLogger;
}

/** How a board's link is opened (the daemon's: a serial port through the protocol session, open-serial.ts). */
export type LinkOpener = (opts: OpenLinkOptions) => Promise<BoardLink>;

/** What the board holds: `sha256` is the model blob's, `weightsSha256` the live weights'. */
export interface BoardModel extends Partial<Omit<ModelInfo, 'modelSha256'>> {
  sha256: string;
  name: string | null;
  weightsSha256: string;
}

export interface BoardCounters {
  steps: number;
  linkErrors: number;
  retransmits: number;
  timeouts: number;
  resets: number;
  reconnects: number;
}

export interface BoardOptions {
  opener: LinkOpener;
  store: Store;
  log: Logger;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  requestTimeoutMs: number;
  discovered?: boolean;
}

export class Board extends EventEmitter {
  readonly id: string;
  readonly entry: DeviceEntry;
  readonly discovered: boolean;
  status: BoardStatus = 'offline';
  lastError: string | null = null;
  hello: HelloInfo | null = null;
  stats: DeviceStats | null = null;
  model: BoardModel | null = null;
  /** Sample numbers [heldFrom, heldTo) sent since the model was loaded; the ring keeps the last sampleSlots. */
  heldFrom = 0;
  heldTo = 0;
  private readonly heldLabels = new Map<number, number>();
  /** Next TRAIN step id: above anything the board has applied. */
  nextStepId = 1;
  /** Last evaluation of the weights the board holds now, if any. */
  lastEval: { accuracy: number; loss: number; count: number; weightsSha256: string; at: string; slice: EvalSlice | null } | null = null;
  connectedAt: string | null = null;
  readonly counters: BoardCounters = { steps: 0, linkErrors: 0, retransmits: 0, timeouts: 0, resets: 0, reconnects: 0 };

  private link: BoardLink | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private lease: { owner: string } | null = null;
  private closed = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  private readonly opts: BoardOptions;
  /** The boot id last seen, kept in the store across daemon restarts (undefined: not read yet). */
  private knownBootId: number | null | undefined = undefined;
  private connecting: Promise<void> | null = null;

  constructor(entry: DeviceEntry, opts: BoardOptions) {
    super();
    this.id = entry.id;
    this.entry = entry;
    this.opts = opts;
    this.discovered = opts.discovered ?? false;
    this.log = opts.log.child({ deviceId: entry.id });
  }

  get busyWith(): string | null {
    return this.lease?.owner ?? null;
  }

  /** Starts connecting; retries with back-off until close(). */
  start(): void {
    this.closed = false;
    this.scheduleConnect(0);
  }

  /** Resolves once the board is online (or rejects after `ms`). */
  async waitOnline(ms: number): Promise<void> {
    if (this.status === 'online') return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('online', on);
        reject(Errors.DEVICE_OFFLINE(`device ${this.id} did not come online within ${ms} ms${this.lastError ? `: ${this.lastError}` : ''}`));
      }, ms);
      const on = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.once('online', on);
    });
  }

  private scheduleConnect(delay: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connecting = this.connect().finally(() => {
        this.connecting = null;
      });
    }, delay);
    this.timer.unref?.();
  }

  private backoff(): number {
    const base = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectMinMs * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    this.status = 'connecting';
    let link: BoardLink | null = null;
    try {
      link = await this.opts.opener({
        path: this.entry.path,
        baudRate: this.entry.baudRate ?? 115200,
        requestTimeoutMs: this.opts.requestTimeoutMs,
        log: this.log,
      });
      if (this.closed) {
        await link.close();
        return;
      }
      const hello = link.hello;
      const stats = await link.stats();
      if (this.knownBootId === undefined) this.knownBootId = (await this.opts.store.getDeviceState(this.id))?.bootId ?? null;
      const wasReset = this.knownBootId !== null && this.knownBootId !== hello.bootId;
      this.link = link;
      this.hello = hello;
      this.stats = stats;
      this.nextStepId = Math.max(this.nextStepId, stats.lastStepId + 1);
      if (wasReset) this.forgetBoardState('boot id changed while the link was down');
      await this.learnModel(link, stats);
      this.knownBootId = hello.bootId;
      await this.persistState();
      const l = link;
      l.on('disconnect', (reason) => void this.linkLost(l, reason));
      l.on('reset', () => void this.bootSeen(l));
      l.on('log', ({ level, text }) => this.log[level >= 3 ? 'error' : level === 2 ? 'warn' : level === 1 ? 'info' : 'debug']({ board: true }, text));
      if (this.connectedAt !== null) this.counters.reconnects++;
      this.connectedAt = new Date().toISOString();
      this.attempt = 0;
      this.lastError = null;
      this.status = 'online';
      this.log.info({ board: hello.board, build: hello.build, bootId: hello.bootId, engine: hello.engine }, 'board online');
      this.emit('online');
      // lost between the handshake and here: its 'disconnect' went by unheard
      if (l.closed) void this.linkLost(l, 'port closed');
    } catch (err) {
      this.link = null;
      if (link) await link.close().catch(() => undefined);
      this.status = 'offline';
      const msg = (err as Error).message ?? String(err);
      if (this.lastError !== msg) this.log.warn({ path: this.entry.path, err: msg }, 'board not reachable; retrying');
      this.lastError = msg;
      this.scheduleConnect(this.backoff());
    }
  }

  /** What model the board holds, from its STATS and our models table. */
  private async learnModel(link: BoardLink, stats: DeviceStats): Promise<void> {
    if (!stats.modelSha256) {
      this.model = null;
      return;
    }
    if (this.model && this.model.sha256 === stats.modelSha256) {
      this.model.weightsSha256 = (await link.weightsInfo()).sha256;
      return;
    }
    const info = await link.weightsInfo();
    const row = await this.opts.store.getModel(stats.modelSha256);
    this.model = {
      sha256: stats.modelSha256,
      name: row?.name ?? null,
      weightsSha256: info.sha256,
      weightsBytes: info.weightsBytes,
      inputBytes: row?.inputBytes ?? undefined,
      classes: row?.classes ?? undefined,
    };
  }

  private forgetBoardState(why: string): void {
    this.counters.resets++;
    this.model = null;
    this.heldFrom = this.heldTo = 0;
    this.lastEval = null;
    this.log.warn({ why }, 'board reset: its samples, model and step memory are gone');
    this.emit('reset', why);
  }

  private async bootSeen(link: BoardLink): Promise<void> {
    // The board announced a boot on its own: re-handshake to learn the new boot id.
    if (link !== this.link) return;
    this.forgetBoardState('the board announced a boot');
    await this.linkLost(link, 'board restarted');
  }

  private async linkLost(link: BoardLink, reason: string): Promise<void> {
    if (link !== this.link) return;
    this.link = null;
    this.counters.linkErrors++;
    this.status = 'offline';
    this.lastError = reason;
    this.log.warn({ reason }, 'link lost; reconnecting');
    this.emit('offline', reason);
    await link.close().catch(() => undefined);
    this.scheduleConnect(this.closed ? 0 : this.backoff());
  }

  private async persistState(): Promise<void> {
    await this.opts.store.setDeviceState({
      deviceId: this.id,
      modelSha256: this.model?.sha256 ?? null,
      modelName: this.model?.name ?? null,
      bootId: this.knownBootId ?? null,
    });
  }

  /** Takes the board for one owner (a job or a request); throws TR_DEVICE_BUSY when taken. */
  acquire(owner: string): () => void {
    if (this.lease) throw Errors.DEVICE_BUSY(`device ${this.id} is busy with ${this.lease.owner}`, { owner: this.lease.owner });
    const lease = { owner };
    this.lease = lease;
    return () => {
      if (this.lease === lease) this.lease = null;
    };
  }

  /** Hands the lease to a new owner name (a request that became a job). */
  relabel(owner: string): void {
    if (this.lease) this.lease.owner = owner;
  }

  /** The link's own counters (frames and bytes each way, retransmits), or null while there is no link. */
  linkCounters(): BoardLink['counters'] | null {
    return this.link ? { ...this.link.counters } : null;
  }

  /** Runs `fn` alone on the link: commands from different callers never interleave. */
  run<T>(what: string, fn: (link: BoardLink) => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      const link = this.link;
      if (!link || this.status !== 'online') {
        throw Errors.DEVICE_OFFLINE(`device ${this.id} is ${this.status}${this.lastError ? ` (${this.lastError})` : ''}; cannot ${what}`);
      }
      const before = { ...link.counters };
      try {
        return await fn(link);
      } catch (err) {
        throw this.describe(err, what);
      } finally {
        const after = link.counters;
        this.counters.retransmits += after.retransmits - before.retransmits;
        this.counters.timeouts += after.timeouts - before.timeouts;
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Turns a protocol error into an API error that names the board and the operation. */
  private describe(err: unknown, what: string): RigError {
    if (err instanceof RigError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    if (err instanceof DisconnectedError || this.status !== 'online') {
      return Errors.DEVICE_DISCONNECTED(`device ${this.id} disconnected during ${what}: ${msg}`);
    }
    if (err instanceof TimeoutError) {
      this.counters.linkErrors++;
      return Errors.DEVICE_TIMEOUT(`device ${this.id} did not answer during ${what}: ${msg}`);
    }
    if (err instanceof DeviceError) {
      const { codeName, detail } = err;
      if (codeName === 'NOT_SUPPORTED') {
        return Errors.ENGINE_MISSING(`device ${this.id} cannot ${what}: its firmware has no training engine (${msg})`);
      }
      if (codeName === 'NO_MODEL') return Errors.NO_MODEL(`device ${this.id} has no model loaded; cannot ${what}`);
      if (codeName === 'MODEL_TOO_LARGE') {
        const need = detail ? `: it needs ${detail} bytes of arena, the board has ${this.hello?.arenaBytes ?? '?'}` : '';
        return Errors.MODEL_TOO_LARGE(`device ${this.id} cannot hold the model${need} (${msg})`, { device: codeName, needBytes: detail ?? null });
      }
      if (codeName === 'BAD_ARG') {
        return Errors.BAD_REQUEST(`device ${this.id} refused an argument of ${what}: ${msg}`, { device: codeName, detail });
      }
      if (codeName === 'BAD_SAMPLE') {
        return Errors.SAMPLE_INVALID(`device ${this.id} refused a sample during ${what}: ${msg}`, { device: codeName, detail });
      }
      if (codeName === 'MODEL_INVALID') {
        return Errors.MODEL_INVALID(`device ${this.id} refused the model at validation: ${msg}`, { device: codeName, detail });
      }
      return Errors.DEVICE_ERROR(`device ${this.id} refused ${what}: ${msg}`, { device: codeName, detail });
    }
    return Errors.INTERNAL(`device ${this.id}: ${what} failed: ${msg}`);
  }

  // ---- bookkeeping the operations call after a successful command

  async modelLoaded(model: BoardModel): Promise<void> {
    this.model = model;
    this.heldFrom = this.heldTo = 0;
    this.heldLabels.clear();
    this.lastEval = null;
    await this.persistState();
  }

  weightsChanged(sha256: string): void {
    if (this.model) this.model.weightsSha256 = sha256;
    if (this.lastEval && this.lastEval.weightsSha256 !== sha256) this.lastEval = null;
  }

  /**
   * Records a batch the board stored as sample numbers [index, index+count)
   * (with their labels, for evaluating the ring per class); returns the
   * numbers it pushed out of the ring.
   */
  samplesSent(index: number, count: number, labels?: Uint8Array): { from: number; to: number } | null {
    const slots = this.hello?.sampleSlots ?? count;
    const before = { from: this.heldFrom, to: this.heldTo };
    if (index !== this.heldTo) this.heldFrom = index;
    this.heldTo = index + count;
    this.heldFrom = Math.max(this.heldFrom, this.heldTo - slots);
    if (labels) for (let i = 0; i < count; i++) this.heldLabels.set(index + i, labels[i]);
    for (const n of this.heldLabels.keys()) if (n < this.heldFrom || n >= this.heldTo) this.heldLabels.delete(n);
    const lostTo = Math.min(before.to, this.heldFrom);
    return lostTo > before.from ? { from: before.from, to: lostTo } : null;
  }

  /** The label sent with held sample number n, when the daemon sent it. */
  heldLabel(n: number): number | undefined {
    return this.heldLabels.get(n);
  }

  async refreshStats(): Promise<DeviceStats> {
    const stats = await this.run('read stats', (l) => l.stats());
    this.stats = stats;
    return stats;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.connecting?.catch(() => undefined);
    const link = this.link;
    this.link = null;
    this.status = 'offline';
    if (link) await link.close().catch(() => undefined);
  }
}
