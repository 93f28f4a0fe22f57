// The emulated rig: QEMU Cortex-M stand-ins and host twin boards, each a child
// process serving a PTY behind a stable symlink (<dir>/m4-0, <dir>/twin-1, …),
// listed in <dir>/devices.json for the daemon. A board that exits or crashes is
// started again on the same symlink (the daemon sees a reset: a new boot id).
//
// A hung board is restarted the same way: a QEMU board whose emulator stops
// answering its control socket (QMP, <dir>/.<id>.qmp; never the serial port,
// which the daemon owns) or reports a dead state, and any board whose process
// stays stopped, for longer than the hang timeout. A hang inside the firmware
// (a main loop that never comes back) is the board's own watchdog's to catch:
// it reports EVENT WATCHDOG and ends QEMU, which restarts it here.
//
//   scripts/rig start [--m0plus N] [--m4 N] [--m7 N] [--twin N] [--dir var/rig] [--skip-missing] [--id-prefix P]
//                     [--hang-timeout-ms MS] [--watchdog-ms MS]
//     --skip-missing: boards whose firmware or emulator is absent are left out
//     (said so on stderr) instead of failing the whole rig.
//     --hang-timeout-ms: how long a board may not answer before it counts as
//     hung (default 30000).
//     --watchdog-ms: the QEMU boards' watchdog period, written where the
//     firmware reads it (qemu_board.c WATCHDOG_MS_ADDR); 0 or absent: the
//     firmware's own (30000). For tests that idle a board past its period.
//   RIG_ELF_M0PLUS, RIG_ELF_M4, RIG_ELF_M7: another image for that class's QEMU boards (default: the build's).
//   RIG_ZEPHYR=zephyr.elf [RIG_ZEPHYR_CLASS=m4|m7]: one more board, zephyr-<class>-0, running the Zephyr app
//   (firmware/ports/zephyr built for mps2/an386 or mps2/an500) under the same QEMU machine, flags and words.
//   scripts/rig stop [--dir var/rig]
//   scripts/rig status [--dir var/rig]
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BOARDS_FILE, TWIN_BIN, qemuElf, repoRoot as root } from '../tools/proc/paths.js';

const QEMU = 'qemu-system-arm';

interface BoardClass {
  class: string;
  cpu: string;
  qemu: { machine: string };
  boards: { zephyr: string }[];
}

/** What the daemon reads (server/src/devices/registry.ts). */
export interface DeviceEntry {
  id: string;
  path: string;
  board: string;
  class: string;
  emulated: true;
  tags: string[];
  powerBoard?: string;
}

interface Spec {
  entry: DeviceEntry;
  command: string;
  args: string[];
  /** How the child announces its PTY; the rig makes the symlink when the child does not. */
  pty: (output: string) => string | null;
  ownLink: boolean;
  /** QEMU: a fresh random boot id for every start, where the firmware reads it
   * (firmware/ports/qemu/qemu_board.c BOOT_ID_ADDR). */
  bootId?: boolean;
  /** QEMU: a watchdog period (ms) written where the firmware reads it (WATCHDOG_MS_ADDR). */
  watchdogMs?: number;
  /** QEMU: the control socket the supervisor probes for liveness. */
  qmp?: string;
}

const QEMU_BOOT_ID_ADDR = '0x003FFF00';
const QEMU_WATCHDOG_MS_ADDR = '0x003FFF04';

const log = (msg: string, fields: Record<string, unknown> = {}): void => {
  const extra = Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('');
  process.stderr.write(`[rig] ${new Date().toISOString()} ${msg}${extra}\n`);
};

function usage(code: number): never {
  process.stderr.write(
    'usage: scripts/rig start [--m0plus N] [--m4 N] [--m7 N] [--twin N] [--dir DIR] [--skip-missing] [--hang-timeout-ms MS] [--watchdog-ms MS] [--id-prefix P]\n' +
      '       scripts/rig stop [--dir DIR]\n' +
      '       scripts/rig status [--dir DIR]\n',
  );
  process.exit(code);
}

interface Args {
  cmd: string;
  dir: string;
  counts: Record<string, number>;
  skipMissing: boolean;
  hangMs: number;
  /** QEMU watchdog period in ms; 0: the firmware's default. */
  watchdogMs: number;
  /** Put before every board id (unique ids across the rig hosts of one fleet). */
  idPrefix: string;
}

