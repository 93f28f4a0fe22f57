// What the daemon keeps durably, as one interface with two engines: SQLite
// (sqlite.ts, the one-host default) and PostgreSQL (postgres.ts, shared by
// many rig hosts). Rows are plain objects with ISO-8601 timestamps; every
// method is async because the shared engine is a server.
import crypto from 'node:crypto';

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
  /** The rig host running it (null: rows from before hosts were recorded). */
  hostId?: string | null;
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

/** A snapshot to store: the weights (checked against their expected hash) and what the row says of them. */
export type NewSnapshot = Omit<SnapshotRow, 'id' | 'sha256' | 'bytes' | 'createdAt' | 'evaluatedOn'> & {
  weights: Uint8Array;
  expectedSha256: string;
  evaluatedOn?: EvalSlice | null;
};

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


/** A daemon registered in the store (one per rig host). */
export interface HostRow {
  id: string;
  /** Where its API answers, as other hosts and operators reach it. */
  url: string;
  version: string;
  startedAt: string;
  heartbeatAt: string;
  /** Set when the host stopped cleanly. */
  stoppedAt: string | null;
}

/** A board as its host last reported it (the API's device document). */
export interface BoardRow {
  deviceId: string;
  hostId: string;
  doc: Record<string, unknown>;
  updatedAt: string;
}

/** A reservation: `holder` (a token's name, or a run) keeps `deviceIds` until `expiresAt` unless it ends sooner. */
export interface LeaseRow {
  id: string;
  deviceIds: string[];
  holder: string;
  reason: string | null;
  createdAt: string;
  expiresAt: string;
}

/**
 * Content-addressed bytes (weights, models) every host reaches. Every read
 * is checked against its hash: `get` throws rather than answer damaged bytes.
 */
export interface BlobStore {
  has(sha256: string): Promise<boolean>;
  /** Stores `data` (refused when it does not hash to `expectedSha`); resolves once durable; returns the hash. */
  put(data: Uint8Array, expectedSha?: string): Promise<string>;
  /** The bytes, verified; throws BlobDamagedError when they do not hash to `sha256`, BlobMissingError when absent. */
  get(sha256: string): Promise<Buffer>;
  /** Whether the blob is present and hashes to its name. */
  verify(sha256: string): Promise<boolean>;
  remove(sha256: string): Promise<void>;
  /** Removes what a write cut off by a crash left behind; returns how many. */
  sweepTemporaries(): Promise<number>;
}

export class BlobMissingError extends Error {
  constructor(readonly sha256: string) {
    super(`blob ${sha256} is not stored`);
  }
}

export class BlobDamagedError extends Error {
  constructor(readonly sha256: string, readonly actual: string) {
    super(`stored blob ${sha256} is damaged: its bytes hash to ${actual}`);
  }
}

export interface Store {
  readonly engine: 'sqlite' | 'postgres';
  /** The rig host this store instance writes for (jobs it creates belong to it). */
  readonly hostId: string;
  readonly blobs: BlobStore;
  /** False while the engine cannot be reached (a shared PostgreSQL across a cut network); SQLite is always reachable. */
  readonly reachable: boolean;
  /** The last failure to reach the engine, if any. */
  readonly lastError: { message: string; at: string } | null;

  /** Number of migrations applied. */
  schemaVersion(): Promise<number>;

  /**
   * After a crash: this host's jobs left queued or running can never finish,
   * so they are failed with TR_DAEMON_RESTARTED; stray blob temporaries are removed.
   */
  recoverAfterRestart(): Promise<{ failedJobs: string[]; temporaries: number }>;

  // jobs
  createJob(kind: string, deviceId: string | null, params: unknown, total?: number, actor?: string | null): Promise<JobRow>;
  checkpointJob(id: string, partial: unknown): Promise<void>;
  startJob(id: string): Promise<void>;
  progressJob(id: string, done: number, total: number): Promise<void>;
  finishJob(id: string, state: 'succeeded' | 'failed', result: unknown, error: { code: string; message: string } | null): Promise<void>;
  getJob(id: string): Promise<JobRow | null>;
  listJobs(opts?: { deviceId?: string; state?: string; hostId?: string; limit?: number }): Promise<JobRow[]>;
  /** Fails the queued and running jobs of a host (one that stopped heartbeating); returns their ids. */
  failJobsOfHost(hostId: string, error: { code: string; message: string }): Promise<string[]>;

