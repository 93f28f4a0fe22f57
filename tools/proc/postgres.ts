// A throwaway PostgreSQL cluster for tests and benchmarks: initdb in a temp
// directory, the server as a child process on a free port of 127.0.0.1 (and
// of extra addresses, for hosts in network namespaces), trust auth, a unix
// socket in the same directory. It can be stopped, restarted and killed under
// the daemons that use it. PostgreSQL refuses to run as root, so as root the
// cluster belongs to the `postgres` OS user (else `nobody`) and every command
// runs under that uid. Nothing is installed here: pgAvailable() says what is missing.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { collectOutput, isRunning, waitForOutput } from './child.js';
import { freePort } from './daemon.js';
import { executable } from './paths.js';

const run = promisify(execFile);

const TOOLS = ['initdb', 'postgres'] as const;

/** Where the server binaries are: TINYRIG_PG_BINDIR, then PATH, then Debian's /usr/lib/postgresql/<newest>/bin. */
function findBinDir(): string | null {
  const debian = (() => {
    try {
      return fs
        .readdirSync('/usr/lib/postgresql')
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => path.join('/usr/lib/postgresql', v, 'bin'));
    } catch {
      return [];
    }
  })();
  const candidates = [process.env.TINYRIG_PG_BINDIR, ...(process.env.PATH ?? '').split(':'), ...debian].filter((d): d is string => !!d);
  for (const dir of candidates) {
    if (!TOOLS.every((t) => executable(path.join(dir, t)))) continue;
    // /usr/local/bin may hold links: the server's own directory holds its share/ and lib/ next to it
    return path.dirname(fs.realpathSync(path.join(dir, 'initdb')));
  }
  return null;
}

export type PgAvailability = { ok: true; binDir: string } | { ok: false; reason: string };

/** Whether a cluster can be made here, and if not, why. */
export function pgAvailable(): PgAvailability {
  const binDir = findBinDir();
  if (!binDir) {
    return {
      ok: false,
      reason: 'PostgreSQL server binaries (initdb, postgres) not found on PATH, in TINYRIG_PG_BINDIR or /usr/lib/postgresql/*/bin: install the Debian package postgresql (scripts/test does)',
    };
  }
  return { ok: true, binDir };
}

/** The uid/gid the server runs as: ours, unless we are root. */
function serverUser(): { uid: number; gid: number; name: string } | null {
  if (process.getuid?.() !== 0) return null;
  const passwd = fs.readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  for (const name of ['postgres', 'nobody']) {
    const e = passwd.find((f) => f[0] === name);
    if (e) return { name, uid: Number(e[2]), gid: Number(e[3]) };
  }
  throw new Error('running as root and there is neither a postgres nor a nobody user to run PostgreSQL as');
}

export interface PgClusterOptions {
  /** Addresses to listen on besides 127.0.0.1 (a HostNetwork's gateway, say). */
  listen?: string[];
  /** Networks (CIDR) let in with trust auth besides loopback; default: the /24 of each extra address. */
  trust?: string[];
  /** fsync and synchronous commit on; off by default, for speed (a kill then loses recent commits, as it may on any crash). */
  fsync?: boolean;
  /** The database made at start, named in `url`. */
  database?: string;
}

// clusters not destroyed when the test process exits (a failed hook, a crash) go with it
const undestroyed = new Set<PgCluster>();
process.once('exit', () => {
  for (const c of undestroyed) c.destroySync();
});

export class PgCluster {
  readonly dir: string;
  readonly dataDir: string;
  readonly port: number;
  readonly database: string;
  private child: ChildProcess | null = null;
  private out: () => string = () => '';
  private user: { uid: number; gid: number; name: string } | null;

  private constructor(readonly binDir: string, dir: string, port: number, readonly opts: PgClusterOptions) {
    this.dir = dir;
    this.dataDir = path.join(dir, 'data');
    this.port = port;
    this.database = opts.database ?? 'tinyrig';
    this.user = serverUser();
  }

