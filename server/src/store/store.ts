// The daemon's durable state: SQLite (WAL) for rows, BlobStore for weight and
// model bytes. Snapshot rows are inserted only after their blob verified.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BlobStore } from './blobs.js';
import { migrations } from './migrations.js';

/** Step metrics wait at most this long, or for this many rows, before they are written. */
const STEP_FLUSH_MS = 200;
const STEP_FLUSH_ROWS = 4096;

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed';

export interface JobRow {
  id: string;
  kind: string;
  deviceId: string | null;
  state: JobState;
  done: number;
  total: number;
  params: unknown;
  result: unknown;
  error: { code: string; message: string } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Name of the token that started the job (null: the daemon itself). */
  actor: string | null;
}

export interface StepRecord {
  deviceId: string;
  jobId: string | null;
  stepId: number;
  sampleIndex: number;
  lossPpm: number;
  counter: number;
  counterUnit: string;
  updatedPpm: number;
  correct: boolean;
  peakRam: number;
  energyUj: number | null;
  energySource: 'measured' | 'estimated' | null;
}

export interface StepRow extends StepRecord {
  seq: number;
  createdAt: string;
}

export interface SnapshotRow {
  id: string;
  sha256: string;
  bytes: number;
  deviceId: string;
  modelSha256: string;
  modelName: string | null;
  step: number;
  tags: string[];
  accuracy: number | null;
  good: boolean;
  createdAt: string;
  /** The dataset slice `accuracy` was measured on (null: not measured on a dataset slice). */
  evaluatedOn: EvalSlice | null;
}

/** A dataset slice an evaluation covered. */
export interface EvalSlice {
  dataset: string;
  split: string;
  offset: number;
  count: number;
}

export const sameSlice = (a: EvalSlice | null | undefined, b: EvalSlice | null | undefined): boolean =>
  !!a && !!b && a.dataset === b.dataset && a.split === b.split && a.offset === b.offset && a.count === b.count;

export interface ModelRow {
  sha256: string;
  name: string;
  seed: number | null;
  bytes: number;
  weightsBytes: number | null;
  inputBytes: number | null;
  classes: number | null;
  createdAt: string;
  /** 'zoo': built from the engine's zoo; 'user': defined through POST /v1/models. */
  source?: 'zoo' | 'user';
  /** The engine's plan (tinyrig-train plan), for user models. */
  plan?: unknown;
  /** The JSON network it was built from, when it was given as JSON. */
  spec?: unknown;
  actor?: string | null;
}

export interface DeviceStateRow {
  deviceId: string;
  modelSha256: string | null;
  modelName: string | null;
  bootId: number | null;
}

const now = (): string => new Date().toISOString();

/** `WHERE a = ? AND …` from [column clause, value] pairs whose value is set. */
function where(conds: [string, unknown][]): { sql: string; args: unknown[] } {
  const set = conds.filter(([, v]) => v !== undefined && v !== null && v !== '');
  return { sql: set.length ? `WHERE ${set.map(([c]) => c).join(' AND ')}` : '', args: set.map(([, v]) => v) };
}

