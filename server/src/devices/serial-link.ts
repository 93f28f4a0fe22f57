// A BoardLink over a serial port (real board, QEMU PTY or host twin PTY),
// through the protocol session. The daemon is the only process on each port.
import { SerialPort } from 'serialport';
import { BoardSession, type DeviceLog } from '../../../protocol/src/index.js';
import type { BoardLink, OpenLinkOptions } from './link.js';

/** Opens a serial port (or PTY) at a line rate. */
export function openPort(path: string, baudRate = 115200): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate, autoOpen: false });
    port.open((err) => (err ? reject(new Error(`cannot open ${path}: ${err.message}`)) : resolve(port)));
  });
}

export const closePort = (port: SerialPort): Promise<void> => new Promise((r) => (port.isOpen ? port.close(() => r()) : r()));

export async function openSerialLink(opts: OpenLinkOptions): Promise<BoardLink> {
  const port = await openPort(opts.path, opts.baudRate);
  let lostCb: ((reason: string) => void) | null = null;
  let lost = false;
  const markLost = (reason: string): void => {
    if (lost) return;
    lost = true;
    lostCb?.(reason);
  };
  port.on('close', (err: { disconnected?: boolean } | null) =>
    markLost(err?.disconnected ? `port ${opts.path} disconnected` : `port ${opts.path} closed`),
  );
  port.on('error', (err: Error) => markLost(`port ${opts.path}: ${err.message}`));
  let session: BoardSession;
  try {
    // a port whose other end never answers HELLO must not hold the board in 'connecting' forever
    const helloTimeoutMs = Math.max(5000, opts.requestTimeoutMs * 5);
    session = await BoardSession.open(port, { requestTimeoutMs: opts.requestTimeoutMs, helloTimeoutMs });
  } catch (err) {
    await closePort(port);
    throw err;
  }
  session.on('disconnect', (reason: string) => markLost(reason || `port ${opts.path} disconnected`));
  const bootCbs: (() => void)[] = [];
  const logCbs: ((level: number, text: string) => void)[] = [];
  session.on('reset', () => bootCbs.forEach((cb) => cb()));
  session.on('log', (log: DeviceLog) => logCbs.forEach((cb) => cb(log.level, log.text)));

  return {
    get hello() {
      return session.hello;
    },
    async loadModel(blob) {
      const { sha256: _weights, modelSha256: _model, ...info } = await session.loadModel(blob);
      return info;
    },
    writeWeights: (blob) => session.writeWeights(blob),
    async readWeights() {
      return (await session.readWeights()).bytes;
    },
    weightsInfo: () => session.weightsInfo(),
    async sendSamples(index, sampleBytes, labels, data) {
      await session.sendSamples(index, sampleBytes, labels, data);
    },
    train: (req) => session.train(req),
    evaluate: (index, count) => session.evaluate(index, count),
    stats: () => session.stats(),
    async reset() {
      await session.reset();
    },
    counters: () => ({ ...session.counters }),
    onLost(cb) {
      lostCb = cb;
      if (lost) cb('port closed');
    },
    onBoot(cb) {
      bootCbs.push(cb);
    },
    onLog(cb) {
      logCbs.push(cb);
    },
    async close() {
      lost = true;
      session.close();
      await closePort(port);
    },
  };
}
