// Turns uploaded files (already spooled to disk, any format) into the
// normalized form: <split>.x (n × sampleBytes uint8) and <split>.y (n labels,
// one byte each), read and written in chunks so no file is ever held whole.
// A seeded split copies the parsed samples into train/test afterwards, since
// an exact test count needs n, which a CSV only gives at its end.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Errors, RigError } from '../errors.js';
import { checkLabel, invalid, quantizeUnit, type Scale } from './formats/common.js';
import { CsvStream } from './formats/csv.js';
import { IdxStream } from './formats/idx.js';
import { NpyElements, NpyStream, type NpyHeader } from './formats/npy.js';

export type Split = 'train' | 'test';
export type Format = 'csv' | 'idx' | 'npy' | 'raw';

/** The files (or, for the raw form, the bytes) of one split as uploaded. */
export type SplitSource =
  | { format: 'csv'; file: string; part: string }
  | { format: 'idx'; images: string; labels: string; parts: [string, string] }
  | { format: 'npy'; x: string; y: string; parts: [string, string] }
  | { format: 'raw'; data: Uint8Array; labels: Uint8Array | number[]; parts: [string, string] };

export interface IngestSpec {
  format: Format;
  /** [h, w, c]; for IDX and NPY it may be left out when the arrays have 3 or 4 dimensions. */
  shape?: [number, number, number];
  classes: number;
  classNames?: string[];
  labelColumn: string;
  scale: Scale;
  train: SplitSource;
  test?: SplitSource;
  /** Seeded split of `train` when no test part is given. */
  testFraction?: number;
  seed: number;
  /** Most bytes a decompressed (gzip) input may hold. */
  maxInputBytes: number;
}

export interface SplitMeta {
  count: number;
  classCounts: number[];
  xSha256: string;
  ySha256: string;
}

export interface Normalized {
  sha256: string;
  shape: [number, number, number];
  sampleBytes: number;
  classes: number;
  classNames: string[] | null;
  splits: Record<Split, SplitMeta>;
  /** Bytes of the four normalized files. */
  bytes: number;
}

const FLUSH_BYTES = 1 << 20;
const READ_CHUNK = 1 << 16;

/** An output file written through a 1 MiB staging buffer, hashed as it goes. */
class HashedFile {
  private stage: Buffer = Buffer.allocUnsafe(FLUSH_BYTES);
  private staged = 0;
  private pending: Buffer[] = [];
  /** Staging buffers already written, reused so a long upload does not leave a trail of garbage. */
  private spare: Buffer[] = [];
  private readonly hash = crypto.createHash('sha256');
  bytes = 0;

  private constructor(private readonly fh: fs.promises.FileHandle) {}

  static async create(file: string): Promise<HashedFile> {
    return new HashedFile(await fs.promises.open(file, 'wx', 0o600));
  }

  write(b: Uint8Array): void {
    let at = 0;
    while (at < b.length) {
      const take = Math.min(FLUSH_BYTES - this.staged, b.length - at);
      this.stage.set(b.subarray(at, at + take), this.staged);
      this.staged += take;
      at += take;
      if (this.staged === FLUSH_BYTES) this.rotate();
    }
    this.bytes += b.length;
  }

  writeByte(v: number): void {
    this.stage[this.staged++] = v;
    this.bytes++;
    if (this.staged === FLUSH_BYTES) this.rotate();
  }

  private rotate(): void {
    const full = this.stage.subarray(0, this.staged);
    this.hash.update(full);
    this.pending.push(full);
    this.stage = this.spare.pop() ?? Buffer.allocUnsafe(FLUSH_BYTES);
    this.staged = 0;
  }

