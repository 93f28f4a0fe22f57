// Fashion-MNIST from the gzip IDX files.
import { describe, expect, it } from 'vitest';
import { Datasets } from '../../server/src/datasets/index.js';
import { parseIdx } from '../../server/src/datasets/idx.js';

describe('datasets', () => {
  it('loads Fashion-MNIST splits and slices them without copying', () => {
    const ds = new Datasets('/usr/share/datasets');
    const test = ds.load('fashion-mnist', 'test');
    expect(test).toMatchObject({ count: 10000, shape: [28, 28, 1], sampleBytes: 784, classes: 10 });
    const s = ds.slice('fashion-mnist', 'test', 10, 5);
    expect(s.labels).toHaveLength(5);
    expect(s.data).toHaveLength(5 * 784);
    expect(s.data.buffer).toBe(test.images.buffer);
    expect(Math.max(...test.labels)).toBe(9);
    expect(() => ds.slice('fashion-mnist', 'test', 9999, 2)).toThrow(/out of range/);
    expect(() => ds.load('nope', 'train')).toThrow(/unknown dataset/);
  });

  it('rejects malformed IDX data', () => {
    expect(() => parseIdx(Uint8Array.from([1, 2, 3, 4]))).toThrow(/not an IDX/);
    expect(() => parseIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))).toThrow(/truncated/);
    expect(parseIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 2, 7, 9])).data).toEqual(Uint8Array.from([7, 9]));
  });
});
