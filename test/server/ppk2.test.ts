// The PPK2 meter: its protocol decoder against values worked out by hand from
// the reference formulas, its pulse attribution rules, and the meter and the
// daemon against a PPK2 SIMULATOR (tools/ppk2sim) on a real PTY — a simulator
// of the serial protocol, not a PPK2: no current is measured in these tests.
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { SerialPort } from 'serialport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeMessage, Flags, FrameSplitter, MsgType } from '../../protocol/src/index.js';
import { Ppk2Meter } from '../../server/src/energy/ppk2/meter.js';
import {
  defaultCalibration,
  encodeCurrent,
  packSample,
  parseMetadata,
  ppk2Commands,
  sampleCurrentA,
  unpackSample,
} from '../../server/src/energy/ppk2/protocol.js';
import { attributePulses, Ppk2SampleStream, type StreamView } from '../../server/src/energy/ppk2/pulses.js';
import { PtyPair } from '../../tools/proc/linksim.js';
import { TwinProcess, twinBuilt } from '../../tools/proc/twin.js';
import { Ppk2Simulator, simCalibration, type SimPulse } from '../../tools/ppk2sim/ppk2sim.js';
import { apiClient, buildApp, tempDir, until } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('PPK2 protocol decoder', () => {
  it('unpacks a sample word: ADC bits 0–13, range 14–16, counter 18–23, logic 24–31', () => {
    // adc 1000, range 2, counter 11, D0 high: 1000 | 2<<14 | 11<<18 | 1<<24 = 0x012C83E8
    const word = Buffer.from('e8832c01', 'hex').readUInt32LE(0);
    expect(word).toBe(0x012c83e8);
    expect(unpackSample(word)).toEqual({ adc: 1000, range: 2, counter: 11, logic: 1 });
    expect(unpackSample(0xffffffff)).toEqual({ adc: 16383, range: 7, counter: 63, logic: 255 });
    expect(packSample({ adc: 1000, range: 2, counter: 11, logic: 1 })).toBe(0x012c83e8);
  });

  it('computes current from the range calibration as the references do', () => {
    // default calibration, range 0: x = 1000·4 · (1.8/163840) / 1031.64; I = x·(1·x + 1)
    expect(sampleCurrentA(defaultCalibration(), 0, 1000, 3300)).toBeCloseTo(4.259934130280418e-5, 15);
    // a calibrated unit, range 2, VDD 3 V: x = (5000·4 − 64.1)·(1.8/163840)/10.33;
    // I = x·(0.0021·x + 1.0031) + 0.0000009·3 − 0.0000022
    expect(sampleCurrentA(simCalibration(), 2, 5000, 3000)).toBeCloseTo(0.02126972170038234, 12);
    // ranges past 4 read as range 4 (Math.min in both references)
    expect(sampleCurrentA(defaultCalibration(), 7, 100, 3300)).toBe(sampleCurrentA(defaultCalibration(), 4, 100, 3300));
    // the simulator's inverse reads back within one ADC count
    for (const ma of [0.05, 0.8, 5, 12, 150]) {
      const { range, adc } = encodeCurrent(simCalibration(), ma / 1000, 3000);
      expect(sampleCurrentA(simCalibration(), range, adc, 3000) * 1000).toBeCloseTo(ma, 2);
    }
  });

  it('parses GetMetadata up to END; zero and -nan keep the default', () => {
    const text = 'Calibrated: 1\nR0: 1003.3410034\nR1: 0.0000000\nGS2: 0.0021000\nGI2: -nan\nO2: 64.1\nVDD: 3000\nHW: 173588\nmode: 2\nIA: 56\nEND\n';
    const m = parseMetadata(text);
    expect(m.calibration.r[0]).toBeCloseTo(1003.3410034, 7);
    expect(m.calibration.r[1]).toBe(101.65); // 0 keeps the default
    expect(m.calibration.gs[2]).toBe(0.0021);
    expect(m.calibration.gi[2]).toBe(1); // -nan keeps the default
    expect(m.calibration.o[2]).toBe(64.1);
    expect(m).toMatchObject({ vddMv: 3000, hw: '173588', mode: 2, calibrated: true });
  });

  it('encodes the commands as the references send them', () => {
    expect([...ppk2Commands.getMetadata()]).toEqual([0x19]);
    expect([...ppk2Commands.setPowerMode('ampere')]).toEqual([0x11, 1]);
    expect([...ppk2Commands.setPowerMode('source')]).toEqual([0x11, 2]);
    expect([...ppk2Commands.regulatorSet(3000)]).toEqual([0x0d, 0x0b, 0xb8]); // 3000 = 0x0BB8
    expect([...ppk2Commands.regulatorSet(100)]).toEqual([0x0d, 0x03, 0x20]); // clamped to 800 mV
    expect([...ppk2Commands.deviceRunning(true)]).toEqual([0x0c, 1]);
    expect([...ppk2Commands.averageStart()]).toEqual([0x06]);
    expect([...ppk2Commands.averageStop()]).toEqual([0x07]);
  });
});

