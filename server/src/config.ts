// Daemon settings: read from the environment (and optional overrides) once at
// start, validated against one schema, then exposed read-only as fastify.config.
import os from 'node:os';
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export const Role = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')]);
export type Role = Static<typeof Role>;

export const TokenEntry = Type.Object({
  token: Type.String({ minLength: 16 }),
  role: Role,
  name: Type.Optional(Type.String()),
});
export type TokenEntry = Static<typeof TokenEntry>;

/** A measured power source: a serial logger printing one reading a line. */
export const SerialLogMeterConfig = Type.Object({
  kind: Type.Literal('serial-log'),
  path: Type.String(),
  baudRate: Type.Optional(Type.Integer({ minimum: 300 })),
  /** What each line holds after the optional timestamp: milliwatts, or milliamps at `volts`. */
  unit: Type.Optional(Type.Union([Type.Literal('mW'), Type.Literal('mA')])),
  volts: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  label: Type.Optional(Type.String()),
});

/** A Nordic PPK2 on its USB port; the board marks each training step high on a digital input. */
export const Ppk2MeterConfig = Type.Object({
  kind: Type.Literal('ppk2'),
  path: Type.String(),
  /** source: the PPK2 powers the board at vddMv; ampere: it measures a board powered elsewhere at vddMv (or volts). */
  mode: Type.Union([Type.Literal('source'), Type.Literal('ampere')]),
  vddMv: Type.Optional(Type.Integer({ minimum: 800, maximum: 5000 })),
  volts: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** The digital input (D0..D7) the board's step marker is wired to; D0 by default. */
  markerChannel: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 })),
  label: Type.Optional(Type.String()),
});

export const MeterConfig = Type.Union([SerialLogMeterConfig, Ppk2MeterConfig]);
export type MeterConfig = Static<typeof MeterConfig>;

export const DeviceEntry = Type.Object({
  id: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' }),
  path: Type.String({ minLength: 1 }),
  board: Type.Optional(Type.String()),
  class: Type.Optional(Type.String()),
  emulated: Type.Optional(Type.Boolean()),
  tags: Type.Optional(Type.Array(Type.String())),
  label: Type.Optional(Type.String()),
  /** Zephyr name of the board whose power figures estimate this one's energy. */
  powerBoard: Type.Optional(Type.String()),
  baudRate: Type.Optional(Type.Integer({ minimum: 300 })),
  meter: Type.Optional(MeterConfig),
});
export type DeviceEntry = Static<typeof DeviceEntry>;

export const DevicesFile = Type.Object({ devices: Type.Array(DeviceEntry) });

export const GuardConfig = Type.Object({
  enabled: Type.Boolean(),
  /** Roll back when accuracy after training is lower than before by more than this (0..1). */
  margin: Type.Number({ minimum: 0, maximum: 1 }),
  dataset: Type.String(),
  split: Type.Union([Type.Literal('train'), Type.Literal('test')]),
  offset: Type.Integer({ minimum: 0 }),
  count: Type.Integer({ minimum: 1 }),
});
export type GuardConfig = Static<typeof GuardConfig>;

