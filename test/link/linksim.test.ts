// The link simulator on its own: a socat PTY pair stands in for the board's
// tty, the test plays both ends. Line rate, full duplex, corruption, drops,
// reproducible faults, unplug/replug and the host reopening its side.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SerialPort } from 'serialport';
import { LinkSim, PtyPair, linksimBuilt, type LinkSimOptions } from '../../tools/proc/linksim.js';
import { closePort, openPort } from '../../server/src/devices/open-serial.js';

let dir = '';
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(() => {
  if (!linksimBuilt()) throw new Error('firmware/build/host/tinyrig-linksim is missing: run `make -C firmware`');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-linksim-'));
  return () => fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

interface Line {
  sim: LinkSim;
  host: SerialPort;
  dev: SerialPort;
}

let lineNo = 0;
async function line(opts: Omit<LinkSimOptions, 'device'>): Promise<Line> {
  const pair = await PtyPair.start(dir, `p${lineNo++}`);
  cleanups.push(() => pair.stop());
  const sim = await LinkSim.start({ device: pair.a, ...opts });
  cleanups.push(() => sim.stop());
  const host = await openPort(sim.path);
  cleanups.push(() => closePort(host));
  const dev = await openPort(pair.b);
  cleanups.push(() => closePort(dev));
  return { sim, host, dev };
}

/** Collects `n` bytes from `port` (or whatever arrived when `idleMs` passes without data). */
function collect(port: SerialPort, n: number, idleMs = 1500): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    let timer = setTimeout(done, idleMs);
    function onData(d: Buffer): void {
      parts.push(d);
      got += d.length;
      clearTimeout(timer);
      if (got >= n) done();
      else timer = setTimeout(done, idleMs);
    }
    function done(): void {
      clearTimeout(timer);
      port.off('data', onData);
      resolve(Buffer.concat(parts));
    }
    port.on('data', onData);
  });
}

function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function timedTransfer(l: Line, n: number): Promise<number> {
  const data = pattern(n);
  const t0 = performance.now();
  const got = collect(l.dev, n);
  l.host.write(data);
  const buf = await got;
  const ms = performance.now() - t0;
  expect(buf.equals(data)).toBe(true);
  return ms;
}

