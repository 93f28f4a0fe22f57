// Host twin boards for the daemon tests: each one a real tinyrig-twin process
// serving a PTY, reachable through a stable symlink so it can be killed and
// started again at the same path (an unplug and a re-plug).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../server/src/config.js';

export const TWIN_BIN = path.join(repoRoot, 'firmware', 'build', 'host', 'tinyrig-twin');

export function twinBuilt(): boolean {
  try {
    fs.accessSync(TWIN_BIN, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export class Twin {
  child: ChildProcess | null = null;
  output = '';

  constructor(
    readonly link: string,
    readonly args: string[] = [],
  ) {}

  /** Starts the twin and resolves once its PTY link exists. */
  async start(timeoutMs = 10_000): Promise<void> {
    fs.rmSync(this.link, { force: true });
    const child = spawn(TWIN_BIN, ['--link', this.link, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.output = '';
    child.stdout!.on('data', (d) => (this.output += d.toString()));
    child.stderr!.on('data', (d) => (this.output += d.toString()));
    const end = Date.now() + timeoutMs;
    while (!fs.existsSync(this.link) || !/PTY /.test(this.output)) {
      if (child.exitCode !== null) throw new Error(`twin exited (${child.exitCode}): ${this.output}`);
      if (Date.now() > end) throw new Error(`twin did not open its PTY within ${timeoutMs} ms: ${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL: the PTY closes under the daemon, as when a USB cable is pulled. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
}

/** Starts n twins with links under dir; named `${prefix}${i}`. */
export async function startTwins(dir: string, n: number, prefix = 'twin-'): Promise<Twin[]> {
  const twins = Array.from({ length: n }, (_, i) => new Twin(path.join(dir, `${prefix}${i}.pty`)));
  await Promise.all(twins.map((t) => t.start()));
  return twins;
}

export async function stopTwins(twins: Twin[]): Promise<void> {
  await Promise.all(twins.map((t) => t.kill()));
}