  /** Writes what is pending; awaited after each input chunk, so at most a chunk's worth waits. */
  async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const bufs = this.pending;
      this.pending = [];
      await this.fh.writev(bufs);
      for (const b of bufs) if (b.buffer.byteLength === FLUSH_BYTES && this.spare.length < 2) this.spare.push(Buffer.from(b.buffer, b.byteOffset, FLUSH_BYTES));
    }
  }

  async close(): Promise<string> {
    if (this.staged > 0) this.rotate();
    await this.drain();
    await this.fh.sync();
    await this.fh.close();
    return this.hash.digest('hex');
  }

  async abandon(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/** x and y of one split, with its class counts. */
class SplitWriter {
  readonly classCounts: number[];
  private constructor(
    readonly x: HashedFile,
    readonly y: HashedFile,
    classes: number,
  ) {
    this.classCounts = new Array<number>(classes).fill(0);
  }

  static async create(dir: string, name: string, classes: number): Promise<SplitWriter> {
    const x = await HashedFile.create(path.join(dir, `${name}.x`));
    const y = await HashedFile.create(path.join(dir, `${name}.y`)).catch(async (e) => {
      await x.abandon();
      throw e;
    });
    return new SplitWriter(x, y, classes);
  }

  label(v: number): void {
    this.y.writeByte(v);
    this.classCounts[v]++;
  }

  get count(): number {
    return this.y.bytes;
  }

  async drain(): Promise<void> {
    await this.x.drain();
    await this.y.drain();
  }

  async close(): Promise<{ xSha256: string; ySha256: string }> {
    return { xSha256: await this.x.close(), ySha256: await this.y.close() };
  }

  async abandon(): Promise<void> {
    await this.x.abandon();
    await this.y.abandon();
  }
}

/** Chunks of a file, gunzipped when it starts with the gzip magic; errors of the data are TR_DATASET_INVALID. */
async function* readChunks(file: string, part: string, maxBytes: number): AsyncGenerator<Uint8Array> {
  const fh = await fs.promises.open(file, 'r');
  const head = Buffer.alloc(2);
  const { bytesRead } = await fh.read(head, 0, 2, 0);
  await fh.close();
  const gz = bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  const raw = fs.createReadStream(file, { highWaterMark: READ_CHUNK });
  const source = gz ? raw.pipe(zlib.createGunzip({ chunkSize: READ_CHUNK })) : raw;
  let total = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) throw Errors.PAYLOAD_TOO_LARGE(`${part}: decompressed data exceeds ${maxBytes} bytes`);
      yield chunk;
    }
  } catch (e) {
    if (e instanceof RigError) throw e;
    const code = (e as { code?: string }).code ?? '';
    if (gz && code.startsWith('Z_')) throw invalid(part, `not valid gzip data (${(e as Error).message})`, { offset: total });
    throw e;
  } finally {
    raw.destroy();
    if (source !== raw) (source as zlib.Gunzip).destroy();
  }
}

/** Shape of a sample from array dimensions after n: [h,w] or [h,w,c]. */
function shapeFromDims(part: string, rest: number[], given: [number, number, number] | undefined): [number, number, number] {
  const per = rest.reduce((a, b) => a * b, 1);
  if (given) {
    const need = given[0] * given[1] * given[2];
    if (per !== need) {
      throw invalid(part, `a sample has ${per} elements (dimensions ${rest.join('x')}); shape ${given.join(',')} needs ${need}`, { dims: rest, shape: given });
    }
    return given;
  }
  if (rest.length === 2) return [rest[0], rest[1], 1];
  if (rest.length === 3) return [rest[0], rest[1], rest[2]];
  throw Errors.BAD_REQUEST(`${part}: samples of dimensions ${rest.join('x') || '(none)'}; give shape=h,w,c`);
}

interface Ctx {
  spec: IngestSpec;
  shape?: [number, number, number];
}

