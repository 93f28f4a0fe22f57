// A small client of the GDB remote serial protocol, enough to drive QEMU's
// gdbstub from a test: breakpoints, continue and the stop that ends it,
// registers, memory, and monitor commands (`system_reset`). No gdb binary.
// Packets are `$data#checksum`; after QStartNoAckMode no `+`/`-` acks.
import net from 'node:net';

/** Where the CPU stopped: the signal of a T/S stop reply, or the exit of W/X. */
export interface StopReply {
  signal: number;
  raw: string;
}

/** ARM register numbers of QEMU's gdbstub (r0..r12, sp, lr, pc). */
export const REG = { sp: 13, lr: 14, pc: 15 } as const;

const hex32le = (v: number): string => Buffer.from(Uint32Array.of(v >>> 0).buffer).toString('hex');

function checksum(data: string): string {
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum = (sum + data.charCodeAt(i)) & 0xff;
  return sum.toString(16).padStart(2, '0');
}

export class GdbRemote {
  private buf = '';
  private acks = true;
  private readonly packets: string[] = [];
  private waiter: ((p: string) => void) | null = null;
  private closed: Error | null = null;
  private packetSize = 4096;
  private running: Promise<StopReply> | null = null;
  private detached = false;
  private readonly breakpoints = new Set<number>();

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => this.onData(d));
    const gone = (why: string) => () => {
      this.closed ??= new Error(`gdbstub connection ${why}`);
      const w = this.waiter;
      this.waiter = null;
      w?.('');
    };
    sock.on('close', gone('closed'));
    sock.on('error', (e) => gone(`failed: ${e.message}`)());
  }

  /** Connects to a gdbstub at a Unix socket path or `host:port` (retrying while
   * the stub is not listening yet), and turns acks off. */
  static async connect(target: string, timeoutMs = 10_000): Promise<GdbRemote> {
    const sock = await connectRetrying(target, timeoutMs);
    const g = new GdbRemote(sock);
    const features = await g.request('qSupported:swbreak+;hwbreak+');
    const size = /PacketSize=([0-9a-fA-F]+)/.exec(features);
    if (size) g.packetSize = parseInt(size[1], 16);
    if (/QStartNoAckMode\+/.test(features) && (await g.request('QStartNoAckMode')) === 'OK') g.acks = false;
    // QEMU answers p/P (one register) only to a client that has read the target description
    if (/qXfer:features:read\+/.test(features)) await g.request('qXfer:features:read:target.xml:0,ffb');
    return g;
  }

  private onData(d: string): void {
    this.buf += d;
    for (;;) {
      // acks and stray bytes before a packet
      const start = this.buf.indexOf('$');
      if (start < 0) {
        this.buf = '';
        return;
      }
      const end = this.buf.indexOf('#', start);
      if (end < 0 || this.buf.length < end + 3) {
        this.buf = this.buf.slice(start);
        return;
      }
      const data = this.buf.slice(start + 1, end);
      this.buf = this.buf.slice(end + 3);
      if (this.acks) this.sock.write('+');
      // run-length encoding: `X*n` repeats X (n - 29) more times
      const plain = data.replace(/(.)\*(.)/g, (_, c: string, n: string) => c.repeat(n.charCodeAt(0) - 29 + 1));
      this.packets.push(plain);
      const w = this.waiter;
      if (w) {
        this.waiter = null;
        w(this.packets.shift()!);
      }
    }
  }

  /** The next packet from the stub, waiting up to timeoutMs (null: none came). */
  private next(timeoutMs: number): Promise<string | null> {
    if (this.packets.length) return Promise.resolve(this.packets.shift()!);
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            this.waiter = null;
            resolve(null);
          }, timeoutMs)
        : undefined;
      this.waiter = (p) => {
        clearTimeout(timer);
        if (this.closed && p === '') reject(this.closed);
        else resolve(p);
      };
    });
  }

  private sendPacket(data: string): void {
    if (this.closed) throw this.closed;
    this.sock.write(`$${data}#${checksum(data)}`, 'latin1');
  }

  /** Sends a packet and returns the stub's answer ('' for an empty, unsupported one). */
  async request(data: string, timeoutMs = 10_000): Promise<string> {
    if (this.running) throw new Error(`gdbstub: ${data.slice(0, 40)} while the target runs (interrupt it first)`);
    this.sendPacket(data);
    const p = await this.next(timeoutMs);
    if (p === null) throw new Error(`gdbstub: no answer to ${data.slice(0, 40)} within ${timeoutMs} ms`);
    return p;
  }

  private async ok(data: string): Promise<void> {
    const r = await this.request(data);
    if (r !== 'OK') throw new Error(`gdbstub: ${data.slice(0, 40)} answered '${r}'`);
  }

  /** Why the target is stopped now (`?`). */
  async status(): Promise<StopReply> {
    return parseStop(await this.request('?'));
  }

  async setBreakpoint(addr: number): Promise<void> {
    await this.ok(`Z0,${(addr & ~1).toString(16)},2`);
    this.breakpoints.add(addr & ~1);
  }

  async clearBreakpoint(addr: number): Promise<void> {
    await this.ok(`z0,${(addr & ~1).toString(16)},2`);
    this.breakpoints.delete(addr & ~1);
  }

  /** A write watchpoint on [addr, addr + len): the run stops once the guest has written there. */
  async setWriteWatchpoint(addr: number, len: number): Promise<void> {
    await this.ok(`Z2,${addr.toString(16)},${len.toString(16)}`);
  }

  async clearWriteWatchpoint(addr: number, len: number): Promise<void> {
    await this.ok(`z2,${addr.toString(16)},${len.toString(16)}`);
  }

  /** Resumes the target (`c`); a stop at one of our breakpoints is stepped
   * over first (QEMU would stop there again at once). The stop that ends the
   * run comes from stopped(). */
  async resume(): Promise<void> {
    if (this.running) throw new Error('gdbstub: the target is running already');
    const pc = await this.readRegister(REG.pc);
    if (this.breakpoints.has(pc)) {
      await this.ok(`z0,${pc.toString(16)},2`);
      parseStop(await this.request('s'));
      await this.ok(`Z0,${pc.toString(16)},2`);
    }
    this.sendPacket('c');
    this.running = (async () => {
      for (;;) {
        const p = await this.next(Infinity);
        if (p === null) continue;
        if (p.startsWith('O') && p !== 'OK') continue; // console output
        return parseStop(p);
      }
    })();
    this.running
      .finally(() => {
        this.running = null;
      })
      .catch(() => undefined);
  }

  /** Whether a resume() has not stopped yet. */
  get isRunning(): boolean {
    return this.running !== null;
  }

  /** The stop that ends the current run (a breakpoint, an interrupt), or null when none comes within timeoutMs. */
  async stopped(timeoutMs = 60_000): Promise<StopReply | null> {
    if (!this.running) throw new Error('gdbstub: the target is not running');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((r) => {
      timer = setTimeout(() => r(null), timeoutMs);
    });
    try {
      return await Promise.race([this.running, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resumes and waits for the next stop. */
  async cont(timeoutMs = 60_000): Promise<StopReply | null> {
    await this.resume();
    return this.stopped(timeoutMs);
  }

  /** Stops a running target (Ctrl-C) and returns the stop. */
  async interrupt(timeoutMs = 10_000): Promise<StopReply> {
    if (!this.running) throw new Error('gdbstub: the target is not running');
    if (this.closed) throw this.closed;
    this.sock.write('\x03');
    const stop = await this.stopped(timeoutMs);
    if (!stop) throw new Error(`gdbstub: no stop within ${timeoutMs} ms of an interrupt`);
    return stop;
  }

  async readRegister(n: number): Promise<number> {
    const r = await this.request(`p${n.toString(16)}`);
    if (!/^[0-9a-fA-F]{8}$/.test(r)) throw new Error(`gdbstub: register ${n} read as '${r}'`);
    return Buffer.from(r, 'hex').readUInt32LE(0);
  }

  async writeRegister(n: number, value: number): Promise<void> {
    await this.ok(`P${n.toString(16)}=${hex32le(value)}`);
  }

  async readMemory(addr: number, len: number): Promise<Buffer> {
    const out: Buffer[] = [];
    const step = Math.max(64, Math.floor((this.packetSize - 8) / 2));
    for (let off = 0; off < len; off += step) {
      const n = Math.min(step, len - off);
      const r = await this.request(`m${(addr + off).toString(16)},${n.toString(16)}`);
      if (!/^([0-9a-fA-F]{2})+$/.test(r) || r.length !== 2 * n) throw new Error(`gdbstub: read of ${n} bytes at 0x${(addr + off).toString(16)} answered '${r.slice(0, 20)}'`);
      out.push(Buffer.from(r, 'hex'));
    }
    return Buffer.concat(out);
  }

  /** Writes guest memory with M packets (QEMU 7.2 has no binary X), each under the stub's packet size. */
  async writeMemory(addr: number, bytes: Uint8Array): Promise<void> {
    const step = Math.max(64, Math.floor((this.packetSize - 32) / 2));
    for (let off = 0; off < bytes.length; off += step) {
      const part = bytes.subarray(off, Math.min(bytes.length, off + step));
      await this.ok(`M${(addr + off).toString(16)},${part.length.toString(16)}:${Buffer.from(part).toString('hex')}`);
    }
  }

  /** Runs a monitor command (QEMU's HMP, e.g. `system_reset`); returns what it printed. */
  async monitor(cmd: string, timeoutMs = 10_000): Promise<string> {
    if (this.running) throw new Error(`gdbstub: monitor ${cmd} while the target runs (interrupt it first)`);
    this.sendPacket(`qRcmd,${Buffer.from(cmd, 'latin1').toString('hex')}`);
    let out = '';
    for (;;) {
      const p = await this.next(timeoutMs);
      if (p === null) throw new Error(`gdbstub: monitor ${cmd} did not finish within ${timeoutMs} ms`);
      if (p === 'OK') return out;
      if (p.startsWith('O')) out += Buffer.from(p.slice(1), 'hex').toString('latin1');
      else if (/^E/.test(p) || p === '') throw new Error(`gdbstub: monitor ${cmd} answered '${p}'`);
      else out += Buffer.from(p, 'hex').toString('latin1');
    }
  }

  /** Leaves the target running and closes the connection. */
  async detach(): Promise<void> {
    if (this.detached) return;
    this.detached = true;
    if (!this.closed) {
      if (this.running) await this.interrupt().catch(() => undefined);
      try {
        await this.request('D', 2_000);
      } catch {
        // the stub may close first
      }
    }
    this.sock.destroy();
  }
}

/** A socket to a Unix path or `host:port`; refused or absent ones are tried again until timeoutMs. */
export async function connectRetrying(target: string, timeoutMs = 10_000): Promise<net.Socket> {
  const m = /^([^/:]*):(\d+)$/.exec(target);
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = m ? net.createConnection(Number(m[2]), m[1] || '127.0.0.1') : net.createConnection(target);
        s.once('connect', () => {
          s.removeAllListeners('error');
          resolve(s);
        });
        s.once('error', reject);
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() > end) throw new Error(`cannot connect to ${target}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function parseStop(p: string): StopReply {
  const m = /^([TSWX])([0-9a-fA-F]{2})/.exec(p);
  if (!m) throw new Error(`gdbstub: '${p.slice(0, 40)}' is not a stop reply`);
  return { signal: parseInt(m[2], 16), raw: p };
}
