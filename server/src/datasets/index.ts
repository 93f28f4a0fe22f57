// Datasets the daemon can stream to boards by reference: the built-in ones
// (Fashion-MNIST from its IDX .gz files, decompressed once on first use and
// kept in memory) and uploaded ones (normalized files under
// $TINYRIG_VAR/datasets, read from disk per request). Every route reaches
// both through slice(), gather() and info().
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Errors } from '../errors.js';
import { parseIdx, readIdxGz } from './idx.js';
import type { Split } from './ingest.js';
import { DatasetStore, type SampleSlice, type StoredDataset } from './store.js';

export type { Split } from './ingest.js';
export type { SampleSlice } from './store.js';

export interface DatasetSplit {
  name: string;
  split: Split;
  count: number;
  /** [h, w, c] of one sample. */
  shape: [number, number, number];
  sampleBytes: number;
  classes: number;
  images: Uint8Array;
  labels: Uint8Array;
}

/** What a route needs to know of a dataset before it slices it. */
export interface DatasetInfo {
  name: string;
  shape: [number, number, number];
  sampleBytes: number;
  classes: number;
  classNames: string[] | null;
  splits: Record<Split, number>;
  sha256: string | null;
  builtIn: boolean;
}

/** One entry of GET /v1/datasets. */
export interface DatasetEntry extends Omit<DatasetInfo, 'splits'> {
  description: string;
  available: boolean;
  splits: Record<Split, { count: number; classCounts: number[] }>;
  bytes: number;
  format: string | null;
  createdAt: string | null;
}

interface DatasetSource {
  description: string;
  classes: number;
  classNames: string[];
  files: Record<Split, { images: string; labels: string }>;
}

// a Map: a name from a request ('constructor', '__proto__') never finds an Object member
const SOURCES = new Map<string, (root: string) => DatasetSource>([
  ['fashion-mnist', (root) => ({
    description: 'Fashion-MNIST: 28x28 grayscale clothing images, 10 classes (60000 train, 10000 test)',
    classes: 10,
    classNames: ['t-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'],
    files: {
      train: {
        images: path.join(root, 'fashion-mnist', 'train-images-idx3-ubyte.gz'),
        labels: path.join(root, 'fashion-mnist', 'train-labels-idx1-ubyte.gz'),
      },
      test: {
        images: path.join(root, 'fashion-mnist', 't10k-images-idx3-ubyte.gz'),
        labels: path.join(root, 'fashion-mnist', 't10k-labels-idx1-ubyte.gz'),
      },
    },
  })],
]);

const SPLITS: readonly Split[] = ['train', 'test'];

function checkSplit(name: string, split: string): asserts split is Split {
  if (!SPLITS.includes(split as Split)) throw Errors.DATASET_NOT_FOUND(`dataset '${name}' has no split '${split}'`);
}

/** Dimensions of an IDX .gz file from its first bytes, without decompressing the rest. */
function idxGzDims(file: string): number[] {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(4096);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    const raw = file.endsWith('.gz') ? zlib.gunzipSync(head.subarray(0, n), { finishFlush: zlib.constants.Z_SYNC_FLUSH }) : head.subarray(0, n);
    const ndims = raw[3];
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  } finally {
    fs.closeSync(fd);
  }
}

export class Datasets {
  private readonly cache = new Map<string, DatasetSplit>();
  private readonly builtInEntries = new Map<string, DatasetEntry>();
  /** Uploaded datasets (none when constructed without an upload directory). */
  readonly uploads: DatasetStore | null;

  constructor(
    private readonly root: string,
    uploadDir?: string,
    /** The rig host (its scratch space in a shared upload directory). */
    hostId?: string,
  ) {
    this.uploads = uploadDir ? new DatasetStore(uploadDir, hostId) : null;
  }

  isBuiltIn(name: string): boolean {
    return SOURCES.has(name);
  }

  names(): string[] {
    return [...SOURCES.keys(), ...(this.uploads?.list().map((d) => d.name) ?? [])];
  }

  /** Every dataset, built-in first, with sizes, shapes and class counts per split. */
  list(): DatasetEntry[] {
    return [...[...SOURCES.keys()].map((n) => this.builtInEntry(n)), ...(this.uploads?.list().map(uploadedEntry) ?? [])];
  }

  /** The list entry of one dataset (404 when unknown). */
  entry(name: string): DatasetEntry {
    if (SOURCES.has(name)) return this.builtInEntry(name);
    return uploadedEntry(this.uploaded(name));
  }

  /** Kept for callers of the older catalog: name, description, classes, available. */
  describe(): { name: string; description: string; classes: number; available: boolean }[] {
    return this.list().map(({ name, description, classes, available }) => ({ name, description, classes, available }));
  }

  info(name: string): DatasetInfo {
    const e = this.entry(name);
    if (!e.available) throw Errors.DATASET_NOT_FOUND(`dataset '${name}' is not installed`);
    return {
      name: e.name,
      shape: e.shape,
      sampleBytes: e.sampleBytes,
      classes: e.classes,
      classNames: e.classNames,
      splits: { train: e.splits.train.count, test: e.splits.test.count },
      sha256: e.sha256,
      builtIn: e.builtIn,
    };
  }

