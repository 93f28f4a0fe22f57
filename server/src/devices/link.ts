// What the daemon needs from one board link, in daemon terms. The protocol
// session (protocol/src) implements the wire; this file opens a serial port,
// hands it to the session and turns protocol errors into API errors.
export interface HelloInfo {
  proto: number;
  board: string;
  build: string;
  cpu: string;
  clockHz: number;
  ramBytes: number;
  maxFrame: number;
  window: number;
  bootId: number;
  sampleSlots: number;
  arenaBytes: number;
  blobMax: number;
  counter: string;
  staticRam: number;
  stackBytes: number;
  maxTrain: number;
  engine: boolean;
}

export interface ModelInfo {
  weightsSha256: string;
  weightsBytes: number;
  inputBytes: number;
  classes: number;
  layers: number;
  trainBytes: number;
  inferBytes: number;
}

export interface WeightsInfo {
  sha256: string;
  weightsBytes: number;
  stepsApplied: number;
  modelSha256: string;
}

export interface TrainRecord {
  lossPpm: number;
  counter: number;
  updatedPpm: number;
  correct: boolean;
  peakRam: number;
}

export interface TrainRequest {
  stepId: number;
  index: number;
  count: number;
  lrPpm: number;
  lambdaMinPpm?: number;
  lambdaMaxPpm?: number;
  trainable?: number;
  biasOnly?: number;
  options?: number;
}

export interface TrainResult {
  stepId: number;
  duplicate: boolean;
  stepsApplied: number;
  records: TrainRecord[];
}

export interface EvalResult {
  count: number;
  correct: number;
  lossPpmSum: number;
  counter: number;
}

export interface BoardStats {
  stepsApplied: number;
  lastStepId: number;
  arenaPeak: number;
  stackPeak: number;
  staticRam: number;
  counterTotal: number;
  samplesHeld: number;
  modelSha256: string;
  framesRx: number;
  framesBad: number;
}

export interface LinkCounters {
  retransmits: number;
  timeouts: number;
  naks: number;
}

export interface BoardLink {
  readonly hello: HelloInfo;
  loadModel(blob: Uint8Array): Promise<ModelInfo>;
  writeWeights(blob: Uint8Array): Promise<{ sha256: string; weightsBytes: number }>;
  readWeights(): Promise<Uint8Array>;
  weightsInfo(): Promise<WeightsInfo>;
  sendSamples(index: number, sampleBytes: number, labels: Uint8Array, data: Uint8Array): Promise<void>;
  train(req: TrainRequest): Promise<TrainResult>;
  evaluate(index: number, count: number): Promise<EvalResult>;
  stats(): Promise<BoardStats>;
  reset(): Promise<void>;
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
