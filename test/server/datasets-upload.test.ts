// Uploaded datasets through a listening daemon: real multipart bodies
// (FormData + fetch, curl), each format round-tripping through the same
// Datasets.slice()/gather() the routes use, bad inputs refused with
// TR_DATASET_INVALID and where, cut-off uploads leaving nothing, dedupe by
// content, names, deletion, parser fuzzing and a ~100 MB upload's memory.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { encode } from 'cbor-x';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RigError } from '../../server/src/errors.js';
import { CsvStream } from '../../server/src/datasets/formats/csv.js';
import { IdxStream } from '../../server/src/datasets/formats/idx.js';
import { NpyStream } from '../../server/src/datasets/formats/npy.js';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';
import { apiClient, auth, buildApp, OPERATOR_TOKEN, tempDir, until, VIEWER_TOKEN } from './helpers.js';

// ---- building inputs -------------------------------------------------------

function idx(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

function npy(descr: string, shape: number[], data: Uint8Array): Buffer {
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + dict.length + 1) % 64);
  dict += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), data]);
}

/** n samples of `sb` bytes and labels below `classes`, from a seed. */
function samples(n: number, sb: number, classes: number, seed = 1): { x: Uint8Array; y: Uint8Array } {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16;
  const x = new Uint8Array(n * sb);
  const y = new Uint8Array(n);
  for (let i = 0; i < x.length; i++) x[i] = next() & 0xff;
  for (let i = 0; i < n; i++) y[i] = next() % classes;
  return { x, y };
}

function csvOf(x: Uint8Array, y: Uint8Array, sb: number, labelAt = 0): string {
  const cols = Array.from({ length: sb }, (_, i) => `px${i}`);
  cols.splice(labelAt, 0, 'label');
  const rows = [cols.join(',')];
  for (let i = 0; i < y.length; i++) {
    const r = Array.from(x.subarray(i * sb, (i + 1) * sb), String);
    r.splice(labelAt, 0, String(y[i]));
    rows.push(r.join(','));
  }
  return rows.join('\n') + '\n';
}

// ---- the daemon -------------------------------------------------------------

let app: FastifyInstance;
let url: string;
let varDir: string;

beforeAll(async () => {
  varDir = tempDir('tinyrig-upload-');
  app = await buildApp({ varDir });
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await app?.close();
});

type Form = Record<string, string | number | { data: Uint8Array | string; filename: string }>;

async function upload(form: Form, token = OPERATOR_TOKEN): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const fd = new FormData();
  for (const [k, v] of Object.entries(form)) {
    if (typeof v === 'object') fd.append(k, new Blob([typeof v.data === 'string' ? v.data : Uint8Array.from(v.data)]), v.filename);
    else fd.append(k, String(v));
  }
  const r = await fetch(`${url}/v1/datasets`, { method: 'POST', body: fd, headers: auth(token) });
  return { status: r.status, body: await r.json() };
}

const file = (data: Uint8Array | string, filename = 'f') => ({ data, filename });

/** This host's scratch directories of uploads under way. */
const tmpDir = (): string => path.join(varDir, 'datasets', '.tmp', app.config.hostId);

