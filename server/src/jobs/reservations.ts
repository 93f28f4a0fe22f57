// Reservations: a holder (a person's token name, or a run) keeps boards to
// itself until a time; others get 409 TR_DEVICE_RESERVED naming the holder and
// the expiry. A lease that is not renewed expires by itself: expiry is judged
// by the clock on every check, and a sweep ends expired leases in the store
// (and logs it), so a lapsed lease never blocks a board.
import type { Logger } from 'pino';
import { Errors, type RigError } from '../errors.js';
import { newId, type LeaseRow, type Store } from '../store/store.js';

export type Lease = LeaseRow;

/** 409 naming the holder of a device and until when. */
const reserved = (deviceId: string, l: Lease): RigError =>
  Errors.DEVICE_RESERVED(`device ${deviceId} is reserved by ${l.holder} until ${l.expiresAt}${l.reason ? ` (${l.reason})` : ''}`, {
    leaseId: l.id,
    holder: l.holder,
    expiresAt: l.expiresAt,
    reason: l.reason,
  });

export class Reservations {
  private sweep: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    sweepMs = 1000,
  ) {
    this.sweep = setInterval(() => void this.endExpired().catch((err: unknown) => this.log.warn({ err }, 'lease sweep failed')), sweepMs);
    this.sweep.unref();
  }

  close(): void {
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
  }

  /** Leases in force now. */
  async active(now = Date.now()): Promise<Lease[]> {
    return (await this.store.openLeases()).filter((l) => Date.parse(l.expiresAt) > now);
  }

  /** The lease in force on a device, if any. */
  async holding(deviceId: string): Promise<Lease | null> {
    return (await this.active()).find((l) => l.deviceIds.includes(deviceId)) ?? null;
  }

  /** Refuses when someone other than `actor` holds the device. */
  async check(deviceId: string, actor: string | null): Promise<void> {
    const l = await this.holding(deviceId);
    if (l && l.holder !== actor) throw reserved(deviceId, l);
  }

  /** Reserves every device or none (409 naming the first one held by another). */
  async reserve(deviceIds: string[], holder: string, ttlMs: number, reason: string | null): Promise<Lease> {
    for (const id of deviceIds) await this.check(id, holder);
    const lease = {
      id: newId('lease'),
      deviceIds: [...new Set(deviceIds)],
      holder,
      reason,
      expiresAt: new Date(Date.now() + ttlMs).toISOString(),
    };
    // checked again where it is written: another host may have reserved one of the boards since
    const held = await this.store.insertLease(lease);
    if (held) throw reserved(held.deviceIds.find((x) => lease.deviceIds.includes(x))!, held);
    this.log.info({ leaseId: lease.id, deviceIds: lease.deviceIds, holder, expiresAt: lease.expiresAt }, 'boards reserved');
    return { ...lease, createdAt: new Date().toISOString() };
  }

  async get(id: string): Promise<Lease> {
    const l = (await this.active()).find((x) => x.id === id);
    if (!l) throw Errors.LEASE_NOT_FOUND(`no lease '${id}' in force`);
    return l;
  }

  /** Moves the expiry of a lease in force (its holder only). */
  async renew(id: string, holder: string, ttlMs: number): Promise<Lease> {
    const l = await this.get(id);
    if (l.holder !== holder) throw Errors.FORBIDDEN(`lease ${id} is held by ${l.holder}`);
    const expiresAt = new Date(Date.now() + ttlMs).toISOString();
    await this.store.renewLease(id, expiresAt);
    return { ...l, expiresAt };
  }

  /** Ends a lease: its holder, or an admin breaking it (`by` names who). */
  async release(id: string, by: string, opts: { admin: boolean }): Promise<Lease> {
    const l = await this.get(id);
    if (l.holder !== by && !opts.admin) throw Errors.FORBIDDEN(`lease ${id} is held by ${l.holder}; only its holder or an admin may end it`);
    await this.store.endLease(id, by);
    this.log.info({ leaseId: id, holder: l.holder, by }, l.holder === by ? 'reservation released' : 'reservation broken by an admin');
    return l;
  }

  private async endExpired(): Promise<void> {
    const now = Date.now();
    for (const l of await this.store.openLeases()) {
      if (Date.parse(l.expiresAt) <= now && (await this.store.endLease(l.id, 'expired'))) {
        this.log.info({ leaseId: l.id, holder: l.holder, deviceIds: l.deviceIds }, 'reservation expired: its boards are free');
      }
    }
  }
}
