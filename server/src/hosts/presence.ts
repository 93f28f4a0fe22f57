// Each rig host registers itself and its boards in the shared store with a
// heartbeat. A host silent for hostOfflineMs is offline, with its boards; any
// live host then fails the jobs it left queued or running (TR_HOST_LOST), so
// none stays "running" for ever. The fleet's boards are read from here.
import type { Logger } from 'pino';
import type { BoardRow, HostRow, Store } from '../store/store.js';

export interface FleetBoard {
  deviceId: string;
  hostId: string;
  hostUrl: string;
  hostOnline: boolean;
  /** The device document its host last published. */
  doc: Record<string, unknown>;
}

export interface PresenceOptions {
  store: Store;
  url: string;
  version: string;
  heartbeatMs: number;
  offlineMs: number;
  log: Logger;
  /** This host's boards, as the API shows them. */
  boards: () => Promise<{ deviceId: string; doc: Record<string, unknown> }[]>;
}

export class HostPresence {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = new Date().toISOString();
  private cache: { at: number; hosts: HostRow[]; boards: BoardRow[] } | null = null;
  private beating: Promise<void> | null = null;
  private readonly clashes = new Set<string>();
  /** The documents the last stored heartbeat wrote, by board (null: write them all next time). */
  private published: Map<string, string> | null = null;
  private beats = 0;
  /** The last heartbeat that reached the store (ms since epoch), 0 before the first. */
  lastBeat = 0;

  constructor(private readonly opts: PresenceOptions) {}

  get hostId(): string {
    return this.opts.store.hostId;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => (this.beating = null));
    }, this.opts.heartbeatMs);
    this.timer.unref();
  }

  /** One heartbeat: this host and its boards, then the sweep of silent hosts. */
  async beat(): Promise<void> {
    const { store, log } = this.opts;
    try {
      // a board id another live host already publishes stays that host's: ids must be unique across the fleet
      const taken = new Map((await this.remoteBoards(this.opts.heartbeatMs)).filter((b) => b.hostOnline).map((b) => [b.deviceId, b.hostId]));
      const mine = (await this.opts.boards()).filter((b) => {
        const other = taken.get(b.deviceId);
        if (!other) return true;
        if (!this.clashes.has(b.deviceId)) log.error({ deviceId: b.deviceId, hostId: other }, 'board id also used by another rig host: not published (give boards fleet-wide unique ids)');
        this.clashes.add(b.deviceId);
        return false;
      });
      // only what changed since the last heartbeat is written (all of it every tenth, and after a failure)
      const docs = new Map(mine.map((b) => [b.deviceId, JSON.stringify(b.doc)]));
      const full = this.published === null || ++this.beats % 10 === 0;
      const changed = full ? undefined : new Set(mine.filter((b) => this.published!.get(b.deviceId) !== docs.get(b.deviceId)).map((b) => b.deviceId));
      this.published = null;
      await store.heartbeat({ url: this.opts.url, version: this.opts.version, startedAt: this.startedAt }, mine, changed);
      this.published = docs;
      this.lastBeat = Date.now();
      this.cache = null;
      for (const h of await store.listHosts()) {
        if (h.id === this.hostId || h.stoppedAt || this.online(h)) continue;
        const failed = await store.failJobsOfHost(h.id, {
          code: 'TR_HOST_LOST',
          message: `host ${h.id} stopped heartbeating at ${h.heartbeatAt}; its job did not finish there`,
        });
        if (failed.length) log.warn({ hostId: h.id, jobs: failed, heartbeatAt: h.heartbeatAt }, 'host offline: its unfinished jobs are failed');
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'heartbeat not stored');
    }
  }

  online(h: HostRow): boolean {
    return !h.stoppedAt && Date.now() - Date.parse(h.heartbeatAt) < this.opts.offlineMs;
  }

  private async snapshot(maxAgeMs: number): Promise<{ hosts: HostRow[]; boards: BoardRow[] }> {
    if (this.cache && Date.now() - this.cache.at <= maxAgeMs) return this.cache;
    const [hosts, boards] = await Promise.all([this.opts.store.listHosts(), this.opts.store.listBoards()]);
    this.cache = { at: Date.now(), hosts, boards };
    return this.cache;
  }

  async hosts(maxAgeMs = 500): Promise<(HostRow & { online: boolean; boards: number })[]> {
    const { hosts, boards } = await this.snapshot(maxAgeMs);
    return hosts.map((h) => ({ ...h, online: h.id === this.hostId || this.online(h), boards: boards.filter((b) => b.hostId === h.id).length }));
  }

  /** Boards of the other hosts (as read at most maxAgeMs ago: their documents change once a heartbeat). */
  async remoteBoards(maxAgeMs = Math.min(1000, this.opts.heartbeatMs / 2)): Promise<FleetBoard[]> {
    const { hosts, boards } = await this.snapshot(maxAgeMs);
    const byId = new Map(hosts.map((h) => [h.id, h]));
    return boards
      .filter((b) => b.hostId !== this.hostId)
      .map((b) => {
        const h = byId.get(b.hostId);
        return { deviceId: b.deviceId, hostId: b.hostId, hostUrl: h?.url ?? '', hostOnline: !!h && this.online(h), doc: b.doc };
      });
  }

  /** The other host that owns a board, or null. */
  async ownerOf(deviceId: string): Promise<FleetBoard | null> {
    const all = await this.remoteBoards();
    return all.find((b) => b.deviceId === deviceId) ?? null;
  }

  async isOnline(hostId: string): Promise<boolean> {
    // the hosts table alone: asked before and while every remote request waits, it must not read every board of the fleet
    const h = (await this.opts.store.listHosts()).find((x) => x.id === hostId);
    return !!h && (h.id === this.hostId || this.online(h));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.beating;
    await this.opts.store.stopHost().catch(() => undefined);
  }
}
