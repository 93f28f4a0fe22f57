// The serial port of a Zephyr image under QEMU (tools/proc/zephyr-qemu.ts),
// opened as the daemon opens a board's. serialport locks the tty: a lock
// that is taken says who holds it, since a PTY number is reused as soon as
// the QEMU that had it is gone.
import fs from 'node:fs';
import type { SerialPort } from 'serialport';
import { openSerial } from '../helpers/serial.js';
import type { ZephyrQemu } from '../../tools/proc/zephyr-qemu.js';

/** Processes with `tty` open, from /proc/<pid>/fd, with their command lines. */
function holders(tty: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (fs.readdirSync(`/proc/${pid}/fd`).some((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === tty)) {
        out.push(`${pid} ${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** Opens the board's PTY, trying again for a second while another process holds its lock. */
export async function openBoardPort(q: ZephyrQemu): Promise<SerialPort> {
  for (let i = 0; ; i++) {
    try {
      const port = await openSerial(q.pty);
      port.on('error', () => undefined);
      return port;
    } catch (e) {
      if (!/lock/i.test((e as Error).message) || i >= 20) {
        throw new Error(`${(e as Error).message}; ${q.pty} is open in: ${holders(q.pty).join(' | ') || 'no process'}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