/** Sample words: `spans` of [samples, mA, marker high]. */
function words(spans: [number, number, boolean][], vddMv: number, from = 0): Buffer {
  const cal = defaultCalibration();
  const total = spans.reduce((a, s) => a + s[0], 0);
  const buf = Buffer.alloc(total * 4);
  let n = 0;
  for (const [count, ma, high] of spans) {
    const { range, adc } = encodeCurrent(cal, ma / 1000, vddMv);
    for (let k = 0; k < count; k++, n++) buf.writeUInt32LE(packSample({ adc, range, counter: (from + n) & 63, logic: high ? 1 : 0 }), n * 4);
  }
  return buf;
}

describe('marker pulses and their attribution', () => {
  it('finds pulses across chunk boundaries and integrates their energy', () => {
    const stream = new Ppk2SampleStream({ calibration: defaultCalibration(), vddMv: 3000, markerChannel: 0 });
    const bytes = words([[100, 1, false], [500, 10, true], [100, 1, false], [200, 4, true], [50, 1, false]], 3000);
    // cut at odd places, including inside a word
    const cuts = [0, 3, 777, 1601, 2002, bytes.length];
    for (let i = 1; i < cuts.length; i++) stream.push(bytes.subarray(cuts[i - 1], cuts[i]), 1000 + i);
    expect(stream.pulses).toHaveLength(2);
    const [a, b] = stream.pulses;
    expect(a!.samples).toBe(500);
    expect(b!.samples).toBe(200);
    // 10 mA × 3 V × 5 ms = 150 µJ; 4 mA × 3 V × 2 ms = 24 µJ (ADC quantization: well under 0.5 %)
    expect(a!.uj).toBeCloseTo(150, 0);
    expect(b!.uj).toBeCloseTo(24, 0);
    expect(a!.endMs - a!.startMs).toBeCloseTo(5, 6);
  });

  it('notices lost samples from the counter', () => {
    const stream = new Ppk2SampleStream({ calibration: defaultCalibration(), vddMv: 3000, markerChannel: 0 });
    stream.push(words([[10, 1, false], [20, 5, true]], 3000, 0), 0);
    stream.push(words([[20, 5, true], [10, 1, false]], 3000, 40), 1); // counters 30..39 never came
    expect(stream.losses).toHaveLength(1);
    expect(stream.pulses[0]).toMatchObject({ lossy: true });
  });

  const view = (pulses: [number, number][], extra: Partial<StreamView> = {}): StreamView => ({
    pulses: pulses.map(([s, e]) => ({ startN: s * 100, endN: e * 100, startMs: s, endMs: e, samples: (e - s) * 100, uj: e - s, meanMa: 1, lossy: false, used: false })),
    losses: [],
    firstMs: 0,
    lastMs: 10_000,
    markerHigh: false,
    ...extra,
  });

  it('gives each step its pulse in order when the count matches', () => {
    const v = view([[1010, 1020], [1030, 1045], [1050, 1060]]);
    const a = attributePulses(v, 3, 1000, 1070, 5);
    expect(a.kind).toBe('measured');
    expect(a.kind === 'measured' && a.pulses.map((p) => p.uj)).toEqual([10, 15, 10]);
    // the pulses are spent: the same window again finds none
    expect(attributePulses(v, 3, 1000, 1070, 5)).toMatchObject({ kind: 'uncertain' });
  });

  it('attributes nothing when a pulse is missing, extra, lossy, late or unstreamed — and says which', () => {
    expect(attributePulses(view([[1010, 1020], [1030, 1040]]), 3, 1000, 1070, 5)).toMatchObject({ kind: 'uncertain', reason: expect.stringMatching(/missing/) });
    expect(attributePulses(view([[1010, 1020], [1030, 1040], [1050, 1055], [1058, 1060]]), 3, 1000, 1070, 5)).toMatchObject({ kind: 'uncertain', reason: expect.stringMatching(/extra/) });
    const lossy = view([[1010, 1020]]);
    lossy.pulses[0]!.lossy = true;
    expect(attributePulses(lossy, 1, 1000, 1070, 5)).toMatchObject({ kind: 'uncertain', reason: expect.stringMatching(/lost samples/) });
    expect(attributePulses(view([[1010, 1020]], { lastMs: 1030, markerHigh: true }), 2, 1000, 1070, 5)).toMatchObject({ reason: expect.stringMatching(/had arrived/) });
    expect(attributePulses(view([], { firstMs: null, lastMs: null }), 1, 1000, 1070, 5)).toMatchObject({ reason: expect.stringMatching(/no PPK2/) });
    expect(attributePulses(view([[1010, 1020]], { losses: [1025] }), 1, 1000, 1070, 5)).toMatchObject({ reason: expect.stringMatching(/lost/) });
  });

  it('drops pulses no TRAIN claimed (idle) and leaves later ones for the next TRAIN', () => {
    const v = view([[100, 110], [1010, 1020], [2010, 2020]]);
    const a = attributePulses(v, 1, 1000, 1030, 5);
    expect(a.kind === 'measured' && a.pulses[0]!.startMs).toBe(1010);
    expect(v.pulses[0]!.used).toBe(true);
    expect(v.pulses[2]!.used).toBe(false);
  });
});