function parseArgs(argv: string[]): Args {
  const [cmd, ...rest] = argv;
  if (!cmd || !['start', 'stop', 'status'].includes(cmd)) usage(cmd === '--help' || cmd === '-h' ? 0 : 2);
  const counts: Record<string, number> = { m0plus: 0, m4: 0, m7: 0, twin: 0 };
  let dir = path.join(root, 'var', 'rig');
  let skipMissing = false;
  let hangMs = 30_000;
  let watchdogMs = 0;
  // rig hosts sharing one fleet need board ids unique across hosts: rig-a-m4-0, rig-b-m4-0
  let idPrefix = '';
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    if (flag === '--skip-missing') {
      skipMissing = true;
      continue;
    }
    const value = rest[++i];
    if (value === undefined) usage(2);
    if (flag === '--dir') dir = path.resolve(value);
    else if (flag === '--id-prefix') {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(value)) throw new Error(`--id-prefix wants letters, digits, _ . - (up to 32), got '${value}'`);
      idPrefix = value;
    } else if (flag === '--hang-timeout-ms') {
      hangMs = Number(value);
      if (!Number.isInteger(hangMs) || hangMs < 1_000) throw new Error(`--hang-timeout-ms wants at least 1000, got '${value}'`);
    } else if (flag === '--watchdog-ms') {
      watchdogMs = Number(value);
      if (!Number.isInteger(watchdogMs) || watchdogMs < 0 || watchdogMs > 171_000) throw new Error(`--watchdog-ms wants 0…171000, got '${value}'`);
    }    else if (flag.startsWith('--') && flag.slice(2) in counts) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0 || n > 64) throw new Error(`${flag} wants a board count 0…64, got '${value}'`);
      counts[flag.slice(2)] = n;
    } else usage(2);
  }
  return { cmd, dir, counts, skipMissing, hangMs, watchdogMs, idPrefix };
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function specs(dir: string, counts: Record<string, number>, skipMissing: boolean, watchdogMs = 0): Spec[] {
  const table = JSON.parse(fs.readFileSync(BOARDS_FILE, 'utf8')) as { classes: BoardClass[] };
  const out: Spec[] = [];
  for (const c of table.classes) {
    const n = counts[c.class] ?? 0;
    if (n === 0) continue;
    // RIG_ELF_M4=path (per class) runs another image on that class's boards: a candidate firmware
    const elf = process.env[`RIG_ELF_${c.class.toUpperCase()}`] || qemuElf(c.class);
    const missing = !fs.existsSync(elf)
      ? `${elf} is not built (make -C firmware)`
      : !onPath(QEMU)
        ? `${QEMU} is not installed (apt-get install qemu-system-arm)`
        : null;
    if (missing && skipMissing) {
      log(`NOT starting ${n} ${c.class} board(s): ${missing}`);
      continue;
    }
    if (missing) throw new Error(`cannot start ${c.class} boards: ${missing}`);
    for (let i = 0; i < n; i++) {
      const id = `${c.class}-${i}`;
      out.push({
        entry: {
          id,
          path: path.join(dir, id),
          board: `qemu-${c.qemu.machine}`,
          class: c.class,
          emulated: true,
          tags: ['emulated', c.class],
          powerBoard: c.boards[0]?.zephyr,
        },
        command: QEMU,
        // -icount shift=0: one instruction per ns of virtual time, so the
        // firmware's counter is an instruction count, whatever the host load.
        // -semihosting: a faulting board reports, then ends QEMU (and is restarted).
        args: ['-M', c.qemu.machine, '-display', 'none', '-monitor', 'none', '-serial', 'pty', '-icount', 'shift=0', '-semihosting', '-kernel', elf],
        bootId: true,
        watchdogMs,
        // a Unix socket path has at most 107 bytes: deeper rig directories go without
        qmp: path.join(dir, `.${id}.qmp`).length <= 100 ? path.join(dir, `.${id}.qmp`) : undefined,
        pty: (o) => /char device redirected to (\/dev\/pts\/\d+)/.exec(o)?.[1] ?? null,
        ownLink: false,
      });
    }
  }
  // RIG_ZEPHYR=path/to/zephyr.elf: the Zephyr app built for mps2/an386 (RIG_ZEPHYR_CLASS=m4, the default) or
  // mps2/an500 (m7), a board of the rig like the others; its HELLO names the board and counter itself
  const zephyr = process.env.RIG_ZEPHYR;
  if (zephyr) {
    const cls = process.env.RIG_ZEPHYR_CLASS ?? 'm4';
    const c = table.classes.find((x) => x.class === cls);
    if (!c) throw new Error(`RIG_ZEPHYR_CLASS ${cls} is not a class of ${BOARDS_FILE}`);
    if (!fs.existsSync(zephyr)) throw new Error(`RIG_ZEPHYR ${zephyr} does not exist`);
    const id = `zephyr-${cls}-0`;
    out.push({
      entry: { id, path: path.join(dir, id), board: `zephyr-${c.qemu.machine}`, class: cls, emulated: true, tags: ['emulated', 'zephyr', cls], powerBoard: c.boards[0]?.zephyr },
      command: QEMU,
      // The bare-metal board's flags and words: the app reads the boot-id and watchdog words where those images do
      // (its mps2 .conf files), and no -cpu, as there: each mps2 machine takes only its own CPU, FPU included.
      args: ['-M', c.qemu.machine, '-display', 'none', '-monitor', 'none', '-serial', 'pty', '-icount', 'shift=0', '-semihosting', '-kernel', zephyr],
      bootId: true,
      watchdogMs,
      qmp: path.join(dir, `.${id}.qmp`).length <= 100 ? path.join(dir, `.${id}.qmp`) : undefined,
      pty: (o) => /char device redirected to (\/dev\/pts\/\d+)/.exec(o)?.[1] ?? null,
      ownLink: false,
    });
  }
  if (counts.twin > 0 && !fs.existsSync(TWIN_BIN)) throw new Error(`${TWIN_BIN} is not built (make -C firmware)`);
  for (let i = 0; i < counts.twin; i++) {
    const id = `twin-${i}`;
    const link = path.join(dir, id);
    out.push({
      entry: { id, path: link, board: 'host-twin', class: 'twin', emulated: true, tags: ['emulated', 'twin'] },
      command: TWIN_BIN,
      args: ['--link', link],
      pty: (o) => /^PTY (\S+)/m.exec(o)?.[1] ?? null,
      ownLink: true,
    });
  }
  return out;
}

