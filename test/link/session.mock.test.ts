// The link layer alone: BoardSession against a scripted board on a
// MockBinding port. Window, retransmits after a NAK and after a time-out (and
// that they are logged), a pulled cable, and who closes the port.
import { afterEach, describe, expect, it } from 'vitest';
import { BoardSession, DisconnectedError, EventKind, MsgType, TimeoutError, type SessionLogger } from '../../protocol/src/index.js';
import { closePort } from '../../server/src/devices/open-serial.js';
import { MockBoard } from './mock-board.js';

interface LogLine {
  level: 'debug' | 'info' | 'warn';
  msg: string;
  obj: Record<string, unknown>;
}

function capture(): { log: SessionLogger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg = ''): void => void lines.push({ level, msg, obj: obj as Record<string, unknown> });
  return { log: { debug: at('debug'), info: at('info'), warn: at('warn') }, lines };
}

const open: { session: BoardSession; board: MockBoard }[] = [];
async function connect(board: MockBoard, opts: Parameters<typeof BoardSession.open>[1] = {}): Promise<BoardSession> {
  const session = await BoardSession.open(board.port, opts);
  open.push({ session, board });
  return session;
}

afterEach(async () => {
  for (const { session, board } of open.splice(0)) {
    await session.close();
    await closePort(board.port);
  }
});

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error(`waited 1 s for ${what}`);
};

describe('BoardSession on a MockBinding port', () => {
  it('keeps at most the window the board granted unanswered, and no more than its own cap', async () => {
    const labels = new Uint8Array(120).map((_, i) => i % 10);
    const data = new Uint8Array(120 * 16).fill(7);

    const wide = await MockBoard.open({ window: 3, maxFrame: 256, answerDelayMs: 10 });
    const s = await connect(wide);
    const r = await s.sendSamples(0, 16, labels, data);
    expect(r.frames).toBeGreaterThan(3);
    expect(wide.maxOutstanding).toBe(3);
    expect(wide.arrivals(MsgType.SAMPLES).map((a) => a.values.index)).toEqual(Array.from({ length: r.frames }, (_, i) => i * 12));

    const capped = await MockBoard.open({ window: 3, maxFrame: 256, answerDelayMs: 10 });
    await (await connect(capped, { window: 1 })).sendSamples(0, 16, labels, data);
    expect(capped.maxOutstanding).toBe(1);
  });

  it('retransmits a NAKed request at once with the same seq, and logs the retransmit', async () => {
    const board = await MockBoard.open();
    board.script = (req) => (req.type === MsgType.PING && req.attempt === 1 ? 'nak' : 'answer');
    const { log, lines } = capture();
    const s = await connect(board, { timeoutMs: 10_000, log });
    const t0 = performance.now();
    const pong = await s.ping(Uint8Array.of(1, 2, 3));
    expect(performance.now() - t0).toBeLessThan(1000); // the NAK, not the 10 s time-out, brought it back
    expect([...pong.data]).toEqual([1, 2, 3]);
    const pings = board.arrivals(MsgType.PING);
    expect(pings.map((p) => p.attempt)).toEqual([1, 2]);
    expect(pings[1]!.seq).toBe(pings[0]!.seq);
    expect(s.counters).toMatchObject({ naks: 1, retransmits: 1, timeouts: 0 });
    expect(lines).toContainEqual({ level: 'debug', msg: 'retransmit after NAK', obj: { type: 'PING', seq: pings[0]!.seq } });
  });

  it('retransmits after each time-out with the same seq, logs each, then fails with TimeoutError', async () => {
    const board = await MockBoard.open();
    board.script = (req) => (req.type === MsgType.PING ? 'drop' : 'answer');
    const { log, lines } = capture();
    const s = await connect(board, { timeoutMs: 30, retries: 2, log });
    const err = await s.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).attempts).toBe(3);
    const pings = board.arrivals(MsgType.PING);
    expect(pings.map((p) => p.attempt)).toEqual([1, 2, 3]);
    expect(new Set(pings.map((p) => p.seq)).size).toBe(1);
    expect(s.counters).toMatchObject({ timeouts: 3, retransmits: 2 });
    const logged = lines.filter((l) => l.msg === 'retransmit after time-out');
    expect(logged.map((l) => l.obj)).toEqual([
      { type: 'PING', seq: pings[0]!.seq, attempt: 2 },
      { type: 'PING', seq: pings[0]!.seq, attempt: 3 },
    ]);
    // the session is still usable
    board.script = () => 'answer';
    await expect(s.stats()).resolves.toMatchObject({ stepsApplied: 0 });
  });

  it('a pulled cable fails what is outstanding with DisconnectedError and reports the loss once', async () => {
    const board = await MockBoard.open();
    board.script = (req) => (req.type === MsgType.PING ? 'drop' : 'answer');
    const { log, lines } = capture();
    const s = await connect(board, { timeoutMs: 10_000, log, label: `port ${board.port.path}` });
    const lost: string[] = [];
    s.on('disconnect', (why: string) => lost.push(why));
    const pending = s.ping().catch((e: unknown) => e);
    await until(() => board.arrivals(MsgType.PING).length === 1, 'the PING');
    board.unplug();
    const err = await pending;
    expect(err).toBeInstanceOf(DisconnectedError);
    expect(lost).toEqual([`port ${board.port.path} disconnected`]);
    expect(s.closed).toBe(true);
    await expect(s.stats()).rejects.toBeInstanceOf(DisconnectedError);
    expect(lines).toContainEqual({ level: 'warn', msg: 'link lost', obj: { reason: `port ${board.port.path} disconnected` } });
  });

  it('close() leaves the port open unless the session was handed it, and then closes it', async () => {
    const kept = await MockBoard.open();
    const s1 = await connect(kept);
    await s1.close();
    expect(kept.port.isOpen).toBe(true);
    await expect(s1.ping()).rejects.toBeInstanceOf(DisconnectedError);

    const handed = await MockBoard.open();
    handed.script = (req) => (req.type === MsgType.PING ? 'drop' : 'answer');
    const s2 = await connect(handed, { closeStream: () => closePort(handed.port) });
    const pending = s2.ping().catch((e: unknown) => e);
    await s2.close();
    expect(handed.port.isOpen).toBe(false);
    expect(await pending).toBeInstanceOf(DisconnectedError);
  });

  it('a board that announces a boot is asked HELLO again and its new boot id is reported', async () => {
    const board = await MockBoard.open({ bootId: 1 });
    const s = await connect(board);
    const resets: { previousBootId: number; bootId: number }[] = [];
    s.on('reset', (e: { previousBootId: number; hello: { bootId: number } }) => resets.push({ previousBootId: e.previousBootId, bootId: e.hello.bootId }));
    board.bootId = 2;
    board.sendDevice(MsgType.EVENT, { kind: EventKind.BOOT });
    await until(() => resets.length === 1, 'the reset event');
    expect(resets).toEqual([{ previousBootId: 1, bootId: 2 }]);
    expect(s.hello.bootId).toBe(2);
  });
});
