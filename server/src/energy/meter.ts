// Measured power: an external meter (a Nordic PPK2 bridged to a serial logger,
// an INA219/INA226 logger on a small MCU, …) that prints one reading a line.
// The daemon keeps the recent readings and integrates them over the time a
// TRAIN took; that measured figure replaces the estimate. A PPK2 on its own
// USB port (kind ppk2) measures each step from the board's marker pulse instead.
import type { Logger } from 'pino';
import { SerialPort } from 'serialport';
import type { MeterConfig } from '../config.js';
import type { EnergyFigure } from './power-table.js';
import { Ppk2Meter } from './ppk2/meter.js';

export interface PowerMeter {
  readonly label: string;
  /** Energy in µJ drawn between two wall-clock instants (ms), or null when readings don't cover it. */
  energyBetween(startMs: number, endMs: number): number | null;
  close(): Promise<void>;
}

/** A meter that tells steps apart by itself (a marker pulse per step) rather than splitting a call's energy. */
export interface StepMeter extends PowerMeter {
  /** False while the meter cannot measure (unplugged): steps are estimated. */
  readonly available: boolean;
  /**
   * Resolves once the meter's own stream has reached `untilMs` (its samples
   * lag the board's answer), or after `timeoutMs`: then stepFigures sees
   * every pulse of the steps that ended before it.
   */
  covered(untilMs: number, timeoutMs: number): Promise<void>;
  /** One figure per step, or nulls and the reason when the steps cannot be told apart with certainty. */
  stepFigures(counters: number[], startMs: number, endMs: number): { figures: (EnergyFigure | null)[]; reason: string | null };
}

export const isStepMeter = (m: PowerMeter): m is StepMeter => typeof (m as Partial<StepMeter>).stepFigures === 'function';

/**
 * Readings as (time ms, power mW), in arrival order. Lines are
 * `<value>` or `<t_ms> <value>` (comma, tab or space separated); with a
 * timestamp the meter's clock is aligned to ours at the first line.
 */
export class ReadingBuffer {
  private t: number[] = [];
  private p: number[] = [];
  private offset: number | null = null;

  constructor(
    private readonly unit: 'mW' | 'mA',
    private readonly volts: number,
    private readonly keepMs = 10 * 60_000,
  ) {}

  addLine(line: string, arrivalMs: number): void {
    const parts = line.trim().split(/[\s,;]+/).filter(Boolean);
    if (parts.length === 0) return;
    const nums = parts.map(Number);
    if (nums.some((n) => !Number.isFinite(n))) return; // headers, comments
    let t = arrivalMs;
    let v = nums[nums.length - 1];
    if (nums.length >= 2) {
      this.offset ??= arrivalMs - nums[0];
      t = nums[0] + this.offset;
      v = nums[1];
    }
    this.add(t, this.unit === 'mA' ? v * this.volts : v);
  }

  add(tMs: number, mw: number): void {
    this.t.push(tMs);
    this.p.push(mw);
    const cutoff = tMs - this.keepMs;
    let drop = 0;
    while (drop < this.t.length && this.t[drop] < cutoff) drop++;
    if (drop > 1024) {
      this.t = this.t.slice(drop);
      this.p = this.p.slice(drop);
    }
  }

  /** Trapezoidal integral of power over [start, end] in µJ; null without a reading on both sides. */
  energyBetween(startMs: number, endMs: number): number | null {
    const n = this.t.length;
    if (n < 2 || endMs <= startMs || this.t[0] > startMs || this.t[n - 1] < endMs) return null;
    const at = (ms: number): number => {
      let lo = 0;
      let hi = n - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (this.t[mid] <= ms) lo = mid;
        else hi = mid;
      }
      const span = this.t[hi] - this.t[lo];
      return span <= 0 ? this.p[lo] : this.p[lo] + ((this.p[hi] - this.p[lo]) * (ms - this.t[lo])) / span;
    };
    let mwMs = 0;
    let prevT = startMs;
    let prevP = at(startMs);
    for (let i = 0; i < n; i++) {
      if (this.t[i] <= startMs) continue;
      if (this.t[i] >= endMs) break;
      mwMs += ((prevP + this.p[i]) / 2) * (this.t[i] - prevT);
      prevT = this.t[i];
      prevP = this.p[i];
    }
    const endP = at(endMs);
    mwMs += ((prevP + endP) / 2) * (endMs - prevT);
    return mwMs; // mW × ms = µJ
  }
}

export class SerialLogMeter implements PowerMeter {
  readonly label: string;
  private readonly port: SerialPort;
  private readonly readings: ReadingBuffer;
  private pending = '';

  constructor(cfg: Extract<MeterConfig, { kind: 'serial-log' }>) {
    this.label = cfg.label ?? `serial power logger on ${cfg.path}`;
    this.readings = new ReadingBuffer(cfg.unit ?? 'mW', cfg.volts ?? 3.3);
    this.port = new SerialPort({ path: cfg.path, baudRate: cfg.baudRate ?? 115200, autoOpen: true });
    this.port.on('error', () => {
      // a meter that goes away only means estimates are used again
    });
    this.port.on('data', (chunk: Buffer) => {
      const now = Date.now();
      const text = this.pending + chunk.toString('latin1');
      const lines = text.split('\n');
      this.pending = lines.pop() ?? '';
      for (const line of lines) this.readings.addLine(line, now);
    });
  }

  energyBetween(startMs: number, endMs: number): number | null {
    return this.readings.energyBetween(startMs, endMs);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.port.isOpen) return resolve();
      this.port.close(() => resolve());
    });
  }
}

export function openMeter(cfg: MeterConfig, log?: Logger): PowerMeter {
  switch (cfg.kind) {
    case 'serial-log':
      return new SerialLogMeter(cfg);
    case 'ppk2':
      return new Ppk2Meter({ ...cfg, log });
  }
}