describe('PPK2 meter against the simulator over a PTY (a simulator, not hardware)', () => {
  let sim: Ppk2Simulator | null = null;
  let meter: Ppk2Meter | null = null;
  afterEach(async () => {
    await meter?.close();
    await sim?.stop();
    meter = null;
    sim = null;
  });

  it('sets the mode and VDD, streams at 100 kS/s, and measures pulses of known width and current within 1 %', async () => {
    sim = await Ppk2Simulator.start(tempDir('tinyrig-ppk2-'));
    meter = new Ppk2Meter({ path: sim.path, mode: 'source', vddMv: 3000 });
    await meter.ready;
    expect(meter.available).toBe(true);
    expect(meter.metadata?.calibration.r[2]).toBeCloseTo(10.33, 5);
    expect(sim).toMatchObject({ mode: 'source', vddMv: 3000, devicePowered: true, streaming: true });
    const asked: SimPulse[] = [
      { widthMs: 20, currentMa: 5 },
      { widthMs: 10, currentMa: 12 },
      { widthMs: 40, currentMa: 0.8 },
      { widthMs: 3, currentMa: 150 },
    ];
    const started = Date.now();
    const truth = await sim.pulses(asked, 10);
    // the meter's stream lags our clock: covered() waits for it, as the daemon does after each TRAIN
    const ended = Date.now();
    await meter.covered(ended, 2000);
    const { figures, reason } = meter.stepFigures([1, 1, 1, 1], started, ended);
    expect(reason).toBeNull();
    const rows = truth.map((t, i) => ({ widthMs: asked[i]!.widthMs, mA: t.currentMa, truthUj: t.uj, measuredUj: figures[i]!.uj, errPct: (100 * (figures[i]!.uj - t.uj)) / t.uj }));
    console.log('PPK2 simulator pulses, measured vs truth:\n' + rows.map((r) => `  ${r.widthMs} ms @ ${r.mA} mA: truth ${r.truthUj.toFixed(3)} µJ, measured ${r.measuredUj.toFixed(3)} µJ (${r.errPct.toFixed(3)} %)`).join('\n'));
    for (const r of rows) expect(Math.abs(r.errPct)).toBeLessThan(1);
    // 100 kS/s in real time: the stream's span matches the samples sent within 10 %
    const p = meter.pulses;
    expect(p[1]!.startMs - p[0]!.startMs).toBeCloseTo(30, 0); // 20 ms pulse + 10 ms gap
  });

  it('in ampere mode leaves the regulator alone and uses the configured voltage', async () => {
    sim = await Ppk2Simulator.start(tempDir('tinyrig-ppk2-'));
    meter = new Ppk2Meter({ path: sim.path, mode: 'ampere', volts: 1.8 });
    await meter.ready;
    expect(sim.mode).toBe('ampere');
    expect(sim.commands.some((c) => c[0] === 0x0d)).toBe(false);
    const started = Date.now();
    sim.vddMv = 1800; // the simulator's supply for its truth figure: the board's own
    const [t] = await sim.pulses([{ widthMs: 15, currentMa: 7 }]);
    const ended = Date.now();
    await meter.covered(ended, 2000);
    const { figures } = meter.stepFigures([1], started, ended);
    expect(Math.abs(figures[0]!.uj - t!.uj) / t!.uj).toBeLessThan(0.01); // 7 mA × 1.8 V × 15 ms = 189 µJ
  });

  it('with no pulses for a few seconds of idle finds no steps', async () => {
    sim = await Ppk2Simulator.start(tempDir('tinyrig-ppk2-'));
    meter = new Ppk2Meter({ path: sim.path, mode: 'source', vddMv: 3300 });
    await meter.ready;
    const from = Date.now();
    await sleep(3000);
    expect(sim.samplesSent).toBeGreaterThan(250_000);
    expect(meter.pulses).toHaveLength(0);
    // a step asked for over that idle gets no pulse: it keeps its estimate
    expect(meter.stepFigures([1], from, Date.now())).toMatchObject({ figures: [null], reason: expect.stringMatching(/^0 (of 1 )?marker pulses/) });
  });
});

