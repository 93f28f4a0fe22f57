// HostNetwork as the multi-host tests use it: a tiny HTTP server on each host,
// reached from the root namespace and from the other hosts, a partition from
// the gateway and its healing, and nothing left behind. Runs once in namespaces
// (or on their fallback, saying why) and once forced onto loopback addresses.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { collectOutput, pidAlive, stopChild, until, waitForOutput } from '../../tools/proc/child.js';
import { HostNetwork, NetworkFaultsUnavailableError } from '../../tools/proc/netns.js';
import { repoRoot } from '../../tools/proc/paths.js';

/** argv: address, name. Answers every request with its name. */
const SERVER = `
const [address, name] = process.argv.slice(1);
const srv = require('node:http').createServer((q, r) => r.end(name));
srv.listen(0, address, () => console.log('LISTEN ' + srv.address().port));
`;

/** argv: url, timeout ms. Prints {ok, body} or {ok: false, error} (a code, or 'timeout'). */
const CLIENT = `
const [url, ms] = process.argv.slice(1);
const req = require('node:http').get(url, { timeout: Number(ms) }, (res) => {
  let body = '';
  res.on('data', (d) => (body += d));
  res.on('end', () => console.log(JSON.stringify({ ok: true, body })));
});
req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
req.on('error', (e) => console.log(JSON.stringify({ ok: false, error: e.code ?? e.message })));
`;

type Spawner = (command: string, args: string[], opts: SpawnOptions) => ChildProcess;
type Probe = { ok: true; body: string } | { ok: false; error: string };

const inRoot: Spawner = (command, args, opts) => spawn(command, args, opts);
const asHost = (net: HostNetwork, i: number): Spawner => (command, args, opts) => net.spawn(i, command, args, opts);

