// The daemon as a real child process (node --import tsx server/src/server.ts),
// for tests that kill it with SIGKILL and start it again over the same var/,
// and for bench:daemon.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { collectOutput, stopChild } from './child.js';
import { repoRoot } from './paths.js';

export interface DaemonProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  kill9: () => Promise<void>;
  stop: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface DaemonOptions {
  /** A command the daemon runs under, e.g. a HostNetwork's wrap(i) (`ip netns exec <ns>`). */
  wrap?: string[];
}

/** Starts the daemon and resolves once /v1/health answers at `url`, which is on env.HOST when given. */
export async function startDaemon(env: Record<string, string>, timeoutMs = 30_000, { wrap = [] }: DaemonOptions = {}): Promise<DaemonProcess> {
  const port = await freePort();
  const host = env.HOST ?? '127.0.0.1';
  const [command, ...args] = [...wrap, process.execPath, '--import', 'tsx', path.join(repoRoot, 'server', 'src', 'server.ts')];
  const child = spawn(command!, args, {
    cwd: repoRoot,
    env: { ...process.env, PORT: String(port), HOST: host, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  const url = `http://${host}:${port}`;
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`daemon exited at start:\n${output()}`);
    try {
      const r = await fetch(`${url}/v1/health`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`daemon did not listen within ${timeoutMs} ms:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    output,
    kill9: () => stopChild(child, { signal: 'SIGKILL' }),
    stop: () => stopChild(child, { killAfterMs: 10_000 }),
  };
}
