// The one-host store: SQLite (WAL) for rows, a blob directory for weight and
// model bytes. Snapshot rows are inserted only after their blob verified.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FileBlobStore } from './blobs.js';
import { migrations } from './migrations.js';
import {
  STEP_FLUSH_MS,
  STEP_FLUSH_ROWS,
  leaseConflict,
  newId,
  type BoardRow,
  type DeviceStateRow,
  type EvalSlice,
  type HostRow,
  type JobRow,
  type LeaseRow,
  type ModelRow,
  type NewSnapshot,
  type SnapshotRow,
  type StepRecord,
  type StepRow,
  type Store,
} from './types.js';


const now = (): string => new Date().toISOString();

/** `WHERE a = ? AND …` from [column clause, value] pairs whose value is set. */
function where(conds: [string, unknown][]): { sql: string; args: unknown[] } {
  const set = conds.filter(([, v]) => v !== undefined && v !== null && v !== '');
  return { sql: set.length ? `WHERE ${set.map(([c]) => c).join(' AND ')}` : '', args: set.map(([, v]) => v) };
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

function leaseFromRow(r: Record<string, string>): LeaseRow {
  return { id: r.id, deviceIds: JSON.parse(r.device_ids) as string[], holder: r.holder, reason: r.reason, createdAt: r.created_at, expiresAt: r.expires_at };
}

function modelFromRow(r: unknown): ModelRow {
  const o = camel(r as Record<string, unknown>);
  return { ...o, plan: parse(o.plan), spec: parse(o.spec) } as unknown as ModelRow;
}

export class SqliteStore implements Store {
  readonly engine = 'sqlite' as const;
  readonly db: Database.Database;
  readonly blobs: FileBlobStore;
  readonly hostId: string;
  readonly reachable = true;
  readonly lastError = null;

  constructor(varDir: string, opts: { durable?: boolean; hostId: string }) {
    this.hostId = opts.hostId;
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
    this.blobs = new FileBlobStore(path.join(varDir, 'blobs'));
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

  async schemaVersion(): Promise<number> {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /**
   * After a crash: jobs left queued or running can never finish (their
   * process is gone), so they are failed with a clear reason; stray blob
   * temporaries are removed. Returns what was cleaned.
   */
  async recoverAfterRestart(): Promise<{ failedJobs: string[]; temporaries: number }> {
    const stuck = this.db
      .prepare(`SELECT id FROM jobs WHERE state IN ('queued','running') AND (host_id = ? OR host_id IS NULL)`)
      .all(this.hostId) as { id: string }[];
    const error = JSON.stringify({
      code: 'TR_DAEMON_RESTARTED',
      message: 'the daemon stopped while this job was running; the job did not finish',
    });
    this.db
      .prepare(`UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE state IN ('queued','running') AND (host_id = ? OR host_id IS NULL)`)
      .run(error, now(), this.hostId);
    return { failedJobs: stuck.map((r) => r.id), temporaries: await this.blobs.sweepTemporaries() };
  }

  // ---- jobs

  async createJob(kind: string, deviceId: string | null, params: unknown, total = 0, actor: string | null = null): Promise<JobRow> {
    const id = newId('job');
    this.db
      .prepare(
        `INSERT INTO jobs (id, kind, device_id, state, done, total, params, created_at, actor, host_id)
         VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)`,
      )
      .run(id, kind, deviceId, total, JSON.stringify(params ?? {}), now(), actor, this.hostId);
    return (await this.getJob(id))!;
  }

  /** What a running job has achieved so far: kept if the job is cut off (a failure, a restart, kill -9). */
  async checkpointJob(id: string, partial: unknown): Promise<void> {
    this.db.prepare(`UPDATE jobs SET result = ? WHERE id = ?`).run(JSON.stringify(partial ?? null), id);
  }

  async startJob(id: string): Promise<void> {
    this.db.prepare(`UPDATE jobs SET state = 'running', started_at = ? WHERE id = ?`).run(now(), id);
  }

  async progressJob(id: string, done: number, total: number): Promise<void> {
    this.db.prepare(`UPDATE jobs SET done = ?, total = ? WHERE id = ?`).run(done, total, id);
  }

  async finishJob(id: string, state: 'succeeded' | 'failed', result: unknown, error: { code: string; message: string } | null): Promise<void> {
    this.db
      .prepare(`UPDATE jobs SET state = ?, result = ?, error = ?, finished_at = ? WHERE id = ?`)
      .run(state, result === undefined ? null : JSON.stringify(result), error ? JSON.stringify(error) : null, now(), id);
  }

  async getJob(id: string): Promise<JobRow | null> {
    const r = this.db.prepare(`SELECT * FROM jobs WHERE id = ?`).get(id);
    return r ? jobFromRow(r) : null;
  }

  async listJobs(opts: { deviceId?: string; state?: string; hostId?: string; limit?: number } = {}): Promise<JobRow[]> {
    const w = where([
      ['device_id = ?', opts.deviceId],
      ['state = ?', opts.state],
      ['host_id = ?', opts.hostId],
    ]);
    const sql = `SELECT * FROM jobs ${w.sql} ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...w.args, opts.limit ?? 100).map(jobFromRow);
  }

  async failJobsOfHost(hostId: string, error: { code: string; message: string }): Promise<string[]> {
    const ids = (this.db.prepare(`SELECT id FROM jobs WHERE host_id = ? AND state IN ('queued','running')`).all(hostId) as { id: string }[]).map((r) => r.id);
    this.db
      .prepare(`UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE host_id = ? AND state IN ('queued','running')`)
      .run(JSON.stringify(error), now(), hostId);
    return ids;
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
    if (this.pendingSteps.length >= STEP_FLUSH_ROWS) this.flushNow();
    else this.stepFlush ??= setTimeout(() => this.flushNow(), STEP_FLUSH_MS).unref();
  }

  async flushSteps(): Promise<void> {
    this.flushNow();
  }

  /** Writes the buffered step metrics in one transaction. */
  private flushNow(): void {
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

  async listSteps(deviceId: string, opts: { after?: number; limit?: number; jobId?: string } = {}): Promise<StepRow[]> {
    this.flushNow();
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

  async countSteps(deviceId: string): Promise<number> {
    this.flushNow();
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM steps WHERE device_id = ?`).get(deviceId) as { n: number }).n;
  }

  // ---- models

  async putModel(row: Omit<ModelRow, 'createdAt'>): Promise<ModelRow> {
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
    return (await this.getModel(row.sha256))!;
  }

  async getModel(sha256: string): Promise<ModelRow | null> {
    const r = this.db.prepare(`SELECT * FROM models WHERE sha256 = ?`).get(sha256);
    return r ? modelFromRow(r) : null;
  }

  async findModel(name: string, seed: number): Promise<ModelRow | null> {
    const r = this.db
      .prepare(`SELECT * FROM models WHERE name = ? AND seed = ? AND source = 'zoo' ORDER BY created_at DESC LIMIT 1`)
      .get(name, seed);
    return r ? modelFromRow(r) : null;
  }

  /** A model a user defined; its blob must already be in the blob store. */
  async putUserModel(row: Omit<ModelRow, 'createdAt' | 'source'>): Promise<ModelRow> {
    this.db
      .prepare(
        `INSERT INTO models (sha256, name, seed, bytes, weights_bytes, input_bytes, classes, created_at, source, plan, spec, actor)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'user', ?, ?, ?)`,
      )
      .run(
        row.sha256, row.name, row.seed, row.bytes, row.weightsBytes, row.inputBytes, row.classes, now(),
        JSON.stringify(row.plan ?? null), row.spec === undefined ? null : JSON.stringify(row.spec), row.actor ?? null,
      );
    return (await this.getModel(row.sha256))!;
  }

  async userModelByName(name: string): Promise<ModelRow | null> {
    const r = this.db.prepare(`SELECT * FROM models WHERE name = ? AND source = 'user' ORDER BY created_at DESC LIMIT 1`).get(name);
    return r ? modelFromRow(r) : null;
  }

  async listUserModels(): Promise<ModelRow[]> {
    return this.db.prepare(`SELECT * FROM models WHERE source = 'user' ORDER BY created_at DESC`).all().map(modelFromRow);
  }

  /** Snapshots taken of a model (it may not be deleted while there are any). */
  async countSnapshotsOfModel(sha256: string): Promise<number> {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM snapshots WHERE model_sha256 = ?`).get(sha256) as { n: number }).n;
  }

  async deleteModel(sha256: string): Promise<boolean> {
    const del = this.db.prepare(`DELETE FROM models WHERE sha256 = ?`).run(sha256);
    // the blob stays while a snapshot's weights happen to share its hash (they never do: a model blob holds more)
    const still = this.db.prepare(`SELECT 1 FROM snapshots WHERE sha256 = ? LIMIT 1`).get(sha256);
    if (del.changes > 0 && !still) await this.blobs.remove(sha256);
    return del.changes > 0;
  }

  // ---- snapshots

  /** Writes the blob, verifies it, and only then inserts the row. */
  async createSnapshot(input: NewSnapshot): Promise<SnapshotRow> {
    const sha = await this.blobs.put(input.weights, input.expectedSha256);
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
    return (await this.getSnapshot(id))!;
  }

  async getSnapshot(id: string): Promise<SnapshotRow | null> {
    const r = this.db.prepare(`SELECT * FROM snapshots WHERE id = ?`).get(id);
    return r ? snapshotFromRow(r) : null;
  }

  async listSnapshots(opts: { deviceId?: string; modelSha256?: string; good?: boolean; tag?: string; limit?: number } = {}): Promise<SnapshotRow[]> {
    const w = where([
      ['device_id = ?', opts.deviceId],
      ['model_sha256 = ?', opts.modelSha256],
      ['good = ?', opts.good === undefined ? undefined : opts.good ? 1 : 0],
      ['EXISTS (SELECT 1 FROM json_each(snapshots.tags) WHERE value = ?)', opts.tag],
    ]);
    const sql = `SELECT * FROM snapshots ${w.sql} ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...w.args, opts.limit ?? 100).map(snapshotFromRow);
  }

  async knownAccuracy(sha256: string): Promise<{ accuracy: number; slice: EvalSlice } | null> {
    const row = this.db
      .prepare(
        `SELECT accuracy, evaluated_on FROM snapshots WHERE sha256 = ? AND accuracy IS NOT NULL AND evaluated_on IS NOT NULL
         ORDER BY created_at DESC LIMIT 1`,
      )
      .get(sha256) as { accuracy: number; evaluated_on: string } | undefined;
    return row ? { accuracy: row.accuracy, slice: JSON.parse(row.evaluated_on) as EvalSlice } : null;
  }

  /**
   * Records an evaluation on a dataset slice of weights with this hash on
   * every snapshot holding them; only such an evaluation can make one good.
   */
  async markEvaluated(sha256: string, accuracy: number, goodThreshold: number, slice: EvalSlice): Promise<number> {
    return this.db
      .prepare(`UPDATE snapshots SET accuracy = ?, good = ?, evaluated_on = ? WHERE sha256 = ?`)
      .run(accuracy, accuracy >= goodThreshold ? 1 : 0, JSON.stringify(slice), sha256).changes;
  }

  async deleteSnapshot(id: string): Promise<boolean> {
    const snap = await this.getSnapshot(id);
    if (!snap) return false;
    this.db.prepare(`DELETE FROM snapshots WHERE id = ?`).run(id);
    const still =
      this.db.prepare(`SELECT 1 FROM snapshots WHERE sha256 = ? LIMIT 1`).get(snap.sha256) ??
      this.db.prepare(`SELECT 1 FROM models WHERE sha256 = ? LIMIT 1`).get(snap.sha256);
    if (!still) await this.blobs.remove(snap.sha256);
    return true;
  }

  // ---- regression runs and baselines

  async putRun(id: string, suite: string, state: string, doc: unknown, finished: boolean): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO runs (id, suite, state, doc, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET state = excluded.state, doc = excluded.doc, finished_at = excluded.finished_at`,
      )
      .run(id, suite, state, JSON.stringify(doc), now(), finished ? now() : null);
  }

  async getRun<T>(id: string): Promise<T | null> {
    const r = this.db.prepare(`SELECT doc FROM runs WHERE id = ?`).get(id) as { doc: string } | undefined;
    return r ? (JSON.parse(r.doc) as T) : null;
  }

  async listRuns<T>(opts: { suite?: string; state?: string; limit?: number } = {}): Promise<T[]> {
    const w = where([
      ['suite = ?', opts.suite],
      ['state = ?', opts.state],
    ]);
    return (this.db.prepare(`SELECT doc FROM runs ${w.sql} ORDER BY created_at DESC, id DESC LIMIT ?`).all(...w.args, opts.limit ?? 50) as { doc: string }[])
      .map((r) => JSON.parse(r.doc) as T);
  }

  async setBaseline(suite: string, runId: string, actor: string | null): Promise<void> {
    this.db
      .prepare(`INSERT INTO baselines (suite, run_id, set_at, actor) VALUES (?, ?, ?, ?) ON CONFLICT(suite) DO UPDATE SET run_id = excluded.run_id, set_at = excluded.set_at, actor = excluded.actor`)
      .run(suite, runId, now(), actor);
  }

  async baselineOf(suite: string): Promise<string | null> {
    const r = this.db.prepare(`SELECT run_id FROM baselines WHERE suite = ?`).get(suite) as { run_id: string } | undefined;
    return r?.run_id ?? null;
  }

  // ---- reservations

  async insertLease(l: { id: string; deviceIds: string[]; holder: string; reason: string | null; expiresAt: string }): Promise<LeaseRow | null> {
    return this.db.transaction(() => {
      const t = now();
      const held = leaseConflict(
        (this.db.prepare(`SELECT * FROM leases WHERE ended_at IS NULL AND expires_at > ?`).all(t) as Record<string, string>[]).map(leaseFromRow),
        l,
      );
      if (held) return held;
      this.db
        .prepare(`INSERT INTO leases (id, device_ids, holder, reason, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(l.id, JSON.stringify(l.deviceIds), l.holder, l.reason, t, l.expiresAt);
      return null;
    })();
  }

  async renewLease(id: string, expiresAt: string): Promise<void> {
    this.db.prepare(`UPDATE leases SET expires_at = ? WHERE id = ? AND ended_at IS NULL`).run(expiresAt, id);
  }

  async endLease(id: string, by: string): Promise<boolean> {
    return this.db.prepare(`UPDATE leases SET ended_at = ?, ended_by = ? WHERE id = ? AND ended_at IS NULL`).run(now(), by, id).changes > 0;
  }

  /** Leases not ended (expired ones included: the caller judges expiry by the clock). */
  async openLeases(): Promise<LeaseRow[]> {
    return (this.db.prepare(`SELECT * FROM leases WHERE ended_at IS NULL ORDER BY created_at`).all() as Record<string, string>[]).map(leaseFromRow);
  }

  // ---- per-device state

  async getDeviceState(deviceId: string): Promise<DeviceStateRow | null> {
    const r = this.db.prepare(`SELECT * FROM device_state WHERE device_id = ?`).get(deviceId) as
      | { device_id: string; model_sha256: string | null; model_name: string | null; boot_id: number | null }
      | undefined;
    return r ? { deviceId: r.device_id, modelSha256: r.model_sha256, modelName: r.model_name, bootId: r.boot_id } : null;
  }

  async setDeviceState(s: DeviceStateRow): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO device_state (device_id, model_sha256, model_name, boot_id, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(device_id) DO UPDATE SET model_sha256 = excluded.model_sha256, model_name = excluded.model_name,
           boot_id = excluded.boot_id, updated_at = excluded.updated_at`,
      )
      .run(s.deviceId, s.modelSha256, s.modelName, s.bootId, now());
  }

  // ---- hosts and their boards

  async heartbeat(
    host: { url: string; version: string; startedAt: string },
    boards: { deviceId: string; doc: Record<string, unknown> }[],
    changed?: ReadonlySet<string>,
  ): Promise<void> {
    const t = now();
    const upsertBoard = this.db.prepare(
      `INSERT INTO boards (device_id, host_id, doc, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(device_id) DO UPDATE SET host_id = excluded.host_id, doc = excluded.doc, updated_at = excluded.updated_at`,
    );
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO hosts (id, url, version, started_at, heartbeat_at, stopped_at) VALUES (?, ?, ?, ?, ?, NULL)
           ON CONFLICT(id) DO UPDATE SET url = excluded.url, version = excluded.version, started_at = excluded.started_at,
             heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`,
        )
        .run(this.hostId, host.url, host.version, host.startedAt, t);
      const keep = new Set(boards.map((b) => b.deviceId));
      for (const r of this.db.prepare(`SELECT device_id FROM boards WHERE host_id = ?`).all(this.hostId) as { device_id: string }[]) {
        if (!keep.has(r.device_id)) this.db.prepare(`DELETE FROM boards WHERE device_id = ?`).run(r.device_id);
      }
      for (const b of boards) if (!changed || changed.has(b.deviceId)) upsertBoard.run(b.deviceId, this.hostId, JSON.stringify(b.doc), t);
    })();
  }

  async stopHost(): Promise<void> {
    this.db.prepare(`UPDATE hosts SET stopped_at = ? WHERE id = ?`).run(now(), this.hostId);
  }

  async listHosts(): Promise<HostRow[]> {
    return this.db.prepare(`SELECT * FROM hosts ORDER BY id`).all().map((r) => camel(r as Record<string, unknown>) as unknown as HostRow);
  }

  async listBoards(): Promise<BoardRow[]> {
    return this.db
      .prepare(`SELECT * FROM boards ORDER BY device_id`)
      .all()
      .map((r) => {
        const o = camel(r as Record<string, unknown>);
        return { ...o, doc: parse(o.doc) } as unknown as BoardRow;
      });
  }

  async close(): Promise<void> {
    this.flushNow();
    this.db.close();
  }
}
