// Uploaded datasets on disk: $TINYRIG_UPLOADS/<sha256>/ holds train.x,
// train.y, test.x, test.y and meta.json. A dataset is built in
// .tmp/<host>/<random>/ and renamed into place only when complete, so a
// listed dataset is always whole; the host's .tmp/<host> is emptied at start
// (rig hosts of one fleet may share the directory). Samples are read with
// positioned reads, never the whole file.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Errors } from '../errors.js';
import type { Normalized, Split } from './ingest.js';

export interface StoredDataset extends Normalized {
  name: string;
  format: string;
  createdAt: string;
  createdBy: string | null;
  /** How it was uploaded: files, split rule, scaling. */
  source: Record<string, unknown>;
}

export interface SampleSlice {
  sampleBytes: number;
  labels: Uint8Array;
  data: Uint8Array;
}

const TMP = '.tmp';

/** A stored dataset's meta.json, or null when the directory holds none (or another's). */
function readMeta(dir: string, sha256: string): StoredDataset | null {
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as StoredDataset;
    return meta.sha256 === sha256 && typeof meta.name === 'string' ? meta : null;
  } catch {
    return null; // a directory without readable meta.json is not a dataset
  }
}

export class DatasetStore {
  private index: Map<string, StoredDataset> | null = null;

  /** This host's scratch space: rig hosts may share the directory (TINYRIG_UPLOADS), each cleans only its own. */
  private readonly tmp: string;

  constructor(
    readonly dir: string,
    owner = 'local',
  ) {
    this.tmp = path.join(dir, TMP, owner);
  }

  private load(): Map<string, StoredDataset> {
    if (this.index) return this.index;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // what an upload of this host cut off by a crash left behind
    fs.rmSync(this.tmp, { recursive: true, force: true });
    return this.scan();
  }

  /** Every complete dataset in the directory, by name (the one index, refilled: callers may hold it). */
  private scan(): Map<string, StoredDataset> {
    const index = (this.index ??= new Map<string, StoredDataset>());
    index.clear();
    for (const entry of fs.readdirSync(this.dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !/^[0-9a-f]{64}$/.test(entry.name)) continue;
      const meta = readMeta(path.join(this.dir, entry.name), entry.name);
      if (meta) index.set(meta.name, meta);
    }
    return index;
  }

  list(): StoredDataset[] {
    return [...this.load().values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): StoredDataset | undefined {
    return this.load().get(name) ?? this.rescan()?.get(name);
  }

  bySha(sha256: string): StoredDataset | undefined {
    const find = (m: Map<string, StoredDataset> | undefined): StoredDataset | undefined => [...(m?.values() ?? [])].find((d) => d.sha256 === sha256);
    return find(this.load()) ?? find(this.rescan());
  }

  private lastScan = 0;

  /**
   * The directory read again (at most once a second): another rig host may
   * have added a dataset to a directory the hosts share (TINYRIG_UPLOADS).
   */
  private rescan(): Map<string, StoredDataset> | undefined {
    if (Date.now() - this.lastScan < 1000) return undefined;
    this.lastScan = Date.now();
    return this.scan();
  }

  /** A fresh scratch directory with an empty `out/` for one upload; remove it with discard(). */
  scratch(): { work: string; out: string } {
    this.load();
    const work = path.join(this.tmp, crypto.randomBytes(8).toString('hex'));
    fs.mkdirSync(path.join(work, 'out'), { recursive: true, mode: 0o700 });
    return { work, out: path.join(work, 'out') };
  }

  async discard(work: string): Promise<void> {
    await fs.promises.rm(work, { recursive: true, force: true });
  }

  /**
   * Puts a complete dataset in place (synchronously, so two uploads cannot
   * both take a name). Same content already stored: answers that one.
   */
  commit(outDir: string, meta: StoredDataset, reserved: (name: string) => boolean): { dataset: StoredDataset; created: boolean } {
    const index = this.load();
    const same = this.bySha(meta.sha256);
    if (same) return { dataset: same, created: false };
    const taken = index.get(meta.name);
    if (taken || reserved(meta.name)) {
      throw Errors.DATASET_EXISTS(`dataset name '${meta.name}' is taken by other content${taken ? ` (sha256 ${taken.sha256.slice(0, 12)})` : ' (built in)'}`, {
        name: meta.name,
        sha256: taken?.sha256 ?? null,
      });
    }
    fs.writeFileSync(path.join(outDir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    fs.renameSync(outDir, path.join(this.dir, meta.sha256));
    index.set(meta.name, meta);
    return { dataset: meta, created: true };
  }

  /** Unlists the dataset at once, then removes its files. */
  async remove(name: string): Promise<StoredDataset | undefined> {
    const index = this.load();
    const meta = index.get(name);
    if (!meta) return undefined;
    index.delete(name);
    const gone = path.join(this.tmp, `deleted-${crypto.randomBytes(8).toString('hex')}`);
    fs.mkdirSync(path.dirname(gone), { recursive: true, mode: 0o700 });
    fs.renameSync(path.join(this.dir, meta.sha256), gone);
    await fs.promises.rm(gone, { recursive: true, force: true });
    return meta;
  }

  /** Samples [offset, offset+count) of a split, read from disk. */
  slice(meta: StoredDataset, split: Split, offset: number, count: number): SampleSlice {
    return this.read(meta, split, [[offset, count]], count);
  }

  /** The samples at `indices`, in that order; consecutive indices are read as one run. */
  gather(meta: StoredDataset, split: Split, indices: number[]): SampleSlice {
    const runs: [number, number][] = [];
    for (const i of indices) {
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === i) last[1]++;
      else runs.push([i, 1]);
    }
    return this.read(meta, split, runs, indices.length);
  }

  private read(meta: StoredDataset, split: Split, runs: [number, number][], total: number): SampleSlice {
    const sb = meta.sampleBytes;
    const data = new Uint8Array(total * sb);
    const labels = new Uint8Array(total);
    const base = path.join(this.dir, meta.sha256, split);
    let xfd: number | undefined;
    let yfd: number | undefined;
    try {
      xfd = fs.openSync(`${base}.x`, 'r');
      yfd = fs.openSync(`${base}.y`, 'r');
      let at = 0;
      for (const [offset, count] of runs) {
        readFully(xfd, data, at * sb, count * sb, offset * sb);
        readFully(yfd, labels, at, count, offset);
        at += count;
      }
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') throw Errors.DATASET_NOT_FOUND(`dataset '${meta.name}' was deleted`);
      throw e;
    } finally {
      if (xfd !== undefined) fs.closeSync(xfd);
      if (yfd !== undefined) fs.closeSync(yfd);
    }
    return { sampleBytes: sb, labels, data };
  }
}

function readFully(fd: number, into: Uint8Array, at: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, into, at + done, length - done, position + done);
    if (n === 0) throw new Error(`dataset file ends early (position ${position + done})`);
    done += n;
  }
}
