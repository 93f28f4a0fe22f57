// The protocol session (protocol/src/index.ts) as bench:wire and the link tests
// use it: a board behind the link simulator, opened with serialport.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SerialPort } from 'serialport';
import { repoRoot } from './linksim.js';

export interface HelloLike {
  bootId: number;
  maxFrame: number;
  window: number;
  sampleSlots: number;
  blobMax: number;
  maxTrain: number;
  engine: boolean;
  [k: string]: unknown;
}

export interface TrainRecordLike {
  lossPpm: number;
  counter: number;
  updatedPpm: number;
  correct: boolean;
  peakRam: number;
}

export interface TrainResultLike {
  stepId: number;
  duplicate: boolean;
  stepsApplied: number;
  records: TrainRecordLike[];
}

export interface SessionLike {
  hello: HelloLike;
  writeWeights(blob: Uint8Array): Promise<{ sha256: unknown; weightsBytes: number }>;
  readWeights(): Promise<{ bytes: Uint8Array; sha256: unknown; stepsApplied: number }>;
  weightsInfo(): Promise<Record<string, unknown>>;
  loadModel(blob: Uint8Array): Promise<Record<string, unknown>>;
  sendSamples(index: number, sampleBytes: number, labels: Uint8Array, data: Uint8Array): Promise<unknown>;
  train(req: { stepId: number; index: number; count: number; lrPpm: number; [k: string]: unknown }): Promise<TrainResultLike>;
  stats(): Promise<Record<string, unknown>>;
  evaluate(index: number, count: number): Promise<{ count: number; correct: number; lossPpmSum: number; counter: number }>;
  ping(data?: Uint8Array): Promise<unknown>;
  close(): Promise<void> | void;
  on(event: string, cb: (...args: unknown[]) => void): unknown;
  [k: string]: unknown;
}

export interface ProtocolModule {
  BoardSession: { open(stream: unknown, opts?: Record<string, unknown>): Promise<SessionLike> };
  [k: string]: unknown;
}

let protocol: Promise<ProtocolModule> | null = null;
/** Loaded at run time so this file type-checks on its own. */
export function loadProtocol(): Promise<ProtocolModule> {
  protocol ??= import(pathToFileURL(path.join(repoRoot, 'protocol', 'src', 'index.ts')).href) as Promise<ProtocolModule>;
  return protocol;
}

/** Retransmits counted by the session so far, whatever the counters object is called. */
export function retransmits(s: SessionLike): number {
  for (const key of ['counters', 'linkStats', 'stats_']) {
    const c = (s as Record<string, unknown>)[key];
    const v = typeof c === 'function' ? (c as () => unknown).call(s) : c;
    if (v && typeof v === 'object' && typeof (v as Record<string, unknown>).retransmits === 'number')
      return (v as { retransmits: number }).retransmits;
  }
  return -1;
}

export function openPort(p: string, baudRate = 115200): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path: p, baudRate }, (err) => (err ? reject(err) : resolve(port)));
  });
}

export function closePort(port: SerialPort): Promise<void> {
  return new Promise((r) => (port.isOpen ? port.close(() => r()) : r()));
}
