// The Nordic Power Profiler Kit II serial protocol, as pure functions: command
// bytes, the GetMetadata text and its calibration, and the 4-byte sample words.
// Facts from Nordic's pc-nrfconnect-ppk (src/device/serialDevice.ts,
// abstractDevice.ts, src/constants) and IRNAS ppk2-api-python (src/ppk2_api/ppk2_api.py).

/** Single-byte opcodes; arguments follow as bytes. */
export const Ppk2Cmd = {
  AverageStart: 0x06,
  AverageStop: 0x07,
  DeviceRunningSet: 0x0c,
  RegulatorSet: 0x0d,
  SetPowerMode: 0x11,
  GetMetadata: 0x19,
} as const;

/** SetPowerMode argument: 1 measures a board powered elsewhere, 2 powers it (source meter). */
export const Ppk2PowerMode = { ampere: 1, source: 2 } as const;

export const PPK2_SAMPLE_BYTES = 4;
/** One sample every 10 µs (adcSamplingTimeUs in pc-nrfconnect-ppk). */
export const PPK2_SAMPLE_US = 10;
export const PPK2_VDD_MIN_MV = 800;
export const PPK2_VDD_MAX_MV = 5000;
/** Volts per ADC count before the range's shunt: 1.8 V over 163840 (adcMult). */
export const PPK2_ADC_MULT = 1.8 / 163840;
export const PPK2_RANGES = 5;
export const PPK2_COUNTER_MASK = 0x3f;

export const ppk2Commands = {
  getMetadata: (): Buffer => Buffer.from([Ppk2Cmd.GetMetadata]),
  setPowerMode: (mode: 'source' | 'ampere'): Buffer => Buffer.from([Ppk2Cmd.SetPowerMode, Ppk2PowerMode[mode]]),
  /** VDD in mV, high byte first (ppkUpdateRegulator: vdd >> 8, vdd & 0xff). */
  regulatorSet: (mv: number): Buffer => {
    const v = Math.round(Math.min(PPK2_VDD_MAX_MV, Math.max(PPK2_VDD_MIN_MV, mv)));
    return Buffer.from([Ppk2Cmd.RegulatorSet, v >> 8, v & 0xff]);
  },
  deviceRunning: (on: boolean): Buffer => Buffer.from([Ppk2Cmd.DeviceRunningSet, on ? 1 : 0]),
  averageStart: (): Buffer => Buffer.from([Ppk2Cmd.AverageStart]),
  averageStop: (): Buffer => Buffer.from([Ppk2Cmd.AverageStop]),
};

/** Per-range calibration: shunt R, gain (GS, GI), offset O, VDD slope S and intercept I, user gain UG. */
export interface Ppk2Calibration {
  r: number[];
  gs: number[];
  gi: number[];
  o: number[];
  s: number[];
  i: number[];
  ug: number[];
}

export interface Ppk2Metadata {
  calibration: Ppk2Calibration;
  /** Every `key: value` line, keys lower-cased, values as numbers where they parse. */
  fields: Record<string, number | string>;
  vddMv: number | null;
  hw: string | null;
  mode: number | null;
  calibrated: boolean;
}

/** The values both references start from before the metadata overrides them. */
export function defaultCalibration(): Ppk2Calibration {
  return {
    r: [1031.64, 101.65, 10.15, 0.94, 0.043],
    gs: [1, 1, 1, 1, 1],
    gi: [1, 1, 1, 1, 1],
    o: [0, 0, 0, 0, 0],
    s: [0, 0, 0, 0, 0],
    i: [0, 0, 0, 0, 0],
    ug: [1, 1, 1, 1, 1],
  };
}

/** Index of the metadata terminator, or -1 while it has not arrived. */
export function metadataEnd(text: string): number {
  const m = /(^|\n)END\b/.exec(text);
  return m ? m.index + m[0].length : -1;
}

/**
 * Parses GetMetadata's answer: `key: value` lines up to `END`. As in
 * pc-nrfconnect-ppk's parseMeta, a missing, zero or unparsable (`-nan`) value
 * keeps the default for that range.
 */
