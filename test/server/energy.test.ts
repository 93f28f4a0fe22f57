// Energy per step: estimates from the board table, labelled, and the
// measured source that replaces them.
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { EnergyService } from '../../server/src/energy/index.js';
import { ReadingBuffer, type PowerMeter } from '../../server/src/energy/meter.js';
import { estimateStepEnergy, PowerTable } from '../../server/src/energy/power-table.js';
import { BOARDS_FILE as boards } from '../../tools/proc/paths.js';

describe('energy', () => {
  it('estimates µJ from cycles, emulated instructions and host time, and says how', () => {
    const table = new PowerTable(boards);
    const nrf = table.resolve({ powerBoard: 'nrf52840dk/nrf52840' })!;
    expect(nrf).toMatchObject({ clockHz: 64_000_000, activeMw: 10.6 });
    // 64e6 cycles = 1 s at 10.6 mW = 10600 µJ
    const cyc = estimateStepEnergy(64_000_000, 'cycles', nrf)!;
    expect(cyc.uj).toBeCloseTo(10600, 6);
    expect(cyc.source).toBe('estimated');
    const ins = estimateStepEnergy(64_000_000, 'instructions', nrf)!;
    expect(ins.uj).toBeCloseTo(10600, 6);
    expect(ins.basis).toMatch(/instructions counted as cycles/);
    expect(estimateStepEnergy(1e9, 'ns', nrf)!.uj).toBeCloseTo(10600, 6);
    // a QEMU stand-in resolves to the real board of its class
    expect(table.resolve({ board: 'qemu-mps2-an386' })!.board).toBe('nrf52840dk/nrf52840');
    expect(table.resolve({ board: 'qemu-mps2-an500' })!.board).toBe('nucleo_f746zg');
    expect(table.resolve({ board: 'unknown' })).toBeNull();
    expect(estimateStepEnergy(1, 'cycles', null)).toBeNull();
  });

  it('integrates meter readings (mW and mA lines, with or without timestamps)', () => {
    const mw = new ReadingBuffer('mW', 3.3);
    mw.addLine('# header', 0);
    mw.addLine('10', 1000);
    mw.addLine('10', 2000);
    mw.addLine('30', 3000);
    expect(mw.energyBetween(1000, 2000)).toBeCloseTo(10_000, 6); // 10 mW × 1000 ms
    expect(mw.energyBetween(2000, 3000)).toBeCloseTo(20_000, 6); // trapezoid 10→30
    expect(mw.energyBetween(1500, 2500)).toBeCloseTo(10 * 500 + 0.5 * (10 + 20) * 500, 6);
    expect(mw.energyBetween(500, 2000)).toBeNull(); // not covered
    const ma = new ReadingBuffer('mA', 3.3);
    ma.addLine('0,2', 5000); // meter clock 0 → our 5000
    ma.addLine('1000,2', 5100);
    expect(ma.energyBetween(5000, 6000)).toBeCloseTo(6.6 * 1000, 6);
  });

  it('uses a measured figure when a meter covers the step, else the estimate', async () => {
    const svc = new EnergyService(boards, pino({ level: 'silent' }));
    const entry = { id: 'm4-0', path: '/dev/null', powerBoard: 'nrf52840dk/nrf52840' };
    const est = await svc.figures(entry, 'qemu-mps2-an386', 'instructions', [64_000_000], 0, 10);
    expect(est[0]).toMatchObject({ source: 'estimated' });
    expect(svc.info(entry).source).toBe('estimated');
    const meter: PowerMeter = { label: 'test meter', energyBetween: (a, b) => (b - a) * 5, close: async () => undefined };
    svc.setMeter('m4-0', meter);
    const meas = await svc.figures(entry, 'qemu-mps2-an386', 'instructions', [100, 300], 1000, 1100);
    expect(meas.map((f) => f!.source)).toEqual(['measured', 'measured']);
    expect(meas[0]!.uj).toBeCloseTo(125, 6);
    expect(meas[1]!.uj).toBeCloseTo(375, 6);
    expect(svc.info(entry)).toMatchObject({ source: 'measured', meter: 'test meter' });
  });
});

describe('serial power logger', () => {
  it('reads readings from a real PTY and integrates them', async () => {
    const { spawn } = await import('node:child_process');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const { SerialLogMeter } = await import('../../server/src/energy/meter.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-meter-'));
    const a = path.join(dir, 'logger');
    const b = path.join(dir, 'daemon');
    const socat = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !(fs.existsSync(a) && fs.existsSync(b)); i++) await new Promise((r) => setTimeout(r, 20));
      const meter = new SerialLogMeter({ kind: 'serial-log', path: b, unit: 'mA', volts: 3.0 });
      await new Promise((r) => setTimeout(r, 100));
      const t0 = Date.now();
      const logger = fs.openSync(a, 'w');
      // the logger's own clock in ms, 4 mA throughout: 12 mW
      for (let t = 0; t <= 1000; t += 100) fs.writeSync(logger, `${t},4\n`);
      fs.closeSync(logger);
      await new Promise((r) => setTimeout(r, 200));
      // the first line aligns the logger clock with ours (≈ t0); integrate its middle 500 ms
      const e = meter.energyBetween(t0 + 250, t0 + 750);
      expect(e).not.toBeNull();
      expect(e!).toBeCloseTo(12 * 500, 0);
      await meter.close();
    } finally {
      socat.kill();
    }
  });
});
