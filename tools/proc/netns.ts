// Several rig hosts on one machine: n Linux network namespaces joined by veth
// pairs to a bridge in the root namespace, each host with an address of its
// own, so daemons sharing one PostgreSQL can be tested as separate machines
// and a host can be cut off from one address (partition/heal). Where
// namespaces cannot be made (no root, no CAP_SYS_ADMIN, no `ip`) or
// TINYRIG_NETNS=off, the hosts are loopback addresses instead, and `reason`
// says why. Needs only iproute2 (`ip`, `tc`).
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from './child.js';

export type NetworkMode = 'netns' | 'loopback';

export interface NetHost {
  /** The namespace (netns mode), or the same label on loopback. */
  name: string;
  /** Where the host's servers listen and are reached from the root namespace and the other hosts. */
  address: string;
}

export interface HostNetworkOptions {
  /** Starts every name made (namespaces `<prefix>-<id>-<i>`, links `<prefix>br<id>`, `<prefix>v<id><i>`); 1-5 of [a-z0-9]. */
  prefix?: string;
}

/** Thrown by partition/heal on a loopback network: faults need network namespaces. */
export class NetworkFaultsUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`network faults need Linux network namespaces, and this network runs on loopback addresses (${reason}): the fault test cannot run here`);
    this.name = 'NetworkFaultsUnavailableError';
  }
}

/** What a netns network made, written to CLAIMS_DIR/<subnet>.json before it makes anything,
 * so a later create removes it when its owner died; the exclusive create also claims the subnet. */
interface Claim {
  pid: number;
  /** The owner's start time (/proc/<pid>/stat field 22), so a reused pid is not taken for the owner. */
  start: string;
  prefix: string;
  id: string;
  subnet: string;
  namespaces: string[];
  links: string[];
}

const CLAIMS_DIR = '/run/tinyrig-netns';
/** The host's interface inside its namespace. */
const HOST_IF = 'eth0';
/** Classid of the HTB class whose leaf drops every packet (see partition). */
const DROP_CLASS = '1:99';
const MAX_HOSTS = 200;

export class HostNetwork {
  private destroyed = false;
  /** Per host, the addresses it is cut off from. */
  private readonly cut = new Map<number, Set<string>>();

  private constructor(
    readonly mode: NetworkMode,
    readonly hosts: NetHost[],
    /** Where a server in the root namespace (PostgreSQL, say) listens to be reached from the hosts. */
    readonly gateway: string,
    /** The root namespace's own address on the bridge: the test process's connections to the
     * hosts come from it, so partition(i, gateway) does not cut the test off from host i. */
    readonly rootAddress: string,
    /** Why the network runs on loopback addresses ('' in netns mode). */
    readonly reason: string,
    private readonly claim: Claim | null,
    private readonly tools: { ip: string; tc: string } | null,
  ) {}

  /** n hosts, in namespaces when they can be made, else on loopback addresses. */
  static async create(n: number, opts: HostNetworkOptions = {}): Promise<HostNetwork> {
    const prefix = opts.prefix ?? 'tr';
    // names must fit Linux's 15-byte interface names
    if (!/^[a-z][a-z0-9]{0,4}$/.test(prefix)) throw new Error(`HostNetwork prefix ${JSON.stringify(prefix)}: 1-5 of [a-z0-9], a letter first`);
    if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new Error(`HostNetwork of ${n} hosts: 1 to ${MAX_HOSTS}`);
    const id = randomBytes(3).toString('hex');
    if (process.env.TINYRIG_NETNS === 'off') return HostNetwork.loopback(n, prefix, id, 'TINYRIG_NETNS=off');
    const ip = findTool('ip');
    const tc = findTool('tc');
    if (!ip || !tc) return HostNetwork.loopback(n, prefix, id, `iproute2 is not installed (no ${ip ? 'tc' : 'ip'} on PATH or in /usr/sbin, /sbin)`);
    const tools = { ip, tc };
    let claim: Claim | null = null;
    try {
      await removeStale(ip, prefix);
      claim = await claimSubnet(ip, prefix, id, n);
      await build(ip, claim);
    } catch (e) {
      if (claim) await removeClaimed(ip, claim);
      const who = process.getuid?.() === 0 ? '' : ' (not running as root)';
      return HostNetwork.loopback(n, prefix, id, `network namespaces could not be made${who}: ${(e as Error).message}`);
    }
    const hosts = claim.namespaces.map((name, i) => ({ name, address: `${claim!.subnet}.${10 + i}` }));
    return new HostNetwork('netns', hosts, `${claim.subnet}.1`, `${claim.subnet}.2`, '', claim, tools);
  }

  private static loopback(n: number, prefix: string, id: string, reason: string): HostNetwork {
    const x = randomInt(1, 255);
    const hosts = Array.from({ length: n }, (_, i) => ({ name: `${prefix}-${id}-${i}`, address: `127.0.${x}.${10 + i}` }));
    return new HostNetwork('loopback', hosts, '127.0.0.1', '127.0.0.1', reason, null, null);
  }

