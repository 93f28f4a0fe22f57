// What the daemon needs from one board link. The protocol session
// (protocol/src) implements the wire and owns the types of what a board
// answers; serial-link.ts opens a serial port and hands it to the session.
import type {
  DeviceStats,
  EvalResult,
  HelloInfo,
  LinkCounters,
  ModelInfo as SessionModelInfo,
  TrainRequest,
  TrainResult,
  WeightsCommit,
  WeightsInfo,
} from '../../../protocol/src/index.js';

export type { DeviceStats, EvalResult, HelloInfo, LinkCounters, TrainRequest, TrainResult, WeightsCommit, WeightsInfo };
export type { TrainRecord } from '../../../protocol/src/index.js';

/**
 * What LOAD_MODEL reports, less the session's `sha256`/`modelSha256`: the
 * daemon's board model keeps `sha256` for the model blob and `weightsSha256`
 * for the live weights, and spreads this object over it.
 */
export type ModelInfo = Omit<SessionModelInfo, 'sha256' | 'modelSha256'>;

export interface BoardLink {
  readonly hello: HelloInfo;
  loadModel(blob: Uint8Array): Promise<ModelInfo>;
  writeWeights(blob: Uint8Array): Promise<WeightsCommit>;
  readWeights(): Promise<Uint8Array>;
  weightsInfo(): Promise<WeightsInfo>;
  sendSamples(index: number, sampleBytes: number, labels: Uint8Array, data: Uint8Array): Promise<void>;
  train(req: TrainRequest): Promise<TrainResult>;
  evaluate(index: number, count: number): Promise<EvalResult>;
  stats(): Promise<DeviceStats>;
  reset(): Promise<void>;
  /** A copy of the session's counters now. */
  counters(): LinkCounters;
  /** Called once when the link is lost (port closed, board gone). */
  onLost(cb: (reason: string) => void): void;
  /** Called when the board reports it restarted on its own (EVENT BOOT). */
  onBoot(cb: () => void): void;
  onLog(cb: (level: number, text: string) => void): void;
  close(): Promise<void>;
}

export interface OpenLinkOptions {
  path: string;
  baudRate: number;
  requestTimeoutMs: number;
}

export type LinkOpener = (opts: OpenLinkOptions) => Promise<BoardLink>;