export const Config = Type.Object({
  host: Type.String(),
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
  /** Root of the daemon's state: store.db, blobs/, admin.token. */
  varDir: Type.String(),
  devicesFile: Type.String(),
  /** Devices given directly (tests); when set, devicesFile is not read. */
  devices: Type.Optional(Type.Array(DeviceEntry)),
  /** Add ports found by SerialPort.list() whose USB ids look like our boards. */
  discovery: Type.Boolean(),
  discoveryVendorIds: Type.Array(Type.String()),
  tokens: Type.Array(TokenEntry),
  tokensFile: Type.Optional(Type.String()),
  /** GET routes need a viewer token too (default: only mutating routes need one). */
  readsNeedToken: Type.Boolean(),
  bodyLimitBytes: Type.Integer({ minimum: 1024 }),
  /** Largest dataset upload (multipart: every file part together); these stream to disk, not through bodyLimitBytes. */
  uploadLimitBytes: Type.Integer({ minimum: 1024 }),
  /** Host header names the daemon answers (DNS rebinding guard); '*' answers any. */
  allowedHosts: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
  /** A client that has not sent its whole header block by then is answered 408 and cut off. */
  headersTimeoutMs: Type.Integer({ minimum: 1 }),
  /** A client that has not sent its whole request (headers and body) by then is answered 408 and cut off. */
  bodyTimeoutMs: Type.Integer({ minimum: 1 }),
  maxSamplesPerRequest: Type.Integer({ minimum: 1 }),
  /** Most samples a guard evaluates (it runs twice a training job). */
  maxGuardSamples: Type.Integer({ minimum: 1 }),
  rateLimitMax: Type.Integer({ minimum: 1 }),
  rateLimitWindowMs: Type.Integer({ minimum: 1 }),
  /** Accuracy (0..1) at or above which an evaluated snapshot is marked good. */
  goodAccuracy: Type.Number({ minimum: 0, maximum: 1 }),
  /** The slice last-good takes its accuracy from (absent: any named dataset slice). */
  goodSlice: Type.Optional(
    Type.Object({ dataset: Type.String(), split: Type.String(), offset: Type.Integer({ minimum: 0 }), count: Type.Integer({ minimum: 1 }) }),
  ),
  guard: GuardConfig,
  /** Boards rolled back at once by a fleet rollback after its canaries. */
  fleetConcurrency: Type.Integer({ minimum: 1 }),
  reconnectMinMs: Type.Integer({ minimum: 1 }),
  reconnectMaxMs: Type.Integer({ minimum: 1 }),
  requestTimeoutMs: Type.Integer({ minimum: 1 }),
  boardsFile: Type.String(),
  modelTool: Type.String(),
  /** The host twin binary: a run's golden reference trains on one. */
  twinTool: Type.String(),
  /** Regression suites (suites/*.yaml). */
  suitesDir: Type.String(),
  /** Suites started by the clock: "name@cron;…" (croner patterns, e.g. nightly@0 2 * * *). */
  schedule: Type.Array(Type.Object({ suite: Type.String(), cron: Type.String() })),
  /** A run's reservation of its boards lasts this long unless renewed (it renews a third of the way). */
  runLeaseMs: Type.Integer({ minimum: 1000 }),
  datasetDir: Type.String(),
  /** Uploaded datasets; rig hosts sharing a store should share this directory too (e.g. an NFS mount). */
  uploadsDir: Type.String(),
  /** Persist the SQLite store with fsync on every commit (off in tests: faster). */
  durable: Type.Boolean(),
  /** postgres://… : share one PostgreSQL with other rig hosts (one fleet); absent: SQLite in varDir, this host alone. */
  databaseUrl: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /** This rig host's name in the fleet (unique per host; default: the machine's hostname). */
  hostId: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' }),
  /** Where other hosts reach this daemon's API (default http://<HOST>:<PORT>). */
  hostUrl: Type.String(),
  /** A host registers its boards this often; one silent for hostOfflineMs is offline and its jobs are failed. */
  heartbeatMs: Type.Integer({ minimum: 100 }),
  hostOfflineMs: Type.Integer({ minimum: 300 }),
  /** Remote requests this host runs at once for the others (its pg-boss worker). */
  remoteConcurrency: Type.Integer({ minimum: 1, maximum: 256 }),
  /** A request for a board of another host fails with TR_HOST_TIMEOUT after this long without an answer. */
  remoteTimeoutMs: Type.Integer({ minimum: 1000 }),
});
export type Config = Static<typeof Config>;

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

function envInt(v: string | undefined, d: number): number {
  if (v === undefined || v === '') return d;
  const n = Number(v);
  return Number.isFinite(n) ? n : Number.NaN;
}

function envBool(v: string | undefined, d: boolean): boolean {
  if (v === undefined || v === '') return d;
  return v === '1' || v.toLowerCase() === 'true' || v.toLowerCase() === 'yes';
}

