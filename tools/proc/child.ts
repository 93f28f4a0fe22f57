// Child processes as the scripts, tests and benchmarks use them: their output
// kept as it arrives, waiting for a line of it (or any condition), stopping
// them and waiting for the exit.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/** Whether the child has neither exited nor been ended by a signal. */
export function isRunning(child: ChildProcess | null | undefined): child is ChildProcess {
  return !!child && child.exitCode === null && child.signalCode === null;
}

/** Keeps the child's stdout and stderr, interleaved as they arrive; read it with the returned function. */
export function collectOutput(child: ChildProcess): () => string {
  let out = '';
  const add = (d: Buffer | string): void => {
    out += d.toString();
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => out;
}

/** Resolves with the first match of `re` in the output after offset `from`,
 * checked as output arrives; rejects when the child exits or `timeoutMs` pass first. */
export function waitForOutput(
  child: ChildProcess,
  output: () => string,
  re: RegExp,
  { from = 0, timeoutMs = 10_000 }: { from?: number; timeoutMs?: number } = {},
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const m = output().slice(from).match(re);
      if (m) {
        cleanup();
        resolve(m);
      }
      return m !== null;
    };
    const onData = (): void => void check();
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (check()) return;
      cleanup();
      reject(new Error(`process exited (${code ?? signal}) before ${re}: ${output()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${re} within ${timeoutMs} ms: ${output()}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    // a child that is gone already emits no more exit: say so now
    if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
    else check();
  });
}

/** Polls `cond` every 20 ms until it holds or `ms` pass. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Sends `signal` (SIGTERM by default) and waits for the exit; SIGKILL after `killAfterMs` when given. */
export async function stopChild(
  child: ChildProcess | null | undefined,
  { signal = 'SIGTERM', killAfterMs }: { signal?: NodeJS.Signals; killAfterMs?: number } = {},
): Promise<void> {
  if (!isRunning(child)) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await gone;
  clearTimeout(timer);
}

/** Whether a process is still there and not a zombie (from /proc). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}
