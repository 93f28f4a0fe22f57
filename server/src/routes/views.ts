// JSON views of the daemon's objects, as the API returns them.
import type { Board } from '../devices/board.js';
import type { FleetBoard } from '../hosts/presence.js';
import type { Lease } from '../jobs/reservations.js';
import type { Rig } from '../rig.js';
import type { JobRow, SnapshotRow } from '../store/store.js';
import { modelView } from '../operations/snapshots.js';

export function jobView(j: JobRow) {
  return {
    id: j.id,
    kind: j.kind,
    deviceId: j.deviceId,
    state: j.state,
    progress: { done: j.done, total: j.total },
    params: j.params,
    result: j.result,
    error: j.error,
    createdAt: j.createdAt,
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
    actor: j.actor ?? null,
    /** The rig host that runs (or ran) it. */
    host: j.hostId ?? null,
  };
}

export function snapshotView(s: SnapshotRow) {
  return {
    id: s.id,
    sha256: s.sha256,
    bytes: s.bytes,
    device: s.deviceId,
    model: s.modelName,
    modelSha256: s.modelSha256,
    step: s.step,
    createdAt: s.createdAt,
    tags: s.tags,
    accuracy: s.accuracy,
    good: s.good,
    evaluatedOn: s.evaluatedOn ?? null,
  };
}

/** Whether a published device document matches a selector's board (name or class) and tag. */
export function matchesSelector(doc: Record<string, unknown>, sel: { board?: string; tag?: string }): boolean {
  if (sel.board && doc.board !== sel.board && doc.class !== sel.board) return false;
  if (sel.tag && !((doc.tags as string[] | undefined) ?? []).includes(sel.tag)) return false;
  return true;
}

/** A board of another host, as that host last published it; offline with its host. */
export function remoteDeviceView(b: FleetBoard): Record<string, unknown> & { id: string; board: string | null; state: 'online' | 'offline' | 'connecting'; busy: string | null } {
  const doc = b.doc as ReturnType<typeof deviceSummary>;
  return { ...doc, id: b.deviceId, host: b.hostId, hostOnline: b.hostOnline, state: b.hostOnline ? doc.state : 'offline' };
}

/** A board as the API shows it; `leases` are the reservations in force (Reservations.active()). */
export function deviceSummary(rig: Rig, b: Board, leases: Lease[]) {
  const h = b.hello;
  const st = b.stats;
  const power = rig.energy.info(b.entry, h?.board);
  const staticRam = st?.staticRam ?? h?.staticRam ?? null;
  const arena = h?.arenaBytes ?? null;
  // bytes ever in use: static data outside the arena + arena peak + stack peak
  const peak =
    staticRam !== null && arena !== null && st ? Math.max(0, staticRam - arena) + st.arenaPeak + st.stackPeak : null;
  return {
    id: b.id,
    /** The rig host that owns its serial port. */
    host: rig.config.hostId,
    label: b.entry.label ?? null,
    tags: b.entry.tags ?? [],
    board: h?.board ?? b.entry.board ?? null,
    class: b.entry.class ?? null,
    emulated: b.entry.emulated ?? false,
    port: b.entry.path,
    state: b.status,
    busy: b.busyWith,
    reservation: (() => {
      const l = leases.find((x) => x.deviceIds.includes(b.id));
      return l ? { leaseId: l.id, holder: l.holder, expiresAt: l.expiresAt, reason: l.reason } : null;
    })(),
    lastError: b.lastError,
    firmware: h ? { build: h.build, protocol: h.proto, engine: h.engine, bootId: h.bootId } : null,
    cpu: h?.cpu ?? null,
    clockHz: h?.clockHz ?? null,
    counterUnit: h?.counter ?? null,
    ram: {
      total: h?.ramBytes ?? null,
      used: staticRam,
      peak,
      static: staticRam,
      arena,
      arenaPeak: st?.arenaPeak ?? null,
      stack: h?.stackBytes ?? null,
      stackPeak: st?.stackPeak ?? null,
    },
    model: modelView(b),
    steps: st?.stepsApplied ?? 0,
    samples: { slots: h?.sampleSlots ?? null, heldFrom: b.heldFrom, heldTo: b.heldTo },
    limits: h ? { maxFrame: h.maxFrame, window: h.window, maxTrain: h.maxTrain, blobMax: h.blobMax } : null,
    power: {
      source: power.source,
      board: power.model?.board ?? null,
      activeMw: power.model?.activeMw ?? null,
      clockHz: power.model?.clockHz ?? null,
      reference: power.model?.source ?? null,
      meter: power.meter,
    },
    lastEval: b.lastEval,
    counters: { ...b.counters },
    connectedAt: b.connectedAt,
    discovered: b.discovered,
  };
}
