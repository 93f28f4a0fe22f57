// A BoardLink over a serial port (real board, QEMU PTY or host twin PTY),
// through the protocol session of protocol/src. The daemon is the only
// process on each port.
import { SerialPort } from 'serialport';
import type { BoardLink, BoardStats, HelloInfo, LinkCounters, OpenLinkOptions } from './link.js';

/* The parts of protocol/src's BoardSession the daemon uses. */
interface SessionLike {
  hello: Record<string, unknown>;
  loadModel(blob: Uint8Array): Promise<Record<string, unknown>>;
  writeWeights(blob: Uint8Array): Promise<Record<string, unknown>>;
  readWeights(): Promise<Uint8Array | { bytes?: Uint8Array; data?: Uint8Array; weights?: Uint8Array }>;
  weightsInfo(): Promise<Record<string, unknown>>;
  sendSamples(index: number, sampleBytes: number, labels: Uint8Array, data: Uint8Array): Promise<unknown>;
  train(req: Record<string, unknown>): Promise<Record<string, unknown>>;
  evaluate(index: number, count: number): Promise<Record<string, unknown>>;
  stats(): Promise<Record<string, unknown>>;
  reset(): Promise<unknown>;
  close?(): Promise<void> | void;
  on(event: string, cb: (...args: unknown[]) => void): unknown;
  counters?: Record<string, number> | (() => Record<string, number>);
  stats_?: unknown;
}

interface ProtocolModule {
  BoardSession: { open(stream: unknown, opts?: Record<string, unknown>): Promise<SessionLike> };
}

let protocol: Promise<ProtocolModule> | null = null;
function loadProtocol(): Promise<ProtocolModule> {
  const spec = new URL('../../../protocol/src/index.ts', import.meta.url).href;
  // a failed import is not cached, so the daemon picks the codec up once it is there
  protocol ??= (import(spec) as Promise<ProtocolModule>).catch((err: Error) => {
    protocol = null;
    throw new Error(`protocol session unavailable (protocol/src/index.ts): ${err.message}`);
  });
  return protocol;
}

const num = (o: Record<string, unknown>, ...keys: string[]): number => {
  for (const k of keys) if (typeof o[k] === 'number') return o[k] as number;
  for (const k of keys) if (typeof o[k] === 'bigint') return Number(o[k]);
  return 0;
};
const str = (o: Record<string, unknown>, ...keys: string[]): string => {
  for (const k of keys) if (typeof o[k] === 'string') return o[k] as string;
  return '';
};
const hex = (v: unknown): string =>
  typeof v === 'string' ? v.toLowerCase() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : '';

function helloInfo(h: Record<string, unknown>): HelloInfo {
  return {
    proto: num(h, 'proto', 'protocol'),
    board: str(h, 'board'),
    build: str(h, 'build'),
    cpu: str(h, 'cpu'),
    clockHz: num(h, 'clockHz', 'clock_hz'),
    ramBytes: num(h, 'ramBytes', 'ram_bytes'),
    maxFrame: num(h, 'maxFrame', 'max_frame'),
    window: num(h, 'window'),
    bootId: num(h, 'bootId', 'boot_id'),
    sampleSlots: num(h, 'sampleSlots', 'sample_slots'),
    arenaBytes: num(h, 'arenaBytes', 'arena_bytes'),
    blobMax: num(h, 'blobMax', 'blob_max'),
    counter: str(h, 'counter') || 'cycles',
    staticRam: num(h, 'staticRam', 'static_ram'),
    stackBytes: num(h, 'stackBytes', 'stack_bytes'),
    maxTrain: num(h, 'maxTrain', 'max_train'),
    engine: h.engine === true,
  };
}

function statsInfo(s: Record<string, unknown>): BoardStats {
  return {
    stepsApplied: num(s, 'stepsApplied', 'steps_applied'),
    lastStepId: num(s, 'lastStepId', 'last_step_id'),
    arenaPeak: num(s, 'arenaPeak', 'arena_peak'),
    stackPeak: num(s, 'stackPeak', 'stack_peak'),
    staticRam: num(s, 'staticRam', 'static_ram'),
    counterTotal: num(s, 'counterTotal', 'counter_total'),
    samplesHeld: num(s, 'samplesHeld', 'samples_held'),
    modelSha256: hex(s.modelSha256 ?? s.model_sha256),
    framesRx: num(s, 'framesRx', 'frames_rx'),
    framesBad: num(s, 'framesBad', 'frames_bad'),
  };
}

function openPort(path: string, baudRate: number): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate, autoOpen: false });
    port.open((err) => (err ? reject(new Error(`cannot open ${path}: ${err.message}`)) : resolve(port)));
  });
}

