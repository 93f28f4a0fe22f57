// Weight snapshots and rollback. A snapshot is pulled, hashed and compared
// with the hash the board computes itself before it is stored; a rollback
// writes the blob, commits it, and asks the board for the hash of what it now
// holds: success only when that matches the snapshot.
import { sha256Hex } from '../store/blobs.js';
import type { Board } from '../devices/board.js';
import { Errors } from '../errors.js';
import type { Rig } from '../rig.js';
import type { EvalSlice, ModelRow, SnapshotRow } from '../store/store.js';
import { fitOf, helloLimits } from '../models/catalog.js';

export interface RollbackOutcome {
  deviceId: string;
  snapshotId: string;
  before: string | null;
  sha256: string;
  verified: true;
  modelReloaded: boolean;
}

function requireModel(board: Board): NonNullable<Board['model']> {
  if (board.status !== 'online') throw Errors.DEVICE_OFFLINE(`device ${board.id} is ${board.status}`);
  if (!board.model) throw Errors.NO_MODEL(`device ${board.id} has no model loaded`);
  return board.model;
}

export async function takeSnapshot(
  rig: Rig,
  board: Board,
  opts: { tags?: string[]; jobId?: string } = {},
): Promise<SnapshotRow> {
  const model = requireModel(board);
  const { info, weights } = await board.run('pull weights', async (link) => {
    const info = await link.weightsInfo();
    const { bytes: weights } = await link.readWeights();
    return { info, weights };
  });
  const sha = sha256Hex(weights);
  if (sha !== info.sha256) {
    throw Errors.VERIFY_FAILED(`weights read from device ${board.id} hash to ${sha}, but the device reports ${info.sha256}; nothing stored`);
  }
  board.weightsChanged(sha);
  const last = board.lastEval;
  const measured = last?.weightsSha256 === sha ? { accuracy: last.accuracy, slice: last.slice } : await rig.store.knownAccuracy(sha);
  const accuracy = measured?.accuracy ?? null;
  // good only when measured on a named dataset slice, never on whatever the ring held
  const evaluatedOn = measured?.slice ?? null;
  const snap = await rig.store.createSnapshot({
    weights,
    expectedSha256: sha,
    deviceId: board.id,
    modelSha256: info.modelSha256 || model.sha256,
    modelName: model.name,
    step: info.stepsApplied,
    tags: opts.tags ?? [],
    accuracy,
    good: accuracy !== null && evaluatedOn !== null && accuracy >= rig.config.goodAccuracy,
    evaluatedOn,
  });
  rig.log.info({ deviceId: board.id, jobId: opts.jobId, snapshotId: snap.id, sha256: sha, step: snap.step }, 'snapshot stored');
  return snap;
}

/** Loads a stored model blob onto a board; the caller holds its lease. */
export async function loadStoredModel(rig: Rig, board: Board, modelSha256: string): Promise<void> {
  const blob = await rig.store.blobs.get(modelSha256).catch((err: Error) => {
    throw Errors.MODEL_MISMATCH(`device ${board.id} runs another model and the snapshot's model ${modelSha256} cannot be loaded: ${err.message}`);
  });
  const row = await rig.store.getModel(modelSha256);
  const info = await board.run('load model', (l) => l.loadModel(blob));
  await board.modelLoaded({ sha256: modelSha256, name: row?.name ?? null, ...info });
}

export async function rollbackBoard(rig: Rig, board: Board, snap: SnapshotRow): Promise<RollbackOutcome> {
  if (board.status !== 'online') throw Errors.DEVICE_OFFLINE(`device ${board.id} is ${board.status}${board.lastError ? ` (${board.lastError})` : ''}`);
  const before = board.model?.weightsSha256 ?? null;
  let modelReloaded = false;
  if (!board.model || board.model.sha256 !== snap.modelSha256) {
    await loadStoredModel(rig, board, snap.modelSha256);
    modelReloaded = true;
  }
  const blob = await rig.store.blobs.get(snap.sha256).catch((err: Error) => {
    throw Errors.INTERNAL(`the stored blob of snapshot ${snap.id} cannot be used: ${err.message}`);
  });
  const { committed, info } = await board.run('roll back weights', async (link) => {
    const committed = await link.writeWeights(blob);
    const info = await link.weightsInfo();
    return { committed, info };
  });
  board.weightsChanged(info.sha256);
  if (committed.sha256 !== snap.sha256 || info.sha256 !== snap.sha256) {
    throw Errors.VERIFY_FAILED(
      `device ${board.id} reports weights ${info.sha256} after writing snapshot ${snap.id} (${snap.sha256})`,
      { expected: snap.sha256, committed: committed.sha256, reported: info.sha256 },
    );
  }
  rig.log.info({ deviceId: board.id, snapshotId: snap.id, before, after: info.sha256 }, 'rolled back and verified');
  return { deviceId: board.id, snapshotId: snap.id, before, sha256: info.sha256, verified: true, modelReloaded };
}

