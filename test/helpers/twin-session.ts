// A BoardSession on a host twin over a real PTY, for the protocol tests: the
// twins a test opened are stopped after it; model blobs built by tinyrig-train
// once per test file; deterministic sample bytes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { SerialPort } from 'serialport';
import { BoardSession } from '../../protocol/src/index.js';
import { TRAIN_BIN } from '../../tools/proc/paths.js';
import { TwinProcess, type TwinOptions } from '../../tools/proc/twin.js';
import { closeSerial, openSerial } from './serial.js';

export interface TwinSession {
  twin: TwinProcess;
  port: SerialPort;
  session: BoardSession;
}

export class TwinSessions {
  private readonly open_: TwinSession[] = [];

  /** A twin started with `opts` and a session on its PTY. */
  async open(opts: TwinOptions = {}, sessionOpts: Parameters<typeof BoardSession.open>[1] = {}): Promise<TwinSession> {
    const twin = await TwinProcess.start({ quiet: true, ...opts });
    const port = await openSerial(twin.path);
    port.on('error', () => undefined);
    const session = await BoardSession.open(port, sessionOpts);
    const r = { twin, port, session };
    this.open_.push(r);
    return r;
  }

  /** Closes every session and stops its twin (call it in afterEach). */
  async closeAll(): Promise<void> {
    for (const r of this.open_.splice(0)) {
      r.session.close();
      await closeSerial(r.port);
      await r.twin.stop();
    }
  }
}

/** A zoo model blob (seed 3) built once into `dir`. */
export function modelBlob(dir: string, name: string, input?: string): Uint8Array {
  const out = path.join(dir, `${name}-${input ?? 'zoo'}.blob`);
  if (!fs.existsSync(out)) {
    if (!fs.existsSync(TRAIN_BIN)) throw new Error(`${TRAIN_BIN} is missing: run \`make -C firmware\` first`);
    execFileSync(TRAIN_BIN, ['build', '--model', name, '--seed', '3', ...(input ? ['--input', input] : []), '--out', out]);
  }
  return new Uint8Array(fs.readFileSync(out));
}

/** Deterministic sample bytes. */
export function fillBytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Fails, naming the fix, when the twin runs without the engine (so a test cannot pass without running). */
export function requireEngine(session: BoardSession): void {
  if (!session.hello.engine) throw new Error(`the twin (${session.hello.build}) has no training engine: rebuild it with make -C firmware`);
}