export async function openSerialLink(opts: OpenLinkOptions): Promise<BoardLink> {
  const port = await openPort(opts.path, opts.baudRate);
  let BoardSession: ProtocolModule['BoardSession'];
  try {
    ({ BoardSession } = await loadProtocol());
  } catch (err) {
    await new Promise<void>((r) => port.close(() => r()));
    throw err;
  }
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
  let session: SessionLike;
  let timer: NodeJS.Timeout | undefined;
  try {
    // a port whose other end never answers HELLO must not hold the board in 'connecting' forever
    const handshakeMs = Math.max(5000, opts.requestTimeoutMs * 5);
    session = await Promise.race([
      BoardSession.open(port, { timeoutMs: opts.requestTimeoutMs, requestTimeoutMs: opts.requestTimeoutMs }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no HELLO answer on ${opts.path} within ${handshakeMs} ms`)), handshakeMs);
      }),
    ]);
  } catch (err) {
    await new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r()));
    throw err;
  } finally {
    clearTimeout(timer);
  }
  session.on('disconnect', (reason: unknown) => markLost(typeof reason === 'string' ? reason : `port ${opts.path} disconnected`));
  const bootCbs: (() => void)[] = [];
  const logCbs: ((level: number, text: string) => void)[] = [];
  session.on('reset', () => bootCbs.forEach((cb) => cb()));
  session.on('log', (...args: unknown[]) => {
    const a = args[0] as { level?: number; text?: string } | number;
    const level = typeof a === 'number' ? a : (a?.level ?? 1);
    const text = typeof a === 'number' ? String(args[1] ?? '') : (a?.text ?? '');
    logCbs.forEach((cb) => cb(level, text));
  });

  const counters = (): LinkCounters => {
    const c = typeof session.counters === 'function' ? session.counters() : (session.counters ?? {});
    return { retransmits: c.retransmits ?? 0, timeouts: c.timeouts ?? 0, naks: c.naks ?? 0 };
  };

  return {
    hello: helloInfo(session.hello),
    async loadModel(blob) {
      const r = await session.loadModel(blob);
      return {
        weightsSha256: hex(r.weightsSha256 ?? r.sha256),
        weightsBytes: num(r, 'weightsBytes', 'weights_bytes'),
        inputBytes: num(r, 'inputBytes', 'input_bytes'),
        classes: num(r, 'classes'),
        layers: num(r, 'layers'),
        trainBytes: num(r, 'trainBytes', 'train_bytes'),
        inferBytes: num(r, 'inferBytes', 'infer_bytes'),
      };
    },
    async writeWeights(blob) {
      const r = await session.writeWeights(blob);
      return { sha256: hex(r.sha256 ?? r.weightsSha256), weightsBytes: num(r, 'weightsBytes', 'weights_bytes') };
    },
    async readWeights() {
      const r = await session.readWeights();
      if (r instanceof Uint8Array) return r;
      const bytes = r.bytes ?? r.data ?? r.weights;
      if (!(bytes instanceof Uint8Array)) throw new Error('weights read returned no bytes');
      return bytes;
    },
    async weightsInfo() {
      const r = await session.weightsInfo();
      return {
        sha256: hex(r.sha256),
        weightsBytes: num(r, 'weightsBytes', 'weights_bytes'),
        stepsApplied: num(r, 'stepsApplied', 'steps_applied'),
        modelSha256: hex(r.modelSha256 ?? r.model_sha256),
      };
    },
    async sendSamples(index, sampleBytes, labels, data) {
      await session.sendSamples(index, sampleBytes, labels, data);
    },
    async train(req) {
      const r = await session.train({ ...req });
      const records = (r.records as unknown[]).map((rec) => {
        if (Array.isArray(rec)) {
          const [lossPpm, counter, updatedPpm, correct, peakRam] = rec as [number, number, number, boolean, number];
          return { lossPpm: Number(lossPpm), counter: Number(counter), updatedPpm: Number(updatedPpm), correct: !!correct, peakRam: Number(peakRam) };
        }
        const o = rec as Record<string, unknown>;
        return {
          lossPpm: num(o, 'lossPpm', 'loss_ppm'),
          counter: num(o, 'counter'),
          updatedPpm: num(o, 'updatedPpm', 'updated_ppm'),
          correct: o.correct === true,
          peakRam: num(o, 'peakRam', 'peak_ram'),
        };
      });
      return { stepId: num(r, 'stepId', 'step_id'), duplicate: r.duplicate === true, stepsApplied: num(r, 'stepsApplied', 'steps_applied'), records };
    },
    async evaluate(index, count) {
      const r = await session.evaluate(index, count);
      return {
        count: num(r, 'count'),
        correct: num(r, 'correct'),
        lossPpmSum: num(r, 'lossPpmSum', 'loss_ppm_sum'),
        counter: num(r, 'counter'),
      };
    },
    async stats() {
      return statsInfo(await session.stats());
    },
    async reset() {
      await session.reset();
    },
    counters,
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
      try {
        await session.close?.();
      } catch {
        // closing a link that is already gone
      }
      await new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r()));
    },
  };
}