function tmpEntries(): string[] {
  const dir = tmpDir();
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

function listed(): string[] {
  return app.datasets.list().map((d) => d.name);
}

/** Every sample of a split through slice(), in order. */
function all(name: string, split: 'train' | 'test'): { x: Uint8Array; y: Uint8Array } {
  const n = app.datasets.info(name).splits[split];
  const s = app.datasets.slice(name, split, 0, n);
  return { x: s.data, y: s.labels };
}

// ---- round trips -----------------------------------------------------------

describe('dataset upload: each format round-trips', () => {
  it('CSV with a seeded split: exact bytes and labels in upload order, reproducible, deduplicated by content', async () => {
    const sb = 8 * 8;
    const { x, y } = samples(500, sb, 10, 7);
    const csv = csvOf(x, y, sb, 17);
    const form = { file: file(csv, 'my.csv'), name: 'my-sensor', format: 'csv', labelColumn: 'label', shape: '8,8,1', classes: 10, testFraction: 0.2, seed: 1 };
    const r = await upload(form);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ created: true, dataset: { name: 'my-sensor', shape: [8, 8, 1], sampleBytes: 64, classes: 10, splits: { train: { count: 400 }, test: { count: 100 } } } });
    const train = all('my-sensor', 'train');
    const test = all('my-sensor', 'test');
    // both splits keep upload order; together they are every sample once
    const key = (xs: Uint8Array, i: number) => Buffer.from(xs.subarray(i * sb, (i + 1) * sb)).toString('hex');
    const where = new Map(Array.from({ length: 500 }, (_, i) => [key(x, i), i]));
    const trainIdx = Array.from({ length: 400 }, (_, i) => where.get(key(train.x, i))!);
    const testIdx = Array.from({ length: 100 }, (_, i) => where.get(key(test.x, i))!);
    expect([...trainIdx, ...testIdx].sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(trainIdx).toEqual([...trainIdx].sort((a, b) => a - b));
    expect(testIdx).toEqual([...testIdx].sort((a, b) => a - b));
    trainIdx.forEach((j, i) => expect(train.y[i]).toBe(y[j]));
    testIdx.forEach((j, i) => expect(test.y[i]).toBe(y[j]));
    expect(r.body.dataset.splits.train.classCounts.reduce((a: number, b: number) => a + b, 0)).toBe(400);

    // the same content again (any name): the stored dataset, not a second copy
    const again = await upload({ ...form, name: 'my-sensor-again' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: false, dataset: { name: 'my-sensor', sha256: r.body.dataset.sha256 } });
    // another seed is other content; under a taken name it is refused
    const other = await upload({ ...form, seed: 2 });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('TR_DATASET_EXISTS');
    const seed2 = await upload({ ...form, name: 'my-sensor-seed2', seed: 2 });
    expect(seed2.status).toBe(201);
    expect(seed2.body.dataset.sha256).not.toBe(r.body.dataset.sha256);
    expect(fs.readdirSync(path.join(varDir, 'datasets')).filter((d) => /^[0-9a-f]{64}$/.test(d))).toHaveLength(2);
    expect(tmpEntries()).toEqual([]);

    // gather copies the listed samples in the order asked
    const g = app.datasets.gather('my-sensor', 'train', [5, 3, 4, 399, 5]);
    expect(Array.from(g.labels)).toEqual([5, 3, 4, 399, 5].map((i) => train.y[i]));
    expect(Buffer.from(g.data.subarray(64, 128))).toEqual(Buffer.from(train.x.subarray(3 * 64, 4 * 64)));
    expect(() => app.datasets.gather('my-sensor', 'train', [400])).toThrow(/out of range/);
  });

  it('IDX (gzip) with a test split given as files; the shape comes from the IDX dimensions', async () => {
    const tr = samples(300, 28 * 28, 10, 3);
    const te = samples(50, 28 * 28, 10, 4);
    const r = await upload({
      images: file(zlib.gzipSync(idx([300, 28, 28], tr.x)), 'train-images-idx3-ubyte.gz'),
      labels: file(zlib.gzipSync(idx([300], tr.y)), 'train-labels-idx1-ubyte.gz'),
      testImages: file(idx([50, 28, 28], te.x), 't10k-images-idx3-ubyte'),
      testLabels: file(idx([50], te.y), 't10k-labels-idx1-ubyte'),
      name: 'mini-idx',
      format: 'idx',
      classes: 10,
      classNames: 'a,b,c,d,e,f,g,h,i,j',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(app.datasets.info('mini-idx')).toEqual({
      name: 'mini-idx',
      shape: [28, 28, 1],
      sampleBytes: 784,
      classes: 10,
      classNames: 'abcdefghij'.split(''),
      splits: { train: 300, test: 50 },
      sha256: r.body.dataset.sha256,
      builtIn: false,
    });
    expect(all('mini-idx', 'train')).toEqual(tr);
    expect(all('mini-idx', 'test')).toEqual(te);
    const s = app.datasets.slice('mini-idx', 'train', 120, 7);
    expect(s.sampleBytes).toBe(784);
    expect(s.data).toEqual(tr.x.subarray(120 * 784, 127 * 784));
    expect(s.labels).toEqual(tr.y.subarray(120, 127));
  });

  it('NPY pairs: uint8 x [n,h,w,c] with int64 y, and float32 x quantised with scale=unit', async () => {
    const { x, y } = samples(120, 4 * 4 * 3, 5, 9);
    const y64 = new BigInt64Array(Array.from(y, BigInt));
    const r = await upload({
      x: file(npy('|u1', [120, 4, 4, 3], x), 'x.npy'),
      y: file(npy('<i8', [120], new Uint8Array(y64.buffer)), 'y.npy'),
      name: 'npy-rgb',
      format: 'npy',
      classes: 5,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.dataset).toMatchObject({ shape: [4, 4, 3], splits: { train: { count: 120 }, test: { count: 0 } } });
    expect(all('npy-rgb', 'train')).toEqual({ x, y });

    const f = new Float32Array([0, 0.5, 1, 0.2, 1 / 255, 0.998, 1.2, -0.1]);
    const labels = new Uint8Array([1, 0]);
    const floats = { x: file(npy('<f4', [2, 4], new Uint8Array(f.buffer))), y: file(npy('|u1', [2], labels)), name: 'npy-float', format: 'npy', shape: '4,1,1', classes: 2 };
    const refused = await upload(floats);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'TR_DATASET_INVALID', details: { part: 'x', descr: '<f4' } });
    expect(refused.body.message).toMatch(/scale=unit/);
    const ok = await upload({ ...floats, scale: 'unit' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    // round(v*255), clamped to 0..255
    expect(Array.from(all('npy-float', 'train').x)).toEqual([0, 128, 255, 51, 1, 254, 255, 0]);
  });

  it('raw form as JSON (base64 and arrays) and as CBOR (byte strings)', async () => {
    const { x, y } = samples(40, 6, 3, 11);
    const json = await app.inject({
      method: 'POST',
      url: '/v1/datasets',
      headers: auth(OPERATOR_TOKEN),
      payload: { name: 'raw-json', shape: [3, 2, 1], classes: 3, labels: Array.from(y), data: Buffer.from(x).toString('base64'), testFraction: 0.25, seed: 5 },
    });
    expect(json.statusCode, json.body).toBe(201);
    expect(json.json().dataset.splits).toMatchObject({ train: { count: 30 }, test: { count: 10 } });
    const cbor = await app.inject({
      method: 'POST',
      url: '/v1/datasets',
      headers: { ...auth(OPERATOR_TOKEN), 'content-type': 'application/cbor' },
      payload: encode({ name: 'raw-cbor', shape: '3,2,1', classes: 3, labels: y.subarray(0, 30), data: x.subarray(0, 180), testLabels: y.subarray(30), testData: x.subarray(180) }),
    });
    expect(cbor.statusCode, cbor.body).toBe(201);
    expect(all('raw-cbor', 'train')).toEqual({ x: x.subarray(0, 180), y: y.subarray(0, 30) });
    expect(all('raw-cbor', 'test')).toEqual({ x: x.subarray(180), y: y.subarray(30) });
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/datasets',
      headers: auth(OPERATOR_TOKEN),
      payload: { name: 'raw-bad', shape: [3, 2, 1], classes: 3, labels: [0, 1, 3], data: Buffer.alloc(18).toString('base64') },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'TR_DATASET_INVALID', details: { sample: 2, label: 3 } });
  });

  it('a float CSV is refused unless scale=unit, naming the row and column; with it, values are round(v*255)', async () => {
    const csv = 'a,b,label,c\n0,0.5,1,1\n0.25,1,0,0.0\n';
    const form = { file: file(csv), name: 'unit-csv', format: 'csv', shape: '3', classes: 2 };
    const r = await upload(form);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'TR_DATASET_INVALID', details: { part: 'file', row: 1, line: 2, column: 2, columnName: 'b', value: '0.5' } });
    expect(r.body.message).toMatch(/row 1 \(line 2\), column 2 'b'.*scale=unit/);
    const ok = await upload({ ...form, scale: 'unit' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(all('unit-csv', 'train')).toEqual({ x: Uint8Array.from([0, 128, 255, 64, 255, 0]), y: Uint8Array.from([1, 0]) });
  });
});

// ---- refusals --------------------------------------------------------------

describe('dataset upload: bad input is refused with where, and leaves nothing', () => {
  const cases: [string, () => Form, Record<string, unknown>, RegExp][] = [
    ['rows that disagree in length', () => ({ file: file('label,a,b\n1,2,3\n0,1\n'), format: 'csv', shape: '2', classes: 2 }), { row: 2, line: 3, columns: 2, expected: 3 }, /row 2 \(line 3\) has 2 columns; the header has 3/],
    ['a label outside classes (CSV)', () => ({ file: file('label,a\n1,2\n5,1\n'), format: 'csv', shape: '1', classes: 3 }), { row: 2, label: 5, classes: 3 }, /label 5 of sample 1 is outside 0..2/],
    ['text in a pixel column', () => ({ file: file('label,a,b\n1,2,3\n0,x7,1\n'), format: 'csv', shape: '2', classes: 2 }), { row: 2, column: 2, columnName: 'a', value: 'x7' }, /row 2 \(line 3\), column 2 'a': "x7" is not a number/],
    ['a value above 255', () => ({ file: file('label,a\n1,256\n'), format: 'csv', shape: '1', classes: 2 }), { row: 1, value: '256' }, /above 255/],
    ['no label column', () => ({ file: file('y,a\n1,2\n'), format: 'csv', shape: '1', classes: 2 }), { line: 1, labelColumn: 'label' }, /no column 'label'/],
    [
      'a truncated IDX',
      () => ({ images: file(idx([10, 2, 2], new Uint8Array(40)).subarray(0, 35)), labels: file(idx([10], new Uint8Array(10))), format: 'idx', classes: 2 }),
      { part: 'images', offset: 35, sample: 4 },
      /truncated IDX data: 19 of 40 bytes/,
    ],
    ['an IDX label outside classes', () => ({ images: file(idx([3, 2, 2], new Uint8Array(12))), labels: file(idx([3], Uint8Array.from([0, 1, 9]))), format: 'idx', classes: 2 }), { part: 'labels', sample: 2, label: 9, offset: 10 }, /label 9 of sample 2/],
    ['IDX counts that disagree', () => ({ images: file(idx([3, 2, 2], new Uint8Array(12))), labels: file(idx([2], new Uint8Array(2))), format: 'idx', classes: 2 }), { labels: 2, images: 3 }, /2 labels for 3 images/],
    ['a truncated NPY', () => {
      const x = npy('|u1', [4, 2, 2], new Uint8Array(16));
      return { x: file(x.subarray(0, x.length - 10)), y: file(npy('|u1', [4], new Uint8Array(4))), format: 'npy', classes: 2 };
    }, { part: 'x', element: 6 }, /truncated .npy data: 6 of 16 bytes/],
    ['a truncated NPY header', () => ({ x: file(npy('|u1', [4, 2, 2], new Uint8Array(16)).subarray(0, 40)), y: file(npy('|u1', [4], new Uint8Array(4))), format: 'npy', classes: 2 }), { part: 'x', offset: 40 }, /truncated .npy header/],
    ['a gzip IDX cut short', () => ({ images: file(zlib.gzipSync(idx([50, 4, 4], samples(50, 16, 2).x)).subarray(0, 60)), labels: file(idx([50], new Uint8Array(50))), format: 'idx', classes: 2 }), { part: 'images' }, /truncated|gzip/],
    ['not an NPY', () => ({ x: file('hello world, not numpy'), y: file(npy('|u1', [1], new Uint8Array(1))), format: 'npy', shape: '1', classes: 2 }), { part: 'x', offset: 0 }, /not a .npy file/],
  ];
  it.each(cases)('%s', async (_what, form, details, message) => {
    const before = listed();
    const r = await upload({ name: 'bad-one', ...form() });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.code).toBe('TR_DATASET_INVALID');
    expect(r.body.details).toMatchObject(details);
    expect(r.body.message).toMatch(message);
    expect(listed()).toEqual(before);
    expect(tmpEntries()).toEqual([]);
  });

  it('an upload cut off midway (the client disconnects) leaves no dataset, file or temp dir', async () => {
    const before = listed();
    const boundary = 'tinyrigboundary';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\ncut-off\r\n--${boundary}\r\nContent-Disposition: form-data; name="format"\r\n\r\ncsv\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n`;
    const rows = 'label,a\n' + '1,2\n'.repeat(500_000);
    const req = http.request(`${url}/v1/datasets`, {
      method: 'POST',
      headers: { ...auth(OPERATOR_TOKEN), 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + rows.length * 2) },
    });
    req.on('error', () => {});
    req.write(head);
    req.write(rows.slice(0, 1_000_000));
    // the daemon has begun spooling the file part
    await until(() => tmpEntries().some((d) => fs.existsSync(path.join(tmpDir(), d, 'upload-file'))), 10_000, 'the file part being spooled');
    req.destroy();
    await until(() => tmpEntries().length === 0, 10_000, 'the temp dir removed');
    expect(listed()).toEqual(before);
    expect(fs.readdirSync(path.join(varDir, 'datasets')).filter((d) => d !== '.tmp').length).toBe(new Set(app.datasets.uploads!.list().map((d) => d.sha256)).size);
  });

  it('refuses bad fields with TR_BAD_REQUEST before parsing', async () => {
    const base = { file: file('label,a\n1,2\n'), format: 'csv', shape: '1', classes: 2, name: 'fields' };
    for (const [form, msg] of [
      [{ ...base, name: '../etc' }, /name must match/],
      [{ ...base, classes: 0 }, /classes must be an integer 1..256/],
      [{ ...base, shape: '0,1' }, /shape must be h,w,c/],
      [{ ...base, testFraction: 1.5 }, /testFraction/],
      [{ ...base, scale: 'percent' }, /scale must be/],
      [{ ...base, format: 'xml' }, /format must be csv, idx or npy/],
      [{ ...base, images: file('x') }, /does not belong to format csv/],
      [{ ...base, extra: 'x' }, /unknown field 'extra'/],
    ] as [Form, RegExp][]) {
      const r = await upload(form);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.code).toBe('TR_BAD_REQUEST');
      expect(r.body.message).toMatch(msg);
    }
    expect(tmpEntries()).toEqual([]);
  });
});

// ---- names, listing, deletion ------------------------------------------------

describe('dataset names, listing and deletion', () => {
  it('lists built-in and uploaded datasets, shows one, and never finds Object members', async () => {
    const list = (await (await fetch(`${url}/v1/datasets`)).json()) as { datasets: { name: string; builtIn: boolean }[] };
    expect(list.datasets[0]).toMatchObject({ name: 'fashion-mnist', builtIn: true, available: true, shape: [28, 28, 1], splits: { train: { count: 60000 }, test: { count: 10000 } } });
    expect(list.datasets.map((d) => d.name)).toContain('my-sensor');
    const one = await fetch(`${url}/v1/datasets/mini-idx`);
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ name: 'mini-idx', format: 'idx', splits: { train: { count: 300 }, test: { count: 50 } } });
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const r = await fetch(`${url}/v1/datasets/${name}`);
      expect(r.status).toBe(404);
      expect(((await r.json()) as { code: string }).code).toBe('TR_DATASET_NOT_FOUND');
      expect(() => app.datasets.slice(name, 'train', 0, 1)).toThrow(expect.objectContaining({ code: 'TR_DATASET_NOT_FOUND' }));
      expect(() => app.datasets.info(name)).toThrow(expect.objectContaining({ code: 'TR_DATASET_NOT_FOUND' }));
    }
    expect(() => app.datasets.slice('mini-idx', 'valid' as 'train', 0, 1)).toThrow(expect.objectContaining({ code: 'TR_DATASET_NOT_FOUND' }));
    expect(() => app.datasets.slice('mini-idx', 'train', 299, 2)).toThrow(expect.objectContaining({ code: 'TR_BAD_REQUEST', message: expect.stringMatching(/out of range/) }));
  });

  it('the built-in name is taken; deleting needs admin and removes the files', async () => {
    const clash = await upload({ file: file('label,a\n1,2\n'), format: 'csv', shape: '1', classes: 2, name: 'fashion-mnist' });
    expect(clash.status).toBe(409);
    const viewer = await upload({ file: file('label,a\n1,2\n'), format: 'csv', shape: '1', classes: 2, name: 'v' }, VIEWER_TOKEN);
    expect(viewer.status).toBe(403);

    const sha = app.datasets.info('npy-rgb').sha256!;
    const asOperator = await app.inject({ method: 'DELETE', url: '/v1/datasets/npy-rgb', headers: auth(OPERATOR_TOKEN) });
    expect(asOperator.statusCode).toBe(403);
    const builtIn = await app.inject({ method: 'DELETE', url: '/v1/datasets/fashion-mnist', headers: auth() });
    expect(builtIn.statusCode).toBe(403);
    const del = await app.inject({ method: 'DELETE', url: '/v1/datasets/npy-rgb', headers: auth() });
    expect(del.statusCode, del.body).toBe(200);
    expect(del.json()).toEqual({ deleted: 'npy-rgb', sha256: sha });
    expect(fs.existsSync(path.join(varDir, 'datasets', sha))).toBe(false);
    expect(listed()).not.toContain('npy-rgb');
    expect(() => app.datasets.slice('npy-rgb', 'train', 0, 1)).toThrow(expect.objectContaining({ code: 'TR_DATASET_NOT_FOUND' }));
    expect((await app.inject({ method: 'DELETE', url: '/v1/datasets/npy-rgb', headers: auth() })).statusCode).toBe(404);
  });

  it('uploaded datasets are found again by a daemon started over the same var/', async () => {
    const again = await buildApp({ varDir });
    try {
      expect(again.datasets.info('mini-idx').splits).toEqual({ train: 300, test: 50 });
      expect(again.datasets.slice('mini-idx', 'test', 0, 50).labels).toEqual(app.datasets.slice('mini-idx', 'test', 0, 50).labels);
    } finally {
      await again.close();
    }
  });
});

// ---- the routes that take a dataset -------------------------------------------

describe.runIf(twinBuilt())('routes that take a dataset, over a host twin', () => {
  let twins: TwinProcess[] = [];
  let rigApp: FastifyInstance;
  beforeAll(async () => {
    const dir = tempDir('tinyrig-upload-twin-');
    twins = await startTwins(dir, 1);
    rigApp = await buildApp({ devices: [{ id: 'twin-0', path: twins[0].path, board: 'host-twin', emulated: true }] });
    await until(() => rigApp.devices.list().every((b) => b.status === 'online'), 15_000, 'twin online');
  });
  afterAll(async () => {
    await rigApp?.close();
    await stopTwins(twins);
  });

  it('samples, train and evaluate read an uploaded dataset as they read the built-in one: the same bytes train the same weights', async () => {
    const api = apiClient(() => rigApp);
    const train = rigApp.datasets.slice('fashion-mnist', 'train', 0, 200);
    const test = rigApp.datasets.slice('fashion-mnist', 'test', 0, 100);
    const up = await rigApp.inject({
      method: 'POST',
      url: '/v1/datasets',
      headers: { ...auth(OPERATOR_TOKEN), 'content-type': 'application/cbor' },
      payload: encode({ name: 'fm-copy', shape: [28, 28, 1], classes: 10, labels: train.labels, data: train.data, testLabels: test.labels, testData: test.data }),
    });
    expect(up.statusCode, up.body).toBe(201);

    const weightsAfter = async (dataset: string) => {
      const d = await api.post('/v1/devices/twin-0/model', { model: 'cnn', seed: 1 });
      expect(d.status, JSON.stringify(d.body)).toBe(200);
      const samples = await api.post('/v1/devices/twin-0/samples', { dataset, split: 'train', offset: 150, count: 8 });
      expect(samples.status, JSON.stringify(samples.body)).toBe(200);
      const j = await api.job('/v1/devices/twin-0/train', { dataset, split: 'train', offset: 0, count: 60, lr: 0.005 });
      const e = await api.job('/v1/devices/twin-0/evaluate', { dataset, split: 'test', offset: 10, count: 40 });
      return { weights: j.result.weightsSha256 as string, accuracy: e.result.accuracy as number, count: e.result.count as number };
    };
    const builtIn = await weightsAfter('fashion-mnist');
    const uploaded = await weightsAfter('fm-copy');
    expect(uploaded).toEqual(builtIn);
    expect(uploaded.count).toBe(40);
    const tooFar = await api.post('/v1/devices/twin-0/samples', { dataset: 'fm-copy', split: 'train', offset: 190, count: 20 });
    expect(tooFar.status).toBe(400);
    const unknown = await api.post('/v1/devices/twin-0/samples', { dataset: '__proto__', split: 'train', offset: 0, count: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('TR_DATASET_NOT_FOUND');
  });
});

// ---- parsers under random mutation --------------------------------------------

/** Feeds bytes in random-sized chunks; returns the sample count, or the RigError thrown. */
function feed(make: (onSample: () => void) => { push: (b: Uint8Array) => void; end: () => void }, bytes: Uint8Array, cuts: number[]): number | RigError {
  let n = 0;
  const p = make(() => n++);
  try {
    let at = 0;
    for (const c of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
      if (c > at) p.push(bytes.subarray(at, c));
      at = Math.max(at, c);
    }
    p.end();
    return n;
  } catch (e) {
    if (e instanceof RigError) return e;
    throw e;
  }
}

const mutated = (valid: Uint8Array) =>
  fc.tuple(
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.array(fc.nat(), { maxLength: 5 }),
  ).map(([flips, cut, cuts]) => {
    const b = Uint8Array.from(valid);
    for (const [at, v] of flips) b[at % b.length] = v;
    return { bytes: cut === undefined ? b : b.subarray(0, cut % (b.length + 1)), cuts, changed: flips.length > 0 || cut !== undefined };
  });

describe('dataset parsers under random mutation', () => {
  const { x, y } = samples(20, 6, 4, 2);
  it('IDX: a valid file in any chunking gives its count; mutated ones give a count or TR_DATASET_INVALID', () => {
    const valid = idx([20, 3, 2], x);
    fc.assert(
      fc.property(mutated(valid), ({ bytes, cuts, changed }) => {
        let dims: number[] = [];
        const out = feed((on) => {
          const s = new IdxStream('images', (b) => { for (let i = 0; i < b.length; i++) on(); }, (d) => (dims = d));
          return s;
        }, bytes, cuts);
        if (out instanceof RigError) expect(out.code).toBe('TR_DATASET_INVALID');
        else expect(out).toBe(dims.reduce((a, b) => a * b, 1));
        if (!changed) expect(out).toBe(120);
      }),
      { numRuns: 2000 },
    );
  });

  it('NPY: the same', () => {
    const valid = npy('|u1', [20, 3, 2], x);
    fc.assert(
      fc.property(mutated(valid), ({ bytes, cuts, changed }) => {
        let shape: number[] = [];
        const out = feed((on) => new NpyStream('x', (b) => { for (let i = 0; i < b.length; i++) on(); }, (h) => (shape = h.shape)), bytes, cuts);
        if (out instanceof RigError) expect(out.code).toBe('TR_DATASET_INVALID');
        else expect(out).toBe(shape.reduce((a, b) => a * b, 1));
        if (!changed) expect(out).toBe(120);
      }),
      { numRuns: 2000 },
    );
  });

  it('CSV: the same, rows counted', () => {
    const valid = Buffer.from(csvOf(x, y, 6, 3));
    fc.assert(
      fc.property(mutated(valid), fc.constantFrom<'byte' | 'unit'>('byte', 'unit'), ({ bytes, cuts, changed }, scale) => {
        const out = feed((on) => new CsvStream({ part: 'file', labelColumn: 'label', sampleBytes: 6, classes: 4, scale }, on), bytes, cuts);
        if (out instanceof RigError) expect(out.code).toBe('TR_DATASET_INVALID');
        else expect(out).toBeGreaterThanOrEqual(0);
        if (!changed && scale === 'byte') expect(out).toBe(20);
      }),
      { numRuns: 2000 },
    );
  });

  it('random bytes never crash or hang any parser', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 4 }), (bytes, cuts) => {
        for (const make of [
          (on: () => void) => new IdxStream('images', (b) => { for (let i = 0; i < b.length; i++) on(); }),
          (on: () => void) => new NpyStream('x', (b) => { for (let i = 0; i < b.length; i++) on(); }),
          (on: () => void) => new CsvStream({ part: 'file', labelColumn: 'label', sampleBytes: 2, classes: 3, scale: 'unit' }, on),
        ]) {
          const out = feed(make, bytes, cuts);
          if (out instanceof RigError) expect(out.code).toBe('TR_DATASET_INVALID');
        }
      }),
      { numRuns: 3000 },
    );
  });
});

// ---- a large upload streams --------------------------------------------------

describe('a ~100 MB upload', () => {
  /** Writes the upload in pieces, so the test process does not hold it either; returns curl's -F arguments. */
  function generate(format: 'npy' | 'csv', dir: string): { form: string[]; size: number; n: number } {
    const block = samples(1000, 1000, 10, 5);
    if (format === 'npy') {
      const n = 100_000; // 100 MB of samples
      const xFile = path.join(dir, 'x.npy');
      const fd = fs.openSync(xFile, 'w');
      fs.writeSync(fd, npy('|u1', [n, 1000], new Uint8Array(0)));
      for (let i = 0; i < n / 1000; i++) {
        block.x[0] = i & 0xff;
        fs.writeSync(fd, block.x);
      }
      fs.closeSync(fd);
      const yFile = path.join(dir, 'y.npy');
      fs.writeFileSync(yFile, npy('|u1', [n], new Uint8Array(n).map((_, i) => i % 10)));
      return { form: ['-F', `x=@${xFile}`, '-F', `y=@${yFile}`, '-F', 'shape=1000'], size: fs.statSync(xFile).size + fs.statSync(yFile).size, n };
    }
    const n = 28_000; // ~3.6 characters an element: ~100 MB of text
    const file = path.join(dir, 'big.csv');
    const fd = fs.openSync(file, 'w');
    const text = csvOf(block.x, block.y, 1000);
    const header = text.indexOf('\n') + 1;
    fs.writeSync(fd, text);
    for (let i = 1; i < n / 1000; i++) fs.writeSync(fd, text.slice(header));
    fs.closeSync(fd);
    return { form: ['-F', `file=@${file}`, '-F', 'shape=1000', '-F', 'labelColumn=label'], size: fs.statSync(file).size, n };
  }

  it.each(['npy', 'csv'] as const)('%s streams to disk: the daemon heap and RSS grow far less than the upload', async (format) => {
    const dir = tempDir('tinyrig-big-');
    const { form, size, n } = generate(format, dir);
    global.gc?.();
    const base = process.memoryUsage();
    const peak = { heapUsed: base.heapUsed, rss: base.rss, arrayBuffers: base.arrayBuffers };
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
      peak.rss = Math.max(peak.rss, m.rss);
      peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
    }, 20);
    const started = Date.now();
    // curl as the client: a separate process, so only the daemon's memory is sampled here
    const args = ['-sS', '-H', `Authorization: Bearer ${OPERATOR_TOKEN}`, `${url}/v1/datasets`, ...form, '-F', `name=big-${format}`, '-F', `format=${format}`, '-F', 'classes=10', '-F', 'testFraction=0.1', '-F', 'seed=3'];
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn('curl', args);
      let s = '';
      c.stdout.on('data', (d) => (s += d));
      c.stderr.on('data', (d) => (s += d));
      c.on('error', reject);
      c.on('exit', () => resolve(s));
    });
    clearInterval(sampler);
    const ms = Date.now() - started;
    const body = JSON.parse(out);
    expect(body, out).toMatchObject({ created: true, dataset: { name: `big-${format}`, splits: { train: { count: n * 0.9 }, test: { count: n * 0.1 } } } });
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    const growth = { heapUsed: peak.heapUsed - base.heapUsed, rss: peak.rss - base.rss, arrayBuffers: peak.arrayBuffers - base.arrayBuffers };
    console.log(
      `${format} upload of ${mb(size)} (${n} samples of 1000 bytes) in ${ms} ms; daemon peak growth: heapUsed ${mb(growth.heapUsed)}, ` +
        `rss ${mb(growth.rss)}, arrayBuffers ${mb(growth.arrayBuffers)} (at start: heapUsed ${mb(base.heapUsed)}, rss ${mb(base.rss)})`,
    );
    expect(growth.heapUsed).toBeLessThan(size / 4);
    expect(growth.rss).toBeLessThan(size / 2);
    // read back from disk, positioned
    const s = app.datasets.slice(`big-${format}`, 'train', n * 0.9 - 1, 1);
    expect(s.data).toHaveLength(1000);
    fs.rmSync(dir, { recursive: true, force: true });
    await app.inject({ method: 'DELETE', url: `/v1/datasets/big-${format}`, headers: auth() });
  });
});