/** The state letter of a process in /proc (R, S, T, Z, …), or null when it is gone. */
function procState(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** QEMU run states that mean the board will not run again by itself. */
const DEAD_STATES = new Set(['internal-error', 'guest-panicked', 'io-error', 'shutdown']);

/** One board: starts its process, keeps its symlink, starts it again when it dies or hangs. */
class Supervised {
  child: ChildProcess | null = null;
  restarts = 0;
  stopping = false;
  private output = '';
  private probe: NodeJS.Timeout | null = null;
  private qmp: net.Socket | null = null;

  constructor(
    readonly spec: Spec,
    readonly hangMs: number,
  ) {}

  start(timeoutMs = 20_000): Promise<void> {
    const { spec } = this;
    if (!spec.ownLink) fs.rmSync(spec.entry.path, { force: true });
    this.output = '';
    const args = [...spec.args];
    if (spec.bootId) args.push('-device', `loader,addr=${QEMU_BOOT_ID_ADDR},data=${randomInt(1, 2 ** 31)},data-len=4`);
    if (spec.watchdogMs) args.push('-device', `loader,addr=${QEMU_WATCHDOG_MS_ADDR},data=${spec.watchdogMs},data-len=4`);
    if (spec.qmp) {
      fs.rmSync(spec.qmp, { force: true });
      args.push('-qmp', `unix:${spec.qmp},server=on,wait=off`);
    }
    const child = spawn(spec.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const collect = (d: Buffer): void => {
      if (this.output.length < 64 * 1024) this.output += d.toString();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        const pty = spec.pty(this.output);
        if (pty && (!spec.ownLink || fs.existsSync(spec.entry.path))) {
          clearInterval(poll);
          if (!spec.ownLink) {
            const tmp = `${spec.entry.path}.tmp`;
            fs.rmSync(tmp, { force: true });
            fs.symlinkSync(pty, tmp);
            fs.renameSync(tmp, spec.entry.path);
          }
          child.on('exit', (code, signal) => this.exited(code, signal));
          this.watch(child);
          log('board up', { id: spec.entry.id, pty, pid: child.pid });
          resolve();
        } else if (child.exitCode !== null || child.signalCode !== null) {
          clearInterval(poll);
          reject(new Error(`${spec.entry.id}: ${spec.command} exited (${child.exitCode ?? child.signalCode}) before serving its PTY: ${this.output.trim()}`));
        } else if (Date.now() - started > timeoutMs) {
          clearInterval(poll);
          child.kill('SIGKILL');
          reject(new Error(`${spec.entry.id}: no PTY within ${timeoutMs} ms: ${this.output.trim()}`));
        }
      }, 20);
    });
  }

  /** Liveness without the serial port: QEMU's control socket answers
   * query-status from its main loop (a stopped or wedged emulator does not),
   * and /proc says whether the process is stopped. A board that has not been
   * seen alive for hangMs is killed; exited() then restarts it. */
  private watch(child: ChildProcess): void {
    const { spec } = this;
    let seen = Date.now();
    let buf = '';
    const every = Math.min(5_000, Math.max(250, Math.floor(this.hangMs / 4)));
    const hung = (why: string): void => {
      log('board hung: killing it to restart it on the same path (the daemon sees a reset)', { id: spec.entry.id, why, pid: child.pid });
      this.unwatch();
      child.kill('SIGKILL');
    };
    const answer = (line: string): void => {
      let m: { return?: { status?: string } };
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      const status = m.return?.status;
      if (status === undefined) return;
      if (DEAD_STATES.has(status)) hung(`emulator state '${status}'`);
      else seen = Date.now();
    };
    this.probe = setInterval(() => {
      if (child.exitCode !== null || child.signalCode !== null) return this.unwatch();
      const state = procState(child.pid!);
      if (!spec.qmp && state !== 'T' && state !== 't') seen = Date.now();
      if (spec.qmp) {
        if (!this.qmp) {
          buf = '';
          const sock = net.createConnection(spec.qmp);
          sock.setEncoding('utf8');
          sock.on('data', (d: string) => {
            buf += d;
            for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
              answer(buf.slice(0, i));
              buf = buf.slice(i + 1);
            }
          });
          sock.on('error', () => sock.destroy());
          sock.on('close', () => {
            if (this.qmp === sock) this.qmp = null;
          });
          sock.write('{"execute":"qmp_capabilities"}\n');
          this.qmp = sock;
        }
        this.qmp.write('{"execute":"query-status"}\n');
      }
      const quiet = Date.now() - seen;
      if (quiet > this.hangMs) {
        hung(state === 'T' || state === 't' ? `process stopped for ${quiet} ms` : `no answer from the emulator for ${quiet} ms`);
      }
    }, every);
  }

  private unwatch(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
    this.qmp?.destroy();
    this.qmp = null;
  }

  private exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.unwatch();
    if (this.stopping) return;
    this.restarts++;
    const delay = Math.min(5_000, 250 * 2 ** Math.min(this.restarts - 1, 5));
    log('board exited: restarting it on the same path (the daemon sees a reset)', {
      id: this.spec.entry.id,
      code,
      signal,
      restarts: this.restarts,
      delayMs: delay,
      output: this.output.trim().split('\n').slice(-3).join(' | '),
    });
    setTimeout(() => {
      if (this.stopping) return;
      this.start().catch((e: Error) => {
        log('restart failed', { id: this.spec.entry.id, error: e.message });
        this.exited(null, null);
      });
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.unwatch();
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      c.kill('SIGCONT'); // a stopped board takes its SIGTERM only once it runs
      const timer = setTimeout(() => c.kill('SIGKILL'), 3_000);
      await gone;
      clearTimeout(timer);
    }
    if (!this.spec.ownLink) fs.rmSync(this.spec.entry.path, { force: true });
    if (this.spec.qmp) fs.rmSync(this.spec.qmp, { force: true });
  }
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether pid is a `scripts/rig start` of this directory. A pid file left by
 * an unclean stop may name any live process: after a container restart it is
 * often another process with the same small pid, or this very rig. */
