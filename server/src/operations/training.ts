// Training and evaluation on one board: stream a dataset slice chunk by chunk
// (each chunk fits the sample ring and one TRAIN), or reuse the samples the
// board holds; record every step with its energy; report loss and accuracy
// as they happen.
import type { Static } from '@fastify/type-provider-typebox';
import type { Split } from '../datasets/index.js';
import type { EvalBody, TrainBody } from '../routes/schemas.js';
import type { Board } from '../devices/board.js';
import type { TrainRecord } from '../../../protocol/src/index.js';
import { Errors, RigError } from '../errors.js';
import { JobFailure, type JobContext } from '../jobs/runner.js';
import type { Rig } from '../rig.js';
import type { EvalSlice, StepRecord } from '../store/store.js';
import { checkSliceFits, sendSlice } from './samples.js';
import { rollbackBoard, takeSnapshot } from './snapshots.js';

export interface DatasetRef {
  dataset: string;
  split: Split;
  offset: number;
  count: number;
}

/** A train request as the route's schema admits it (routes/schemas.ts TrainBody). */
export type TrainRequest = Static<typeof TrainBody>;

/** A train request with its learning rate resolved: what the job runs and records. */
export type TrainParams = TrainRequest & { lr: number };

/**
 * Learning rates that learn on the zoo models from a fresh init (the
 * reference CNN, 1,000 Fashion-MNIST steps, constant rate, measured with
 * tinyrig-train): standardized gradients divide each channel's gradient by
 * its spread, so their steps are already of unit scale and want a small rate;
 * QAS rescales raw int8 gradients and takes a larger one.
 */
export const DEFAULT_LR = { standardized: 0.002, qas: 0.005 } as const;
/** Steps a scheduled rate stays constant for (TRAINs are cut at these boundaries). */
export const LR_BLOCK = 16;

/** The rate at step t (of total) under the request's schedule, evaluated at the start of t's block. */
export function scheduledLr(p: TrainParams, t: number, total: number, epochSteps: number): number {
  const b = Math.floor(Math.max(0, t) / LR_BLOCK) * LR_BLOCK;
  switch (p.schedule ?? 'constant') {
    case 'cosine': {
      const lrMin = p.lrMin ?? 0;
      return Math.max(LR_MIN, lrMin + ((p.lr - lrMin) * (1 + Math.cos((Math.PI * b) / Math.max(1, total)))) / 2);
    }
    case 'step':
      return Math.max(LR_MIN, p.lr * (p.gamma ?? 0.1) ** Math.floor(b / (p.stepEvery ?? epochSteps)));
    default:
      return p.lr;
  }
}

/** A seeded permutation of 0 … n-1 for one epoch (xorshift32 Fisher–Yates: the same on every host). */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  let x = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77)) >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const j = x % (i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** TRAIN carries the rate in millionths: anything smaller would arrive as 0. */
export const LR_MIN = 0.000001;

export function withTrainDefaults(p: TrainRequest): TrainParams {
  return { ...p, lr: p.lr ?? (p.qas ? DEFAULT_LR.qas : DEFAULT_LR.standardized) };
}

/** A dataset slice without count runs to the end of its split (a missing dataset is 404 here). */
export function withWholeSplit<P extends { dataset?: string; split?: Split; offset?: number; count?: number }>(rig: Rig, p: P, split: Split): P {
  if (p.dataset === undefined || p.count !== undefined) return p;
  const size = rig.datasets.info(p.dataset).splits[p.split ?? split];
  const offset = p.offset ?? 0;
  if (offset >= size) throw Errors.BAD_REQUEST(`${p.dataset}/${p.split ?? split} has ${size} samples; offset ${offset} is past its end`);
  return { ...p, count: size - offset };
}

/** An evaluate request as the route's schema admits it (routes/schemas.ts EvalBody). */
export type EvalParams = Static<typeof EvalBody>;

export interface ClassFigures {
  label: number;
  name: string | null;
  count: number;
  correct: number;
  accuracy: number | null;
  /** Mean loss of this class's samples (null when the board reports no per-sample loss). */
  loss: number | null;
}

export interface EvalSummary {
  count: number;
  correct: number;
  accuracy: number;
  loss: number;
  counter: number;
  counterUnit: string;
  weightsSha256: string | null;
  /** The dataset slice evaluated; null for the samples held on the board. */
  slice: EvalSlice | null;
  /** Held sample numbers evaluated, when it was the ring. */
  held: { from: number; to: number } | null;
  /** Per true class (labels 0 … classes-1), and confusion[true][predicted]; null when the board reports no predictions. */
  classes: ClassFigures[] | null;
  confusion: number[][] | null;
}

const ppm = (x: number): number => Math.round(x * 1e6);

function bitmask(layers: number[] | undefined): number | undefined {
  if (!layers) return undefined;
  let m = 0;
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l > 31) throw Errors.BAD_REQUEST(`layer index ${l} is out of range 0..31`);
    m |= 1 << l;
  }
  return m >>> 0;
}