  /** The command prefix that runs a program as host i (`ip netns exec <ns>`; nothing on loopback),
   * e.g. for startDaemon's `wrap`. */
  wrap(i: number): string[] {
    const host = this.host(i);
    return this.tools ? [this.tools.ip, 'netns', 'exec', host.name] : [];
  }

  /** child_process.spawn as host i: in its namespace, so what it serves on hosts[i].address is reached
   * through the bridge. `ip netns exec` execs the program, so the child's pid is the program's. */
  spawn(i: number, command: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    const wrap = this.wrap(i);
    return wrap.length ? spawn(wrap[0]!, [...wrap.slice(1), command, ...args], opts) : spawn(command, args, opts);
  }

  /** Cuts host i off from `address`: every IPv4 packet host i sends there is dropped, silently, as on a
   * dead link, so its connects and open connections to it time out (they are not refused); packets
   * from `address` still arrive but get no answer. ARP and the other addresses are untouched.
   * Done with tc on the host's interface (an HTB class whose leaf queue holds 0 packets, u32 filters
   * on the destination) because a blackhole route fails connect() at once with EINVAL, which no real
   * partition does, iptables is not in iproute2, and tc's netem and drop action are not in every
   * kernel (this machine's has neither). */
  async partition(i: number, address: string): Promise<void> {
    const { ns, tc } = this.faultable(i);
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) throw new Error(`partition(${i}, ${address}): an IPv4 address is needed`);
    const cut = this.cut.get(i) ?? new Set<string>();
    if (cut.has(address)) return;
    const onHostIf = (what: string, verb: string, ...args: string[]): Promise<string> => run(tc, ['-n', ns, what, verb, 'dev', HOST_IF, ...args]);
    if (cut.size === 0) {
      // unclassified packets take HTB's direct queue, unshaped; the rate of the dropping class is moot
      await onHostIf('qdisc', 'add', 'root', 'handle', '1:', 'htb');
      await onHostIf('class', 'add', 'parent', '1:', 'classid', DROP_CLASS, 'htb', 'rate', '1mbit', 'quantum', '1514');
      await onHostIf('qdisc', 'add', 'parent', DROP_CLASS, 'handle', '99:', 'pfifo', 'limit', '0');
    }
    await onHostIf('filter', 'add', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'dst', `${address}/32`, 'flowid', DROP_CLASS);
    cut.add(address);
    this.cut.set(i, cut);
  }

  /** Ends every partition of host i: TCP sends again what was dropped, so open connections resume. */
  async heal(i: number): Promise<void> {
    const { ns, tc } = this.faultable(i);
    if (!this.cut.get(i)?.size) return;
    await run(tc, ['-n', ns, 'qdisc', 'del', 'dev', HOST_IF, 'root']);
    this.cut.delete(i);
  }

  /** Removes the namespaces (ending what still runs in them), the veths and the bridge; again is a no-op. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.claim && this.tools) await removeClaimed(this.tools.ip, this.claim);
  }

  private host(i: number): NetHost {
    const host = this.hosts[i];
    if (!host) throw new Error(`no host ${i} (this network has ${this.hosts.length})`);
    return host;
  }

  private faultable(i: number): { ns: string; tc: string } {
    const host = this.host(i);
    if (!this.tools) throw new NetworkFaultsUnavailableError(this.reason);
    if (this.destroyed) throw new Error('this network was destroyed');
    return { ns: host.name, tc: this.tools.tc };
  }
}

function findTool(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Runs a command; rejects with the command and its stderr. */
function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Runs a removal whose target may be gone already. */
async function tryRun(file: string, args: string[]): Promise<void> {
  await run(file, args).catch(() => undefined);
}

function procStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