/** "dataset/split/offset/count", e.g. fashion-mnist/test/0/500. */
function parseSlice(v: string | undefined): Config['goodSlice'] {
  if (!v) return undefined;
  const [dataset, split, offset, count] = v.split('/');
  return { dataset, split, offset: Number(offset), count: Number(count) } as Config['goodSlice'];
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** Loopback names, the listen address when it is a name or address of its own, and TINYRIG_ALLOWED_HOSTS. */
function allowedHosts(list: string | undefined, host: string): string[] {
  const given = (list ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  const listen = host === '0.0.0.0' || host === '::' ? [] : [host.toLowerCase()];
  return [...new Set([...LOOPBACK_NAMES, ...listen, ...given])];
}

/** Settings from the environment, overridden field by field by `overrides`; throws with every problem listed. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const varDir = path.resolve(overrides.varDir ?? env.TINYRIG_VAR ?? path.join(process.cwd(), 'var'));
  const tokens: TokenEntry[] = [];
  if (env.TINYRIG_TOKEN) tokens.push({ token: env.TINYRIG_TOKEN, role: 'admin', name: 'env' });
  const base: Config = {
    host: env.HOST ?? '127.0.0.1',
    port: envInt(env.PORT, 8080),
    logLevel: (env.LOG_LEVEL ?? 'info') as Config['logLevel'],
    varDir,
    devicesFile: path.resolve(env.TINYRIG_DEVICES ?? path.join(varDir, 'rig', 'devices.json')),
    discovery: envBool(env.TINYRIG_DISCOVERY, false),
    discoveryVendorIds: (env.TINYRIG_DISCOVERY_VIDS ?? '0483,1915,2e8a,1366,0d28').split(',').filter(Boolean),
    tokens,
    tokensFile: env.TINYRIG_TOKENS_FILE ? path.resolve(env.TINYRIG_TOKENS_FILE) : undefined,
    readsNeedToken: envBool(env.TINYRIG_READS_NEED_TOKEN, false),
    bodyLimitBytes: envInt(env.TINYRIG_BODY_LIMIT, 16 * 1024 * 1024),
    uploadLimitBytes: envInt(env.TINYRIG_UPLOAD_LIMIT, 1024 * 1024 * 1024),
    allowedHosts: allowedHosts(env.TINYRIG_ALLOWED_HOSTS, env.HOST ?? '127.0.0.1'),
    headersTimeoutMs: envInt(env.TINYRIG_HEADERS_TIMEOUT_MS, 10_000),
    bodyTimeoutMs: envInt(env.TINYRIG_BODY_TIMEOUT_MS, 60_000),
    maxSamplesPerRequest: envInt(env.TINYRIG_MAX_SAMPLES, 60000),
    maxGuardSamples: envInt(env.TINYRIG_MAX_GUARD_SAMPLES, 10000),
    rateLimitMax: envInt(env.TINYRIG_RATE_LIMIT, 600),
    rateLimitWindowMs: envInt(env.TINYRIG_RATE_WINDOW_MS, 60_000),
    goodAccuracy: Number(env.TINYRIG_GOOD_ACCURACY ?? '0.5'),
    goodSlice: parseSlice(env.TINYRIG_GOOD_SLICE),
    guard: {
      enabled: envBool(env.TINYRIG_GUARD, false),
      margin: Number(env.TINYRIG_GUARD_MARGIN ?? '0.05'),
      dataset: 'fashion-mnist',
      split: 'test',
      offset: 0,
      count: envInt(env.TINYRIG_GUARD_COUNT, 200),
    },
    fleetConcurrency: envInt(env.TINYRIG_FLEET_CONCURRENCY, 32),
    reconnectMinMs: envInt(env.TINYRIG_RECONNECT_MIN_MS, 200),
    reconnectMaxMs: envInt(env.TINYRIG_RECONNECT_MAX_MS, 5000),
    requestTimeoutMs: envInt(env.TINYRIG_REQUEST_TIMEOUT_MS, 2000),
    boardsFile: path.join(repoRoot, 'firmware', 'boards.json'),
    modelTool: env.TINYRIG_MODEL_TOOL ?? path.join(repoRoot, 'firmware', 'build', 'host', 'tinyrig-train'),
    twinTool: env.TINYRIG_TWIN_TOOL ?? path.join(repoRoot, 'firmware', 'build', 'host', 'tinyrig-twin'),
    suitesDir: path.resolve(env.TINYRIG_SUITES ?? path.join(repoRoot, 'suites')),
    schedule: (env.TINYRIG_SCHEDULE ?? '')
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => ({ suite: s.slice(0, s.indexOf('@')), cron: s.slice(s.indexOf('@') + 1) })),
    runLeaseMs: envInt(env.TINYRIG_RUN_LEASE_MS, 60_000),
    datasetDir: env.TINYRIG_DATASETS ?? '/usr/share/datasets',
    uploadsDir: path.resolve(env.TINYRIG_UPLOADS ?? path.join(varDir, 'datasets')),
    durable: envBool(env.TINYRIG_DURABLE, true),
    databaseUrl: env.TINYRIG_DATABASE_URL || undefined,
    hostId: env.TINYRIG_HOST_ID ?? os.hostname().split('.')[0],
    hostUrl: env.TINYRIG_HOST_URL ?? `http://${env.HOST ?? '127.0.0.1'}:${envInt(env.PORT, 8080)}`,
    heartbeatMs: envInt(env.TINYRIG_HEARTBEAT_MS, 2000),
    hostOfflineMs: envInt(env.TINYRIG_HOST_OFFLINE_MS, 10_000),
    remoteConcurrency: envInt(env.TINYRIG_REMOTE_CONCURRENCY, 16),
    remoteTimeoutMs: envInt(env.TINYRIG_REMOTE_TIMEOUT_MS, 10 * 60_000),
  };
  const merged = { ...base, ...overrides, varDir } as Config;
  if (overrides.guard) merged.guard = { ...base.guard, ...overrides.guard };
  const errors = [...Value.Errors(Config, merged)];
  if (errors.length > 0) {
    const lines = errors.slice(0, 10).map((e) => `  ${e.path || '/'}: ${e.message} (got ${JSON.stringify(e.value)})`);
    throw new Error(`invalid tinyrig settings:\n${lines.join('\n')}`);
  }
  return Object.freeze(merged);
}

export { repoRoot };
