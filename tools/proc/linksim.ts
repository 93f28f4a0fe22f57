// Drives tools/linksim (firmware/build/host/tinyrig-linksim): a serial line
// with a real line rate, latency, corruption, drops and unplugs between a
// board's tty and a host PTY. Used by the link tests, bench:wire and bench:daemon.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { collectOutput, stopChild, waitForOutput } from './child.js';
import { LINKSIM_BIN, executable } from './paths.js';

export interface LinkSimOptions {
  device: string;
  /** Stable symlink to the host PTY, recreated on every replug. */
  link?: string;
  baud?: number;
  latencyUs?: number;
  corrupt?: number;
  drop?: number;
  seed?: number;
  disconnectEveryMs?: number;
  disconnectForMs?: number;
}

export interface LinkSimStats {
  h2d_in: number;
  h2d_out: number;
  d2h_in: number;
  d2h_out: number;
  corrupted: number;
  dropped: number;
  lost: number;
  disconnects: number;
}

export const linksimBuilt = (): boolean => executable(LINKSIM_BIN);

export class LinkSim {
  /** Current host-side PTY path (changes on every replug). */
  ptyPath = '';
  private readonly out: () => string;

  private constructor(
    readonly child: ChildProcess,
    readonly opts: LinkSimOptions,
  ) {
    this.out = collectOutput(child);
  }

  /** The path the host should open: the stable link when given, else the PTY. */
  get path(): string {
    return this.opts.link ?? this.ptyPath;
  }

  get output(): string {
    return this.out();
  }

  static async start(opts: LinkSimOptions, timeoutMs = 5000): Promise<LinkSim> {
    const args = ['--device', opts.device];
    if (opts.link) args.push('--link', opts.link);
    if (opts.baud) args.push('--baud', String(opts.baud));
    if (opts.latencyUs) args.push('--latency-us', String(opts.latencyUs));
    if (opts.corrupt) args.push('--corrupt', String(opts.corrupt));
    if (opts.drop) args.push('--drop', String(opts.drop));
    if (opts.seed !== undefined) args.push('--seed', String(opts.seed));
    if (opts.disconnectEveryMs) args.push('--disconnect-every', String(opts.disconnectEveryMs));
    if (opts.disconnectForMs) args.push('--disconnect-for', String(opts.disconnectForMs));
    const child = spawn(LINKSIM_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const sim = new LinkSim(child, opts);
    const m = await waitForOutput(child, sim.out, /^PTY (\S+)$/m, { timeoutMs });
    sim.ptyPath = m[1]!;
    return sim;
  }

  private command(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Byte counters so far (bytes each way, corrupted, dropped, lost on unplugs). */
  async stats(timeoutMs = 2000): Promise<LinkSimStats> {
    const from = this.out().length;
    this.command('stats');
    const m = await waitForOutput(this.child, this.out, /^STATS (\{.*\})$/m, { from, timeoutMs });
    return JSON.parse(m[1]!) as LinkSimStats;
  }

  /** Pulls the cable: the host PTY closes (reads end, writes fail) and the link disappears. */
  async disconnect(timeoutMs = 2000): Promise<void> {
    const from = this.out().length;
    this.command('disconnect');
    await waitForOutput(this.child, this.out, /^DISCONNECTED$/m, { from, timeoutMs });
  }

  /** Plugs the cable back in: a fresh PTY at the same link path. */
  async reconnect(timeoutMs = 2000): Promise<string> {
    const from = this.out().length;
    this.command('reconnect');
    const m = await waitForOutput(this.child, this.out, /^PTY (\S+)$/m, { from, timeoutMs });
    this.ptyPath = m[1]!;
    return this.ptyPath;
  }

  /** Changes fault rates on the running line. */
  set(name: 'corrupt' | 'drop' | 'latency-us' | 'baud', value: number): void {
    this.command(`${name} ${value}`);
  }

  /** Stops the simulator; resolves with its final counters. */
  async stop(): Promise<LinkSimStats | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return null;
    const from = this.out().length;
    await stopChild(this.child);
    const m = this.out().slice(from).match(/^STATS (\{.*\})$/m);
    return m ? (JSON.parse(m[1]!) as LinkSimStats) : null;
  }
}

/** A PTY pair made by socat: whatever opens `a` talks to whatever opens `b`. */
export class PtyPair {
  private constructor(
    readonly child: ChildProcess,
    readonly a: string,
    readonly b: string,
  ) {}

  static async start(dir: string, name = 'pair', timeoutMs = 5000): Promise<PtyPair> {
    const a = path.join(dir, `${name}-a`);
    const b = path.join(dir, `${name}-b`);
    fs.rmSync(a, { force: true });
    fs.rmSync(b, { force: true });
    const child = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
    const end = Date.now() + timeoutMs;
    while (!fs.existsSync(a) || !fs.existsSync(b)) {
      if (child.exitCode !== null) throw new Error(`socat exited (${child.exitCode})`);
      if (Date.now() > end) throw new Error('socat did not create its PTY pair');
      await new Promise((r) => setTimeout(r, 20));
    }
    return new PtyPair(child, a, b);
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
  }
}
