// Fleet rollback: resolve each board's target (one snapshot, or its own
// last-good), roll the canary boards back one by one, then the rest in
// parallel; stop starting boards once failures exceed the limit. With a
// shared store the fleet spans hosts: a board of another host is rolled back
// by that host (through its queue), at most fleetConcurrency at once per host,
// and failures are counted fleet-wide.
import type { Board } from '../devices/board.js';
import type { FleetBoard } from '../hosts/presence.js';
import { matchesSelector } from '../routes/views.js';
import { Errors, RigError } from '../errors.js';
import { JobFailure, type JobContext } from '../jobs/runner.js';
import type { Rig } from '../rig.js';
import { sameSlice, type EvalSlice, type SnapshotRow } from '../store/store.js';
import { rollbackBoard } from './snapshots.js';

export interface FleetSelector {
  devices?: string[];
  board?: string;
  tag?: string;
}

export interface FleetRollbackParams {
  selector: FleetSelector;
  to: string;
  /** With to: last-good, count only snapshots measured on this slice. */
  goodSlice?: EvalSlice;
  canary?: number;
  maxFailures?: number;
}

export interface FleetDeviceResult {
  deviceId: string;
  phase: 'canary' | 'fleet';
  /** unknown: its host stopped answering while it had the request (counted as a failure). */
  state: 'succeeded' | 'failed' | 'skipped' | 'unknown';
  /** The rig host that owns the board. */
  host: string;
  snapshotId: string | null;
  before: string | null;
  after: string | null;
  verified: boolean;
  error: { code: string; message: string } | null;
  ms: number;
}

/**
 * The most recent good snapshot for a board: its own for its current model,
 * else its own, else any of its model. Good means accurate enough on a named
 * dataset slice; with `slice` (or the configured goodSlice) only snapshots
 * measured on exactly that slice count.
 */
export async function lastGood(rig: Rig, board: Board, slice?: EvalSlice): Promise<SnapshotRow> {
  const on = slice ?? rig.config.goodSlice;
  const ok = (s: SnapshotRow | undefined): SnapshotRow | undefined =>
    s && s.evaluatedOn && (!on || sameSlice(s.evaluatedOn, on)) ? s : undefined;
  const pick = async (opts: { deviceId?: string; modelSha256?: string }): Promise<SnapshotRow | undefined> =>
    (await rig.store.listSnapshots({ ...opts, good: true, limit: 1000 })).find((s) => ok(s));
  const model = board.model?.sha256;
  const found =
    (model && (await pick({ deviceId: board.id, modelSha256: model }))) ||
    (await pick({ deviceId: board.id })) ||
    (model && (await pick({ modelSha256: model })));
  if (!found) {
    const what = on ? ` measured on ${on.dataset}/${on.split} ${on.offset}+${on.count}` : '';
    throw Errors.NO_GOOD_SNAPSHOT(`no snapshot marked good${what} for device ${board.id}`);
  }
  return found;
}

/** A board of the fleet: this host's (board) or another's (remote). */
export interface FleetTarget {
  id: string;
  host: string;
  board?: Board;
  remote?: FleetBoard;
}

export async function resolveFleet(rig: Rig, p: FleetRollbackParams): Promise<FleetTarget[]> {
  const sel = p.selector;
  if (!sel.devices && !sel.board && !sel.tag) throw Errors.BAD_REQUEST('selector needs devices, board or tag');
  const here = rig.config.hostId;
  const remote = rig.fleet ? await rig.fleet.remoteBoards() : [];
  let targets: FleetTarget[];
  if (sel.devices) {
    // explicit ids keep the caller's order (it decides which boards are canaries)
    targets = [...new Set(sel.devices)].map((id) => {
      if (rig.devices.has(id)) return { id, host: here, board: rig.devices.get(id) };
      const r = remote.find((b) => b.deviceId === id);
      if (!r) throw Errors.DEVICE_NOT_FOUND(`no device '${id}' on any host`);
      return { id, host: r.hostId, remote: r };
    });
    targets = targets.filter((t) => (t.board ? rig.devices.select({ ...sel, devices: [t.id] }).length > 0 : matchesSelector(t.remote!.doc, sel)));
  } else {
    targets = [
      ...rig.devices.select(sel).map((b) => ({ id: b.id, host: here, board: b })),
      ...remote.filter((b) => matchesSelector(b.doc, sel)).map((b) => ({ id: b.deviceId, host: b.hostId, remote: b })),
    ];
  }
  if (targets.length === 0) throw Errors.DEVICE_NOT_FOUND('the selector matches no device');
  if (p.to !== 'last-good' && !(await rig.store.getSnapshot(p.to))) throw Errors.SNAPSHOT_NOT_FOUND(`no snapshot '${p.to}'`);
  return targets;
}

const weightsOf = (t: FleetTarget): string | null =>
  t.board ? (t.board.model?.weightsSha256 ?? null) : (((t.remote!.doc.model as { weightsSha256?: string } | null)?.weightsSha256) ?? null);

interface RemoteRollback {
  snapshotId: string;
  sha256: string;
  before: string | null;
  verified: boolean;
}

const asError = (err: unknown): { code: string; message: string } =>
  err instanceof RigError ? { code: err.code, message: err.message } : { code: 'TR_INTERNAL', message: (err as Error)?.message ?? String(err) };

