// Energy per training step: measured when a meter is configured for the board,
// estimated from the power table otherwise; each figure says which.
import type { Logger } from 'pino';
import type { DeviceEntry } from '../config.js';
import { isStepMeter, openMeter, type PowerMeter } from './meter.js';
import { estimateStepEnergy, PowerTable, type EnergyFigure, type PowerModel } from './power-table.js';

export type { EnergyFigure, PowerModel } from './power-table.js';

export interface PowerInfo {
  model: PowerModel | null;
  meter: string | null;
  source: 'measured' | 'estimated' | 'none';
}

export class EnergyService {
  readonly table: PowerTable;
  private readonly meters = new Map<string, PowerMeter>();

  constructor(
    boardsFile: string,
    private readonly log: Logger,
  ) {
    this.table = new PowerTable(boardsFile);
  }

  /** Opens the meter a device entry names, if any; a meter that fails to open leaves estimates in place. */
  attach(entry: DeviceEntry): void {
    if (!entry.meter || this.meters.has(entry.id)) return;
    try {
      this.meters.set(entry.id, openMeter(entry.meter, this.log.child({ deviceId: entry.id })));
      this.log.info({ deviceId: entry.id, meter: entry.meter.path }, 'power meter attached');
    } catch (err) {
      this.log.warn({ deviceId: entry.id, err: (err as Error).message }, 'power meter unavailable; energy is estimated');
    }
  }

  /** Registers a meter programmatically (a custom source, or tests). */
  setMeter(deviceId: string, meter: PowerMeter): void {
    this.meters.set(deviceId, meter);
  }

  powerModel(entry: DeviceEntry, reportedBoard?: string): PowerModel | null {
    return this.table.resolve({ powerBoard: entry.powerBoard, board: reportedBoard ?? entry.board, deviceClass: entry.class });
  }

  info(entry: DeviceEntry, reportedBoard?: string): PowerInfo {
    const model = this.powerModel(entry, reportedBoard);
    const meter = this.meters.get(entry.id);
    const measuring = meter !== undefined && (!isStepMeter(meter) || meter.available);
    return { model, meter: meter?.label ?? null, source: measuring ? 'measured' : model ? 'estimated' : 'none' };
  }

  /**
   * Figures for the records of one TRAIN that ran between startMs and endMs.
   * A meter's energy for the whole call is split over the records by their
   * counters; without meter coverage each record is estimated on its own.
   * A marker meter (PPK2) measures each record from its own pulse instead.
   */
  async figures(
    entry: DeviceEntry,
    reportedBoard: string | undefined,
    unit: string,
    counters: number[],
    startMs: number,
    endMs: number,
  ): Promise<(EnergyFigure | null)[]> {
    const meter = this.meters.get(entry.id);
    const model = this.powerModel(entry, reportedBoard);
    if (meter && isStepMeter(meter)) {
      // one marker pulse per step, once the meter's stream has caught up with the answer; a step whose pulse is uncertain keeps its estimate
      await meter.covered(endMs, 1000);
      const { figures, reason } = meter.stepFigures(counters, startMs, endMs);
      if (reason) this.log.warn({ deviceId: entry.id, steps: counters.length, reason }, 'steps not measured; energy is estimated');
      return counters.map((c, i) => figures[i] ?? estimateStepEnergy(c, unit, model));
    }
    if (meter) {
      const total = meter.energyBetween(startMs, endMs);
      if (total !== null) {
        const sum = counters.reduce((a, b) => a + b, 0);
        return counters.map((c) => ({
          uj: sum > 0 ? (total * c) / sum : total / counters.length,
          source: 'measured' as const,
          basis: `${meter.label}, split over the call's samples by ${unit}`,
        }));
      }
    }
    return counters.map((c) => estimateStepEnergy(c, unit, model));
  }

  async close(): Promise<void> {
    await Promise.all([...this.meters.values()].map((m) => m.close().catch(() => undefined)));
    this.meters.clear();
  }
}