/** Parses one split's source into `out`; returns its sample count. */
async function parseSplit(ctx: Ctx, src: SplitSource, out: SplitWriter): Promise<number> {
  const { spec } = ctx;
  const { classes, maxInputBytes } = spec;
  if (src.format === 'csv') {
    if (!ctx.shape) throw Errors.BAD_REQUEST('a CSV upload needs shape=h,w,c');
    const sampleBytes = ctx.shape[0] * ctx.shape[1] * ctx.shape[2];
    const csv = new CsvStream({ part: src.part, labelColumn: spec.labelColumn, sampleBytes, classes, scale: spec.scale }, (x, label) => {
      out.x.write(x);
      out.label(label);
    });
    for await (const chunk of readChunks(src.file, src.part, maxInputBytes)) {
      csv.push(chunk);
      await out.drain();
    }
    csv.end();
    return csv.rows;
  }

  if (src.format === 'raw') {
    const labels = src.labels;
    if (!ctx.shape) throw Errors.BAD_REQUEST('the raw form needs shape');
    const sampleBytes = ctx.shape[0] * ctx.shape[1] * ctx.shape[2];
    if (src.data.length !== labels.length * sampleBytes) {
      throw invalid(src.parts[1], `${src.data.length} bytes of data; ${labels.length} labels of ${sampleBytes}-byte samples need ${labels.length * sampleBytes}`, {
        bytes: src.data.length,
        labels: labels.length,
        sampleBytes,
      });
    }
    for (let i = 0; i < labels.length; i++) out.label(checkLabel(src.parts[0], labels[i], classes, i));
    for (let at = 0; at < src.data.length; at += FLUSH_BYTES) {
      out.x.write(src.data.subarray(at, at + FLUSH_BYTES));
      await out.drain();
    }
    return labels.length;
  }

  // IDX and NPY: the x file, then the y file; their counts must agree
  const [xPart, yPart] = src.parts;
  let n = -1;
  if (src.format === 'idx') {
    const images = new IdxStream(xPart, (b) => out.x.write(b), (dims) => {
      ctx.shape = shapeFromDims(xPart, dims.slice(1), ctx.shape);
      n = dims[0];
    });
    for await (const chunk of readChunks(src.images, xPart, maxInputBytes)) {
      images.push(chunk);
      await out.drain();
    }
    images.end();
    let header = 0;
    const labels = new IdxStream(
      yPart,
      (b) => {
        for (let k = 0; k < b.length; k++) out.label(checkLabel(yPart, b[k], classes, out.count, { offset: header + out.count }));
      },
      (dims, headerBytes) => {
        header = headerBytes;
        if (dims.length !== 1 && !(dims.length === 2 && dims[1] === 1)) throw invalid(yPart, `labels must be one-dimensional, not ${dims.join('x')}`, { dims });
        if (dims[0] !== n) throw invalid(yPart, `${dims[0]} labels for ${n} images`, { labels: dims[0], images: n });
      },
    );
    for await (const chunk of readChunks(src.labels, yPart, maxInputBytes)) {
      labels.push(chunk);
      await out.drain();
    }
    labels.end();
    return n;
  }

  const unit = spec.scale === 'unit';
  let elements: NpyElements | null = null;
  const xs = new NpyStream(
    xPart,
    (b) => (elements ? elements.push(b) : out.x.write(b)),
    (h: NpyHeader) => {
      if (h.shape.length < 2) throw invalid(xPart, `x must have a sample dimension: shape (${h.shape.join(', ')})`, { shape: h.shape });
      ctx.shape = shapeFromDims(xPart, h.shape.slice(1), ctx.shape);
      n = h.shape[0];
      const { kind, size, descr } = h.dtype;
      const per = ctx.shape[0] * ctx.shape[1] * ctx.shape[2];
      if (kind === 'f') {
        if (!unit) throw invalid(xPart, `x is ${descr} floats; send scale=unit to quantise values in [0,1] as round(v*255), or save uint8`, { descr });
        elements = new NpyElements(h.dtype, (v, i) => {
          if (Number.isNaN(v)) throw invalid(xPart, `element ${i} (sample ${Math.floor(i / per)}) is NaN`, { element: i, sample: Math.floor(i / per) });
          out.x.writeByte(quantizeUnit(v));
        });
      } else if (kind === 'u' && size === 1 && !unit) {
        elements = null;
      } else if (kind === 'u' && size === 1) {
        elements = new NpyElements(h.dtype, (v) => out.x.writeByte(quantizeUnit(v)));
      } else {
        throw invalid(xPart, `x must be uint8 (0..255) or, with scale=unit, float32/float64; it is ${descr}`, { descr });
      }
    },
  );
  for await (const chunk of readChunks(src.x, xPart, maxInputBytes)) {
    xs.push(chunk);
    await out.drain();
  }
  xs.end();
  let dataOffset = 0;
  let size = 1;
  let ys: NpyElements | null = null;
  const yStream = new NpyStream(
    yPart,
    (b) => ys!.push(b),
    (h) => {
      dataOffset = h.dataOffset;
      size = h.dtype.size;
      if (h.dtype.kind === 'f') throw invalid(yPart, `labels must be integers, not ${h.dtype.descr}`, { descr: h.dtype.descr });
      if (h.shape.length !== 1 && !(h.shape.length === 2 && h.shape[1] === 1)) {
        throw invalid(yPart, `labels must be one-dimensional, not shape (${h.shape.join(', ')})`, { shape: h.shape });
      }
      if (h.shape[0] !== n) throw invalid(yPart, `${h.shape[0]} labels for ${n} samples`, { labels: h.shape[0], samples: n });
      ys = new NpyElements(h.dtype, (v, i) => out.label(checkLabel(yPart, v, classes, i, { offset: dataOffset + i * size })));
    },
  );
  for await (const chunk of readChunks(src.y, yPart, maxInputBytes)) {
    yStream.push(chunk);
    await out.drain();
  }
  yStream.end();
  return n;
}

/** A small seeded generator (mulberry32): the same seed gives the same split on every host. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Exactly k = round(n·testFraction) samples go to test, chosen by selection
 * sampling (Knuth's algorithm S) from seededRandom(seed); both splits keep
 * the upload order.
 */