export async function runFleetRollback(rig: Rig, ctx: JobContext, p: FleetRollbackParams, boards: FleetTarget[]): Promise<unknown> {
  const canary = Math.min(p.canary ?? 0, boards.length);
  const maxFailures = p.maxFailures ?? 0;
  const results: FleetDeviceResult[] = [];
  let failures = 0;
  let halted = false;
  const started = Date.now();
  ctx.progress(0, boards.length);
  const order = new Map(boards.map((b, i) => [b.id, i]));
  const summary = (extra: { interrupted?: boolean }) => ({
    to: p.to,
    canary,
    maxFailures,
    succeeded: results.filter((r) => r.state === 'succeeded').length,
    failed: failures,
    skipped: results.filter((r) => r.state === 'skipped').length,
    unknown: results.filter((r) => r.state === 'unknown').length,
    pending: boards.length - results.length,
    halted,
    hosts: [...new Set(boards.map((b) => b.host))].sort(),
    ms: Date.now() - started,
    ...extra,
    devices: [...results].sort((a, b) => order.get(a.deviceId)! - order.get(b.deviceId)!),
  });

  /** This host's board: its lease, then the rollback verified. */
  const local = async (board: Board, r: FleetDeviceResult): Promise<void> => {
    let release: (() => void) | null = null;
    try {
      const snap = p.to === 'last-good' ? await lastGood(rig, board, p.goodSlice) : (await rig.store.getSnapshot(p.to))!;
      r.snapshotId = snap.id;
      release = await rig.boardJobs.lease(board, ctx.id, ctx.actor);
      const out = await rollbackBoard(rig, board, snap);
      Object.assign(r, { state: 'succeeded', before: out.before, after: out.sha256, verified: true });
    } finally {
      release?.();
      if (r.state !== 'succeeded') r.after = board.model?.weightsSha256 ?? null;
    }
  };

  /** Another host's board: that host rolls it back (its own lease, its own checks) and says how it went. */
  const remote = async (t: FleetTarget, r: FleetDeviceResult): Promise<void> => {
    const body = { snapshotId: p.to, ...(p.to === 'last-good' && p.goodSlice ? { goodSlice: p.goodSlice } : {}) };
    const out = await rig.fleet!.json<RemoteRollback>(t.host, 'POST', `/v1/devices/${encodeURIComponent(t.id)}/rollback`, body, {
      actor: ctx.actor,
      role: 'operator',
    });
    Object.assign(r, { state: 'succeeded', snapshotId: out.snapshotId, before: out.before, after: out.sha256, verified: out.verified });
  };

  const one = async (t: FleetTarget, phase: 'canary' | 'fleet'): Promise<FleetDeviceResult> => {
    const t0 = Date.now();
    const r: FleetDeviceResult = {
      deviceId: t.id, host: t.host, phase, state: 'failed', snapshotId: null, before: weightsOf(t),
      after: null, verified: false, error: null, ms: 0,
    };
    try {
      await (t.board ? local(t.board, r) : remote(t, r));
    } catch (err) {
      r.error = asError(err);
      // the host went away holding the request: the board may or may not have been rolled back
      if (r.error.code === 'TR_HOST_OFFLINE' && (err as RigError).details && ((err as RigError).details as { unknown?: boolean }).unknown) r.state = 'unknown';
      else r.state = 'failed';
      failures++;
    } finally {
      r.ms = Date.now() - t0;
    }
    results.push(r);
    ctx.progress(results.length, boards.length);
    ctx.emit('device', r);
    // every board's outcome is kept as it happens, so a cut-off rollback still says who is where
    ctx.checkpoint(summary({ interrupted: true }));
    return r;
  };

  const skip = (t: FleetTarget, phase: 'canary' | 'fleet'): void => {
    const r: FleetDeviceResult = {
      deviceId: t.id, host: t.host, phase, state: 'skipped', snapshotId: null, before: weightsOf(t),
      after: null, verified: false, error: null, ms: 0,
    };
    results.push(r);
    ctx.emit('device', r);
    ctx.checkpoint(summary({ interrupted: true }));
  };

  for (let i = 0; i < canary; i++) {
    if (failures > maxFailures) {
      halted = true;
      skip(boards[i], 'canary');
      continue;
    }
    await one(boards[i], 'canary');
  }
  if (failures > maxFailures) halted = true;

  const rest = boards.slice(canary);
  if (halted) {
    for (const b of rest) skip(b, 'fleet');
  } else {
    // each host's boards by their own workers: one host's slow links never hold another's back
    const byHost = new Map<string, FleetTarget[]>();
    for (const b of rest) byHost.set(b.host, [...(byHost.get(b.host) ?? []), b]);
    const pools = [...byHost.values()].map(async (list) => {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < list.length) {
          const b = list[next++];
          if (failures > maxFailures) {
            halted = true;
            skip(b, 'fleet');
            continue;
          }
          await one(b, 'fleet');
        }
      };
      await Promise.all(Array.from({ length: Math.min(rig.config.fleetConcurrency, list.length) }, worker));
    });
    await Promise.all(pools);
    if (failures > maxFailures) halted = true;
  }

  const final = summary({});
  if (halted) {
    throw new JobFailure('TR_FLEET_HALTED', `fleet rollback halted: ${failures} failures exceed maxFailures ${maxFailures}`, final);
  }
  return final;
}
