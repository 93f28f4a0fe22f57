// One Zephyr image (firmware/ports/zephyr built for mps2/an386 or mps2/an500)
// under qemu-system-arm, held from its first instruction: the serial port on a
// PTY, QEMU's gdbstub and QMP on Unix sockets in a directory of the caller's.
// The tests drive it from outside, as a debugger and a power switch would:
// the simulated flash seeded before the first instruction and saved at the
// end (so it persists across QEMU processes), breakpoints, system resets.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { collectOutput, isRunning, stopChild, waitForOutput } from './child.js';
import { GdbRemote, connectRetrying } from './gdb-remote.js';

/** The A/B slots' simulated flash on mps2 (boards/mps2_an*.overlay: simflash_ram). */
export const SIMFLASH_ADDR = 0x20200000;
export const SIMFLASH_BYTES = 512 * 1024;
/** A word the Zephyr app reads at boot on mps2 for its watchdog period in ms
 * (CONFIG_TINYRIG_WATCHDOG_MS_ADDR), the same as the bare-metal images'. */
export const WATCHDOG_MS_ADDR = 0x003fff04;

/** QEMU machine and CPU of the two Zephyr targets, by class. */
export const ZEPHYR_MACHINES: Record<string, { machine: string; cpu: string }> = {
  m4: { machine: 'mps2-an386', cpu: 'cortex-m4' },
  m7: { machine: 'mps2-an500', cpu: 'cortex-m7' },
};

export interface ZephyrQemuOptions {
  elf: string;
  /** 'm4' (mps2/an386, the default) or 'm7' (mps2/an500). */
  cls?: string;
  /** Directory for the sockets (short: a Unix socket path has at most 107 bytes). */
  dir: string;
  /** The simulated flash's bytes at power-on (a file saved by saveFlash); absent: erased. */
  flash?: string;
  /** Words written at boot by QEMU (-device loader, again at every system reset). */
  words?: { addr: number; value: number }[];
}

export class ZephyrQemu {
  child: ChildProcess | null = null;
  gdb!: GdbRemote;
  pty = '';
  private output: () => string = () => '';
  private qmpSock: net.Socket | null = null;
  private qmpBuf = '';
  private qmpWaiters: ((m: Record<string, unknown>) => void)[] = [];
  private readonly gdbPath: string;
  private readonly qmpPath: string;

  constructor(readonly opts: ZephyrQemuOptions) {
    const tag = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.gdbPath = path.join(opts.dir, `.gdb-${tag}`);
    this.qmpPath = path.join(opts.dir, `.qmp-${tag}`);
    if (this.gdbPath.length > 100) throw new Error(`socket directory too deep for a Unix socket: ${opts.dir}`);
  }

  /** Starts QEMU stopped before the first instruction, with the gdbstub connected
   * and the flash seeded; the caller sets breakpoints, opens the PTY, then resume()s. */
  async start(): Promise<void> {
    const m = ZEPHYR_MACHINES[this.opts.cls ?? 'm4'];
    if (!m) throw new Error(`no Zephyr QEMU target for class ${this.opts.cls}`);
    const args = ['-M', m.machine, '-cpu', m.cpu, '-display', 'none', '-monitor', 'none', '-serial', 'pty', '-icount', 'shift=0'];
    args.push('-S', '-gdb', `unix:${this.gdbPath},server=on,wait=off`, '-qmp', `unix:${this.qmpPath},server=on,wait=off`);
    for (const w of this.opts.words ?? []) args.push('-device', `loader,addr=0x${w.addr.toString(16)},data=${w.value >>> 0},data-len=4`);
    args.push('-kernel', this.opts.elf);
    const child = spawn('qemu-system-arm', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.output = collectOutput(child);
    const [, pty] = await waitForOutput(child, this.output, /char device redirected to (\/dev\/pts\/\d+)/, { timeoutMs: 20_000 });
    this.pty = pty;
    this.gdb = await GdbRemote.connect(this.gdbPath);
    await this.connectQmp();
    // The flash's bytes go in through the debugger, not -device loader: a
    // loader's blob is a ROM that QEMU writes again at every system reset,
    // which would undo what the firmware stored before the reset.
    if (this.opts.flash) await this.gdb.writeMemory(SIMFLASH_ADDR, fs.readFileSync(this.opts.flash));
  }

  /** What QEMU printed. */
  get log(): string {
    return this.output();
  }

  private async connectQmp(): Promise<void> {
    const sock = await connectRetrying(this.qmpPath);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.qmpBuf += d;
      for (let i = this.qmpBuf.indexOf('\n'); i >= 0; i = this.qmpBuf.indexOf('\n')) {
        const line = this.qmpBuf.slice(0, i);
        this.qmpBuf = this.qmpBuf.slice(i + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if ('return' in msg || 'error' in msg || 'QMP' in msg) this.qmpWaiters.shift()?.(msg);
      }
    });
    sock.on('error', () => undefined);
    this.qmpSock = sock;
    await new Promise<Record<string, unknown>>((r) => this.qmpWaiters.push(r)); // the greeting
    await this.qmp('qmp_capabilities');
  }

  /** A QMP command; resolves with its return, rejects with its error. */
  async qmp(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    if (!this.qmpSock) throw new Error('QMP not connected');
    const reply = new Promise<Record<string, unknown>>((r) => this.qmpWaiters.push(r));
    this.qmpSock.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    const m = await reply;
    if ('error' in m) throw new Error(`QMP ${execute}: ${JSON.stringify(m.error)}`);
    return m.return;
  }

  /** Saves the simulated flash to a file (the board may be running). */
  async saveFlash(file: string): Promise<void> {
    await this.qmp('pmemsave', { val: SIMFLASH_ADDR, size: SIMFLASH_BYTES, filename: path.resolve(file) });
  }

  /** Guest memory through QMP (pmemsave to a file), readable with the debugger detached. */
  async readMemory(addr: number, len: number): Promise<Buffer> {
    const file = path.join(this.opts.dir, `.mem-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    try {
      await this.qmp('pmemsave', { val: addr, size: len, filename: file });
      return fs.readFileSync(file);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  /** Lets the stopped CPU run, the debugger detached (breakpoints gone). */
  async resume(): Promise<void> {
    await this.gdb.detach();
  }

  /** A reset of the whole machine, as the reset button does (the VM keeps its run state). */
  async systemReset(): Promise<void> {
    await this.qmp('system_reset');
  }

  async stop(): Promise<void> {
    this.qmpSock?.destroy();
    this.qmpSock = null;
    try {
      await this.gdb?.detach();
    } catch {
      // gone already
    }
    if (isRunning(this.child)) await stopChild(this.child, { killAfterMs: 5_000 });
    for (const p of [this.gdbPath, this.qmpPath]) fs.rmSync(p, { force: true });
  }
}
