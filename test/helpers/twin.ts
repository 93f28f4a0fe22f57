// The host twin (firmware/build/host/tinyrig-twin) as a child process serving
// a real PTY. Nothing is built here: a missing binary fails with the command
// that builds it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TWIN_BIN = path.join(repoRoot, 'firmware', 'build', 'host', 'tinyrig-twin');

export interface TwinOptions {
  /** Serve on a symlink at this path instead of printing a fresh PTY. */
  link?: string;
  board?: string;
  arena?: number;
  window?: number;
  maxFrame?: number;
  bootId?: number;
  /** Wait this long for the PTY line (default 10 s). */
  startTimeoutMs?: number;
}

export interface Twin {
  /** PTY path (or the --link symlink) a host opens. */
  path: string;
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

export async function startTwin(opts: TwinOptions = {}): Promise<Twin> {
  if (!fs.existsSync(TWIN_BIN)) throw new Error(`${TWIN_BIN} is missing: run \`make -C firmware\` first`);
  const args: string[] = ['--quiet'];
  if (opts.link) args.push('--link', opts.link);
  if (opts.board) args.push('--board', opts.board);
  if (opts.arena !== undefined) args.push('--arena', String(opts.arena));
  if (opts.window !== undefined) args.push('--window', String(opts.window));
  if (opts.maxFrame !== undefined) args.push('--max-frame', String(opts.maxFrame));
  if (opts.bootId !== undefined) args.push('--boot-id', String(opts.bootId));
  const child = spawn(TWIN_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  for (;;) {
    const m = /^PTY (\S+)$/m.exec(out);
    if (m && (!opts.link || fs.existsSync(opts.link))) return { path: opts.link ?? m[1]!, child, output: () => out, stop };
    if (opts.link && !m && fs.existsSync(opts.link) && out.length === 0 && Date.now() > deadline - 9_000) {
      // a twin serving --link may stay quiet: the symlink is the sign it is up
      return { path: opts.link, child, output: () => out, stop };
    }
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`tinyrig-twin exited before serving: ${out}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`tinyrig-twin printed no PTY line within ${opts.startTimeoutMs ?? 10_000} ms: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