  /** A new cluster, started, with its database made. */
  static async create(opts: PgClusterOptions = {}): Promise<PgCluster> {
    const avail = pgAvailable();
    if (!avail.ok) throw new Error(avail.reason);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-pg-'));
    const cluster = new PgCluster(avail.binDir, dir, await freePort(), opts);
    undestroyed.add(cluster);
    try {
      await cluster.init();
      await cluster.start();
      await cluster.createDatabase(cluster.database);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  /** postgres://… of the cluster's database (or of `database`), over TCP on 127.0.0.1. */
  get url(): string {
    return this.urlOf(this.database);
  }

  urlOf(database: string, host = '127.0.0.1'): string {
    return `postgres://postgres@${host}:${this.port}/${database}`;
  }

  get running(): boolean {
    return isRunning(this.child);
  }

  /** The server's log so far (its stderr). */
  get output(): string {
    return this.out();
  }

  private spawnOpts(): { uid?: number; gid?: number; env: NodeJS.ProcessEnv } {
    // LC_ALL=C: initdb and the server need a locale that exists on every machine
    const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
    return this.user ? { uid: this.user.uid, gid: this.user.gid, env: { ...env, HOME: this.dir, USER: this.user.name } } : { env };
  }

  private async init(): Promise<void> {
    if (this.user) fs.chownSync(this.dir, this.user.uid, this.user.gid);
    fs.chmodSync(this.dir, 0o700);
    try {
      await run(path.join(this.binDir, 'initdb'), ['-D', this.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'], {
        ...this.spawnOpts(),
        cwd: this.dir,
      });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`initdb failed: ${e.stderr || e.message}`);
    }
    const extra = this.opts.listen ?? [];
    const nets = this.opts.trust ?? extra.map((a) => (a.includes(':') ? `${a}/128` : `${a.split('.').slice(0, 3).join('.')}.0/24`));
    if (nets.length) fs.appendFileSync(path.join(this.dataDir, 'pg_hba.conf'), nets.map((n) => `host all all ${n} trust\n`).join(''));
  }

  private serverArgs(): string[] {
    const fsync = this.opts.fsync ? 'on' : 'off';
    return [
      '-D', this.dataDir,
      '-p', String(this.port),
      '-k', this.dir,
      '-c', `listen_addresses=${['127.0.0.1', ...(this.opts.listen ?? [])].join(',')}`,
      '-c', `fsync=${fsync}`,
      '-c', `synchronous_commit=${fsync}`,
      '-c', `full_page_writes=${fsync}`,
      '-c', 'max_connections=200',
    ];
  }

  /** Starts the server (again, after a stop or a kill) and resolves once it accepts connections. */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.running) return;
    // its own process group, so kill() takes the backends down with the postmaster, as a crash would
    const child = spawn(path.join(this.binDir, 'postgres'), this.serverArgs(), { ...this.spawnOpts(), cwd: this.dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.out = collectOutput(child);
    try {
      await waitForOutput(child, this.out, /database system is ready to accept connections/, { timeoutMs });
    } catch (err) {
      await this.kill();
      throw new Error(`PostgreSQL did not start: ${(err as Error).message}`);
    }
  }

  /** A fast shutdown (SIGINT): open sessions are ended, what committed is kept. */
  async stop(): Promise<void> {
    await this.signal('SIGINT');
  }

  /** The server stops and starts again on the same port and data, as an operator's restart does. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** SIGKILL to the server and every backend: a crash; the next start recovers from the WAL. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL', true);
  }

  /** For the exit hook, where nothing can be awaited: SIGKILL and remove. */
  destroySync(): void {
    if (this.child?.pid && this.running) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
    undestroyed.delete(this);
  }

  private async signal(sig: NodeJS.Signals, group = false): Promise<void> {
    const child = this.child;
    if (!isRunning(child)) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    if (group) process.kill(-child.pid!, sig);
    else child.kill(sig);
    await gone;
  }

  /** Makes a database in the cluster; returns its URL. */
  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${JSON.stringify(name)}: lower-case letters, digits and _`);
    await this.sql('postgres', `CREATE DATABASE ${name}`);
    return this.urlOf(name);
  }

  /** Runs one statement as the superuser on `database`; returns the rows. */
  async sql<R extends pg.QueryResultRow = Record<string, unknown>>(database: string, text: string, values?: unknown[]): Promise<R[]> {
    const client = new pg.Client({ host: this.dir, port: this.port, user: 'postgres', database });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  /** Stops the server and removes its directory. */
  async destroy(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
    undestroyed.delete(this);
  }
}