export function newId(prefix: string): string {
  // time-ordered, so ids sort by creation
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${crypto.randomBytes(5).toString('hex')}`;
}

/** snake_case columns → camelCase fields. */
function camel(r: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(r)) out[k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = r[k];
  return out;
}

const parse = (v: unknown): unknown => (v === null || v === undefined ? null : JSON.parse(v as string));

function jobFromRow(r: unknown): JobRow {
  const o = camel(r as Record<string, unknown>);
  return { ...o, params: parse(o.params), result: parse(o.result), error: parse(o.error) } as JobRow;
}

function snapshotFromRow(r: unknown): SnapshotRow {
  const o = camel(r as Record<string, unknown>);
  return { ...o, tags: parse(o.tags), good: o.good === 1, evaluatedOn: parse(o.evaluatedOn) } as SnapshotRow;
}

function stepFromRow(r: unknown): StepRow {
  const o = camel(r as Record<string, unknown>);
  return { ...o, correct: o.correct === 1 } as StepRow;
}

function modelFromRow(r: unknown): ModelRow {
  const o = camel(r as Record<string, unknown>);
  return { ...o, plan: parse(o.plan), spec: parse(o.spec) } as unknown as ModelRow;
}

export class Store {
  readonly db: Database.Database;
  readonly blobs: BlobStore;

  constructor(varDir: string, opts: { durable?: boolean } = {}) {
    // the store holds the lab's weights and job history: owner only, including a var/ made by an older version
    fs.mkdirSync(varDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(varDir, 0o700);
    const dbPath = path.join(varDir, 'store.db');
    fs.closeSync(fs.openSync(dbPath, 'a', 0o600)); // SQLite gives -wal and -shm the mode of this file
    for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) if (fs.existsSync(f)) fs.chmodSync(f, 0o600);
    this.db = new Database(dbPath);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.durable === false ? 'NORMAL' : 'FULL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.blobs = new BlobStore(path.join(varDir, 'blobs'));
    this.migrate();
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = current; v < migrations.length; v++) {
      const apply = this.db.transaction(() => {
        this.db.exec(migrations[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      });
      apply();
    }
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /**
   * After a crash: jobs left queued or running can never finish (their
   * process is gone), so they are failed with a clear reason; stray blob
   * temporaries are removed. Returns what was cleaned.
   */
  recoverAfterRestart(): { failedJobs: string[]; temporaries: number } {
    const stuck = this.db
      .prepare(`SELECT id FROM jobs WHERE state IN ('queued','running')`)
      .all() as { id: string }[];
    const error = JSON.stringify({
      code: 'TR_DAEMON_RESTARTED',
      message: 'the daemon stopped while this job was running; the job did not finish',
    });
    this.db
      .prepare(`UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE state IN ('queued','running')`)
      .run(error, now());
    return { failedJobs: stuck.map((r) => r.id), temporaries: this.blobs.sweepTemporaries() };
  }

  // ---- jobs

  createJob(kind: string, deviceId: string | null, params: unknown, total = 0, actor: string | null = null): JobRow {
    const id = newId('job');
    this.db
      .prepare(
        `INSERT INTO jobs (id, kind, device_id, state, done, total, params, created_at, actor)
         VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?)`,
      )
      .run(id, kind, deviceId, total, JSON.stringify(params ?? {}), now(), actor);
    return this.getJob(id)!;
  }

  /** What a running job has achieved so far: kept if the job is cut off (a failure, a restart, kill -9). */
  checkpointJob(id: string, partial: unknown): void {
    this.db.prepare(`UPDATE jobs SET result = ? WHERE id = ?`).run(JSON.stringify(partial ?? null), id);
  }

  startJob(id: string): void {
    this.db.prepare(`UPDATE jobs SET state = 'running', started_at = ? WHERE id = ?`).run(now(), id);
  }

  progressJob(id: string, done: number, total: number): void {
    this.db.prepare(`UPDATE jobs SET done = ?, total = ? WHERE id = ?`).run(done, total, id);
  }

  finishJob(id: string, state: 'succeeded' | 'failed', result: unknown, error: { code: string; message: string } | null): void {
    this.db
      .prepare(`UPDATE jobs SET state = ?, result = ?, error = ?, finished_at = ? WHERE id = ?`)
      .run(state, result === undefined ? null : JSON.stringify(result), error ? JSON.stringify(error) : null, now(), id);
  }

  getJob(id: string): JobRow | null {
    const r = this.db.prepare(`SELECT * FROM jobs WHERE id = ?`).get(id);
    return r ? jobFromRow(r) : null;
  }

  listJobs(opts: { deviceId?: string; state?: string; limit?: number } = {}): JobRow[] {
    const w = where([
      ['device_id = ?', opts.deviceId],
      ['state = ?', opts.state],
    ]);
    const sql = `SELECT * FROM jobs ${w.sql} ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...w.args, opts.limit ?? 100).map(jobFromRow);
  }

  // ---- steps

  private insertStepStmt?: Database.Statement;
  private pendingSteps: { s: StepRecord; t: string }[] = [];
  private stepFlush: NodeJS.Timeout | null = null;

  /**
   * Per-step metrics are written in batches, at most STEP_FLUSH_MS after they
   * arrive (or sooner when many wait): a fully synchronous commit per TRAIN
   * answer would put an fsync in the event loop dozens of times a second with
   * a rack training. A crash loses at most that window of step metrics, never
   * a job, snapshot or blob; every read of the steps flushes first.
   */
  recordSteps(steps: StepRecord[]): void {
    const t = now();
    for (const s of steps) this.pendingSteps.push({ s, t });
    if (this.pendingSteps.length >= STEP_FLUSH_ROWS) this.flushSteps();
    else this.stepFlush ??= setTimeout(() => this.flushSteps(), STEP_FLUSH_MS).unref();
  }

  /** Writes the buffered step metrics in one transaction. */
  flushSteps(): void {
    if (this.stepFlush) clearTimeout(this.stepFlush);
    this.stepFlush = null;
    if (this.pendingSteps.length === 0) return;
    const rows = this.pendingSteps;
    this.pendingSteps = [];
    const stmt = (this.insertStepStmt ??= this.db.prepare(
      `INSERT INTO steps (device_id, job_id, step_id, sample_index, loss_ppm, counter, counter_unit, updated_ppm,
                          correct, peak_ram, energy_uj, energy_source, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ));
    this.db.transaction(() => {
      for (const { s, t } of rows) {
        stmt.run(
          s.deviceId, s.jobId, s.stepId, s.sampleIndex, s.lossPpm, s.counter, s.counterUnit, s.updatedPpm,
          s.correct ? 1 : 0, s.peakRam, s.energyUj, s.energySource, t,
        );
      }
    })();
  }

  listSteps(deviceId: string, opts: { after?: number; limit?: number; jobId?: string } = {}): StepRow[] {
    this.flushSteps();
    const args: unknown[] = [deviceId, opts.after ?? 0];
    let sql = `SELECT * FROM steps WHERE device_id = ? AND seq > ?`;
    if (opts.jobId) {
      sql += ' AND job_id = ?';
      args.push(opts.jobId);
    }
    sql += ' ORDER BY seq LIMIT ?';
    args.push(opts.limit ?? 1000);
    return this.db.prepare(sql).all(...args).map(stepFromRow);
  }

  countSteps(deviceId: string): number {
    this.flushSteps();
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM steps WHERE device_id = ?`).get(deviceId) as { n: number }).n;
  }

  // ---- models

  putModel(row: Omit<ModelRow, 'createdAt'>): ModelRow {
    this.db
      .prepare(
        `INSERT INTO models (sha256, name, seed, bytes, weights_bytes, input_bytes, classes, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(sha256) DO UPDATE SET
           weights_bytes = COALESCE(excluded.weights_bytes, weights_bytes),
           input_bytes = COALESCE(excluded.input_bytes, input_bytes),
           classes = COALESCE(excluded.classes, classes)`,
      )
      .run(row.sha256, row.name, row.seed, row.bytes, row.weightsBytes, row.inputBytes, row.classes, now());
    return this.getModel(row.sha256)!;
  }

  getModel(sha256: string): ModelRow | null {
    const r = this.db.prepare(`SELECT * FROM models WHERE sha256 = ?`).get(sha256);
    return r ? modelFromRow(r) : null;
  }

  findModel(name: string, seed: number): ModelRow | null {
    const r = this.db
      .prepare(`SELECT * FROM models WHERE name = ? AND seed = ? AND source = 'zoo' ORDER BY created_at DESC LIMIT 1`)
      .get(name, seed);
    return r ? modelFromRow(r) : null;
  }

  /** A model a user defined; its blob must already be in the blob store. */
  putUserModel(row: Omit<ModelRow, 'createdAt' | 'source'>): ModelRow {
    this.db
      .prepare(
        `INSERT INTO models (sha256, name, seed, bytes, weights_bytes, input_bytes, classes, created_at, source, plan, spec, actor)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'user', ?, ?, ?)`,
      )
      .run(
        row.sha256, row.name, row.seed, row.bytes, row.weightsBytes, row.inputBytes, row.classes, now(),
        JSON.stringify(row.plan ?? null), row.spec === undefined ? null : JSON.stringify(row.spec), row.actor ?? null,
      );
    return this.getModel(row.sha256)!;
  }

  userModelByName(name: string): ModelRow | null {
    const r = this.db.prepare(`SELECT * FROM models WHERE name = ? AND source = 'user' ORDER BY created_at DESC LIMIT 1`).get(name);
    return r ? modelFromRow(r) : null;
  }

  listUserModels(): ModelRow[] {
    return this.db.prepare(`SELECT * FROM models WHERE source = 'user' ORDER BY created_at DESC`).all().map(modelFromRow);
  }

  /** Snapshots taken of a model (it may not be deleted while there are any). */
  countSnapshotsOfModel(sha256: string): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM snapshots WHERE model_sha256 = ?`).get(sha256) as { n: number }).n;
  }

  deleteModel(sha256: string): boolean {
    const del = this.db.prepare(`DELETE FROM models WHERE sha256 = ?`).run(sha256);
    // the blob stays while a snapshot's weights happen to share its hash (they never do: a model blob holds more)
    const still = this.db.prepare(`SELECT 1 FROM snapshots WHERE sha256 = ? LIMIT 1`).get(sha256);
    if (del.changes > 0 && !still) fs.rmSync(this.blobs.pathOf(sha256), { force: true });
    return del.changes > 0;
  }

  // ---- snapshots

  /** Writes the blob, verifies it, and only then inserts the row. */
  createSnapshot(input: {
    weights: Uint8Array;
    expectedSha256: string;
    deviceId: string;
    modelSha256: string;
    modelName: string | null;
    step: number;
    tags: string[];
    accuracy: number | null;
    good: boolean;
    evaluatedOn?: EvalSlice | null;
  }): SnapshotRow {
    const sha = this.blobs.put(input.weights, input.expectedSha256);
    const id = newId('snap');
    this.db
      .prepare(
        `INSERT INTO snapshots (id, sha256, bytes, device_id, model_sha256, model_name, step, tags, accuracy, good, created_at, evaluated_on)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id, sha, input.weights.length, input.deviceId, input.modelSha256, input.modelName, input.step,
        JSON.stringify(input.tags), input.accuracy, input.good ? 1 : 0, now(),
        input.evaluatedOn ? JSON.stringify(input.evaluatedOn) : null,
      );
    return this.getSnapshot(id)!;
  }

  getSnapshot(id: string): SnapshotRow | null {
    const r = this.db.prepare(`SELECT * FROM snapshots WHERE id = ?`).get(id);
    return r ? snapshotFromRow(r) : null;
  }

  listSnapshots(opts: { deviceId?: string; modelSha256?: string; good?: boolean; tag?: string; limit?: number } = {}): SnapshotRow[] {
    const w = where([
      ['device_id = ?', opts.deviceId],
      ['model_sha256 = ?', opts.modelSha256],
      ['good = ?', opts.good === undefined ? undefined : opts.good ? 1 : 0],
      ['EXISTS (SELECT 1 FROM json_each(snapshots.tags) WHERE value = ?)', opts.tag],
    ]);
    const sql = `SELECT * FROM snapshots ${w.sql} ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...w.args, opts.limit ?? 100).map(snapshotFromRow);
  }

  /**
   * Records an evaluation on a dataset slice of weights with this hash on
   * every snapshot holding them; only such an evaluation can make one good.
   */
  markEvaluated(sha256: string, accuracy: number, goodThreshold: number, slice: EvalSlice): number {
    return this.db
      .prepare(`UPDATE snapshots SET accuracy = ?, good = ?, evaluated_on = ? WHERE sha256 = ?`)
      .run(accuracy, accuracy >= goodThreshold ? 1 : 0, JSON.stringify(slice), sha256).changes;
  }

  deleteSnapshot(id: string): boolean {
    const snap = this.getSnapshot(id);
    if (!snap) return false;
    this.db.prepare(`DELETE FROM snapshots WHERE id = ?`).run(id);
    const still = this.db.prepare(`SELECT 1 FROM snapshots WHERE sha256 = ? LIMIT 1`).get(snap.sha256);
    if (!still) fs.rmSync(this.blobs.pathOf(snap.sha256), { force: true });
    return true;
  }

  // ---- regression runs and baselines

  putRun(id: string, suite: string, state: string, doc: unknown, finished: boolean): void {
    this.db
      .prepare(
        `INSERT INTO runs (id, suite, state, doc, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET state = excluded.state, doc = excluded.doc, finished_at = excluded.finished_at`,
      )
      .run(id, suite, state, JSON.stringify(doc), now(), finished ? now() : null);
  }

  getRun<T>(id: string): T | null {
    const r = this.db.prepare(`SELECT doc FROM runs WHERE id = ?`).get(id) as { doc: string } | undefined;
    return r ? (JSON.parse(r.doc) as T) : null;
  }

  listRuns<T>(opts: { suite?: string; state?: string; limit?: number } = {}): T[] {
    const w = where([
      ['suite = ?', opts.suite],
      ['state = ?', opts.state],
    ]);
    return (this.db.prepare(`SELECT doc FROM runs ${w.sql} ORDER BY created_at DESC, id DESC LIMIT ?`).all(...w.args, opts.limit ?? 50) as { doc: string }[])
      .map((r) => JSON.parse(r.doc) as T);
  }

  setBaseline(suite: string, runId: string, actor: string | null): void {
    this.db
      .prepare(`INSERT INTO baselines (suite, run_id, set_at, actor) VALUES (?, ?, ?, ?) ON CONFLICT(suite) DO UPDATE SET run_id = excluded.run_id, set_at = excluded.set_at, actor = excluded.actor`)
      .run(suite, runId, now(), actor);
  }

  baselineOf(suite: string): string | null {
    const r = this.db.prepare(`SELECT run_id FROM baselines WHERE suite = ?`).get(suite) as { run_id: string } | undefined;
    return r?.run_id ?? null;
  }

  // ---- reservations

  insertLease(l: { id: string; deviceIds: string[]; holder: string; reason: string | null; expiresAt: string }): void {
    this.db
      .prepare(`INSERT INTO leases (id, device_ids, holder, reason, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`)
      .run(l.id, JSON.stringify(l.deviceIds), l.holder, l.reason, now(), l.expiresAt);
  }

  renewLease(id: string, expiresAt: string): void {
    this.db.prepare(`UPDATE leases SET expires_at = ? WHERE id = ? AND ended_at IS NULL`).run(expiresAt, id);
  }

  endLease(id: string, by: string): boolean {
    return this.db.prepare(`UPDATE leases SET ended_at = ?, ended_by = ? WHERE id = ? AND ended_at IS NULL`).run(now(), by, id).changes > 0;
  }

  /** Leases not ended (expired ones included: the caller judges expiry by the clock). */
  openLeases(): { id: string; deviceIds: string[]; holder: string; reason: string | null; createdAt: string; expiresAt: string }[] {
    return (this.db.prepare(`SELECT * FROM leases WHERE ended_at IS NULL ORDER BY created_at`).all() as Record<string, string>[]).map((r) => ({
      id: r.id,
      deviceIds: JSON.parse(r.device_ids) as string[],
      holder: r.holder,
      reason: r.reason,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
    }));
  }

  // ---- per-device state

  getDeviceState(deviceId: string): DeviceStateRow | null {
    const r = this.db.prepare(`SELECT * FROM device_state WHERE device_id = ?`).get(deviceId) as
      | { device_id: string; model_sha256: string | null; model_name: string | null; boot_id: number | null }
      | undefined;
    return r ? { deviceId: r.device_id, modelSha256: r.model_sha256, modelName: r.model_name, bootId: r.boot_id } : null;
  }

  setDeviceState(s: DeviceStateRow): void {
    this.db
      .prepare(
        `INSERT INTO device_state (device_id, model_sha256, model_name, boot_id, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(device_id) DO UPDATE SET model_sha256 = excluded.model_sha256, model_name = excluded.model_name,
           boot_id = excluded.boot_id, updated_at = excluded.updated_at`,
      )
      .run(s.deviceId, s.modelSha256, s.modelName, s.bootId, now());
  }

  close(): void {
    this.flushSteps();
    this.db.close();
  }
}