async function splitSeeded(dir: string, sampleBytes: number, n: number, spec: IngestSpec, train: SplitWriter, test: SplitWriter): Promise<void> {
  const k = Math.round(n * spec.testFraction!);
  if (k < 1 || k >= n) {
    throw invalid('testFraction', `${n} samples with testFraction ${spec.testFraction} give ${k} test samples; each split needs at least one`, { samples: n, test: k });
  }
  const rand = seededRandom(spec.seed);
  const per = Math.max(1, Math.floor(FLUSH_BYTES / sampleBytes));
  const xs = await fs.promises.open(path.join(dir, 'all.x'), 'r');
  const ys = await fs.promises.open(path.join(dir, 'all.y'), 'r');
  try {
    const xb = Buffer.allocUnsafe(per * sampleBytes);
    const yb = Buffer.allocUnsafe(per);
    let chosen = 0;
    for (let at = 0; at < n; at += per) {
      const m = Math.min(per, n - at);
      await xs.read(xb, 0, m * sampleBytes, at * sampleBytes);
      await ys.read(yb, 0, m, at);
      for (let j = 0; j < m; j++) {
        const i = at + j;
        const toTest = (n - i) * rand() < k - chosen;
        if (toTest) chosen++;
        const w = toTest ? test : train;
        w.x.write(xb.subarray(j * sampleBytes, (j + 1) * sampleBytes));
        w.label(yb[j]);
      }
      await train.drain();
      await test.drain();
    }
  } finally {
    await xs.close();
    await ys.close();
  }
}

/** The dataset's identity: its shape, classes, names and the hashes of the four files (not its name or upload format). */
export function contentHash(n: Omit<Normalized, 'sha256' | 'bytes'>): string {
  const canonical = JSON.stringify({
    v: 1,
    shape: n.shape,
    classes: n.classes,
    classNames: n.classNames,
    train: { count: n.splits.train.count, x: n.splits.train.xSha256, y: n.splits.train.ySha256 },
    test: { count: n.splits.test.count, x: n.splits.test.xSha256, y: n.splits.test.ySha256 },
  });
  return crypto.createHash('sha256').update(canonical).digest('hex');
}

/** Writes train.x/.y and test.x/.y into `outDir` (which must exist and be empty); scratch files go to `workDir`. */
export async function ingest(spec: IngestSpec, workDir: string, outDir: string): Promise<Normalized> {
  const ctx: Ctx = { spec, shape: spec.shape };
  const open: SplitWriter[] = [];
  const create = async (dir: string, name: string) => {
    const w = await SplitWriter.create(dir, name, spec.classes);
    open.push(w);
    return w;
  };
  const finish = async (w: SplitWriter) => {
    open.splice(open.indexOf(w), 1);
    const h = await w.close();
    return { count: w.count, classCounts: w.classCounts, ...h };
  };
  try {
    const splits = {} as Record<Split, SplitMeta>;
    if (spec.testFraction !== undefined) {
      const all = await create(workDir, 'all');
      const n = await parseSplit(ctx, spec.train, all);
      await finish(all);
      if (n === 0) throw invalid(partOf(spec.train), 'no samples');
      const sampleBytes = ctx.shape![0] * ctx.shape![1] * ctx.shape![2];
      const train = await create(outDir, 'train');
      const test = await create(outDir, 'test');
      await splitSeeded(workDir, sampleBytes, n, spec, train, test);
      splits.train = await finish(train);
      splits.test = await finish(test);
    } else {
      const train = await create(outDir, 'train');
      if ((await parseSplit(ctx, spec.train, train)) === 0) throw invalid(partOf(spec.train), 'no samples');
      splits.train = await finish(train);
      const test = await create(outDir, 'test');
      // the test part is checked against the train part's shape (ctx.shape is set by now)
      if (spec.test && (await parseSplit(ctx, spec.test, test)) === 0) throw invalid(partOf(spec.test), 'no samples');
      splits.test = await finish(test);
    }
    const shape = ctx.shape!;
    const sampleBytes = shape[0] * shape[1] * shape[2];
    const body = { shape, sampleBytes, classes: spec.classes, classNames: spec.classNames ?? null, splits };
    const bytes = (splits.train.count + splits.test.count) * (sampleBytes + 1);
    return { sha256: contentHash(body), bytes, ...body };
  } finally {
    for (const w of open) await w.abandon();
  }
}

function partOf(src: SplitSource): string {
  return 'part' in src ? src.part : src.parts[0];
}
