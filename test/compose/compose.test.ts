// docker-compose.yml and Dockerfile checked without a Docker engine: the YAML
// parses, services and profiles are what docs/docker.md promises, every port is
// bound to 127.0.0.1, state is on a volume, every file the Dockerfile copies
// exists, and every command the services run exists in the repository.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot as root } from '../../tools/proc/paths.js';
import { instructions } from './dockerfile.js';

const composeText = fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');

interface Service {
  build?: { context: string; dockerfile: string };
  depends_on?: Record<string, { condition: string }>;
  image?: string;
  profiles?: string[];
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  command?: string[];
  devices?: string[];
  healthcheck?: { test: string[] };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = parse(composeText, { merge: true }) as Compose;

/** Compose variable interpolation with defaults only (`${X:-d}`, `$$` → `$`); a required `${X:?msg}` becomes `<X>`. */
function interpolate(s: string): string {
  return s
    .replace(/\$\{(\w+):\?[^}]*\}/g, (_m, name: string) => `<${name}>`)
    .replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_m, _name, dflt) => dflt ?? '')
    .replace(/\$\$/g, '$');
}

/** The services that run the daemon (built from the Dockerfile); postgres is the shared store's server. */
const daemons = Object.entries(compose.services).filter(([, s]) => s.build);