async function listNamespaces(ip: string): Promise<string[]> {
  return (await run(ip, ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

async function listLinks(ip: string): Promise<string[]> {
  // "3: name@peer: <...>" per line
  return (await run(ip, ['-o', 'link', 'show'])).split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter(Boolean);
}

function readClaims(): Claim[] {
  let names: string[];
  try {
    names = fs.readdirSync(CLAIMS_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const claims: Claim[] = [];
  for (const name of names) {
    try {
      claims.push(JSON.parse(fs.readFileSync(path.join(CLAIMS_DIR, name), 'utf8')) as Claim);
    } catch {
      // being written by its owner right now, or removed meanwhile: not stale
    }
  }
  return claims;
}

const ownerAlive = (c: Claim): boolean => pidAlive(c.pid) && procStart(c.pid) === c.start;

/** Removes what crashed earlier runs of this prefix left: each claim whose owner is dead, and any
 * namespace or link of this prefix's naming that no live claim holds (a claim is written before its
 * namespaces, so listing them first and the claims second sees the claim of every one listed). */
async function removeStale(ip: string, prefix: string): Promise<void> {
  const namespaces = await listNamespaces(ip);
  const links = await listLinks(ip);
  const live = new Set<string>();
  for (const claim of readClaims()) {
    if (ownerAlive(claim)) live.add(claim.id);
    else if (claim.prefix === prefix) await removeClaimed(ip, claim);
  }
  const nsName = new RegExp(`^${prefix}-([0-9a-f]{6})-\\d+$`);
  const linkName = new RegExp(`^${prefix}(?:br([0-9a-f]{6})|v([0-9a-f]{6})\\d+)$`);
  for (const ns of namespaces) {
    const m = nsName.exec(ns);
    if (m && !live.has(m[1]!)) await removeNamespace(ip, ns);
  }
  for (const link of links) {
    const m = linkName.exec(link);
    if (m && !live.has((m[1] ?? m[2])!)) await tryRun(ip, ['link', 'del', link]);
  }
}

async function removeNamespace(ip: string, ns: string): Promise<void> {
  // a process left inside would keep the namespace alive after `ip netns del`
  const pids = await run(ip, ['netns', 'pids', ns]).catch(() => '');
  for (const pid of pids.split('\n').map(Number).filter((p) => p > 0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await tryRun(ip, ['netns', 'del', ns]);
}

async function removeClaimed(ip: string, claim: Claim): Promise<void> {
  for (const ns of claim.namespaces) await removeNamespace(ip, ns);
  // deleting one end of a veth deletes both; the bridge goes last
  for (const link of [...claim.links].reverse()) await tryRun(ip, ['link', 'del', link]);
  fs.rmSync(path.join(CLAIMS_DIR, `${claim.subnet}.json`), { force: true });
}

function ipv4(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** The IPv4 prefixes this machine has as addresses or routes, as [network, length]. */
async function prefixesInUse(ip: string): Promise<[number, number][]> {
  const text = (await run(ip, ['-4', '-o', 'addr', 'show'])) + (await run(ip, ['-4', 'route', 'show', 'table', 'all']));
  return [...text.matchAll(/\b(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?\b/g)].map((m) => [ipv4(m[1]!), Number(m[2] ?? 32)]);
}

/** A random 10.x.y.0/24 that no address or route here overlaps, claimed by an exclusive create. */
async function claimSubnet(ip: string, prefix: string, id: string, n: number): Promise<Claim> {
  fs.mkdirSync(CLAIMS_DIR, { recursive: true });
  const used = await prefixesInUse(ip);
  const start = procStart(process.pid);
  if (!start) throw new Error('cannot read /proc/self/stat');
  for (let tries = 0; tries < 50; tries++) {
    const subnet = `10.${randomInt(200, 250)}.${randomInt(0, 256)}`;
    const net = ipv4(`${subnet}.0`);
    const overlaps = used.some(([addr, len]) => {
      const bits = Math.min(len, 24);
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      return ((addr & mask) >>> 0) === ((net & mask) >>> 0);
    });
    if (overlaps) continue;
    const claim: Claim = {
      pid: process.pid,
      start,
      prefix,
      id,
      subnet,
      namespaces: Array.from({ length: n }, (_, i) => `${prefix}-${id}-${i}`),
      links: [`${prefix}br${id}`, ...Array.from({ length: n }, (_, i) => `${prefix}v${id}${i}`)],
    };
    try {
      fs.writeFileSync(path.join(CLAIMS_DIR, `${subnet}.json`), JSON.stringify(claim), { flag: 'wx' });
      return claim;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  throw new Error('no free 10.200-249.x.0/24 found');
}

/** The bridge with the root namespace's two addresses (.2 first, so it is the source of the root
 * namespace's connections to the hosts; .1 the gateway), and per host a namespace, a veth pair and
 * the host's address with a default route through the gateway. */
async function build(ip: string, c: Claim): Promise<void> {
  const [bridge, ...veths] = c.links as [string, ...string[]];
  await run(ip, ['link', 'add', 'name', bridge, 'type', 'bridge']);
  await run(ip, ['addr', 'add', `${c.subnet}.2/24`, 'dev', bridge]);
  await run(ip, ['addr', 'add', `${c.subnet}.1/24`, 'dev', bridge]);
  await run(ip, ['link', 'set', bridge, 'up']);
  for (const [i, ns] of c.namespaces.entries()) {
    await run(ip, ['netns', 'add', ns]);
    await run(ip, ['link', 'add', veths[i]!, 'type', 'veth', 'peer', 'name', HOST_IF, 'netns', ns]);
    await run(ip, ['link', 'set', veths[i]!, 'master', bridge, 'up']);
    await run(ip, ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run(ip, ['-n', ns, 'addr', 'add', `${c.subnet}.${10 + i}/24`, 'dev', HOST_IF]);
    await run(ip, ['-n', ns, 'link', 'set', HOST_IF, 'up']);
    await run(ip, ['-n', ns, 'route', 'add', 'default', 'via', `${c.subnet}.1`]);
  }
}
