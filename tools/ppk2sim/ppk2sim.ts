// A SIMULATOR of the Nordic PPK2's serial protocol, not hardware: a PTY pair
// (socat) whose far end answers GetMetadata with plausible calibration, honours
// SetPowerMode, RegulatorSet, DeviceRunningSet, AverageStart and AverageStop,
// and streams 4-byte sample words at a real (or chosen) rate in which the
// marker channel goes high for the pulses a caller asks for, at a given
// current. It records the ground truth of each pulse it emitted.
import fs from 'node:fs';
import { SerialPort } from 'serialport';
import {
  defaultCalibration,
  encodeCurrent,
  packSample,
  Ppk2Cmd,
  PPK2_COUNTER_MASK,
  PPK2_SAMPLE_US,
  type Ppk2Calibration,
} from '../../server/src/energy/ppk2/protocol.js';
import { PtyPair } from '../proc/linksim.js';

export interface Ppk2SimOptions {
  /** Samples per second (the PPK2's is 100 000). */
  rate?: number;
  /** Current while the marker is low, mA. */
  idleMa?: number;
  calibration?: Ppk2Calibration;
  /** Marker input the pulses drive (D0 by default). */
  markerChannel?: number;
}

export interface SimPulse {
  widthMs: number;
  currentMa: number;
}

/** What the simulator actually emitted for one pulse. */
export interface SimPulseTruth {
  startSample: number;
  samples: number;
  currentMa: number;
  /** currentMa × VDD × samples × sample period: the energy a perfect meter reads. */
  uj: number;
}

/** Calibration shaped like a real unit's metadata (values in the range seen on PPK2s). */
export function simCalibration(): Ppk2Calibration {
  const c = defaultCalibration();
  c.r = [1003.3, 101.56, 10.33, 0.988, 0.052];
  c.gs = [0.0001, 0.0009, 0.0021, 0.0008, 0.0052];
  c.gi = [0.9912, 0.9987, 1.0031, 0.9955, 1.0078];
  c.o = [112.7, 75.4, 64.1, 58.9, 57.2];
  c.s = [0.0000001, 0.00000012, 0.0000009, 0.0000021, 0.0000035];
  c.i = [-0.0000003, -0.0000005, -0.0000022, -0.000013, -0.00011];
  c.ug = [1, 1, 1, 1, 1];
  return c;
}

interface Scheduled {
  start: number;
  end: number;
  word: number;
  truth: SimPulseTruth;
}

export class Ppk2Simulator {
  mode: 'source' | 'ampere' | null = null;
  vddMv = 3700;
  devicePowered = false;
  streaming = false;
  /** Every command byte sequence received, for tests. */
  readonly commands: number[][] = [];
  readonly truths: SimPulseTruth[] = [];
  private readonly rate: number;
  private readonly cal: Ppk2Calibration;
  private readonly marker: number;
  private readonly idleMa: number;
  private sent = 0;
  private t0 = 0;
  private timer: NodeJS.Timeout | null = null;
  private rx: number[] = [];
  private queue: Scheduled[] = [];
  private waiters: { upTo: number; resolve: () => void }[] = [];
  private closed = false;

  private constructor(
    private readonly pair: PtyPair,
    private readonly port: SerialPort,
    opts: Ppk2SimOptions,
  ) {
    this.rate = opts.rate ?? 100_000;
    this.cal = opts.calibration ?? simCalibration();
    this.marker = opts.markerChannel ?? 0;
    this.idleMa = opts.idleMa ?? 1.5;
    port.on('data', (chunk: Buffer) => this.receive(chunk));
    port.on('error', () => undefined);
  }

  /** A simulator serving a fresh PTY pair under dir; the meter opens `path`. */
  static async start(dir: string, opts: Ppk2SimOptions = {}): Promise<Ppk2Simulator> {
    const pair = await PtyPair.start(dir, 'ppk2sim');
    const port = await new Promise<SerialPort>((resolve, reject) => {
      const p = new SerialPort({ path: fs.realpathSync(pair.a), baudRate: 115200, autoOpen: false });
      p.open((err) => (err ? reject(err) : resolve(p)));
    });
    return new Ppk2Simulator(pair, port, opts);
  }

  get path(): string {
    return this.pair.b;
  }

  /** Samples emitted since AverageStart. */
  get samplesSent(): number {
    return this.sent;
  }

  metadataText(): string {
    const c = this.cal;
    const lines = ['Calibrated: 0'];
    for (const key of ['r', 'gs', 'gi', 'o', 's', 'i', 'ug'] as const) {
      c[key].forEach((v, r) => lines.push(`${key.toUpperCase()}${r}: ${v.toFixed(7)}`));
    }
    lines.push(`VDD: ${this.vddMv}`, 'HW: 173588', `mode: ${this.mode === 'ampere' ? 1 : 2}`, 'IA: 56', 'END');
    return `${lines.join('\n')}\n`;
  }