export function requireTrainable(board: Board): void {
  if (board.status !== 'online' || !board.hello) throw Errors.DEVICE_OFFLINE(`device ${board.id} is ${board.status}`);
  if (!board.model) throw Errors.NO_MODEL(`device ${board.id} has no model loaded; POST /v1/devices/${board.id}/model first`);
  if (!board.hello.engine) {
    throw Errors.ENGINE_MISSING(`device ${board.id} runs firmware ${board.hello.build} without the training engine`);
  }
}

/** Chunk size for one SAMPLES+TRAIN round: fits the ring and one TRAIN. */
function chunkSize(board: Board): number {
  return Math.max(1, Math.min(board.hello!.maxTrain, board.hello!.sampleSlots));
}

/** Checks a dataset slice before any of it is sent: it exists, fits the request limit and the board's model. */
function checkDatasetSlice(rig: Rig, board: Board, ref: DatasetRef, limit: number, what: string): void {
  if (ref.count > limit) throw Errors.PAYLOAD_TOO_LARGE(`${what} count ${ref.count} exceeds the limit of ${limit} samples`);
  checkSliceFits(board, rig.datasets.slice(ref.dataset, ref.split, ref.offset, ref.count), `${ref.dataset}/${ref.split}`);
}

/** Validates a train request whole against the board before a job is created. */
export function checkTrainParams(rig: Rig, board: Board, p: TrainParams): { total: number } {
  requireTrainable(board);
  if (p.sparse && p.sparse.lambdaMin > p.sparse.lambdaMax) throw Errors.BAD_REQUEST('sparse.lambdaMin must not exceed sparse.lambdaMax');
  if (p.dataset !== undefined && p.steps !== undefined) throw Errors.BAD_REQUEST('give either a dataset slice or steps, not both');
  if (p.trainableLayers?.length === 0 && !p.biasOnlyLayers?.length) {
    throw Errors.BAD_REQUEST('trainableLayers [] with no biasOnlyLayers trains nothing');
  }
  const guard = resolveGuard(rig, p);
  if (guard) checkDatasetSlice(rig, board, guard, rig.config.maxGuardSamples, 'guard');
  if ((p.lrMin !== undefined && p.schedule !== 'cosine') || ((p.stepEvery !== undefined || p.gamma !== undefined) && p.schedule !== 'step')) {
    throw Errors.BAD_REQUEST('lrMin goes with schedule cosine; stepEvery and gamma with schedule step');
  }
  if (p.lrMin !== undefined && p.lrMin > p.lr) throw Errors.BAD_REQUEST(`lrMin ${p.lrMin} exceeds lr ${p.lr}`);
  if (p.dataset !== undefined) {
    if (p.count === undefined) throw Errors.BAD_REQUEST('a dataset slice needs count');
    checkDatasetSlice(rig, board, { dataset: p.dataset, split: p.split ?? 'train', offset: p.offset ?? 0, count: p.count }, rig.config.maxSamplesPerRequest, 'train');
    const total = p.count * (p.epochs ?? 1);
    if (total > rig.config.maxSamplesPerRequest * 100) throw Errors.PAYLOAD_TOO_LARGE(`${total} steps in one job exceed ${rig.config.maxSamplesPerRequest * 100}`);
    return { total };
  }
  if (p.epochs !== undefined || p.shuffle !== undefined) throw Errors.BAD_REQUEST('epochs and shuffle apply to a dataset slice, not to steps');
  if (p.steps === undefined) throw Errors.BAD_REQUEST('give a dataset slice (dataset, count) or steps over the samples already on the board');
  if (p.steps > rig.config.maxSamplesPerRequest) throw Errors.PAYLOAD_TOO_LARGE(`steps ${p.steps} exceeds ${rig.config.maxSamplesPerRequest}`);
  if (board.heldTo <= board.heldFrom) throw Errors.NO_SAMPLES(`device ${board.id} holds no samples; POST samples first or train on a dataset slice`);
  heldRange(board, p);
  return { total: p.steps };
}