describe('docker-compose.yml', () => {
  it('has the daemon service by default, the emulated rig under emulated, PostgreSQL and two rig hosts under fleet', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['daemon', 'emulated', 'postgres', 'rig-a', 'rig-b']);
    expect(compose.services.daemon.profiles).toBeUndefined();
    expect(compose.services.emulated.profiles).toEqual(['emulated']);
    for (const name of ['postgres', 'rig-a', 'rig-b']) expect(compose.services[name].profiles).toEqual(['fleet']);
    expect(daemons.map(([n]) => n).sort()).toEqual(['daemon', 'emulated', 'rig-a', 'rig-b']);
    for (const [, s] of daemons) expect(s.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
  });

  it('makes the fleet hosts one fleet: the same PostgreSQL and token, their own host ids and board ids, shared uploads', () => {
    const pg = compose.services.postgres;
    expect(pg.image).toMatch(/^postgres:\d+/);
    expect(pg.healthcheck!.test).toContain('pg_isready');
    expect(pg.volumes!.map((v) => v.split(':')[1])).toContain('/var/lib/postgresql/data');
    expect(interpolate(pg.ports![0]).split(':')[0]).toBe('127.0.0.1');
    const hosts = ['rig-a', 'rig-b'].map((n) => compose.services[n]);
    const urls = hosts.map((h) => interpolate(h.environment!.TINYRIG_DATABASE_URL));
    expect(urls[0]).toBe(urls[1]);
    const url = new URL(urls[0]);
    expect(url.hostname).toBe('postgres');
    expect(url.pathname).toBe(`/${pg.environment!.POSTGRES_DB}`);
    expect(url.username).toBe(pg.environment!.POSTGRES_USER);
    expect(hosts[0].environment!.TINYRIG_TOKEN).toBe(hosts[1].environment!.TINYRIG_TOKEN);
    expect(new Set(hosts.map((h) => h.environment!.TINYRIG_HOST_ID)).size).toBe(2);
    for (const [i, h] of hosts.entries()) {
      const id = h.environment!.TINYRIG_HOST_ID;
      expect(h.environment!.TINYRIG_HOST_URL).toBe(`http://${['rig-a', 'rig-b'][i]}:8080`);
      expect(h.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
      // board ids carry the host id, so two hosts' m4-0 are two boards of the fleet
      expect(interpolate(h.command![2])).toContain('--id-prefix "$TINYRIG_HOST_ID-"');
      expect(id).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
      const uploads = h.volumes!.map((v) => v.split(':')).find((v) => v[1] === h.environment!.TINYRIG_UPLOADS);
      expect(uploads?.[0]).toBe('tinyrig-uploads');
    }
  });

  it('publishes every port on 127.0.0.1 only, on distinct host ports', () => {
    const hostPorts: string[] = [];
    for (const [name, s] of daemons) {
      expect(s.ports, name).toBeDefined();
      for (const p of s.ports!) {
        const parts = interpolate(p).split(':');
        expect(parts, `${name}: ${p}`).toHaveLength(3);
        expect(parts[0], `${name}: ${p}`).toBe('127.0.0.1');
        expect(parts[2]).toBe(s.environment!.PORT);
        hostPorts.push(parts[1]);
      }
      // inside the container the daemon must listen on every interface for the mapping to reach it
      expect(s.environment!.HOST).toBe('0.0.0.0');
    }
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it('keeps the state directory on a declared named volume, one per daemon', () => {
    const used = new Set<string>();
    for (const [name, s] of daemons) {
      const varDir = s.environment!.TINYRIG_VAR;
      expect(varDir, name).toBe('/app/var');
      const mount = s.volumes!.map((v) => interpolate(v).split(':')).find((v) => v[1] === varDir);
      expect(mount, `${name} mounts ${varDir}`).toBeDefined();
      expect(Object.keys(compose.volumes ?? {})).toContain(mount![0]);
      expect(used.has(mount![0]), `${name} shares its store with another daemon`).toBe(false);
      used.add(mount![0]);
    }
  });

  it('shows how real boards are passed through by their /dev/serial/by-id names', () => {
    const commented = composeText
      .split('\n')
      .filter((l) => /^\s*#\s*-\s*\/dev\/serial\/by-id\//.test(l))
      .map((l) => l.replace(/^\s*#\s*-\s*/, ''));
    expect(commented.length).toBeGreaterThanOrEqual(1);
    for (const d of commented) {
      const [host, container] = d.split(':');
      expect(host).toMatch(/^\/dev\/serial\/by-id\/usb-/);
      expect(container).toBe(host);
    }
    expect(composeText).toMatch(/^\s*#\s*devices:/m);
    expect(compose.services.daemon.environment!.TINYRIG_DEVICES).toMatch(/^\/etc\/tinyrig\//);
  });

  it('runs commands that exist in the repository', () => {
    const daemonCmd = compose.services.daemon.command!;
    expect(daemonCmd.slice(0, 2)).toEqual(['npx', 'tsx']);
    expect(fs.existsSync(path.join(root, daemonCmd[2]))).toBe(true);

    const [shell, flag, script] = compose.services.emulated.command!;
    expect([shell, flag]).toEqual(['sh', '-c']);
    const body = interpolate(script);
    const syntax = spawnSync('sh', ['-n', '-c', body], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);
    expect(body).toMatch(/\.\/scripts\/rig start/);
    expect(body).toMatch(/exec npx tsx server\/src\/server\.ts/);
    // the rig's board counts are the ones scripts/start takes
    for (const v of ['RIG_M0PLUS', 'RIG_M4', 'RIG_M7', 'RIG_TWINS']) {
      expect(compose.services.emulated.environment![v]).toBeDefined();
      expect(body).toContain(`$${v}`);
    }
  });

  // scripts/rig belongs to the emulated rig; until it is in the tree this check is reported as skipped
  it.skipIf(!fs.existsSync(path.join(root, 'scripts', 'rig')))('runs an executable scripts/rig in the emulated profile', () => {
    const body = interpolate(compose.services.emulated.command![2]);
    const scripts = [...body.matchAll(/(?:^|\s)\.\/(scripts\/[\w-]+)/g)].map((m) => m[1]);
    expect(scripts).toContain('scripts/rig');
    for (const s of scripts) fs.accessSync(path.join(root, s), fs.constants.X_OK);
  });

  it('passes `docker compose config` when a compose client is installed', (ctx) => {
    const probe = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    if (probe.status !== 0) ctx.skip();
    execFileSync('docker', ['compose', '-f', path.join(root, 'docker-compose.yml'), '--profile', 'emulated', 'config', '-q'], {
      cwd: root,
    });
  });
});

describe('Dockerfile', () => {
  const ins = instructions(dockerfile);

  it('builds on node:20-bookworm-slim without recommended packages', () => {
    expect(ins[0]).toEqual({ op: 'FROM', args: 'node:20-bookworm-slim' });
    const installs = ins.filter((i) => i.op === 'RUN' && /apt-get install/.test(i.args));
    expect(installs.length).toBeGreaterThan(0);
    for (const i of installs) {
      expect(i.args).toContain('--no-install-recommends');
      for (const pkg of ['gcc-arm-none-eabi', 'libnewlib-arm-none-eabi', 'qemu-system-arm', 'dataset-fashion-mnist', 'make']) {
        expect(i.args.split(/\s+/)).toContain(pkg);
      }
    }
  });

  it('copies only files that exist and are not excluded from the build context', () => {
    const ignored = fs
      .readFileSync(path.join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const copies = ins.filter((i) => i.op === 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const args = c.args.split(/\s+/).filter((a) => !a.startsWith('--'));
      for (const src of args.slice(0, -1)) {
        expect(fs.existsSync(path.join(root, src)), `COPY ${src}`).toBe(true);
        expect(ignored, `COPY ${src} is in .dockerignore`).not.toContain(src);
      }
    }
    for (const heavy of ['node_modules', 'var', 'firmware/build', '.git']) expect(ignored).toContain(heavy);
  });

  it('installs with npm ci, builds the firmware and runs the daemon', () => {
    const runs = ins.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bmake\b.*-C firmware/.test(r))).toBe(true);
    // the image holds every source the daemon imports at run time
    const copied = ins.filter((i) => i.op === 'COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const dir of ['server', 'protocol', 'firmware', 'tools', 'scripts', 'package.json', 'package-lock.json']) expect(copied).toContain(dir);
    const cmd = JSON.parse(ins.find((i) => i.op === 'CMD')!.args) as string[];
    expect(cmd).toEqual(['npx', 'tsx', 'server/src/server.ts']);
    expect(fs.existsSync(path.join(root, cmd[2]))).toBe(true);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    // npx tsx must resolve from node_modules, not a download, so tsx must be installed by npm ci
    expect(pkg.devDependencies.tsx).toBeDefined();
    expect(ins.some((i) => i.op === 'ENV' && /NODE_ENV=production/.test(i.args))).toBe(true);
  });
});
