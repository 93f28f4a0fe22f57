// Active-power figures of the real boards (firmware/boards.json) and the
// estimate derived from them: energy = counter / clock_hz × active_mW.
import fs from 'node:fs';

export interface PowerModel {
  board: string;
  cpu: string;
  clockHz: number;
  activeMw: number;
  source: string;
}

interface BoardsJson {
  classes: { class: string; cpu: string; qemu?: { machine: string }; boards: { zephyr: string; clock_hz: number; active_mw: number; power_source: string }[] }[];
}

export type CounterUnit = 'cycles' | 'instructions' | 'ns';

export interface EnergyFigure {
  uj: number;
  source: 'measured' | 'estimated';
  /** How the figure was obtained, for people reading the metrics. */
  basis: string;
}

export class PowerTable {
  readonly models: PowerModel[];
  private readonly byBoard = new Map<string, PowerModel>();
  private readonly byMachine = new Map<string, PowerModel>();
  private readonly byClass = new Map<string, PowerModel>();

  constructor(file: string) {
    let json: BoardsJson = { classes: [] };
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8')) as BoardsJson;
    } catch {
      // no table: every estimate is unavailable, which the metrics say
    }
    this.models = [];
    for (const cls of json.classes ?? []) {
      let first: PowerModel | undefined;
      for (const b of cls.boards ?? []) {
        const m: PowerModel = { board: b.zephyr, cpu: cls.cpu, clockHz: b.clock_hz, activeMw: b.active_mw, source: b.power_source };
        this.models.push(m);
        this.byBoard.set(b.zephyr, m);
        first ??= m;
      }
      if (first) {
        this.byClass.set(cls.class, first);
        if (cls.qemu?.machine) this.byMachine.set(cls.qemu.machine, first);
      }
    }
  }

  /**
   * The power model for a device: its configured power board, else the board
   * it reports, else the real board a QEMU stand-in emulates, else its class.
   */
  resolve(opts: { powerBoard?: string; board?: string; deviceClass?: string }): PowerModel | null {
    if (opts.powerBoard && this.byBoard.has(opts.powerBoard)) return this.byBoard.get(opts.powerBoard)!;
    if (opts.board) {
      if (this.byBoard.has(opts.board)) return this.byBoard.get(opts.board)!;
      const machine = opts.board.replace(/^qemu-/, '');
      if (this.byMachine.has(machine)) return this.byMachine.get(machine)!;
    }
    if (opts.deviceClass && this.byClass.has(opts.deviceClass)) return this.byClass.get(opts.deviceClass)!;
    return null;
  }
}

/**
 * Estimated energy of one step. Cycles are divided by the real board's clock;
 * emulated instruction counts are treated as cycles (one instruction per cycle,
 * which under-counts loads, stores and branches on a real core); nanoseconds
 * (the host twin) are taken as time spent at the board's active power.
 */
export function estimateStepEnergy(counter: number, unit: CounterUnit | string, model: PowerModel | null): EnergyFigure | null {
  if (!model) return null;
  let seconds: number;
  let basis: string;
  if (unit === 'cycles') {
    seconds = counter / model.clockHz;
    basis = `cycles / ${model.clockHz} Hz x ${model.activeMw} mW (${model.board})`;
  } else if (unit === 'instructions') {
    seconds = counter / model.clockHz;
    basis = `emulated instructions counted as cycles / ${model.clockHz} Hz x ${model.activeMw} mW (${model.board})`;
  } else if (unit === 'ns') {
    seconds = counter / 1e9;
    basis = `host time x ${model.activeMw} mW (${model.board})`;
  } else {
    return null;
  }
  return { uj: seconds * model.activeMw * 1000, source: 'estimated', basis };
}
