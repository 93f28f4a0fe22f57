// The shared store: one PostgreSQL database for every rig host (rows and blobs
// by hash). Same rows, same answers as the SQLite engine; what differs is
// that the server may restart under us, so every statement goes through
// PgDb's retries and every write is safe to send twice.
import type { Logger } from 'pino';
import { sha256Hex } from './blobs.js';
import { PgDb, type PgDbOptions, type Queryable } from './pg-db.js';
import { PgBlobStore, putBlobRow } from './pg-blobs.js';
import { pgMigrations } from './pg-migrations.js';
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

// Advisory lock keys (two-int form): one for migrating, one space for blob hashes
const LOCK_SPACE_MIGRATE = 0x7472_0001;
const LOCK_SPACE_BLOB = 0x7472_0002;

const RESTARTED = { code: 'TR_DAEMON_RESTARTED', message: 'the daemon stopped while this job was running; the job did not finish' };

// rows carry the time their host stamped them, as in SQLite, so a retried write keeps its time
const now = (): string => new Date().toISOString();
const json = (v: unknown): string => JSON.stringify(v);

/** `WHERE a = $1 AND … LIMIT $n` from [clause with `$?`, value] pairs whose value is set, and the limit. */
function filter(conds: [string, unknown][], limit: number): { where: string; limit: string; args: unknown[] } {
  const args: unknown[] = [];
  const parts: string[] = [];
  for (const [clause, v] of conds) {
    if (v === undefined || v === null || v === '') continue;
    args.push(v);
    parts.push(clause.replace('$?', `$${args.length}`));
  }
  args.push(limit);
  return { where: parts.length ? `WHERE ${parts.join(' AND ')}` : '', limit: `LIMIT $${args.length}`, args };
}

/** snake_case columns → camelCase fields. */
function camel<T>(r: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(r)) out[k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = r[k];
  return out as T;
}

/** Serialises transactions that create or drop a row holding this hash with the removal of its blob. */
const lockHash = (c: Queryable, sha: string): Promise<unknown> =>
  c.query(`SELECT pg_advisory_xact_lock(${LOCK_SPACE_BLOB}, ('x' || substr($1, 1, 8))::bit(32)::int)`, [sha]);

const STEP_COLUMNS = `seq, device_id, job_id, step_id, sample_index, loss_ppm, counter, counter_unit, updated_ppm,
  correct, peak_ram, energy_uj, energy_source, created_at`;

export interface PgStoreOptions extends Omit<PgDbOptions, 'log'> {
  hostId: string;
  log?: Logger;
}

export class PgStore implements Store {
  readonly engine = 'postgres' as const;
  readonly blobs: PgBlobStore;

  private constructor(readonly db: PgDb, readonly hostId: string, private readonly log?: Logger) {
    this.blobs = new PgBlobStore(db);
  }

  /** Connects, brings the schema up to date (once, whichever host starts first) and returns the store. */
  static async open(url: string, opts: PgStoreOptions): Promise<PgStore> {
    const log = opts.log?.child({ module: 'store', engine: 'postgres' });
    const db = new PgDb(url, { ...opts, log });
    const store = new PgStore(db, opts.hostId, log);
    try {
      await store.migrate();
    } catch (err) {
      await db.end();
      throw err;
    }
    return store;
  }

  /** Whether the last attempt to reach the server succeeded (for /v1/health). */
  get reachable(): boolean {
    return this.db.reachable;
  }

  get lastError(): { message: string; at: string } | null {
    return this.db.lastError;
  }

  /** The rows of a query as the row types have them (camelCase fields). */
  private async rows<T>(sql: string, args: unknown[] = []): Promise<T[]> {
    return (await this.db.query(sql, args)).rows.map((r) => camel<T>(r));
  }

  private async row<T>(sql: string, args: unknown[]): Promise<T | null> {
    return (await this.rows<T>(sql, args))[0] ?? null;
  }