  /** A built-in split, decompressed and held in memory (uploaded datasets are read per slice instead). */
  load(name: string, split: Split): DatasetSplit {
    const key = `${name}/${split}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const make = SOURCES.get(name);
    if (!make) {
      if (this.uploads?.get(name)) throw Errors.BAD_REQUEST(`dataset '${name}' is uploaded; it is read per slice, not loaded whole`);
      throw Errors.DATASET_NOT_FOUND(`unknown dataset '${name}' (known: ${this.names().join(', ')})`);
    }
    const src = make(this.root);
    checkSplit(name, split);
    const files = src.files[split];
    if (!fs.existsSync(files.images) || !fs.existsSync(files.labels)) {
      throw Errors.DATASET_NOT_FOUND(`dataset '${name}' is not installed (missing ${files.images})`);
    }
    const images = readIdxGz(files.images);
    const labels = readIdxGz(files.labels);
    if (images.dims[0] !== labels.dims[0]) throw new Error(`${name}/${split}: ${images.dims[0]} images but ${labels.dims[0]} labels`);
    const [h, w, c] = [images.dims[1] ?? 1, images.dims[2] ?? 1, images.dims[3] ?? 1];
    const ds: DatasetSplit = {
      name,
      split,
      count: images.dims[0],
      shape: [h, w, c],
      sampleBytes: h * w * c,
      classes: src.classes,
      images: images.data,
      labels: labels.data,
    };
    this.cache.set(key, ds);
    return ds;
  }

  /** Samples [offset, offset+count) of a split: views of a built-in one, bytes read from disk of an uploaded one. */
  slice(name: string, split: Split, offset: number, count: number): SampleSlice {
    if (!SOURCES.has(name)) {
      const meta = this.uploaded(name);
      checkSplit(name, split);
      checkRange(name, split, meta.splits[split].count, offset, count);
      return this.uploads!.slice(meta, split, offset, count);
    }
    const ds = this.load(name, split);
    checkRange(name, split, ds.count, offset, count);
    return {
      sampleBytes: ds.sampleBytes,
      labels: ds.labels.subarray(offset, offset + count),
      data: ds.images.subarray(offset * ds.sampleBytes, (offset + count) * ds.sampleBytes),
    };
  }

  /** Copies of the samples at `indices` (any order, repeats allowed), e.g. for a seeded shuffle. */
  gather(name: string, split: Split, indices: number[]): SampleSlice {
    const count = SOURCES.has(name) ? this.load(name, split).count : (checkSplit(name, split), this.uploaded(name).splits[split].count);
    if (indices.length === 0) throw Errors.BAD_REQUEST('gather needs at least one index');
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= count) {
        throw Errors.BAD_REQUEST(`${name}/${split} has ${count} samples; index ${i} is out of range`);
      }
    }
    if (!SOURCES.has(name)) return this.uploads!.gather(this.uploaded(name), split, indices);
    const ds = this.load(name, split);
    const sb = ds.sampleBytes;
    const data = new Uint8Array(indices.length * sb);
    const labels = new Uint8Array(indices.length);
    indices.forEach((i, k) => {
      data.set(ds.images.subarray(i * sb, (i + 1) * sb), k * sb);
      labels[k] = ds.labels[i];
    });
    return { sampleBytes: sb, labels, data };
  }

  private uploaded(name: string): StoredDataset {
    const meta = this.uploads?.get(name);
    if (!meta) throw Errors.DATASET_NOT_FOUND(`unknown dataset '${name}' (known: ${this.names().join(', ')})`);
    return meta;
  }

  private builtInEntry(name: string): DatasetEntry {
    const hit = this.builtInEntries.get(name);
    if (hit) return hit;
    const src = SOURCES.get(name)!(this.root);
    const available = SPLITS.every((s) => fs.existsSync(src.files[s].images) && fs.existsSync(src.files[s].labels));
    const entry: DatasetEntry = {
      name,
      description: src.description,
      builtIn: true,
      available,
      shape: [0, 0, 0],
      sampleBytes: 0,
      classes: src.classes,
      classNames: src.classNames,
      splits: { train: { count: 0, classCounts: [] }, test: { count: 0, classCounts: [] } },
      bytes: 0,
      sha256: null,
      format: 'idx',
      createdAt: null,
    };
    if (!available) return entry; // not cached: it may be installed later
    for (const s of SPLITS) {
      const dims = idxGzDims(src.files[s].images);
      entry.shape = [dims[1] ?? 1, dims[2] ?? 1, dims[3] ?? 1];
      // the label files are small (one byte a sample); the image files are only opened for their header
      const labels = parseIdx(zlib.gunzipSync(fs.readFileSync(src.files[s].labels)), src.files[s].labels).data;
      const classCounts = new Array<number>(src.classes).fill(0);
      for (const l of labels) if (l < src.classes) classCounts[l]++;
      entry.splits[s] = { count: dims[0], classCounts };
    }
    entry.sampleBytes = entry.shape[0] * entry.shape[1] * entry.shape[2];
    entry.bytes = (entry.splits.train.count + entry.splits.test.count) * (entry.sampleBytes + 1);
    this.builtInEntries.set(name, entry);
    return entry;
  }
}

function checkRange(name: string, split: Split, n: number, offset: number, count: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(count) || offset < 0 || count < 1 || offset + count > n) {
    throw Errors.BAD_REQUEST(`${name}/${split} has ${n} samples; offset ${offset} + count ${count} is out of range`);
  }
}

function uploadedEntry(d: StoredDataset): DatasetEntry {
  return {
    name: d.name,
    description: `uploaded ${d.format} dataset: ${d.shape.join('x')}, ${d.classes} classes (${d.splits.train.count} train, ${d.splits.test.count} test)`,
    builtIn: false,
    available: true,
    shape: d.shape,
    sampleBytes: d.sampleBytes,
    classes: d.classes,
    classNames: d.classNames,
    splits: {
      train: { count: d.splits.train.count, classCounts: d.splits.train.classCounts },
      test: { count: d.splits.test.count, classCounts: d.splits.test.classCounts },
    },
    bytes: d.bytes,
    sha256: d.sha256,
    format: d.format,
    createdAt: d.createdAt,
  };
}
