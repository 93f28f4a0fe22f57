// Suites are files: every shipped one parses, and a wrong one is refused
// with its line and field.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSuite, Suites } from '../../server/src/regression/suite.js';
import { repoRoot } from '../../tools/proc/paths.js';

describe('regression suites', () => {
  it('ships nightly and nightly-full, both valid', () => {
    const suites = new Suites(path.join(repoRoot, 'suites'));
    expect(suites.names()).toEqual(['nightly', 'nightly-full']);
    const nightly = suites.get('nightly');
    expect(nightly.boards.map((b) => b.class)).toEqual(['m0plus', 'm4', 'm7', 'twin']);
    expect(suites.get('nightly-full').train.count).toBeUndefined(); // the whole split
  });

  it('names the line and field of a mistake', () => {
    const good = fs.readFileSync(path.join(repoRoot, 'suites', 'nightly.yaml'), 'utf8');
    const typo = good.replace('  count: 300\n', '  count: "300"\n');
    const line = typo.split('\n').findIndex((l) => l.includes('count: "300"')) + 1;
    expect(() => parseSuite(typo, 'nightly.yaml')).toThrow(new RegExp(`^nightly.yaml:${line}: /train/count must be integer`));
    const extra = good.replace('model: { name: cnn, seed: 1 }', 'model: { name: cnn, seed: 1, lr: 3 }');
    const line2 = extra.split('\n').findIndex((l) => l.includes('lr: 3')) + 1;
    expect(() => parseSuite(extra, 'nightly.yaml')).toThrow(new RegExp(`^nightly.yaml:${line2}: /model/lr must NOT have additional properties`));
    expect(() => parseSuite('name: x\nboards: [\n', 'broken.yaml')).toThrow(/^broken.yaml:\d+: /);
    try {
      parseSuite(typo, 'nightly.yaml');
    } catch (err) {
      expect((err as { code: string }).code).toBe('TR_SUITE_INVALID');
    }
  });
});
