// A scripted board on a MockBinding port (@serialport/binding-mock through
// @serialport/stream): no process, no PTY. It answers each request the host
// writes from a table of canned bodies; a test's script may drop or NAK any
// attempt, answers may come late, and the cable can be pulled.
import { createRequire } from 'node:module';
import type { MockBindingInterface, MockPortBinding } from '@serialport/binding-mock' with { 'resolution-mode': 'require' };
import { SerialPortStream } from '@serialport/stream';
import {
  Flags,
  FrameSplitter,
  MsgType,
  PROTO_VERSION,
  decodeFrame,
  decodeRequest,
  encodeDeviceBody,
  encodeFrame,
  encodeResponse,
  msgTypeName,
} from '../../protocol/src/index.js';

export interface SeenRequest {
  type: number;
  name: string;
  seq: number;
  values: Record<string, unknown>;
  /** 1 for the first time this seq arrived, 2 for its first retransmit, … */
  attempt: number;
}

/** What the board does with one arrival: answer it, ignore it (a frame lost on the line), or NAK its seq. */
export type Reply = 'answer' | 'drop' | 'nak';

export interface MockBoardOptions {
  window?: number;
  maxFrame?: number;
  bootId?: number;
  /** Delay before each answer in ms (default 0): lets the host fill its window. */
  answerDelayMs?: number;
}

const HELLO_BODY = {
  proto: PROTO_VERSION,
  board: 'mock',
  build: 'scripted',
  cpu: 'none',
  clockHz: 1_000_000,
  ramBytes: 65_536,
  sampleSlots: 256,
  arenaBytes: 32_768,
  blobMax: 65_536,
  counter: 'instructions',
  staticRam: 0,
  stackBytes: 0,
  maxTrain: 16,
  engine: false,
};

const STATS_BODY = {
  stepsApplied: 0,
  lastStepId: 0,
  arenaPeak: 0,
  stackPeak: 0,
  staticRam: 0,
  counterTotal: 0,
  samplesHeld: 0,
  modelSha256: new Uint8Array(0),
  framesRx: 0,
  framesBad: 0,
};

// binding-mock 10's exports give ESM importers no types: load its CommonJS build, typed by its own declarations
const { MockBinding } = createRequire(import.meta.url)('@serialport/binding-mock') as { MockBinding: MockBindingInterface };

let portNo = 0;

export class MockBoard {
  /** Every request arrival, retransmits included, in order. */
  readonly seen: SeenRequest[] = [];
  /** Most requests the host had unanswered at once (after the handshake). */
  maxOutstanding = 0;
  /** What HELLO answers; change it to play a board that restarted. */
  bootId: number;
  /** Decides what happens to each arrival; answers everything by default. */
  script: (r: SeenRequest) => Reply = () => 'answer';

  private readonly attempts = new Map<number, number>();
  private readonly unanswered = new Set<number>();
  private readonly splitter = new FrameSplitter((enc) => this.onRequest(enc));

  private constructor(
    readonly port: SerialPortStream,
    private readonly binding: MockPortBinding,
    private readonly opts: Required<MockBoardOptions>,
  ) {
    this.bootId = opts.bootId;
  }

  /** A fresh mock port with the board behind it, opened; `port.path` names it. */
  static async open(opts: MockBoardOptions = {}, path = `/dev/mock-board-${portNo++}`): Promise<MockBoard> {
    MockBinding.createPort(path);
    const port = new SerialPortStream({ binding: MockBinding, path, baudRate: 115200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    const binding = port.port as MockPortBinding;
    const board = new MockBoard(port, binding, { window: 4, maxFrame: 512, bootId: 1, answerDelayMs: 0, ...opts });
    const write = binding.write.bind(binding);
    binding.write = async (buffer: Buffer): Promise<void> => {
      await write(buffer);
      board.splitter.push(buffer);
    };
    return board;
  }

  /** Requests of one type as they arrived. */
  arrivals(type: number): SeenRequest[] {
    return this.seen.filter((r) => r.type === type);
  }

  /** The cable is pulled: the port's reads fail as a vanished tty's do, the one pending now too. */
  unplug(): void {
    const gone = new Error('device not configured');
    const b = this.binding as unknown as { pendingRead: ((err?: Error) => void) | null };
    this.binding.read = () => Promise.reject(gone);
    b.pendingRead?.(gone);
  }

  /** Sends a device-initiated frame (EVENT, LOG, NAK). */
  sendDevice(type: number, values: Record<string, unknown>): void {
    this.emit(encodeFrame({ ver: PROTO_VERSION, type, seq: 0, flags: Flags.DEV, body: encodeDeviceBody(type, values) }));
  }

  private onRequest(encoded: Uint8Array): void {
    const f = decodeFrame(encoded);
    const attempt = (this.attempts.get(f.seq) ?? 0) + 1;
    this.attempts.set(f.seq, attempt);
    const r: SeenRequest = { type: f.type, name: msgTypeName(f.type), seq: f.seq, values: decodeRequest(f.type, f.body), attempt };
    this.seen.push(r);
    if (f.type !== MsgType.HELLO) {
      this.unanswered.add(f.seq);
      this.maxOutstanding = Math.max(this.maxOutstanding, this.unanswered.size);
    }
    const reply = this.script(r);
    if (reply === 'drop') return;
    if (reply === 'nak') return this.sendDevice(MsgType.NAK, { seq: f.seq });
    const wire = encodeFrame({ ver: PROTO_VERSION, type: f.type, seq: f.seq, flags: Flags.RESP, body: encodeResponse(f.type, this.answer(r)) });
    setTimeout(() => {
      this.unanswered.delete(f.seq);
      this.emit(wire);
    }, this.opts.answerDelayMs);
  }

  private answer(r: SeenRequest): Record<string, unknown> {
    const v = r.values;
    switch (r.type) {
      case MsgType.HELLO:
        return { ...HELLO_BODY, maxFrame: this.opts.maxFrame, window: this.opts.window, bootId: this.bootId };
      case MsgType.STATS:
        return STATS_BODY;
      case MsgType.PING:
        return { data: v.data ?? new Uint8Array(0) };
      case MsgType.SAMPLES:
        return { index: v.index, count: (v.labels as Uint8Array).length };
      default:
        throw new Error(`the mock board has no answer for ${r.name}`);
    }
  }

  private emit(wire: Uint8Array): void {
    if (this.binding.isOpen) this.binding.emitData(Buffer.from(wire));
  }
}