function rigOf(dir: string, pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  let argv: string[];
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  const script = argv.findIndex((a) => path.basename(a) === 'rig.ts');
  if (script < 0 || argv[script + 1] !== 'start') return false;
  let cwd: string;
  try {
    cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return true; // another user's rig: its directory cannot be told, so it may be this one
  }
  const flag = argv.lastIndexOf('--dir');
  const theirs = flag > script ? path.resolve(cwd, argv[flag + 1] ?? '') : path.resolve(cwd, argv[script], '..', '..', 'var', 'rig');
  const real = (p: string): string => {
    try {
      return fs.realpathSync(p);
    } catch {
      return p;
    }
  };
  return real(theirs) === real(dir);
}

async function start({ dir, counts, skipMissing, hangMs, watchdogMs, idPrefix }: Args): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const pidFile = path.join(dir, 'rig.pid');
  if (fs.existsSync(pidFile)) {
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    if (rigOf(dir, pid)) throw new Error(`a rig (pid ${pid}) already runs in ${dir}: scripts/rig stop --dir ${dir}`);
    if (alive(pid)) log('stale pid file: its process is not a rig of this directory (left by an unclean stop)', { pid });
  }
  const devicesFile = path.join(dir, 'devices.json');
  fs.rmSync(devicesFile, { force: true });
  const list = specs(dir, counts, skipMissing, watchdogMs);
  for (const s of list) s.entry.id = `${idPrefix}${s.entry.id}`;
  if (list.length === 0) throw new Error('no boards asked for: give --m0plus, --m4, --m7 or --twin a count (or RIG_ZEPHYR an image)');
  writeAtomic(pidFile, String(process.pid));

  const boards = list.map((s) => new Supervised(s, hangMs));
  let stopping: Promise<void> | null = null;
  const stopAll = (why: string): Promise<void> => {
    stopping ??= (async () => {
      log('stopping the rig', { why });
      await Promise.all(boards.map((b) => b.stop()));
      fs.rmSync(devicesFile, { force: true });
      if (fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8') === String(process.pid)) fs.rmSync(pidFile);
      log('rig stopped');
    })();
    return stopping;
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => void stopAll(sig).then(() => process.exit(0)));
  }
  try {
    // QEMU boards start one after another: each one spends its first second
    // translating code, and two cores are all a CI machine has.
    for (const b of boards) await b.start();
  } catch (e) {
    await stopAll('a board failed to start');
    throw e;
  }
  writeAtomic(devicesFile, `${JSON.stringify({ devices: list.map((s) => s.entry) }, null, 2)}\n`);
  log('rig up', { devices: devicesFile, boards: list.map((s) => s.entry.id) });
}