/**
 * A relay on the twin's serial line. The host twin has no GPIO, so the test
 * plays the marker: when the twin answers a TRAIN, the relay holds the answer,
 * has the PPK2 simulator emit one pulse per step the answer reports, and lets
 * the answer through once those samples are written — so the pulses fall
 * inside the TRAIN, as a board's marker does.
 */
class MarkerRelay {
  widthMs = 8;
  currentMa = 6;
  truths: number[] = [];
  private chain = Promise.resolve();
  private constructor(
    readonly pair: PtyPair,
    private readonly host: SerialPort,
    private readonly twin: SerialPort,
    private readonly sim: () => Ppk2Simulator | null,
  ) {
    host.on('data', (b: Buffer) => twin.write(b));
    const split = new FrameSplitter((enc) => this.fromTwin(enc));
    twin.on('data', (b: Buffer) => split.push(b));
    host.on('error', () => undefined);
    twin.on('error', () => undefined);
  }

  static async start(dir: string, twinPath: string, sim: () => Ppk2Simulator | null): Promise<MarkerRelay> {
    const pair = await PtyPair.start(dir, 'relay');
    const open = (p: string): Promise<SerialPort> =>
      new Promise((resolve, reject) => {
        const port = new SerialPort({ path: fs.realpathSync(p), baudRate: 115200, autoOpen: false });
        port.open((err) => (err ? reject(err) : resolve(port)));
      });
    return new MarkerRelay(pair, await open(pair.b), await open(twinPath), sim);
  }

  get path(): string {
    return this.pair.a;
  }

  private fromTwin(enc: Uint8Array): void {
    let steps = 0;
    try {
      const m = decodeMessage(enc);
      if (m.frame.type === MsgType.TRAIN && m.frame.flags & Flags.RESP) steps = (m.values.records as unknown[]).length;
    } catch {
      // not ours to judge: pass it on
    }
    this.chain = this.chain.then(async () => {
      const sim = this.sim();
      if (steps > 0 && sim?.streaming) {
        const truth = await sim.pulses(Array.from({ length: steps }, () => ({ widthMs: this.widthMs, currentMa: this.currentMa })), 2);
        this.truths.push(...truth.map((t) => t.uj));
        await sleep(30); // the PPK2's USB stream runs a little behind the board's answer
      }
      this.host.write(Buffer.concat([Buffer.from(enc), Buffer.from([0])]));
    });
  }