/** The held samples {steps} trains over: the range asked for (all of it held), else the newest `steps`. */
export function heldRange(board: Board, p: { steps?: number; range?: { from: number; to: number } }): { from: number; to: number } {
  if (p.range) {
    const { from, to } = p.range;
    if (from >= to || from < board.heldFrom || to > board.heldTo) {
      throw Errors.NO_SAMPLES(`device ${board.id} holds sample numbers ${board.heldFrom} … ${board.heldTo - 1}; range ${from} … ${to - 1} is not all held`, {
        heldFrom: board.heldFrom,
        heldTo: board.heldTo,
      });
    }
    return { from, to };
  }
  return { from: Math.max(board.heldFrom, board.heldTo - (p.steps ?? board.heldTo)), to: board.heldTo };
}

/** One TRAIN over [index, index+count), its steps recorded; returns the records and the board's step total. */
async function trainChunk(
  rig: Rig, board: Board, ctx: JobContext | null, p: TrainParams, index: number, count: number,
): Promise<{ records: TrainRecord[]; stepsApplied: number; stepId: number; fault?: number }> {
  const stepId = board.nextStepId++;
  const started = Date.now();
  const res = await board.run('train', (link) =>
    link.train({
      stepId,
      index,
      count,
      lrPpm: ppm(p.lr),
      lambdaMinPpm: p.sparse ? ppm(p.sparse.lambdaMin) : undefined,
      lambdaMaxPpm: p.sparse ? ppm(p.sparse.lambdaMax) : undefined,
      trainable: bitmask(p.trainableLayers),
      biasOnly: bitmask(p.biasOnlyLayers),
      options: (p.qas ? 1 : 0) | (p.stochasticRounding ? 2 : 0) || undefined,
    }),
  );
  const ended = Date.now();
  const unit = board.hello!.counter;
  const energy = await rig.energy.figures(board.entry, board.hello!.board, unit, res.records.map((r) => r.counter), started, ended);
  const rows: StepRecord[] = res.records.map((r, i) => ({
    deviceId: board.id,
    jobId: ctx?.id ?? null,
    stepId,
    sampleIndex: index + i,
    lossPpm: r.lossPpm,
    counter: r.counter,
    counterUnit: unit,
    updatedPpm: r.updatedPpm,
    correct: r.correct,
    peakRam: r.peakRam,
    energyUj: energy[i]?.uj ?? null,
    energySource: energy[i]?.source ?? null,
  }));
  await rig.store.recordSteps(rows);
  rig.metrics.steps({ device: board.id }, rows.length);
  board.counters.steps += rows.length;
  if (ctx) {
    for (const r of rows) {
      ctx.emit('step', {
        stepId,
        sampleIndex: r.sampleIndex,
        loss: r.lossPpm / 1e6,
        correct: r.correct,
        counter: r.counter,
        counterUnit: unit,
        updatedFraction: r.updatedPpm / 1e6,
        peakRam: r.peakRam,
        energyUj: r.energyUj,
        energySource: r.energySource,
      });
    }
  }
  return { records: res.records, stepsApplied: res.stepsApplied, stepId, fault: res.fault };
}

