// Decoded body fields as the session's results carry them.
import { createHash } from 'node:crypto';

/** Lowercase hex of a byte string; '' for anything else (an absent field). */
export const hex = (b: unknown): string => (b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : '');

/** An unsigned field as a number; 0 when absent. */
export const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0);

export const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());