  /**
   * One migration per transaction, each under an advisory lock: a second
   * daemon starting at the same moment waits, then finds the work done.
   */
  private async migrate(): Promise<void> {
    for (;;) {
      const applied = await this.db.tx(async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(${LOCK_SPACE_MIGRATE}, 0)`);
        await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
        const v = await versionOn(c);
        if (v >= pgMigrations.length) return null;
        await c.query(pgMigrations[v]!);
        await c.query(`INSERT INTO schema_migrations (version) VALUES ($1)`, [v + 1]);
        return v + 1;
      });
      if (applied === null) return;
      this.log?.info({ version: applied }, 'PostgreSQL schema migrated');
    }
  }

  async schemaVersion(): Promise<number> {
    return versionOn(this.db);
  }

  async recoverAfterRestart(): Promise<{ failedJobs: string[]; temporaries: number }> {
    return { failedJobs: await this.failJobsOfHost(this.hostId, RESTARTED), temporaries: await this.blobs.sweepTemporaries() };
  }

  // ---- jobs

  async createJob(kind: string, deviceId: string | null, params: unknown, total = 0, actor: string | null = null): Promise<JobRow> {
    const id = newId('job');
    await this.db.query(
      `INSERT INTO jobs (id, kind, device_id, state, done, total, params, created_at, actor, host_id)
       VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
      [id, kind, deviceId, total, json(params ?? {}), now(), actor, this.hostId],
    );
    return (await this.getJob(id))!;
  }

  /** What a running job has achieved so far: kept if the job is cut off (a failure, a restart, kill -9). */
  async checkpointJob(id: string, partial: unknown): Promise<void> {
    await this.db.query(`UPDATE jobs SET result = $1 WHERE id = $2`, [json(partial ?? null), id]);
  }

  async startJob(id: string): Promise<void> {
    await this.db.query(`UPDATE jobs SET state = 'running', started_at = $1 WHERE id = $2`, [now(), id]);
  }

  async progressJob(id: string, done: number, total: number): Promise<void> {
    await this.db.query(`UPDATE jobs SET done = $1, total = $2 WHERE id = $3`, [done, total, id]);
  }

  async finishJob(id: string, state: 'succeeded' | 'failed', result: unknown, error: { code: string; message: string } | null): Promise<void> {
    await this.db.query(`UPDATE jobs SET state = $1, result = $2, error = $3, finished_at = $4 WHERE id = $5`, [
      state, result === undefined ? null : json(result), error ? json(error) : null, now(), id,
    ]);
  }

  async getJob(id: string): Promise<JobRow | null> {
    return this.row<JobRow>(`SELECT * FROM jobs WHERE id = $1`, [id]);
  }

  async listJobs(opts: { deviceId?: string; state?: string; hostId?: string; limit?: number } = {}): Promise<JobRow[]> {
    const f = filter([
      ['device_id = $?', opts.deviceId],
      ['state = $?', opts.state],
      ['host_id = $?', opts.hostId],
    ], opts.limit ?? 100);
    return this.rows<JobRow>(`SELECT * FROM jobs ${f.where} ORDER BY created_at DESC, id DESC ${f.limit}`, f.args);
  }

  async failJobsOfHost(hostId: string, error: { code: string; message: string }): Promise<string[]> {
    // a retry whose first attempt committed finds its own rows by their error and time, and answers the same ids
    const r = await this.db.query<{ id: string }>(
      `UPDATE jobs SET state = 'failed', error = $1::json, finished_at = $2
       WHERE host_id = $3 AND (state IN ('queued','running') OR (state = 'failed' AND finished_at = $2 AND error::text = $1::text))
       RETURNING id`,
      [json(error), now(), hostId],
    );
    return r.rows.map((row) => row.id);
  }

  // ---- steps

  private pendingSteps: { s: StepRecord; t: string }[] = [];
  /** Batches cut from pendingSteps and not yet written, oldest first; each keeps its id across retries. */
  private stepBatches: { id: string; rows: { s: StepRecord; t: string }[] }[] = [];
  private stepWriter: Promise<void> = Promise.resolve();
  private stepFlush: NodeJS.Timeout | null = null;

  /**
   * Buffered as in SQLite: written at most STEP_FLUSH_MS later, or once
   * STEP_FLUSH_ROWS wait. A batch that cannot be written (the server gone for
   * longer than the retry window) stays queued and goes with the next flush.
   */
  recordSteps(steps: StepRecord[]): void {
    const t = now();
    for (const s of steps) this.pendingSteps.push({ s, t });
    if (this.pendingSteps.length >= STEP_FLUSH_ROWS) this.flushInBackground();
    else this.stepFlush ??= setTimeout(() => this.flushInBackground(), STEP_FLUSH_MS).unref();
  }

  private flushInBackground(): void {
    this.flushSteps().catch((err: unknown) => {
      this.log?.error({ err, rows: this.stepBatches.reduce((n, b) => n + b.rows.length, 0) }, 'step metrics not written yet; retrying');
      this.stepFlush ??= setTimeout(() => this.flushInBackground(), STEP_FLUSH_MS).unref();
    });
  }

  /** Writes every buffered step, batch after batch in the order they were recorded. */
  flushSteps(): Promise<void> {
    if (this.stepFlush) clearTimeout(this.stepFlush);
    this.stepFlush = null;
    if (this.pendingSteps.length > 0) {
      this.stepBatches.push({ id: newId('flush'), rows: this.pendingSteps });
      this.pendingSteps = [];
    }
    // one writer at a time, so seq follows the order steps were recorded
    this.stepWriter = this.stepWriter.catch(() => undefined).then(() => this.writeStepBatches());
    return this.stepWriter;
  }

  private async writeStepBatches(): Promise<void> {
    while (this.stepBatches.length > 0) {
      const batch = this.stepBatches[0]!;
      const col = <K extends keyof StepRecord>(k: K): StepRecord[K][] => batch.rows.map((r) => r.s[k]);
      // one statement per batch; (flush_id, flush_row) makes a batch sent twice land once
      await this.db.query(
        `INSERT INTO steps (device_id, job_id, step_id, sample_index, loss_ppm, counter, counter_unit, updated_ppm,
                            correct, peak_ram, energy_uj, energy_source, created_at, flush_id, flush_row)
         SELECT d, j, s, si, l, c, cu, up, ok, pr, e, es, t, $14, n FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                                        $7::text[], $8::bigint[], $9::boolean[], $10::bigint[], $11::float8[], $12::text[],
                                        $13::timestamptz[]) WITH ORDINALITY AS u(d, j, s, si, l, c, cu, up, ok, pr, e, es, t, n)
         ORDER BY n
         ON CONFLICT (flush_id, flush_row) DO NOTHING`,
        [
          col('deviceId'), col('jobId'), col('stepId'), col('sampleIndex'), col('lossPpm'), col('counter'), col('counterUnit'),
          col('updatedPpm'), col('correct'), col('peakRam'), col('energyUj'), col('energySource'), batch.rows.map((r) => r.t), batch.id,
        ],
      );
      this.stepBatches.shift();
    }
  }

  async listSteps(deviceId: string, opts: { after?: number; limit?: number; jobId?: string } = {}): Promise<StepRow[]> {
    await this.flushSteps();
    const f = filter([
      ['device_id = $?', deviceId],
      ['seq > $?', opts.after ?? 0],
      ['job_id = $?', opts.jobId],
    ], opts.limit ?? 1000);
    return this.rows<StepRow>(`SELECT ${STEP_COLUMNS} FROM steps ${f.where} ORDER BY seq ${f.limit}`, f.args);
  }

  async countSteps(deviceId: string): Promise<number> {
    await this.flushSteps();
    return count(this.db, `SELECT COUNT(*) AS n FROM steps WHERE device_id = $1`, [deviceId]);
  }

  // ---- models

  async putModel(row: Omit<ModelRow, 'createdAt'>): Promise<ModelRow> {
    await this.db.query(
      `INSERT INTO models (sha256, name, seed, bytes, weights_bytes, input_bytes, classes, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (sha256) DO UPDATE SET
         weights_bytes = COALESCE(excluded.weights_bytes, models.weights_bytes),
         input_bytes = COALESCE(excluded.input_bytes, models.input_bytes),
         classes = COALESCE(excluded.classes, models.classes)`,
      [row.sha256, row.name, row.seed, row.bytes, row.weightsBytes, row.inputBytes, row.classes, now()],
    );
    return (await this.getModel(row.sha256))!;
  }

  async getModel(sha256: string): Promise<ModelRow | null> {
    return this.row<ModelRow>(`SELECT * FROM models WHERE sha256 = $1`, [sha256]);
  }

  async findModel(name: string, seed: number): Promise<ModelRow | null> {
    return this.row<ModelRow>(`SELECT * FROM models WHERE name = $1 AND seed = $2 AND source = 'zoo' ORDER BY created_at DESC LIMIT 1`, [name, seed]);
  }

  /**
   * A model a user defined; its blob must already be in the blob store. A
   * hash stored already is refused, as SQLite's primary key refuses it,
   * unless it is this very row (a retried insert whose answer was lost).
   */
  async putUserModel(row: Omit<ModelRow, 'createdAt' | 'source'>): Promise<ModelRow> {
    const r = await this.db.query(
      `INSERT INTO models (sha256, name, seed, bytes, weights_bytes, input_bytes, classes, created_at, source, plan, spec, actor)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'user', $9, $10, $11) ON CONFLICT (sha256) DO NOTHING`,
      [
        row.sha256, row.name, row.seed, row.bytes, row.weightsBytes, row.inputBytes, row.classes, now(),
        json(row.plan ?? null), row.spec === undefined ? null : json(row.spec), row.actor ?? null,
      ],
    );
    const stored = (await this.getModel(row.sha256))!;
    if (r.rowCount === 0 && (stored.source !== 'user' || stored.name !== row.name)) {
      throw new Error(`a model with hash ${row.sha256} is stored already as '${stored.name}'`);
    }
    return stored;
  }

  async userModelByName(name: string): Promise<ModelRow | null> {
    return this.row<ModelRow>(`SELECT * FROM models WHERE name = $1 AND source = 'user' ORDER BY created_at DESC LIMIT 1`, [name]);
  }

  async listUserModels(): Promise<ModelRow[]> {
    return this.rows<ModelRow>(`SELECT * FROM models WHERE source = 'user' ORDER BY created_at DESC`);
  }

  async countSnapshotsOfModel(sha256: string): Promise<number> {
    return count(this.db, `SELECT COUNT(*) AS n FROM snapshots WHERE model_sha256 = $1`, [sha256]);
  }

  async deleteModel(sha256: string): Promise<boolean> {
    let deleted = false; // by an attempt whose commit's answer was lost
    return this.db.tx(async (c) => {
      await lockHash(c, sha256);
      const del = await c.query(`DELETE FROM models WHERE sha256 = $1`, [sha256]);
      if (del.rowCount === 0) return deleted;
      deleted = true;
      // the blob stays while a snapshot's weights happen to share its hash (they never do: a model blob holds more)
      await c.query(`DELETE FROM blobs WHERE sha256 = $1 AND NOT EXISTS (SELECT 1 FROM snapshots WHERE sha256 = $1)`, [sha256]);
      return true;
    });
  }

  // ---- snapshots

  /**
   * The blob and the row go in one transaction, the blob hashed where it is
   * stored before the row is inserted; the hash's lock keeps a deleteSnapshot
   * of the same weights on another host from removing the blob in between.
   */
  async createSnapshot(input: NewSnapshot): Promise<SnapshotRow> {
    const sha = sha256Hex(input.weights);
    if (sha !== input.expectedSha256) throw new Error(`blob hashes to ${sha}, expected ${input.expectedSha256}`);
    const id = newId('snap');
    const t = now();
    await this.db.tx(async (c) => {
      await lockHash(c, sha);
      await putBlobRow(c, sha, input.weights);
      const v = await c.query<{ ok: boolean }>(`SELECT encode(sha256(data), 'hex') = sha256 AS ok FROM blobs WHERE sha256 = $1`, [sha]);
      if (v.rows[0]?.ok !== true) throw new Error(`blob ${sha} did not verify after writing`);
      await c.query(
        `INSERT INTO snapshots (id, sha256, bytes, device_id, model_sha256, model_name, step, tags, accuracy, good, created_at, evaluated_on)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING`,
        [
          id, sha, input.weights.length, input.deviceId, input.modelSha256, input.modelName, input.step,
          json(input.tags), input.accuracy, input.good, t, input.evaluatedOn ? json(input.evaluatedOn) : null,
        ],
      );
    });
    return (await this.getSnapshot(id))!;
  }

  async getSnapshot(id: string): Promise<SnapshotRow | null> {
    return this.row<SnapshotRow>(`SELECT * FROM snapshots WHERE id = $1`, [id]);
  }

  async listSnapshots(opts: { deviceId?: string; modelSha256?: string; good?: boolean; tag?: string; limit?: number } = {}): Promise<SnapshotRow[]> {
    const f = filter([
      ['device_id = $?', opts.deviceId],
      ['model_sha256 = $?', opts.modelSha256],
      ['good = $?', opts.good],
      ['tags @> jsonb_build_array($?::text)', opts.tag],
    ], opts.limit ?? 100);
    return this.rows<SnapshotRow>(`SELECT * FROM snapshots ${f.where} ORDER BY created_at DESC, id DESC ${f.limit}`, f.args);
  }

  async knownAccuracy(sha256: string): Promise<{ accuracy: number; slice: EvalSlice } | null> {
    const r = await this.db.query<{ accuracy: number; evaluated_on: EvalSlice }>(
      `SELECT accuracy, evaluated_on FROM snapshots WHERE sha256 = $1 AND accuracy IS NOT NULL AND evaluated_on IS NOT NULL
       ORDER BY created_at DESC LIMIT 1`,
      [sha256],
    );
    const row = r.rows[0];
    return row ? { accuracy: row.accuracy, slice: row.evaluated_on } : null;
  }

  async markEvaluated(sha256: string, accuracy: number, goodThreshold: number, slice: EvalSlice): Promise<number> {
    const r = await this.db.query(`UPDATE snapshots SET accuracy = $1, good = $2, evaluated_on = $3 WHERE sha256 = $4`, [
      accuracy, accuracy >= goodThreshold, json(slice), sha256,
    ]);
    return r.rowCount ?? 0;
  }

  async deleteSnapshot(id: string): Promise<boolean> {
    let deleted = false; // by an attempt whose commit's answer was lost
    return this.db.tx(async (c) => {
      const r = await c.query<{ sha256: string }>(`SELECT sha256 FROM snapshots WHERE id = $1`, [id]);
      const sha = r.rows[0]?.sha256;
      if (!sha) return deleted;
      deleted = true;
      await lockHash(c, sha);
      await c.query(`DELETE FROM snapshots WHERE id = $1`, [id]);
      await c.query(
        `DELETE FROM blobs WHERE sha256 = $1
           AND NOT EXISTS (SELECT 1 FROM snapshots WHERE sha256 = $1) AND NOT EXISTS (SELECT 1 FROM models WHERE sha256 = $1)`,
        [sha],
      );
      return true;
    });
  }

  // ---- regression runs and baselines

  async putRun(id: string, suite: string, state: string, doc: unknown, finished: boolean): Promise<void> {
    const t = now();
    await this.db.query(
      `INSERT INTO runs (id, suite, state, doc, created_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET state = excluded.state, doc = excluded.doc, finished_at = excluded.finished_at`,
      [id, suite, state, json(doc), t, finished ? t : null],
    );
  }

  async getRun<T>(id: string): Promise<T | null> {
    const r = await this.db.query<{ doc: T }>(`SELECT doc FROM runs WHERE id = $1`, [id]);
    return r.rows[0] ? r.rows[0].doc : null;
  }

  async listRuns<T>(opts: { suite?: string; state?: string; limit?: number } = {}): Promise<T[]> {
    const f = filter([
      ['suite = $?', opts.suite],
      ['state = $?', opts.state],
    ], opts.limit ?? 50);
    return (await this.rows<{ doc: T }>(`SELECT doc FROM runs ${f.where} ORDER BY created_at DESC, id DESC ${f.limit}`, f.args)).map((r) => r.doc);
  }

  async setBaseline(suite: string, runId: string, actor: string | null): Promise<void> {
    await this.db.query(
      `INSERT INTO baselines (suite, run_id, set_at, actor) VALUES ($1, $2, $3, $4)
       ON CONFLICT (suite) DO UPDATE SET run_id = excluded.run_id, set_at = excluded.set_at, actor = excluded.actor`,
      [suite, runId, now(), actor],
    );
  }

  async baselineOf(suite: string): Promise<string | null> {
    const r = await this.db.query<{ run_id: string }>(`SELECT run_id FROM baselines WHERE suite = $1`, [suite]);
    return r.rows[0]?.run_id ?? null;
  }

  // ---- reservations

  async insertLease(l: { id: string; deviceIds: string[]; holder: string; reason: string | null; expiresAt: string }): Promise<LeaseRow | null> {
    const t = now();
    return this.db.tx(async (c) => {
      // one lease taken at a time across every host, so two hosts cannot both reserve a board
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('tinyrig-leases'))`);
      const inForce = await c.query(
        `SELECT id, device_ids, holder, reason, created_at, expires_at FROM leases WHERE ended_at IS NULL AND expires_at > $1`,
        [t],
      );
      const held = leaseConflict(inForce.rows.map((r) => camel<LeaseRow>(r)), l);
      if (held) return held;
      // a retry after a lost commit finds its own row: the same id, nothing more written
      await c.query(
        `INSERT INTO leases (id, device_ids, holder, reason, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO NOTHING`,
        [l.id, json(l.deviceIds), l.holder, l.reason, t, l.expiresAt],
      );
      return null;
    });
  }

  async renewLease(id: string, expiresAt: string): Promise<void> {
    await this.db.query(`UPDATE leases SET expires_at = $1 WHERE id = $2 AND ended_at IS NULL`, [expiresAt, id]);
  }

  private endCalls = 0;

  async endLease(id: string, by: string): Promise<boolean> {
    // a retry whose first attempt committed matches its own end (same instant to the microsecond, same hand) and answers
    // true again; the microseconds are this call's own, so a second call in the same millisecond is not taken for a retry
    const at = `${now().slice(0, -1)}${String(++this.endCalls % 1000).padStart(3, '0')}Z`;
    const r = await this.db.query(
      `UPDATE leases SET ended_at = $1, ended_by = $2 WHERE id = $3 AND (ended_at IS NULL OR (ended_at = $1 AND ended_by = $2))`,
      [at, by, id],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async openLeases(): Promise<LeaseRow[]> {
    return this.rows<LeaseRow>(`SELECT id, device_ids, holder, reason, created_at, expires_at FROM leases WHERE ended_at IS NULL ORDER BY created_at`);
  }

  // ---- per-device state

  async getDeviceState(deviceId: string): Promise<DeviceStateRow | null> {
    return this.row<DeviceStateRow>(`SELECT device_id, model_sha256, model_name, boot_id FROM device_state WHERE device_id = $1`, [deviceId]);
  }

  async setDeviceState(s: DeviceStateRow): Promise<void> {
    await this.db.query(
      `INSERT INTO device_state (device_id, model_sha256, model_name, boot_id, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (device_id) DO UPDATE SET model_sha256 = excluded.model_sha256, model_name = excluded.model_name,
         boot_id = excluded.boot_id, updated_at = excluded.updated_at`,
      [s.deviceId, s.modelSha256, s.modelName, s.bootId, now()],
    );
  }

  // ---- hosts and their boards

  /**
   * heartbeat_at is the database's clock, the one every host's liveness is
   * judged by. A board another host listed becomes this host's.
   */
  async heartbeat(
    host: { url: string; version: string; startedAt: string },
    boards: { deviceId: string; doc: Record<string, unknown> }[],
    changed?: ReadonlySet<string>,
  ): Promise<void> {
    // one row per board (the last report wins), in one order on every host so two hosts' upserts cannot deadlock
    const byId = new Map(boards.map((b) => [b.deviceId, b.doc]));
    const ids = [...byId.keys()].sort();
    const write = changed ? ids.filter((id) => changed.has(id)) : ids;
    await this.db.tx(async (c) => {
      await c.query(
        `INSERT INTO hosts (id, url, version, started_at, heartbeat_at, stopped_at) VALUES ($1, $2, $3, $4, now(), NULL)
         ON CONFLICT (id) DO UPDATE SET url = excluded.url, version = excluded.version, started_at = excluded.started_at,
           heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`,
        [this.hostId, host.url, host.version, host.startedAt],
      );
      await c.query(`DELETE FROM boards WHERE host_id = $1 AND NOT (device_id = ANY($2::text[]))`, [this.hostId, ids]);
      if (write.length === 0) return;
      await c.query(
        `INSERT INTO boards (device_id, host_id, doc, updated_at)
         SELECT d, $1, doc::json, now() FROM unnest($2::text[], $3::text[]) AS u(d, doc) ORDER BY d
         ON CONFLICT (device_id) DO UPDATE SET host_id = excluded.host_id, doc = excluded.doc, updated_at = excluded.updated_at`,
        [this.hostId, write, write.map((id) => json(byId.get(id)))],
      );
    });
  }

  async stopHost(): Promise<void> {
    await this.db.query(`UPDATE hosts SET stopped_at = now() WHERE id = $1`, [this.hostId]);
  }

  async listHosts(): Promise<HostRow[]> {
    return this.rows<HostRow>(`SELECT * FROM hosts ORDER BY id`);
  }

  async listBoards(): Promise<BoardRow[]> {
    return this.rows<BoardRow>(`SELECT * FROM boards ORDER BY device_id`);
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flushSteps();
    } finally {
      await this.db.end();
    }
  }
}

async function versionOn(q: Queryable): Promise<number> {
  const exists = await q.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations') AS t`);
  if (!exists.rows[0]?.t) return 0;
  return count(q, `SELECT COALESCE(MAX(version), 0) AS n FROM schema_migrations`, []);
}

async function count(q: Queryable, sql: string, args: unknown[]): Promise<number> {
  return Number((await q.query<{ n: number }>(sql, args)).rows[0]!.n);
}
