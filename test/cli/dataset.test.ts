// tinyrig dataset upload | list | show | delete as a child process against a
// real daemon process: the upload streams a multipart body with a progress
// bar, the daemon's refusals come back as exit code 1 with their code.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonProcess } from '../../tools/proc/daemon.js';
import { repoRoot } from '../../tools/proc/paths.js';
import { tempDir } from '../server/helpers.js';

const BIN = path.join(repoRoot, 'bin', 'tinyrig.js');
const cleanCwd = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-cli-ds-'));

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, TINYRIG_TOKEN: undefined, TINYRIG_URL: undefined, TINYRIG_VAR: undefined, ...env };
    for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
    const child = spawn(process.execPath, [BIN, ...args], { cwd: cleanCwd, env: childEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d.toString()));
    child.stderr.on('data', (d) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

function idx(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

describe('tinyrig dataset', () => {
  let daemon: DaemonProcess;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    const varDir = tempDir('tinyrig-cli-ds-var-');
    dir = tempDir('tinyrig-cli-ds-files-');
    fs.writeFileSync(path.join(varDir, 'devices.json'), JSON.stringify({ devices: [] }));
    daemon = await startDaemon({ TINYRIG_VAR: varDir, TINYRIG_DEVICES: path.join(varDir, 'devices.json') });
    env = { TINYRIG_URL: daemon.url, TINYRIG_TOKEN: fs.readFileSync(path.join(varDir, 'admin.token'), 'utf8').trim() };
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('uploads a CSV with a seeded split, with a progress bar, then lists and shows it', async () => {
    const rows = ['label,' + Array.from({ length: 64 }, (_, i) => `p${i}`).join(',')];
    for (let i = 0; i < 200; i++) rows.push([i % 10, ...Array.from({ length: 64 }, (_, k) => (i * 7 + k) % 256)].join(','));
    const csv = path.join(dir, 'my.csv');
    fs.writeFileSync(csv, rows.join('\n') + '\n');
    const up = await cli(['dataset', 'upload', csv, '--name', 'my-sensor', '--format', 'csv', '--shape', '8,8,1', '--classes', '10', '--label-column', 'label', '--test-fraction', '0.2', '--seed', '1'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^stored my-sensor: 8x8x1, 10 classes, train 160, test 40, sha256 [0-9a-f]{12}/);
    expect(up.stderr).toMatch(/upload my-sensor .*100%/);

    const again = await cli(['dataset', 'upload', csv, '--name', 'my-sensor', '--shape', '8,8,1', '--classes', '10', '--test-fraction', '0.2', '--seed', '1'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^already stored my-sensor/);

    const list = await cli(['dataset', 'list'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+KIND\s+SHAPE/);
    expect(list.stdout).toMatch(/^fashion-mnist\s+built-in\s+28x28x1\s+10\s+60000\s+10000/m);
    expect(list.stdout).toMatch(/^my-sensor\s+uploaded csv\s+8x8x1\s+10\s+160\s+40/m);

    const show = await cli(['--json', 'dataset', 'show', 'my-sensor'], env);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'my-sensor', shape: [8, 8, 1], splits: { train: { count: 160 }, test: { count: 40 } } });
  });

  it('uploads IDX files with test files, format from the file names', async () => {
    const x = new Uint8Array(30 * 16).map((_, i) => i & 0xff);
    const y = new Uint8Array(30).map((_, i) => i % 3);
    const files = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'].map((f) => path.join(dir, f));
    fs.writeFileSync(files[0], zlib.gzipSync(idx([30, 4, 4], x)));
    fs.writeFileSync(files[1], zlib.gzipSync(idx([30], y)));
    fs.writeFileSync(files[2], idx([10, 4, 4], x.subarray(0, 160)));
    fs.writeFileSync(files[3], idx([10], y.subarray(0, 10)));
    const up = await cli(['dataset', 'upload', ...files, '--name', 'tiny-idx', '--classes', '3', '--class-names', 'a,b,c'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^stored tiny-idx: 4x4x1, 3 classes, train 30, test 10/);
    const show = await cli(['dataset', 'show', 'tiny-idx'], env);
    expect(show.stdout).toMatch(/classNames\s+a, b, c/);
    expect(show.stdout).toMatch(/train\s+30 \(per class 10 10 10\)/);
  });

  it('reports bad input with the daemon code (exit 1) and usage mistakes with exit 2', async () => {
    const bad = path.join(dir, 'bad.csv');
    fs.writeFileSync(bad, 'label,a,b\n1,2,3\n0,oops,1\n');
    const r = await cli(['dataset', 'upload', bad, '--name', 'bad', '--shape', '2', '--classes', '2'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: 400 TR_DATASET_INVALID: file: row 2 \(line 3\), column 2 'a': "oops" is not a number/);
    const missing = await cli(['dataset', 'upload', path.join(dir, 'none.csv'), '--name', 'x', '--classes', '2'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such file/);
    const count = await cli(['dataset', 'upload', bad, '--name', 'x', '--format', 'npy', '--classes', '2'], env);
    expect(count.code).toBe(2);
    expect(count.stderr).toMatch(/format npy takes 2 or 4 files/);
    const unknown = await cli(['dataset', 'show', 'constructor'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/404 TR_DATASET_NOT_FOUND/);
  });

  it('deletes an uploaded dataset', async () => {
    const del = await cli(['dataset', 'delete', 'tiny-idx'], env);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toMatch(/^deleted tiny-idx/);
    const list = await cli(['--json', 'dataset', 'list'], env);
    expect(JSON.parse(list.stdout).datasets.map((d: { name: string }) => d.name)).toEqual(['fashion-mnist', 'my-sensor']);
  });
});
