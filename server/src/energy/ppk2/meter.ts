// A Nordic PPK2 on its USB CDC port: reads its calibration, sets source or
// ampere mode, streams samples and turns the marker channel's high pulses into
// per-step energy. A PPK2 that goes away leaves estimates in place; the meter
// keeps trying to open it again.
import { SerialPort } from 'serialport';
import type { Logger } from 'pino';
import type { EnergyFigure } from '../power-table.js';
import type { StepMeter } from '../meter.js';
import { metadataEnd, parseMetadata, ppk2Commands, type Ppk2Metadata } from './protocol.js';
import { attributePulses, Ppk2SampleStream, type MarkerPulse } from './pulses.js';

export interface Ppk2MeterOptions {
  path: string;
  mode: 'source' | 'ampere';
  vddMv?: number;
  volts?: number;
  markerChannel?: number;
  label?: string;
  /** How far outside a TRAIN's send/answer times its pulses may be timed (our clock vs the PPK2's). */
  slackMs?: number;
  metadataTimeoutMs?: number;
  reopenMs?: number;
  /** No samples for this long means the PPK2 is gone. */
  silenceMs?: number;
  log?: Logger;
}

type State = 'opening' | 'streaming' | 'unplugged' | 'closed';

export class Ppk2Meter implements StepMeter {
  readonly kind = 'ppk2';
  readonly vddMv: number;
  readonly markerChannel: number;
  metadata: Ppk2Metadata | null = null;
  private port: SerialPort | null = null;
  private stream: Ppk2SampleStream | null = null;
  private state: State = 'opening';
  private reopenTimer: NodeJS.Timeout | null = null;
  private readonly name: string;
  /** Resolves once the first open has its first samples, or has failed (for callers that want to wait). */
  readonly ready: Promise<void>;

  constructor(private readonly opts: Ppk2MeterOptions) {
    const vdd = opts.vddMv ?? (opts.volts !== undefined ? opts.volts * 1000 : undefined);
    if (vdd === undefined) {
      throw new Error(opts.mode === 'source' ? 'a PPK2 in source mode needs vddMv (the voltage it powers the board at)' : 'a PPK2 in ampere mode needs vddMv or volts (the board supply voltage)');
    }
    this.vddMv = vdd;
    this.markerChannel = opts.markerChannel ?? 0;
    this.name = opts.label ?? `PPK2 on ${opts.path} (${opts.mode} mode, ${vdd} mV, marker D${this.markerChannel})`;
    this.ready = this.open();
  }

  get label(): string {
    return this.state === 'streaming' ? this.name : `${this.name}: ${this.state === 'opening' ? 'not streaming yet' : 'unplugged'}, energy estimated`;
  }

  get available(): boolean {
    return this.state === 'streaming';
  }

  /** Pulses seen so far (newest last); for diagnostics and tests. */
  get pulses(): readonly MarkerPulse[] {
    return this.stream?.pulses ?? [];
  }

