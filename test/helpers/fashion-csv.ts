// A lab's own data set stand-in for tests and docs: Fashion-MNIST images
// centre-cropped to a multiple of s, average-pooled down to s×s and written as
// CSV (label column, then s*s pixel columns 0..255), the way a sensor log
// usually arrives.
import fs from 'node:fs';
import { Datasets } from '../../server/src/datasets/index.js';

export function writeFashionCsv(file: string, opts: { size: number; count: number; offset?: number; split?: 'train' | 'test' }): void {
  const ds = new Datasets(process.env.TINYRIG_DATASETS ?? '/usr/share/datasets');
  const src = ds.slice('fashion-mnist', opts.split ?? 'train', opts.offset ?? 0, opts.count);
  const k = Math.floor(28 / opts.size);
  const crop = Math.floor((28 - k * opts.size) / 2);
  const rows = ['label,' + Array.from({ length: opts.size * opts.size }, (_, i) => `p${i}`).join(',')];
  for (let n = 0; n < opts.count; n++) {
    const img = src.data.subarray(n * 784, (n + 1) * 784);
    const px: number[] = [];
    for (let y = 0; y < opts.size; y++) {
      for (let x = 0; x < opts.size; x++) {
        let sum = 0;
        for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) sum += img[(crop + y * k + dy) * 28 + crop + x * k + dx];
        px.push(Math.round(sum / (k * k)));
      }
    }
    rows.push(`${src.labels[n]},${px.join(',')}`);
  }
  fs.writeFileSync(file, rows.join('\n') + '\n');
}