describe('tinyrig-linksim', () => {
  it('holds the line rate: 921600 baud is 8x faster than 115200 and each is close to baud/10 bytes/s', async () => {
    const n = 23040; // 2 s at 115200, 0.25 s at 921600
    const slow = await line({ baud: 115200 });
    const slowMs = await timedTransfer(slow, n);
    const fast = await line({ baud: 921600 });
    const fastMs = await timedTransfer(fast, n);
    expect(slowMs / fastMs).toBeGreaterThan(8 * 0.7);
    expect(slowMs / fastMs).toBeLessThan(8 * 1.3);
    // never faster than the line allows; not much slower either
    expect(slowMs).toBeGreaterThan(0.97 * ((n / 11520) * 1000));
    expect(slowMs).toBeLessThan(1.5 * ((n / 11520) * 1000));
  });

  it('is full duplex: both directions at once take as long as one', async () => {
    const n = 11520; // 1 s each way at 115200
    const l = await line({ baud: 115200 });
    const a = pattern(n, 2);
    const b = pattern(n, 3);
    const t0 = performance.now();
    const atDev = collect(l.dev, n);
    const atHost = collect(l.host, n);
    l.host.write(a);
    l.dev.write(b);
    const [gotA, gotB] = await Promise.all([atDev, atHost]);
    const ms = performance.now() - t0;
    expect(gotA.equals(a)).toBe(true);
    expect(gotB.equals(b)).toBe(true);
    expect(ms).toBeLessThan(1.5 * 1000);
    const st = await l.sim.stats();
    expect(st.h2d_out).toBe(n);
    expect(st.d2h_out).toBe(n);
  });

  it('flips one bit in about the given fraction of bytes, reproducibly for a seed', async () => {
    const n = 40000;
    const data = pattern(n, 4);
    const flipped: number[][] = [];
    for (let run = 0; run < 2; run++) {
      const l = await line({ corrupt: 0.01, seed: 42 });
      const got = collect(l.dev, n);
      l.host.write(data);
      const buf = await got;
      expect(buf.length).toBe(n);
      const where: number[] = [];
      for (let i = 0; i < n; i++) {
        const x = buf[i]! ^ data[i]!;
        if (x !== 0) {
          expect(x & (x - 1)).toBe(0); // exactly one bit
          where.push(i);
        }
      }
      expect(where.length).toBeGreaterThan(n * 0.006);
      expect(where.length).toBeLessThan(n * 0.014);
      expect((await l.sim.stats()).corrupted).toBe(where.length);
      flipped.push(where);
    }
    expect(flipped[1]).toEqual(flipped[0]);
  });

  it('drops about the given fraction of bytes and keeps the order of the rest', async () => {
    const n = 40000;
    const data = pattern(n, 5);
    const l = await line({ drop: 0.01, seed: 7 });
    const got = collect(l.dev, n, 800);
    l.host.write(data);
    const buf = await got;
    const st = await l.sim.stats();
    expect(st.dropped).toBeGreaterThan(n * 0.006);
    expect(st.dropped).toBeLessThan(n * 0.014);
    expect(buf.length).toBe(n - st.dropped);
    // what arrived is a subsequence of what was sent
    let j = 0;
    for (let i = 0; i < data.length && j < buf.length; i++) if (data[i] === buf[j]) j++;
    expect(j).toBe(buf.length);
  });

  it('an unplug closes the host side and removes the link; a replug serves a fresh PTY at the same link', async () => {
    const link = path.join(dir, 'board-unplug');
    const l = await line({ link, baud: 921600 });
    const closed = new Promise<unknown>((r) => l.host.once('close', r));
    const errors: Error[] = [];
    l.host.on('error', (e) => errors.push(e));
    await l.sim.disconnect();
    expect(fs.existsSync(link)).toBe(false);
    // the host notices on its next write, as with a USB-serial adapter pulled out
    const writeErr = await new Promise<Error | null | undefined>((r) => l.host.write(Buffer.from('x'), r));
    expect(writeErr).toBeTruthy();
    await closed;
    expect(errors.map((e) => e.message).join()).toMatch(/EIO/);
    // bytes the board sends while nobody is plugged in are lost
    l.dev.write(Buffer.from('lost while unplugged'));
    await new Promise((r) => setTimeout(r, 100));
    await l.sim.reconnect();
    expect(fs.readlinkSync(link)).toBe(l.sim.ptyPath);
    const host2 = await openPort(link);
    cleanups.push(() => closePort(host2));
    const atHost = collect(host2, 5, 500);
    l.dev.write(Buffer.from('hello'));
    expect((await atHost).toString()).toBe('hello');
    const atDev = collect(l.dev, 5, 500);
    host2.write(Buffer.from('again'));
    expect((await atDev).toString()).toBe('again');
    const st = await l.sim.stats();
    expect(st.disconnects).toBe(1);
    expect(st.lost).toBeGreaterThanOrEqual('lost while unplugged'.length);
  });

  it('survives the host closing and reopening its side', async () => {
    const link = path.join(dir, 'board-reopen');
    const l = await line({ link, baud: 921600 });
    await closePort(l.host);
    const host2 = await openPort(link);
    cleanups.push(() => closePort(host2));
    const atDev = collect(l.dev, 4, 500);
    host2.write(Buffer.from('ping'));
    expect((await atDev).toString()).toBe('ping');
    const atHost = collect(host2, 4, 500);
    l.dev.write(Buffer.from('pong'));
    expect((await atHost).toString()).toBe('pong');
  });

  it('adds the configured latency', async () => {
    const l = await line({ latencyUs: 150_000 });
    const t0 = performance.now();
    const got = collect(l.dev, 1, 1000);
    l.host.write(Buffer.from([0x55]));
    expect((await got).length).toBe(1);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(140);
    expect(ms).toBeLessThan(600);
  });
});
