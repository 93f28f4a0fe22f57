// Runs one bulk transfer in SMP console framing through the link simulator:
// SMP client (this process) ⇄ linksim (line rate) ⇄ socat PTY pair ⇄ SMP responder (child process).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { collectOutput, waitForOutput } from '../../tools/proc/child.js';
import { LinkSim, PtyPair } from '../../tools/proc/linksim.js';
import { repoRoot } from '../../tools/proc/paths.js';
import { SMP_DEFAULT_MTU, SMP_GROUP_IMAGE, SMP_GROUP_USER, SmpClient } from './smp.js';

export interface SmpRig {
  pair: PtyPair;
  sim: LinkSim;
  responder: ChildProcess;
  port: SerialPort;
  client: SmpClient;
  stop(): Promise<void>;
}

export async function startSmpRig(dir: string, baud: number, mtu = SMP_DEFAULT_MTU): Promise<SmpRig> {
  const pair = await PtyPair.start(dir, `smp-${baud}`);
  const tsx = path.join(repoRoot, 'node_modules', '.bin', 'tsx');
  const responder = spawn(tsx, [path.join(repoRoot, 'bench', 'lib', 'smp-responder.ts'), pair.b, String(mtu)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await waitForOutput(responder, collectOutput(responder), /SMP ready/, { timeoutMs: 30_000 }).catch((e: Error) => {
    throw new Error(`SMP responder: ${e.message}`);
  });
  const sim = await LinkSim.start({ device: pair.a, baud });
  const port = await new Promise<SerialPort>((resolve, reject) => {
    const p = new SerialPort({ path: sim.ptyPath, baudRate: baud }, (err) => (err ? reject(err) : resolve(p)));
  });
  const client = new SmpClient(port, mtu);
  return {
    pair,
    sim,
    responder,
    port,
    client,
    async stop() {
      await new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r()));
      await sim.stop();
      if (responder.exitCode === null) {
        const gone = new Promise<void>((r) => responder.once('exit', () => r()));
        responder.kill('SIGTERM');
        await gone;
      }
      await pair.stop();
    },
  };
}

export interface SmpResult {
  seconds: number;
  wire_bytes: number;
}

/** Upload `data` (samples stream: user group; weights: image group) and time it. */
export async function smpUpload(rig: SmpRig, data: Uint8Array, kind: 'samples' | 'weights'): Promise<SmpResult> {
  const before = await rig.sim.stats();
  const t0 = process.hrtime.bigint();
  await rig.client.upload(kind === 'samples' ? SMP_GROUP_USER : SMP_GROUP_IMAGE, kind === 'samples' ? 0 : 1, data);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = await rig.sim.stats();
  return { seconds, wire_bytes: after.h2d_out - before.h2d_out + (after.d2h_out - before.d2h_out) };
}

/** Read back the uploaded image with fs downloads; checks it matches. */
export async function smpDownload(rig: SmpRig, expect: Uint8Array): Promise<SmpResult> {
  const before = await rig.sim.stats();
  const t0 = process.hrtime.bigint();
  const got = await rig.client.download('/lfs/weights');
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = await rig.sim.stats();
  if (!Buffer.from(expect).equals(got)) throw new Error('SMP read-back differs from what was written');
  return { seconds, wire_bytes: after.h2d_out - before.h2d_out + (after.d2h_out - before.d2h_out) };
}