  // steps: buffered, written at most STEP_FLUSH_MS later; every read flushes first
  recordSteps(steps: StepRecord[]): void;
  flushSteps(): Promise<void>;
  listSteps(deviceId: string, opts?: { after?: number; limit?: number; jobId?: string }): Promise<StepRow[]>;
  countSteps(deviceId: string): Promise<number>;

  // models
  putModel(row: Omit<ModelRow, 'createdAt'>): Promise<ModelRow>;
  getModel(sha256: string): Promise<ModelRow | null>;
  findModel(name: string, seed: number): Promise<ModelRow | null>;
  putUserModel(row: Omit<ModelRow, 'createdAt' | 'source'>): Promise<ModelRow>;
  userModelByName(name: string): Promise<ModelRow | null>;
  listUserModels(): Promise<ModelRow[]>;
  countSnapshotsOfModel(sha256: string): Promise<number>;
  /** Deletes the row, and the blob unless a snapshot shares its hash. */
  deleteModel(sha256: string): Promise<boolean>;

  // snapshots
  /** Writes the blob, verifies it, and only then inserts the row. */
  createSnapshot(input: NewSnapshot): Promise<SnapshotRow>;
  getSnapshot(id: string): Promise<SnapshotRow | null>;
  listSnapshots(opts?: { deviceId?: string; modelSha256?: string; good?: boolean; tag?: string; limit?: number }): Promise<SnapshotRow[]>;
  /** The newest accuracy recorded on a dataset slice for weights with this hash. */
  knownAccuracy(sha256: string): Promise<{ accuracy: number; slice: EvalSlice } | null>;
  markEvaluated(sha256: string, accuracy: number, goodThreshold: number, slice: EvalSlice): Promise<number>;
  /** Deletes the row, and the blob unless another snapshot (or a model) shares its hash. */
  deleteSnapshot(id: string): Promise<boolean>;

  // regression runs and baselines
  putRun(id: string, suite: string, state: string, doc: unknown, finished: boolean): Promise<void>;
  getRun<T>(id: string): Promise<T | null>;
  listRuns<T>(opts?: { suite?: string; state?: string; limit?: number }): Promise<T[]>;
  setBaseline(suite: string, runId: string, actor: string | null): Promise<void>;
  baselineOf(suite: string): Promise<string | null>;

  // reservations
  /**
   * Inserts the lease unless another holder's lease in force (unexpired, not
   * ended) covers one of its devices: then nothing is written and that lease
   * is returned. Check and insert are one step, across every host of the store.
   */
  insertLease(l: { id: string; deviceIds: string[]; holder: string; reason: string | null; expiresAt: string }): Promise<LeaseRow | null>;
  renewLease(id: string, expiresAt: string): Promise<void>;
  /** Ends an open lease; false when it was already ended. */
  endLease(id: string, by: string): Promise<boolean>;
  /** Leases not ended (expired ones included: the caller judges expiry by the clock). */
  openLeases(): Promise<LeaseRow[]>;

  // per-device state
  getDeviceState(deviceId: string): Promise<DeviceStateRow | null>;
  setDeviceState(s: DeviceStateRow): Promise<void>;

  // hosts and the boards they own
  /**
   * Registers this host (or refreshes it) and replaces the list of boards it
   * owns; with `changed`, only those boards' documents are written (the
   * others' rows are kept as they are, rows of boards not listed removed).
   */
  heartbeat(
    host: { url: string; version: string; startedAt: string },
    boards: { deviceId: string; doc: Record<string, unknown> }[],
    changed?: ReadonlySet<string>,
  ): Promise<void>;
  /** Marks this host stopped (a clean shutdown); its boards stay listed as its. */
  stopHost(): Promise<void>;
  listHosts(): Promise<HostRow[]>;
  listBoards(): Promise<BoardRow[]>;

  close(): Promise<void>;
}

/** Another holder's lease among `inForce` that covers one of the new lease's devices, or null. */
export function leaseConflict(inForce: LeaseRow[], l: { id: string; deviceIds: string[]; holder: string }): LeaseRow | null {
  return inForce.find((x) => x.id !== l.id && x.holder !== l.holder && x.deviceIds.some((d) => l.deviceIds.includes(d))) ?? null;
}

export function newId(prefix: string): string {
  // time-ordered, so ids sort by creation
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${crypto.randomBytes(5).toString('hex')}`;
}

/** Step metrics wait at most this long, or for this many rows, before they are written. */
export const STEP_FLUSH_MS = 200;
export const STEP_FLUSH_ROWS = 4096;
