// The emulated rig as the tests and bench:rig use it: scripts/rig as a child
// process in a directory of the caller's, exactly as ./scripts/start runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { collectOutput, pidAlive, stopChild, until } from './child.js';
import { executable, qemuElf, repoRoot } from './paths.js';

export interface RigDevice {
  id: string;
  path: string;
  board: string;
  class: string;
  emulated: boolean;
  tags: string[];
  powerBoard?: string;
}

export const QEMU_CLASSES = ['m0plus', 'm4', 'm7'] as const;

/** Fails with what to do when the QEMU firmware is not built. */
export function requireBoardFirmware(): void {
  const missing = QEMU_CLASSES.map(qemuElf).filter((f) => !fs.existsSync(f));
  if (missing.length) throw new Error(`QEMU board firmware not built (make -C firmware): ${missing.join(', ')}`);
}

/** Whether QEMU and the board images are here, so a test of the emulated rig can run. */
export function qemuRigReady(): boolean {
  if (!executable('/usr/bin/qemu-system-arm')) return false;
  try {
    requireBoardFirmware();
    return true;
  } catch {
    return false;
  }
}

export class RigProcess {
  child: ChildProcess | null = null;
  private output: () => string = () => '';

  constructor(
    readonly dir: string,
    readonly counts: Record<string, number>,
    /** More `scripts/rig start` flags, e.g. ['--hang-timeout-ms', '5000']. */
    readonly extraArgs: string[] = [],
    /** The rig's environment (default: this process's). */
    readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  get devicesFile(): string {
    return path.join(this.dir, 'devices.json');
  }

  async start(timeoutMs = 45_000): Promise<RigDevice[]> {
    const args = ['--import', 'tsx', path.join(repoRoot, 'scripts', 'rig.ts'), 'start', '--dir', this.dir];
    for (const [cls, n] of Object.entries(this.counts)) args.push(`--${cls}`, String(n));
    args.push(...this.extraArgs);
    const child = spawn(process.execPath, args, { cwd: repoRoot, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.output = collectOutput(child);
    await until(
      () => {
        if (child.exitCode !== null) throw new Error(`the rig exited (${child.exitCode}): ${this.log}`);
        return fs.existsSync(this.devicesFile);
      },
      timeoutMs,
      'rig devices file',
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${this.log}`);
    });
    return this.devices();
  }

  /** What the rig printed so far (its log is on stderr). */
  get log(): string {
    return this.output();
  }

  devices(): RigDevice[] {
    return (JSON.parse(fs.readFileSync(this.devicesFile, 'utf8')) as { devices: RigDevice[] }).devices;
  }

  /** Processes the rig supervises (its direct children), with their command lines. */
  boards(): { pid: number; cmd: string }[] {
    const out: { pid: number; cmd: string }[] = [];
    for (const p of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === this.child?.pid) out.push({ pid: Number(p), cmd: fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ') });
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }

  /** Whether a process is still there (and not a zombie). */
  static readonly alive = pidAlive;

  async stop(): Promise<void> {
    await stopChild(this.child, { killAfterMs: 15_000 });
  }
}