/** Runs a training job on a board the caller holds the lease of. */
export async function runTraining(rig: Rig, board: Board, ctx: JobContext, p: TrainParams): Promise<unknown> {
  const log = ctx.log.child({ deviceId: board.id });
  const guard = resolveGuard(rig, p);
  let baseline: EvalSummary | null = null;
  let preSnapshotId: string | null = null;
  if (guard) {
    baseline = await evaluateSlice(rig, board, null, guard);
    ctx.emit('guard', { phase: 'before', accuracy: baseline.accuracy, loss: baseline.loss });
    const snap = await takeSnapshot(rig, board, { tags: ['guard', 'pre-train'], jobId: ctx.id });
    preSnapshotId = snap.id;
  }

  const total = p.dataset !== undefined ? p.count! * (p.epochs ?? 1) : p.steps!;
  let done = 0;
  let lossSum = 0;
  let correct = 0;
  let counterSum = 0;
  let peakRam = 0;
  let updatedSum = 0;
  const chunk = chunkSize(board);
  ctx.progress(0, total);
  const account = (records: TrainRecord[]): void => {
    for (const r of records) {
      lossSum += r.lossPpm / 1e6;
      correct += r.correct ? 1 : 0;
      counterSum += r.counter;
      peakRam = Math.max(peakRam, r.peakRam);
      updatedSum += r.updatedPpm / 1e6;
    }
    done += records.length;
    ctx.progress(done, total);
    ctx.emit('loss', { done, meanLoss: lossSum / Math.max(1, done), lastLoss: records.length ? records[records.length - 1].lossPpm / 1e6 : null });
    ctx.emit('accuracy', { done, trainAccuracy: correct / Math.max(1, done) });
  };

  // what a job cut off keeps: the steps it applied and, where the board still answers, its weights' hash
  let stepsApplied: number | null = null;
  let lastStepId: number | null = null;
  let ranOn: { from: number; to: number } | null = null;
  const epochResults: { epoch: number; steps: number; meanLoss: number; trainAccuracy: number; lrEnd: number }[] = [];
  let epochLossBase = 0;
  let epochCorrectBase = 0;
  const soFar = () => ({ deviceId: board.id, steps: done, stepsApplied, lastStepId, meanLoss: lossSum / Math.max(1, done) });
  const ran = (out: { records: TrainRecord[]; stepsApplied: number; stepId: number; fault?: number }): TrainRecord[] => {
    stepsApplied = out.stepsApplied;
    lastStepId = out.stepId;
    account(out.records);
    ctx.checkpoint(soFar(), 1000);
    if (out.fault !== undefined) {
      // the engine stopped inside this TRAIN: the steps before the fault are applied (SPEC §0x31)
      throw Errors.DEVICE_ERROR(
        `device ${board.id} stopped TRAIN ${out.stepId} after ${out.records.length} steps: engine status ${out.fault}`,
        { fault: out.fault },
      );
    }
    // a cancelled job stops between TRAINs, with what it applied kept
    ctx.throwIfCancelled();
    return out.records;
  };
  try {
    if (p.dataset !== undefined) {
      const split = p.split ?? 'train';
      const offset = p.offset ?? 0;
      const count = p.count!;
      const epochs = p.epochs ?? 1;
      const shuffle = p.shuffle ?? p.epochs !== undefined;
      // the rate is a function of the step number alone, constant over blocks of LR_BLOCK steps, so
      // every board (whatever its ring and TRAIN size) sees the same rate at the same step
      const step = p.schedule && p.schedule !== 'constant' ? Math.min(chunk, LR_BLOCK) : chunk;
      for (let e = 0; e < epochs; e++) {
        const order = shuffle ? epochOrder(count, p.seed ?? 1, e) : null;
        const epochStart = done;
        for (let at = 0; at < count; at += step) {
          const n = Math.min(step, count - at);
          const slice = order
            ? rig.datasets.gather(p.dataset, split, Array.from(order.subarray(at, at + n), (i) => offset + i))
            : rig.datasets.slice(p.dataset, split, offset + at, n);
          const first = await sendSlice(board, slice);
          ran(await trainChunk(rig, board, ctx, { ...p, lr: scheduledLr(p, done, total, count) }, first, n));
        }
        const epochLoss = (lossSum - epochLossBase) / Math.max(1, done - epochStart);
        const epochAcc = (correct - epochCorrectBase) / Math.max(1, done - epochStart);
        epochLossBase = lossSum;
        epochCorrectBase = correct;
        epochResults.push({ epoch: e + 1, steps: done - epochStart, meanLoss: epochLoss, trainAccuracy: epochAcc, lrEnd: scheduledLr(p, done - 1, total, count) });
        ctx.emit('epoch', epochResults[epochResults.length - 1]);
      }
    } else {
      // the newest held samples unless a range is named; more steps than samples cycle over them
      const { from, to } = heldRange(board, p);
      ranOn = { from, to };
      const held = to - from;
      let pos = 0;
      while (done < total) {
        const index = from + (pos % held);
        const n = Math.min(chunk, total - done, to - index);
        const records = ran(await trainChunk(rig, board, ctx, p, index, n));
        if (records.length === 0) throw Errors.DEVICE_ERROR(`device ${board.id} applied no step for TRAIN at sample ${index}`);
        pos += n;
      }
    }
  } catch (err) {
    const partial: Record<string, unknown> = { ...soFar(), interrupted: true, weightsSha256: null };
    if (board.status === 'online') {
      try {
        const info = await board.run('read weights info', (l) => l.weightsInfo());
        board.weightsChanged(info.sha256);
        Object.assign(partial, { weightsSha256: info.sha256, stepsApplied: info.stepsApplied });
      } catch {
        // the board is gone too: the hash stays unknown
      }
    }
    const e = err instanceof RigError ? err : Errors.INTERNAL((err as Error)?.message ?? String(err));
    throw new JobFailure(e.code, e.message, partial);
  }
  const info = await board.run('read weights info', (l) => l.weightsInfo());
  board.weightsChanged(info.sha256);
  const unit = board.hello!.counter;
  const result: Record<string, unknown> = {
    deviceId: board.id,
    steps: done,
    meanLoss: lossSum / Math.max(1, done),
    trainAccuracy: correct / Math.max(1, done),
    counterTotal: counterSum,
    counterUnit: unit,
    peakRam,
    meanUpdatedFraction: updatedSum / Math.max(1, done),
    stepsApplied: info.stepsApplied,
    weightsSha256: info.sha256,
  };
  if (ranOn) result.samples = ranOn;
  if (p.epochs !== undefined) {
    result.epochs = epochResults;
    result.schedule = { kind: p.schedule ?? 'constant', lr: p.lr, lrEnd: scheduledLr(p, total - 1, total, p.count!), block: LR_BLOCK };
  }
  log.info({ steps: done, meanLoss: result.meanLoss }, 'training done');

  if (guard && baseline && preSnapshotId) {
    const after = await evaluateSlice(rig, board, null, guard);
    ctx.emit('guard', { phase: 'after', accuracy: after.accuracy, loss: after.loss });
    const drop = baseline.accuracy - after.accuracy;
    const rolledBack = drop > guard.margin;
    let rollback: unknown = null;
    if (rolledBack) {
      log.warn({ before: baseline.accuracy, after: after.accuracy, margin: guard.margin }, 'guard: accuracy fell; rolling back');
      const snap = (await rig.store.getSnapshot(preSnapshotId))!;
      rollback = await rollbackBoard(rig, board, snap);
      result.weightsSha256 = snap.sha256;
    }
    result.guard = {
      margin: guard.margin,
      accuracyBefore: baseline.accuracy,
      accuracyAfter: after.accuracy,
      rolledBack,
      snapshotId: preSnapshotId,
      rollback,
    };
    ctx.emit('guard', { phase: 'decision', rolledBack, drop });
  }
  return result;
}