  private async open(): Promise<void> {
    const log = this.opts.log;
    try {
      const port = await openPort(this.opts.path);
      if (this.state === 'closed') {
        port.close();
        return;
      }
      this.port = port;
      port.on('error', () => undefined); // a close follows
      port.on('close', () => this.unplugged());
      // a PPK2 left streaming by an earlier session is stopped before its metadata is asked for
      const discard = (): void => undefined;
      port.on('data', discard);
      port.write(ppk2Commands.averageStop());
      await new Promise((r) => setTimeout(r, 50));
      port.off('data', discard);
      this.metadata = await readMetadata(port, this.opts.metadataTimeoutMs ?? 2000);
      port.write(ppk2Commands.setPowerMode(this.opts.mode));
      if (this.opts.mode === 'source') port.write(ppk2Commands.regulatorSet(this.vddMv));
      port.write(ppk2Commands.deviceRunning(true));
      const stream = new Ppk2SampleStream({ calibration: this.metadata.calibration, vddMv: this.vddMv, markerChannel: this.markerChannel });
      let lastData = Date.now();
      port.on('data', (chunk: Buffer) => {
        lastData = Date.now();
        stream.push(chunk, lastData);
      });
      // a streaming PPK2 sends 400 kB/s: seconds of silence are a lost port even when no close is reported
      const watchdog = setInterval(() => {
        if (this.port !== port) clearInterval(watchdog);
        else if (Date.now() - lastData > (this.opts.silenceMs ?? 3000)) {
          clearInterval(watchdog);
          this.unplugged();
        }
      }, 250);
      watchdog.unref();
      this.stream = stream;
      const firstSamples = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        port.once('data', () => (clearTimeout(t), resolve()));
      });
      port.write(ppk2Commands.averageStart());
      this.state = 'streaming';
      await firstSamples;
      log?.info({ meter: this.opts.path, hw: this.metadata.hw, calibrated: this.metadata.calibrated }, 'PPK2 streaming');
    } catch (err) {
      log?.warn({ meter: this.opts.path, err: (err as Error).message }, 'PPK2 not available; energy is estimated');
      this.unplugged();
    }
  }

  private unplugged(): void {
    if (this.state === 'closed') return;
    if (this.state === 'streaming') this.opts.log?.warn({ meter: this.opts.path }, 'PPK2 unplugged; energy is estimated until it streams again');
    this.state = 'unplugged';
    this.stream?.end();
    this.stream = null;
    const port = this.port;
    this.port = null;
    if (port?.isOpen) port.close(() => undefined);
    if (!this.reopenTimer) {
      this.reopenTimer = setTimeout(() => {
        this.reopenTimer = null;
        if (this.state !== 'closed') void this.open();
      }, this.opts.reopenMs ?? 2000);
      this.reopenTimer.unref();
    }
  }

  async covered(untilMs: number, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    const slack = this.opts.slackMs ?? 25;
    while (this.available && (this.stream?.lastMs ?? -Infinity) < untilMs + slack && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  stepFigures(counters: number[], startMs: number, endMs: number): { figures: (EnergyFigure | null)[]; reason: string | null } {
    const s = this.stream;
    const view = s
      ? { pulses: s.pulses, losses: s.losses, firstMs: s.firstMs, lastMs: s.lastMs, markerHigh: s.markerHigh }
      : { pulses: [], losses: [], firstMs: null, lastMs: null, markerHigh: false };
    const a = attributePulses(view, counters.length, startMs, endMs, this.opts.slackMs ?? 25);
    if (a.kind === 'uncertain') return { figures: counters.map(() => null), reason: a.reason };
    const basis = `${this.name}: marker pulse`;
    return {
      figures: a.pulses.map((p) => ({ uj: p.uj, source: 'measured' as const, basis: `${basis} of ${(p.endMs - p.startMs).toFixed(2)} ms at ${p.meanMa.toFixed(3)} mA` })),
      reason: null,
    };
  }

  /** Whole-interval energy is not what a marker meter measures; steps come from stepFigures. */
  energyBetween(): number | null {
    return null;
  }

  async close(): Promise<void> {
    this.state = 'closed';
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = null;
    const port = this.port;
    this.port = null;
    if (!port?.isOpen) return;
    await new Promise<void>((resolve) => {
      // stop streaming; the board's supply (source mode) is left as it is
      port.write(ppk2Commands.averageStop(), () => port.close(() => resolve()));
    });
  }
}

function openPort(path: string): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    // USB CDC: the baud rate is ignored by the PPK2
    const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
    port.open((err) => (err ? reject(err) : resolve(port)));
  });
}

function readMetadata(port: SerialPort, timeoutMs: number): Promise<Ppk2Metadata> {
  return new Promise((resolve, reject) => {
    let text = '';
    let asks = 0;
    const ask = (): void => {
      asks++;
      text = '';
      port.write(ppk2Commands.getMetadata());
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (metadataEnd(text) >= 0) {
        finish();
        resolve(parseMetadata(text));
      }
    };
    // ppk2-api-python notes the first answer can be incomplete: ask once more before giving up
    const timer = setInterval(() => (asks < 2 ? ask() : (finish(), reject(new Error(`no metadata from PPK2 within ${timeoutMs * 2} ms`)))), timeoutMs);
    const onClose = (): void => {
      finish();
      reject(new Error('PPK2 port closed while reading metadata'));
    };
    const finish = (): void => {
      clearInterval(timer);
      port.off('data', onData);
      port.off('close', onClose);
    };
    port.on('data', onData);
    port.on('close', onClose);
    ask();
  });
}
