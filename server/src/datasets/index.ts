// Datasets the daemon can stream to boards by reference. Each split is
// decompressed once on first use and kept in memory.
import fs from 'node:fs';
import path from 'node:path';
import { Errors } from '../errors.js';
import { readIdxGz } from './idx.js';

export type Split = 'train' | 'test';

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

export interface SampleSlice {
  sampleBytes: number;
  labels: Uint8Array;
  data: Uint8Array;
}

interface DatasetSource {
  description: string;
  classes: number;
  files: Record<Split, { images: string; labels: string }>;
}

// a Map: a name from a request ('constructor', '__proto__') never finds an Object member
const SOURCES = new Map<string, (root: string) => DatasetSource>([
  ['fashion-mnist', (root) => ({
    description: 'Fashion-MNIST: 28x28 grayscale clothing images, 10 classes (60000 train, 10000 test)',
    classes: 10,
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

export class Datasets {
  private readonly cache = new Map<string, DatasetSplit>();

  constructor(private readonly root: string) {}

  names(): string[] {
    return [...SOURCES.keys()];
  }

  describe(): { name: string; description: string; classes: number; available: boolean }[] {
    return this.names().map((name) => {
      const src = SOURCES.get(name)!(this.root);
      return {
        name,
        description: src.description,
        classes: src.classes,
        available: fs.existsSync(src.files.train.images) && fs.existsSync(src.files.test.images),
      };
    });
  }

  load(name: string, split: Split): DatasetSplit {
    const key = `${name}/${split}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const make = SOURCES.get(name);
    if (!make) throw Errors.DATASET_NOT_FOUND(`unknown dataset '${name}' (known: ${this.names().join(', ')})`);
    const src = make(this.root);
    const files = Object.hasOwn(src.files, split) ? src.files[split] : undefined;
    if (!files) throw Errors.DATASET_NOT_FOUND(`dataset '${name}' has no split '${split}'`);
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

  /** Samples [offset, offset+count) of a split, as views (no copy). */
  slice(name: string, split: Split, offset: number, count: number): SampleSlice {
    const ds = this.load(name, split);
    if (offset < 0 || count < 1 || offset + count > ds.count) {
      throw Errors.BAD_REQUEST(`${name}/${split} has ${ds.count} samples; offset ${offset} + count ${count} is out of range`);
    }
    return {
      sampleBytes: ds.sampleBytes,
      labels: ds.labels.subarray(offset, offset + count),
      data: ds.images.subarray(offset * ds.sampleBytes, (offset + count) * ds.sampleBytes),
    };
  }
}