function resolveGuard(rig: Rig, p: TrainParams): (DatasetRef & { margin: number }) | null {
  if (p.guard === false) return null;
  if (!p.guard && !rig.config.guard.enabled) return null;
  const g = rig.config.guard;
  const o = p.guard || {};
  return {
    margin: o.margin ?? g.margin,
    dataset: o.dataset ?? g.dataset,
    split: o.split ?? g.split,
    offset: o.offset ?? g.offset,
    count: o.count ?? g.count,
  };
}

/** Validates an evaluate request before a job is created. */
export function checkEvalParams(rig: Rig, board: Board, p: EvalParams): { total: number } {
  requireTrainable(board);
  if (p.dataset !== undefined) {
    if (p.count === undefined) throw Errors.BAD_REQUEST('a dataset slice needs count');
    checkDatasetSlice(rig, board, { dataset: p.dataset, split: p.split ?? 'test', offset: p.offset ?? 0, count: p.count }, rig.config.maxSamplesPerRequest, 'evaluate');
    return { total: p.count };
  }
  const held = board.heldTo - board.heldFrom;
  if (held <= 0) throw Errors.NO_SAMPLES(`device ${board.id} holds no samples to evaluate; name a dataset slice`);
  return { total: held };
}

/** Evaluates a dataset slice (or the samples held) on a board the caller holds. */
export async function evaluateSlice(rig: Rig, board: Board, ctx: JobContext | null, p: EvalParams): Promise<EvalSummary> {
  let count = 0;
  let correct = 0;
  let lossPpmSum = 0;
  let counter = 0;
  const chunk = chunkSize(board);
  const classes = board.model?.classes ?? 0;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const classLoss = new Array<number>(classes).fill(0);
  let perSample = classes > 0;
  let perSampleLoss = perSample;
  /** One EVAL over held numbers [index, index+n) whose true labels are `labels`. */
  const evalChunk = async (index: number, n: number, labels: (number | undefined)[]): Promise<void> => {
    ctx?.throwIfCancelled();
    const r = await board.run('evaluate', (l) => l.evaluate(index, n, { predictions: perSample }));
    count += r.count;
    correct += r.correct;
    lossPpmSum += r.lossPpmSum;
    counter += r.counter;
    if (!perSample) return;
    if (!r.predicted || r.predicted.length !== n || labels.some((y) => y === undefined)) {
      perSample = false; // an older board, or held samples the daemon did not send: totals only
      return;
    }
    if (!r.lossPpm) perSampleLoss = false;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      const pred = r.predicted[i];
      if (y < classes && pred < classes) confusion[y][pred]++;
      if (r.lossPpm) classLoss[y] += r.lossPpm[i] / 1e6;
    }
  };
  let slice: EvalSlice | null = null;
  let held: { from: number; to: number } | null = null;
  if (p.dataset !== undefined) {
    slice = { dataset: p.dataset, split: p.split ?? 'test', offset: p.offset ?? 0, count: p.count! };
    const total = slice.count;
    ctx?.progress(0, total);
    for (let at = 0; at < total; at += chunk) {
      const n = Math.min(chunk, total - at);
      const part = rig.datasets.slice(slice.dataset, slice.split as Split, slice.offset + at, n);
      const first = await sendSlice(board, part);
      await evalChunk(first, n, Array.from(part.labels));
      ctx?.progress(count, total);
      ctx?.emit('accuracy', { done: count, accuracy: correct / count, loss: lossPpmSum / 1e6 / count });
    }
  } else {
    held = { from: board.heldFrom, to: board.heldTo };
    const total = held.to - held.from;
    ctx?.progress(0, total);
    for (let index = held.from; index < held.to; index += chunk) {
      const n = Math.min(chunk, held.to - index);
      await evalChunk(index, n, Array.from({ length: n }, (_, i) => board.heldLabel(index + i)));
      ctx?.progress(count, total);
      ctx?.emit('accuracy', { done: count, accuracy: correct / count, loss: lossPpmSum / 1e6 / count });
    }
  }
  const accuracy = count ? correct / count : 0;
  const loss = count ? lossPpmSum / 1e6 / count : 0;
  const weightsSha256 = board.model?.weightsSha256 ?? null;
  if (weightsSha256) {
    board.lastEval = { accuracy, loss, count, weightsSha256, at: new Date().toISOString(), slice };
    // only a named dataset slice can make a snapshot good: what the ring holds changes under it
    if (slice) await rig.store.markEvaluated(weightsSha256, accuracy, rig.config.goodAccuracy, slice);
  }
  const names = slice ? rig.datasets.info(slice.dataset).classNames : null;
  const perClass = perSample
    ? confusion.map((row, label) => {
        const n = row.reduce((a, b) => a + b, 0);
        return {
          label,
          name: names?.[label] ?? null,
          count: n,
          correct: row[label],
          accuracy: n ? row[label] / n : null,
          loss: perSampleLoss && n ? classLoss[label] / n : null,
        };
      })
    : null;
  return {
    count, correct, accuracy, loss, counter, counterUnit: board.hello?.counter ?? 'unknown', weightsSha256,
    slice, held, classes: perClass, confusion: perSample ? confusion : null,
  };
}
