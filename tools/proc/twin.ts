// The host twin (firmware/build/host/tinyrig-twin) as a child process serving
// a real PTY, optionally behind a stable symlink so it can be killed and
// started again at the same path (an unplug and a re-plug). Nothing is built
// here: a missing binary fails with the command that builds it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { collectOutput, isRunning, stopChild, waitForOutput } from './child.js';
import { TWIN_BIN, executable } from './paths.js';

export interface TwinOptions {
  /** Serve on a symlink at this path (made again at every start) as well as the PTY. */
  link?: string;
  board?: string;
  arena?: number;
  window?: number;
  maxFrame?: number;
  bootId?: number;
  /** No status lines on stderr. */
  quiet?: boolean;
}

export const twinBuilt = (): boolean => executable(TWIN_BIN);

export class TwinProcess {
  child: ChildProcess | null = null;
  /** The PTY the twin printed (a new one at every start). */
  ptyPath = '';
  private out: () => string = () => '';

  constructor(readonly opts: TwinOptions = {}) {}

  /** A twin started and serving. */
  static async start(opts: TwinOptions = {}, timeoutMs?: number): Promise<TwinProcess> {
    const twin = new TwinProcess(opts);
    await twin.start(timeoutMs);
    return twin;
  }

  /** What a host opens: the stable link when there is one, else the PTY. */
  get path(): string {
    return this.opts.link ?? this.ptyPath;
  }

  /** stdout and stderr of the current process so far. */
  get output(): string {
    return this.out();
  }

  get running(): boolean {
    return isRunning(this.child);
  }

  private args(): string[] {
    const { opts } = this;
    const args: string[] = [];
    if (opts.quiet) args.push('--quiet');
    if (opts.link) args.push('--link', opts.link);
    if (opts.board) args.push('--board', opts.board);
    if (opts.arena !== undefined) args.push('--arena', String(opts.arena));
    if (opts.window !== undefined) args.push('--window', String(opts.window));
    if (opts.maxFrame !== undefined) args.push('--max-frame', String(opts.maxFrame));
    if (opts.bootId !== undefined) args.push('--boot-id', String(opts.bootId));
    return args;
  }

  /** Starts the twin (again, after a kill: a fresh boot on the same link) and
   * resolves once it serves; the twin makes its link before it prints `PTY <path>`. */
  async start(timeoutMs = 10_000): Promise<void> {
    if (!twinBuilt()) throw new Error(`${TWIN_BIN} is missing: run \`make -C firmware\` first`);
    if (this.opts.link) fs.rmSync(this.opts.link, { force: true });
    const child = spawn(TWIN_BIN, this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.out = collectOutput(child);
    try {
      this.ptyPath = (await waitForOutput(child, this.out, /^PTY (\S+)$/m, { timeoutMs }))[1]!;
    } catch (e) {
      await this.kill();
      throw new Error(`tinyrig-twin did not serve: ${(e as Error).message}`);
    }
  }

  /** SIGTERM: the twin closes its PTY and exits. */
  async stop(): Promise<void> {
    await stopChild(this.child);
  }

  /** SIGKILL: the PTY closes under whoever has it open, as when a USB cable is pulled. */
  async kill(): Promise<void> {
    await stopChild(this.child, { signal: 'SIGKILL' });
  }
}

/** Starts n twins with links under dir, named `${prefix}${i}.pty`. */
export async function startTwins(dir: string, n: number, prefix = 'twin-'): Promise<TwinProcess[]> {
  const twins = Array.from({ length: n }, (_, i) => new TwinProcess({ link: path.join(dir, `${prefix}${i}.pty`) }));
  await Promise.all(twins.map((t) => t.start()));
  return twins;
}

/** Pulls every twin's cable (SIGKILL). */
export async function stopTwins(twins: TwinProcess[]): Promise<void> {
  await Promise.all(twins.map((t) => t.kill()));
}
