// The daemon's log shows what the link does on each board: retransmits and a
// lost link arrive with the board's deviceId, from the session it opened.
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { MsgType } from '../../protocol/src/index.js';
import { openSessionOn } from '../../server/src/devices/open-serial.js';
import { MockBoard } from '../link/mock-board.js';
import { buildApp, until } from './helpers.js';

type Line = Record<string, unknown>;

describe('link logs in the daemon', () => {
  let app: FastifyInstance | null = null;
  afterEach(async () => {
    await app?.close();
    app = null;
  });

  it('logs a retransmit and the lost link under the board’s deviceId', async () => {
    const board = await MockBoard.open();
    // the first STATS of the connect is lost on the line
    board.script = (req) => (req.type === MsgType.STATS && req.attempt === 1 ? 'drop' : 'answer');
    const lines: Line[] = [];
    let opened = 0;
    app = await buildApp(
      { devices: [{ id: 'mock-0', path: board.port.path }], requestTimeoutMs: 50 },
      {
        // the one board, then a port that is gone
        opener: (o) => (opened++ === 0 ? openSessionOn(board.port, o) : Promise.reject(new Error(`cannot open ${o.path}: gone`))),
        logger: { level: 'debug', stream: { write: (s: string) => void lines.push(JSON.parse(s) as Line) } },
      },
    );
    const dev = app.devices.get('mock-0');
    await dev.waitOnline(5000);
    const stats = board.arrivals(MsgType.STATS);
    expect(stats.map((s) => s.attempt)).toEqual([1, 2]);
    expect(lines).toContainEqual(
      expect.objectContaining({ deviceId: 'mock-0', msg: 'retransmit after time-out', type: 'STATS', seq: stats[0]!.seq, attempt: 2 }),
    );

    board.unplug();
    await until(() => dev.status === 'offline', 2000, 'the board to go offline');
    const reason = `port ${board.port.path} disconnected`;
    expect(lines).toContainEqual(expect.objectContaining({ deviceId: 'mock-0', msg: 'link lost', reason }));
    expect(lines).toContainEqual(expect.objectContaining({ deviceId: 'mock-0', msg: 'link lost; reconnecting', reason }));
    expect(board.port.isOpen).toBe(false);
  });
});