async function stop(dir: string): Promise<void> {
  const pidFile = path.join(dir, 'rig.pid');
  if (!fs.existsSync(pidFile)) {
    log('no rig runs here', { dir });
    return;
  }
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  if (!rigOf(dir, pid)) {
    fs.rmSync(pidFile, { force: true });
    log('the rig was not running (stale pid file removed)', { pid });
    return;
  }
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && rigOf(dir, pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (rigOf(dir, pid)) throw new Error(`rig pid ${pid} did not stop within 10 s`);
  log('rig stopped', { pid });
}

function status(dir: string): void {
  const pidFile = path.join(dir, 'rig.pid');
  const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : 0;
  const devicesFile = path.join(dir, 'devices.json');
  const devices = fs.existsSync(devicesFile) ? (JSON.parse(fs.readFileSync(devicesFile, 'utf8')).devices as DeviceEntry[]) : [];
  const running = rigOf(dir, pid);
  process.stdout.write(`${JSON.stringify({ running, pid: running ? pid : null, devices }, null, 2)}\n`);
}

const args = parseArgs(process.argv.slice(2));
const { cmd, dir } = args;
const run = cmd === 'start' ? start(args) : cmd === 'stop' ? stop(dir) : Promise.resolve(status(dir));
run.catch((e: Error) => {
  log(`error: ${e.message}`);
  process.exit(1);
});
