// One pool to the shared PostgreSQL and the one way every query reaches it.
// A connection-level failure (the server restarting, a dropped link) is
// retried with backoff for up to retryMs, so a restart of the database costs
// the daemon a pause instead of failed jobs. A retried statement may already
// have committed before its answer was lost: every write sent through here
// must be idempotent (keyed ON CONFLICT, updates to fixed values).
import pg from 'pg';
import type { Logger } from 'pino';

/** Errors that say the link to the server failed, not the statement. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'ENOENT', // the unix socket is gone while the server is down
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or shutting down
]);
// what pg throws without a code when the socket closes under a query or a connect times out
// (and a query with no answer in queryTimeoutMs: packets dropped on a cut network never fail by themselves)
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Query read timeout/i;

export function isConnectionError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (CONNECTION_CODES.has(code) || code.startsWith('08')) return true;
  if (typeof e.message === 'string' && CONNECTION_MESSAGES.test(e.message)) return true;
  // a host name with several addresses fails with one error per address
  return Array.isArray(e.errors) && e.errors.some(isConnectionError);
}

/** The database stayed unreachable for the whole retry window. */
export class StoreUnreachableError extends Error {
  readonly code = 'TR_STORE_UNREACHABLE';
  constructor(readonly waitedMs: number, readonly cause: unknown) {
    super(`PostgreSQL unreachable for ${waitedMs} ms: ${describe(cause)}`);
  }
}

const describe = (err: unknown): string => {
  const e = err as { code?: string; message?: string; errors?: { message?: string }[] };
  const message = e?.message || e?.errors?.map((x) => x.message).join('; ') || String(err);
  return e?.code ? `${e.code} ${message}` : message;
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// bigint (counts, 64-bit columns, bigserial) as JS numbers: every value the
// store keeps is far below 2^53; timestamptz as the ISO-8601 strings the rows carry
const INT8 = 20;
const TIMESTAMPTZ = 1184;
const parseDate = pg.types.getTypeParser(TIMESTAMPTZ) as (s: string) => Date;
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8) return (s: string) => Number(s);
    if (oid === TIMESTAMPTZ) return (s: string) => parseDate(s).toISOString();
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

export interface PgDbOptions {
  log?: Logger;
  /** How long a query keeps retrying a lost connection before it fails (ms). */
  retryMs?: number;
  /** Connections the pool may open. */
  max?: number;
  /** A statement without an answer this long counts as a lost connection (a cut network drops packets silently). */
  queryTimeoutMs?: number;
}

/** A pool, a client inside a transaction, or the retrying PgDb: what a statement is sent through. */
export interface Queryable {
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export class PgDb implements Queryable {
  readonly pool: pg.Pool;
  readonly retryMs: number;
  private readonly max: number;
  /** False from the first failed attempt to reach the server until a query succeeds again. */
  reachable = true;
  /** The last connection-level failure seen, for /v1/health. */
  lastError: { message: string; at: string } | null = null;
  private readonly log?: Logger;
  private downSince: number | null = null;

  constructor(url: string, opts: PgDbOptions = {}) {
    this.log = opts.log;
    this.retryMs = opts.retryMs ?? 15_000;
    this.max = opts.max ?? 20;
    this.pool = new pg.Pool({
      connectionString: url,
      types,
      max: this.max,
      connectionTimeoutMillis: 5_000,
      query_timeout: opts.queryTimeoutMs ?? 10_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    });
    // an idle client whose server went away emits 'error': seen, never thrown
    this.pool.on('error', (err) => this.lost(err));
    // a checked-out client between two queries of a transaction does the same
    this.pool.on('connect', (client) => client.on('error', (err) => this.lost(err)));
  }

  /** One statement, retried while the connection is what fails. */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.retrying(() => this.pool.query<R>(text, values));
  }

  /**
   * `fn` inside BEGIN … COMMIT on one connection; on a connection failure the
   * whole transaction runs again on a new one, so `fn` must be idempotent.
   */
  tx<T>(fn: (c: Queryable) => Promise<T>): Promise<T> {
    return this.retrying(async () => {
      const client = await this.pool.connect();
      let broken: unknown;
      try {
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        if (isConnectionError(err)) broken = err;
        else await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
        throw err;
      } finally {
        // a broken connection is dropped, not handed to the next query
        client.release(broken instanceof Error ? broken : broken ? new Error(String(broken)) : undefined);
      }
    });
  }

  private async retrying<T>(attempt: () => Promise<T>): Promise<T> {
    const start = Date.now();
    let delay = 50;
    for (;;) {
      try {
        const out = await attempt();
        this.back();
        return out;
      } catch (err) {
        if (!isConnectionError(err)) throw err;
        // every connection busy and none freed in time is a loaded daemon, not a lost server: wait, but stay reachable
        if (!this.poolExhausted(err)) this.lost(err);
        const waited = Date.now() - start;
        if (waited + delay > this.retryMs) throw new StoreUnreachableError(waited, err);
        await sleep(delay);
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  private poolExhausted(err: unknown): boolean {
    return /timeout exceeded when trying to connect/i.test((err as Error)?.message ?? '') && this.pool.totalCount >= this.max;
  }

  /** Marks the server unreachable; warns once per outage. */
  private lost(err: unknown): void {
    this.lastError = { message: describe(err), at: new Date().toISOString() };
    if (this.downSince !== null) return;
    this.downSince = Date.now();
    this.reachable = false;
    this.log?.warn({ err: this.lastError.message, retryMs: this.retryMs }, 'PostgreSQL unreachable: retrying');
  }

  private back(): void {
    if (this.downSince === null) return;
    this.log?.info({ downMs: Date.now() - this.downSince }, 'PostgreSQL reachable again');
    this.downSince = null;
    this.reachable = true;
  }

  async end(): Promise<void> {
    await this.pool.end();
  }
}
