// A host twin board behind the link simulator, opened through the protocol
// session exactly as the daemon opens a board on a USB-serial port.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { SerialPort } from 'serialport';
import { LinkSim, linksimBuilt, type LinkSimOptions } from '../../tools/proc/linksim.js';
import { TRAIN_BIN } from '../../tools/proc/paths.js';
import { TwinProcess, twinBuilt } from '../../tools/proc/twin.js';
import { BoardSession } from '../../protocol/src/index.js';
import { closePort, openPort } from '../../server/src/devices/open-serial.js';

export function requireBinaries(): void {
  if (!twinBuilt() || !linksimBuilt())
    throw new Error('firmware/build/host/tinyrig-twin or tinyrig-linksim is missing: run `make -C firmware`');
}

export interface BoardOnLine {
  twin: TwinProcess;
  sim: LinkSim;
  port: SerialPort;
  session: BoardSession;
  /** Opens a new port and session on the simulator's link (after a replug). */
  reopen(): Promise<BoardSession>;
  stop(): Promise<void>;
}

export async function boardOnLine(dir: string, name: string, line: Omit<LinkSimOptions, 'device' | 'link'>): Promise<BoardOnLine> {
  const twin = await TwinProcess.start();
  let sim: LinkSim | null = null;
  try {
    sim = await LinkSim.start({ device: twin.ptyPath, link: path.join(dir, name), ...line });
    const baud = line.baud ?? 115200;
    let port = await openPort(sim.path, baud);
    const swallow = (): void => undefined; // a pulled cable surfaces as DisconnectedError in the session
    port.on('error', swallow);
    let session = await BoardSession.open(port, { timeoutMs: 2000 });
    const s = sim;
    const board: BoardOnLine = {
      twin,
      sim: s,
      port,
      session,
      async reopen() {
        port = await openPort(s.path, baud);
        port.on('error', swallow);
        session = await BoardSession.open(port, { timeoutMs: 2000 });
        board.port = port;
        board.session = session;
        return session;
      },
      async stop() {
        board.session.close();
        await closePort(board.port);
        await s.stop();
        await twin.stop();
      },
    };
    return board;
  } catch (err) {
    await sim?.stop();
    await twin.stop();
    throw err;
  }
}

/** A zoo model blob built by the host tool (the same bytes every time for a seed). */
export function buildModel(dir: string, model = 'cnn', seed = 1): Uint8Array {
  const out = path.join(dir, `${model}-${seed}.blob`);
  if (!fs.existsSync(out)) execFileSync(TRAIN_BIN, ['build', '--model', model, '--seed', String(seed), '--out', out]);
  return new Uint8Array(fs.readFileSync(out));
}