export function parseMetadata(text: string): Ppk2Metadata {
  const end = metadataEnd(text);
  const body = end >= 0 ? text.slice(0, end).replace(/END$/, '') : text;
  const fields: Record<string, number | string> = {};
  for (const line of body.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at <= 0) continue;
    const key = line.slice(0, at).trim().toLowerCase();
    const raw = line.slice(at + 1).trim();
    const n = Number(raw);
    fields[key] = raw !== '' && Number.isFinite(n) ? n : raw;
  }
  const calibration = defaultCalibration();
  for (const key of Object.keys(calibration) as (keyof Ppk2Calibration)[]) {
    for (let r = 0; r < PPK2_RANGES; r++) {
      const v = fields[`${key}${r}`];
      if (typeof v === 'number' && v !== 0) calibration[key][r] = v;
    }
  }
  const num = (k: string): number | null => (typeof fields[k] === 'number' ? (fields[k] as number) : null);
  return {
    calibration,
    fields,
    vddMv: num('vdd'),
    hw: fields.hw === undefined ? null : String(fields.hw),
    mode: num('mode'),
    calibrated: num('calibrated') === 1,
  };
}

export interface Ppk2Sample {
  adc: number;
  range: number;
  counter: number;
  /** Digital inputs D0..D7, bit n = Dn. */
  logic: number;
}

/** Unpacks one little-endian sample word: ADC bits 0–13, range 14–16, counter 18–23, logic 24–31. */
export function unpackSample(word: number): Ppk2Sample {
  return {
    adc: word & 0x3fff,
    range: (word >>> 14) & 0x7,
    counter: (word >>> 18) & PPK2_COUNTER_MASK,
    logic: (word >>> 24) & 0xff,
  };
}

export function packSample(s: Ppk2Sample): number {
  return ((s.adc & 0x3fff) | ((s.range & 0x7) << 14) | ((s.counter & PPK2_COUNTER_MASK) << 18) | ((s.logic & 0xff) << 24)) >>> 0;
}

/**
 * Current in amperes of one sample. The ADC field is scaled by 4, then
 *   x = (adc·4 − O[r]) · adcMult / R[r]
 *   I = UG[r] · (x · (GS[r]·x + GI[r]) + S[r]·VDD/1000 + I[r])
 * (getAdcResult in pc-nrfconnect-ppk serialDevice.ts and ppk2-api-python);
 * their display-only spike filter after a range switch is not applied.
 */
export function sampleCurrentA(cal: Ppk2Calibration, rangeField: number, adcField: number, vddMv: number): number {
  const r = Math.min(rangeField, PPK2_RANGES - 1);
  const x = (adcField * 4 - cal.o[r]!) * (PPK2_ADC_MULT / cal.r[r]!);
  return cal.ug[r]! * (x * (cal.gs[r]! * x + cal.gi[r]!) + (cal.s[r]! * (vddMv / 1000) + cal.i[r]!));
}

/**
 * The range and ADC field that the given current reads as under `cal` (the
 * inverse of sampleCurrentA, for simulators and tests): the most sensitive
 * range that does not saturate, the ADC field rounded to the nearest count.
 */
export function encodeCurrent(cal: Ppk2Calibration, amps: number, vddMv: number): { range: number; adc: number } {
  for (let r = 0; r < PPK2_RANGES; r++) {
    const k = PPK2_ADC_MULT / cal.r[r]!;
    // solve UG·(GS·k²·a² + GI·k·a + S·V + I) = amps for a = adc·4 − O
    const c0 = cal.s[r]! * (vddMv / 1000) + cal.i[r]! - amps / cal.ug[r]!;
    const qa = cal.gs[r]! * k * k;
    const qb = cal.gi[r]! * k;
    const a = Math.abs(qa) < 1e-30 ? -c0 / qb : (-qb + Math.sqrt(Math.max(0, qb * qb - 4 * qa * c0))) / (2 * qa);
    const adc = Math.round((a + cal.o[r]!) / 4);
    if (adc >= 0 && adc <= 0x3fff * 0.9) return { range: r, adc };
    if (adc < 0) return { range: r, adc: 0 };
  }
  return { range: PPK2_RANGES - 1, adc: 0x3fff };
}