/** GET url from wherever `run` runs the client. */
async function probe(run: Spawner, url: string, timeoutMs = 3000): Promise<Probe> {
  const child = run(process.execPath, ['-e', CLIENT, url, String(timeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(child);
  const [line] = await waitForOutput(child, output, /^\{.*\}$/m, { timeoutMs: timeoutMs + 5000 });
  await stopChild(child);
  return JSON.parse(line) as Probe;
}

const ipText = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
const linkNames = (): string[] => ipText('-o', 'link', 'show').split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter(Boolean);
const leftovers = (names: string[]): string[] => {
  const present = ipText('netns', 'list') + ipText('-o', 'link', 'show');
  return names.filter((n) => new RegExp(`\\b${n}\\b`).test(present));
};
/** Namespaces and links of a netns-mode network, read from its claim file under /run. */
function claimedNames(net: HostNetwork): string[] {
  const file = path.join('/run/tinyrig-netns', `${net.gateway.split('.').slice(0, 3).join('.')}.json`);
  const claim = JSON.parse(fs.readFileSync(file, 'utf8')) as { namespaces: string[]; links: string[] };
  return [...claim.namespaces, ...claim.links];
}

function networkSuite(forceLoopback: boolean): void {
  describe(forceLoopback ? 'HostNetwork forced onto loopback (TINYRIG_NETNS=off)' : 'HostNetwork in network namespaces', () => {
    let net: HostNetwork;
    const servers: { child: ChildProcess; url: string }[] = [];
    const say = (msg: string): void => console.log(`[netns test${forceLoopback ? ', forced loopback' : ''}] ${msg}`);
    /** Skips a test that needs namespaces, saying why. */
    const needNamespaces = (ctx: TestContext): void => {
      if (net.mode === 'netns') return;
      say(`NOT RUN without namespaces: "${ctx.task.name}" (${net.reason})`);
      ctx.skip();
    };

    beforeAll(async () => {
      const saved = process.env.TINYRIG_NETNS;
      if (forceLoopback) process.env.TINYRIG_NETNS = 'off';
      try {
        net = await HostNetwork.create(3);
      } finally {
        if (saved === undefined) delete process.env.TINYRIG_NETNS;
        else process.env.TINYRIG_NETNS = saved;
      }
      say(`mode ${net.mode}${net.reason ? ` (${net.reason})` : ''}: hosts ${net.hosts.map((h) => `${h.name}=${h.address}`).join(', ')}, gateway ${net.gateway}`);
      for (const [i, host] of net.hosts.entries()) {
        const child = net.spawn(i, process.execPath, ['-e', SERVER, host.address, host.name], { stdio: ['ignore', 'pipe', 'pipe'] });
        const [, port] = await waitForOutput(child, collectOutput(child), /^LISTEN (\d+)$/m);
        servers.push({ child, url: `http://${host.address}:${port}/` });
      }
    });

    afterAll(async () => {
      await Promise.all(servers.map((s) => stopChild(s.child)));
      await net?.destroy();
    });

    it(`runs in ${forceLoopback ? 'loopback' : 'netns'} mode`, (ctx) => {
      if (forceLoopback) {
        expect(net.mode).toBe('loopback');
        expect(net.reason).toBe('TINYRIG_NETNS=off');
        expect(net.gateway).toBe('127.0.0.1');
        for (const h of net.hosts) expect(h.address).toMatch(/^127\.0\.\d+\.1[0-2]$/);
      } else {
        // a machine that cannot make namespaces runs this suite on loopback, and says which tests did not run
        needNamespaces(ctx);
        for (const h of net.hosts) expect(h.address).toMatch(/^10\.\d+\.\d+\.1[0-2]$/);
        expect(net.gateway).toMatch(/^10\.\d+\.\d+\.1$/);
      }
    });

    it('reaches the server on each host from the root namespace', async () => {
      for (const [i, s] of servers.entries()) expect(await probe(inRoot, s.url)).toEqual({ ok: true, body: net.hosts[i]!.name });
    });

    it('reaches the server on each host from another host', async () => {
      for (const [i, s] of servers.entries()) {
        const from = (i + 1) % servers.length;
        expect(await probe(asHost(net, from), s.url), `host ${from} -> host ${i}`).toEqual({ ok: true, body: net.hosts[i]!.name });
      }
    });

    // on loopback addresses the hosts share one loopback: nothing to test there
    if (!forceLoopback) it('keeps each host its own loopback', async (ctx) => {
      needNamespaces(ctx);
      // a server on 127.0.0.1 inside host 0 is not there for host 1
      const child = net.spawn(0, process.execPath, ['-e', SERVER, '127.0.0.1', 'inside'], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const [, port] = await waitForOutput(child, collectOutput(child), /^LISTEN (\d+)$/m);
        expect(await probe(asHost(net, 0), `http://127.0.0.1:${port}/`)).toEqual({ ok: true, body: 'inside' });
        expect(await probe(asHost(net, 1), `http://127.0.0.1:${port}/`)).toEqual({ ok: false, error: 'ECONNREFUSED' });
      } finally {
        await stopChild(child);
      }
    });

    it('cuts host 1 off from the gateway while the others still reach it, until healed', async (ctx) => {
      const gw = http.createServer((_, res) => res.end('gateway'));
      await new Promise<void>((r) => gw.listen(0, net.gateway, r));
      const url = `http://${net.gateway}:${(gw.address() as AddressInfo).port}/`;
      try {
        if (net.mode === 'loopback') {
          // the caller of partition learns that the fault test cannot run, and says so
          const err = await net.partition(1, net.gateway).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(NetworkFaultsUnavailableError);
          expect((err as Error).message).toMatch(/fault test cannot run/);
          say(`partition: ${(err as Error).message}`);
          if (!forceLoopback) needNamespaces(ctx);
          return;
        }
        for (const i of [0, 1, 2]) expect(await probe(asHost(net, i), url), `host ${i} before`).toEqual({ ok: true, body: 'gateway' });

        await net.partition(1, net.gateway);
        // packets vanish: the connect times out, it is not refused
        expect(await probe(asHost(net, 1), url, 1500)).toEqual({ ok: false, error: 'timeout' });
        expect(await probe(asHost(net, 2), url)).toEqual({ ok: true, body: 'gateway' });
        // the rest of host 1's network still works: it is reached from the root namespace and from
        // host 0, and reaches host 2
        expect(await probe(inRoot, servers[1]!.url)).toEqual({ ok: true, body: net.hosts[1]!.name });
        expect(await probe(asHost(net, 0), servers[1]!.url)).toEqual({ ok: true, body: net.hosts[1]!.name });
        expect(await probe(asHost(net, 1), servers[2]!.url)).toEqual({ ok: true, body: net.hosts[2]!.name });

        await net.heal(1);
        expect(await probe(asHost(net, 1), url)).toEqual({ ok: true, body: 'gateway' });
      } finally {
        await new Promise((r) => gw.close(r));
      }
    });

    it('leaves no namespace, link or claim behind, and destroying again does nothing', async () => {
      if (net.mode === 'loopback') {
        await net.destroy();
        await net.destroy();
        return;
      }
      const names = claimedNames(net);
      expect(leftovers(names)).toEqual(names);
      await Promise.all(servers.splice(0).map((s) => stopChild(s.child)));
      await net.destroy();
      await net.destroy();
      expect(leftovers(names)).toEqual([]);
      expect(fs.readdirSync('/run/tinyrig-netns').filter((f) => f.startsWith(`${net.gateway.split('.').slice(0, 3).join('.')}.`))).toEqual([]);
    });
  });
}

networkSuite(false);
networkSuite(true);

describe('HostNetwork after a crashed run', () => {
  it('removes what a killed owner left of the same prefix, ending what still ran inside', async (ctx) => {
    // a process that makes a network, starts a sleeper in host 0, and is then SIGKILLed
    const script = `
      import { HostNetwork } from ${JSON.stringify(path.join(repoRoot, 'tools/proc/netns.ts'))};
      const net = await HostNetwork.create(2, { prefix: 'trk' });
      const sleeper = net.spawn(0, 'sleep', ['300'], { stdio: 'ignore', detached: true });
      console.log(JSON.stringify({ mode: net.mode, reason: net.reason, hosts: net.hosts.map((h) => h.name), sleeper: sleeper.pid }));
      setInterval(() => {}, 1000);
    `;
    const owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = collectOutput(owner);
    const [line] = await waitForOutput(owner, output, /^\{.*\}$/m, { timeoutMs: 20_000 });
    const left = JSON.parse(line) as { mode: string; reason: string; hosts: string[]; sleeper: number };
    await stopChild(owner, { signal: 'SIGKILL' });
    let net: HostNetwork | undefined;
    try {
      if (left.mode !== 'netns') {
        console.log(`[netns test] NOT RUN without namespaces: "${ctx.task.name}" (${left.reason})`);
        ctx.skip();
      }
      expect(leftovers(left.hosts)).toEqual(left.hosts);
      const leftLinks = linkNames().filter((n) => /^trk(br|v)/.test(n));
      expect(leftLinks).toHaveLength(3); // the bridge and two veths
      expect(pidAlive(left.sleeper)).toBe(true);

      net = await HostNetwork.create(1, { prefix: 'trk' });
      expect(net.mode).toBe('netns');
      expect(leftovers(left.hosts)).toEqual([]);
      expect(leftovers(leftLinks)).toEqual([]);
      const ours = claimedNames(net).filter((n) => /^trk(br|v)/.test(n));
      expect(linkNames().filter((n) => /^trk(br|v)/.test(n)).sort()).toEqual(ours.sort());
      await until(() => !pidAlive(left.sleeper), 5000, 'the sleeper left inside to end');
    } finally {
      // on loopback, or when the sweep failed, the sleeper is still ours to end
      if (pidAlive(left.sleeper)) process.kill(left.sleeper, 'SIGKILL');
      await net?.destroy();
    }
  });
});
