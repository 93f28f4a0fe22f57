// What the upload parsers share: the refusal they throw, the pixel scaling
// rule, and the limits that keep a hostile file from costing memory.
import { Errors, type RigError } from '../../errors.js';

/** How an input element's text or number becomes the uint8 the model reads as value/255. */
export type Scale = 'byte' | 'unit';

/** Largest input one sample may have (boards hold far less). */
export const MAX_SAMPLE_BYTES = 1 << 20;
/** Most classes: labels are stored as one byte. */
export const MAX_CLASSES = 256;

/** A 400 TR_DATASET_INVALID naming the part and where in it. */
export function invalid(part: string, message: string, details: Record<string, unknown> = {}): RigError {
  return Errors.DATASET_INVALID(`${part}: ${message}`, { part, ...details });
}

/** scale=unit: v in [0,1] becomes round(v·255), clamped to 0..255 (so 0.5 → 128, 1.2 → 255). */
export function quantizeUnit(v: number): number {
  const q = Math.round(v * 255);
  return q < 0 ? 0 : q > 255 ? 255 : q;
}

/** [h, w, c] from 'h,w,c', 'h,w' or 'n' (missing trailing dimensions are 1). */
export function parseShape(v: unknown, what = 'shape'): [number, number, number] {
  const parts = Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(',').map((s) => s.trim()) : null;
  if (!parts || parts.length < 1 || parts.length > 3 || !parts.every((p) => /^[1-9]\d{0,6}$/.test(p))) {
    throw Errors.BAD_REQUEST(`${what} must be h,w,c (1 to 3 positive integers), got ${JSON.stringify(v)}`);
  }
  const [h, w = 1, c = 1] = parts.map(Number);
  if (h * w * c > MAX_SAMPLE_BYTES) throw Errors.BAD_REQUEST(`${what} ${h}x${w}x${c} exceeds ${MAX_SAMPLE_BYTES} bytes a sample`);
  return [h, w, c];
}

/** A label as the parsers hand it on, checked against `classes` with where it was found. */
export function checkLabel(part: string, v: number, classes: number, sample: number, where: Record<string, unknown> = {}): number {
  if (!Number.isInteger(v) || v < 0 || v >= classes) {
    throw invalid(part, `label ${v} of sample ${sample} is outside 0..${classes - 1} (classes ${classes})`, { sample, label: v, classes, ...where });
  }
  return v;
}
