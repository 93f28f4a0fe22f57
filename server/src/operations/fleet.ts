// Fleet rollback: resolve each board's target (one snapshot, or its own
// last-good), roll the canary boards back one by one, then the rest in
// parallel; stop starting boards once failures exceed the limit.
import type { Board } from '../devices/board.js';
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
  state: 'succeeded' | 'failed' | 'skipped';
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

export async function resolveFleet(rig: Rig, p: FleetRollbackParams): Promise<Board[]> {
  const sel = p.selector;
  if (!sel.devices && !sel.board && !sel.tag) throw Errors.BAD_REQUEST('selector needs devices, board or tag');
  const boards = rig.devices.select(sel);
  if (boards.length === 0) throw Errors.DEVICE_NOT_FOUND('the selector matches no device');
  if (p.to !== 'last-good' && !(await rig.store.getSnapshot(p.to))) throw Errors.SNAPSHOT_NOT_FOUND(`no snapshot '${p.to}'`);
  return boards;
}

const asError = (err: unknown): { code: string; message: string } =>
  err instanceof RigError ? { code: err.code, message: err.message } : { code: 'TR_INTERNAL', message: (err as Error)?.message ?? String(err) };

export async function runFleetRollback(rig: Rig, ctx: JobContext, p: FleetRollbackParams, boards: Board[]): Promise<unknown> {
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
    pending: boards.length - results.length,
    halted,
    ms: Date.now() - started,
    ...extra,
    devices: [...results].sort((a, b) => order.get(a.deviceId)! - order.get(b.deviceId)!),
  });

  const one = async (board: Board, phase: 'canary' | 'fleet'): Promise<FleetDeviceResult> => {
    const t0 = Date.now();
    const r: FleetDeviceResult = {
      deviceId: board.id, phase, state: 'failed', snapshotId: null, before: board.model?.weightsSha256 ?? null,
      after: null, verified: false, error: null, ms: 0,
    };
    let release: (() => void) | null = null;
    try {
      const snap = p.to === 'last-good' ? await lastGood(rig, board, p.goodSlice) : (await rig.store.getSnapshot(p.to))!;
      r.snapshotId = snap.id;
      release = await rig.boardJobs.lease(board, ctx.id, ctx.actor);
      const out = await rollbackBoard(rig, board, snap);
      Object.assign(r, { state: 'succeeded', before: out.before, after: out.sha256, verified: true });
    } catch (err) {
      r.error = asError(err);
      r.after = board.model?.weightsSha256 ?? null;
      failures++;
    } finally {
      release?.();
      r.ms = Date.now() - t0;
    }
    results.push(r);
    ctx.progress(results.length, boards.length);
    ctx.emit('device', r);
    // every board's outcome is kept as it happens, so a cut-off rollback still says who is where
    ctx.checkpoint(summary({ interrupted: true }));
    return r;
  };

  const skip = (board: Board, phase: 'canary' | 'fleet'): void => {
    const r: FleetDeviceResult = {
      deviceId: board.id, phase, state: 'skipped', snapshotId: null, before: board.model?.weightsSha256 ?? null,
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
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rest.length) {
        const b = rest[next++];
        if (failures > maxFailures) {
          halted = true;
          skip(b, 'fleet');
          continue;
        }
        await one(b, 'fleet');
      }
    };
    await Promise.all(Array.from({ length: Math.min(rig.config.fleetConcurrency, rest.length) }, worker));
    if (failures > maxFailures) halted = true;
  }

  const final = summary({});
  if (halted) {
    throw new JobFailure('TR_FLEET_HALTED', `fleet rollback halted: ${failures} failures exceed maxFailures ${maxFailures}`, final);
  }
  return final;
}