/** Deploys a model of the catalog (a zoo model freshly seeded, or a user's), or a stored snapshot (its model, then its weights, verified). */
export async function deployModel(
  rig: Rig,
  board: Board,
  req: { model?: string; seed?: number; input?: [number, number, number]; classes?: number; snapshotId?: string },
): Promise<Record<string, unknown>> {
  if (board.status !== 'online') throw Errors.DEVICE_OFFLINE(`device ${board.id} is ${board.status}`);
  if (req.snapshotId !== undefined) {
    const snap = await rig.store.getSnapshot(req.snapshotId);
    if (!snap) throw Errors.SNAPSHOT_NOT_FOUND(`no snapshot '${req.snapshotId}'`);
    await loadStoredModel(rig, board, snap.modelSha256);
    const out = await rollbackBoard(rig, board, snap);
    return { deviceId: board.id, model: modelView(board), snapshotId: snap.id, weightsSha256: out.sha256, verified: true };
  }
  if (!req.model) throw Errors.BAD_REQUEST('give a model name or hash (model, seed) or a snapshotId');
  const user = await rig.models.deployable(req.model);
  let row: ModelRow;
  let blob: Buffer;
  if (user) {
    if (req.input !== undefined || req.classes !== undefined) {
      throw Errors.BAD_REQUEST(`model ${user.name} has its own input and classes; input and classes apply to zoo models`);
    }
    if (req.seed !== undefined && req.seed !== user.row.seed) {
      throw Errors.BAD_REQUEST(`model ${user.name} was initialised with seed ${user.row.seed}; define it again (POST /v1/models) for another seed`);
    }
    ({ row, blob } = user);
  } else {
    ({ row, blob } = await rig.zoo.build({ model: req.model, seed: req.seed ?? 1, input: req.input, classes: req.classes }));
  }
  // checked against what the board said in HELLO before any byte is sent
  const plan = user?.plan ?? (await rig.models.planBlob(blob));
  const limits = helloLimits(board);
  const fit = limits ? fitOf(plan, limits) : { fits: true, reasons: [] };
  if (!fit.fits) {
    throw Errors.MODEL_TOO_LARGE(`model ${row.name} does not fit device ${board.id}: ${fit.reasons.join('; ')}`, {
      reasons: fit.reasons,
      trainBytes: plan.train_bytes,
      bytes: plan.bytes,
    });
  }
  const info = await board.run('load model', (l) => l.loadModel(blob));
  await board.modelLoaded({ sha256: row.sha256, name: row.name, ...info });
  if (row.weightsBytes === null || row.inputBytes !== info.inputBytes) {
    await rig.store.putModel({ ...row, weightsBytes: info.weightsBytes, inputBytes: info.inputBytes, classes: info.classes });
  }
  return { deviceId: board.id, model: modelView(board), seed: row.seed ?? req.seed ?? 1, weightsSha256: info.weightsSha256 };
}

export function modelView(board: Board): Record<string, unknown> | null {
  const m = board.model;
  if (!m) return null;
  return {
    name: m.name,
    sha256: m.sha256,
    weightsSha256: m.weightsSha256,
    weightsBytes: m.weightsBytes ?? null,
    inputBytes: m.inputBytes ?? null,
    classes: m.classes ?? null,
    layers: m.layers ?? null,
    trainBytes: m.trainBytes ?? null,
    inferBytes: m.inferBytes ?? null,
  };
}