  private receive(chunk: Buffer): void {
    for (const b of chunk) this.rx.push(b);
    const args: Record<number, number> = { [Ppk2Cmd.SetPowerMode]: 1, [Ppk2Cmd.RegulatorSet]: 2, [Ppk2Cmd.DeviceRunningSet]: 1 };
    while (this.rx.length > 0) {
      const op = this.rx[0]!;
      const need = 1 + (args[op] ?? 0);
      if (this.rx.length < need) return;
      const cmd = this.rx.splice(0, need);
      this.commands.push(cmd);
      this.execute(cmd);
    }
  }

  private execute(cmd: number[]): void {
    switch (cmd[0]) {
      case Ppk2Cmd.GetMetadata:
        this.port.write(this.metadataText());
        break;
      case Ppk2Cmd.SetPowerMode:
        this.mode = cmd[1] === 1 ? 'ampere' : 'source';
        break;
      case Ppk2Cmd.RegulatorSet:
        this.vddMv = (cmd[1]! << 8) | cmd[2]!;
        break;
      case Ppk2Cmd.DeviceRunningSet:
        this.devicePowered = cmd[1] === 1;
        break;
      case Ppk2Cmd.AverageStart:
        if (!this.streaming) this.startStream();
        break;
      case Ppk2Cmd.AverageStop:
        this.stopStream();
        break;
      default:
        break; // other opcodes are not simulated
    }
  }

  private startStream(): void {
    this.streaming = true;
    this.sent = 0;
    this.t0 = performance.now();
    this.timer = setInterval(() => this.pump(), 5);
  }

  private stopStream(): void {
    this.streaming = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private wordFor(ma: number, counter: number, logic: number): number {
    // in source mode with the device switched off nothing flows
    const amps = this.mode === 'source' && !this.devicePowered ? 0 : ma / 1000;
    const { range, adc } = encodeCurrent(this.cal, amps, this.vddMv);
    return packSample({ adc, range, counter, logic });
  }

  /** Writes the samples owed since the stream started (catching up after a stall). */
  private pump(): void {
    if (this.closed) return;
    let owed = Math.floor(((performance.now() - this.t0) * this.rate) / 1000) - this.sent;
    if (owed > this.rate) {
      // stalled over a second: those samples are lost and counted as such, as a PPK2's would be
      const skip = owed - this.rate;
      this.sent += skip;
      owed = this.rate;
    }
    if (owed <= 0) return;
    const buf = Buffer.allocUnsafe(owed * 4);
    const idle = this.wordFor(this.idleMa, 0, 0);
    const counterMask = ~(PPK2_COUNTER_MASK << 18);
    for (let k = 0; k < owed; k++) {
      const n = this.sent + k;
      while (this.queue.length > 0 && this.queue[0]!.end <= n) this.queue.shift();
      const p = this.queue[0];
      const base = p && n >= p.start ? p.word : idle;
      buf.writeUInt32LE((((base & counterMask) | ((n & PPK2_COUNTER_MASK) << 18)) >>> 0), k * 4);
    }
    this.sent += owed;
    this.port.write(buf);
    this.waiters = this.waiters.filter((w) => (w.upTo <= this.sent ? (w.resolve(), false) : true));
  }

  /**
   * Emits the pulses one after another, gapMs of idle before each and after the
   * last; resolves with their ground truth once every sample of them (and the
   * trailing gap) has been written to the PTY.
   */
  pulses(list: SimPulse[], gapMs = 5): Promise<SimPulseTruth[]> {
    if (!this.streaming) return Promise.reject(new Error('the simulator is not streaming (no AverageStart)'));
    const perMs = this.rate / 1000;
    let at = Math.max(this.sent, this.queue.at(-1)?.end ?? 0) + Math.round(gapMs * perMs);
    const out: SimPulseTruth[] = [];
    for (const p of list) {
      const samples = Math.max(1, Math.round(p.widthMs * perMs));
      const amps = this.mode === 'source' && !this.devicePowered ? 0 : p.currentMa / 1000;
      const truth = { startSample: at, samples, currentMa: p.currentMa, uj: amps * (this.vddMv / 1000) * samples * PPK2_SAMPLE_US * (100_000 / this.rate) };
      this.queue.push({ start: at, end: at + samples, word: this.wordFor(p.currentMa, 0, 1 << this.marker), truth });
      out.push(truth);
      at += samples + Math.round(gapMs * perMs);
    }
    this.truths.push(...out);
    return new Promise((resolve) => this.waiters.push({ upTo: at, resolve: () => resolve(out) }));
  }

  /** Pulls the USB cable: the PTY pair goes away under the meter. */
  async unplug(): Promise<void> {
    this.closed = true;
    this.stopStream();
    if (this.port.isOpen) await new Promise<void>((r) => this.port.close(() => r()));
    await this.pair.stop();
  }

  async stop(): Promise<void> {
    await this.unplug();
  }
}