  async stop(): Promise<void> {
    for (const p of [this.host, this.twin]) if (p.isOpen) await new Promise<void>((r) => p.close(() => r()));
    await this.pair.stop();
  }
}

describe.runIf(twinBuilt())('daemon with a PPK2 simulator and a host twin (a simulator, not hardware)', () => {
  let app: FastifyInstance;
  let twin: TwinProcess;
  let relay: MarkerRelay;
  let sim: Ppk2Simulator | null = null;
  const { post, get } = apiClient(() => app);
  const dir = tempDir('tinyrig-ppk2-e2e-');

  beforeAll(async () => {
    sim = await Ppk2Simulator.start(dir);
    twin = await TwinProcess.start({ quiet: true });
    relay = await MarkerRelay.start(dir, twin.path, () => sim);
    app = await buildApp({
      devices: [{
        id: 'p0',
        path: relay.path,
        board: 'host-twin',
        powerBoard: 'nrf52840dk/nrf52840',
        meter: { kind: 'ppk2', path: sim.path, mode: 'source', vddMv: 3000, markerChannel: 0 },
      }],
    });
    await until(() => app.devices.list().every((b) => b.status === 'online'), 15_000, 'twin online');
    await until(() => app.energy.info(app.devices.get('p0').entry).source === 'measured', 5000, 'PPK2 streaming');
    expect((await post('/v1/devices/p0/model', { model: 'cnn', seed: 3 })).status).toBe(200);
  }, 30_000);
  afterAll(async () => {
    await app?.close();
    await relay?.stop();
    await twin?.kill();
    await sim?.stop();
  });

  it('records each step measured from its marker pulse in GET /metrics', async () => {
    const before = relay.truths.length;
    const r = await post('/v1/devices/p0/train?wait=true', { dataset: 'fashion-mnist', split: 'train', offset: 0, count: 6, lr: 0.01 });
    expect(r.body.state, JSON.stringify(r.body.error)).toBe('succeeded');
    const m = await get(`/v1/devices/p0/metrics?jobId=${r.body.id}`);
    expect(m.energy).toMatchObject({ source: 'measured', basis: expect.stringMatching(/measured by PPK2/) });
    expect(m.steps).toHaveLength(6);
    const truths = relay.truths.slice(before);
    expect(truths).toHaveLength(6);
    const lines = m.steps.map((s: { energyUj: number; energySource: string }, i: number) => `  step ${i}: ${s.energySource} ${s.energyUj.toFixed(3)} µJ, truth ${truths[i]!.toFixed(3)} µJ`);
    console.log('daemon steps (8 ms @ 6 mA @ 3 V = 144 µJ each):\n' + lines.join('\n'));
    for (const [i, s] of m.steps.entries()) {
      expect(s.energySource).toBe('measured');
      expect(Math.abs(s.energyUj - truths[i]!) / truths[i]!).toBeLessThan(0.01);
    }
  }, 30_000);

  it('falls back to labelled estimates when the PPK2 is unplugged mid-run, and keeps training', async () => {
    const s = sim!;
    sim = null; // the relay stops marking: there is no PPK2 to see it
    await s.unplug();
    await until(() => app.energy.info(app.devices.get('p0').entry).source === 'estimated', 5000, 'meter noticed the unplug');
    const r = await post('/v1/devices/p0/train?wait=true', { dataset: 'fashion-mnist', split: 'train', offset: 6, count: 4, lr: 0.01 });
    expect(r.body.state, JSON.stringify(r.body.error)).toBe('succeeded');
    const m = await get(`/v1/devices/p0/metrics?jobId=${r.body.id}`);
    expect(m.energy.source).toBe('estimated');
    expect(m.energy.basis).toMatch(/unplugged, energy estimated/);
    expect(m.steps.map((x: { energySource: string }) => x.energySource)).toEqual(['estimated', 'estimated', 'estimated', 'estimated']);
    expect(m.steps.every((x: { energyUj: number | null }) => x.energyUj !== null && x.energyUj > 0)).toBe(true);
    expect(app.devices.get('p0').status).toBe('online');
  }, 30_000);
});

