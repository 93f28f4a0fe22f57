// Content-addressed blob files: var/blobs/<sha256>. A blob is written to a
// temporary name, synced, renamed into place, then read back and hashed, so a
// file under its final name is always complete and correct.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BlobDamagedError, BlobMissingError, type BlobStore } from './types.js';

export function sha256Hex(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

const SHA_RE = /^[0-9a-f]{64}$/;

export class FileBlobStore implements BlobStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  }

  pathOf(sha256: string): string {
    if (!SHA_RE.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return path.join(this.dir, sha256);
  }

  async has(sha256: string): Promise<boolean> {
    return SHA_RE.test(sha256) && fs.existsSync(path.join(this.dir, sha256));
  }

  /** Stores `data`; resolves once the file under its hash is durable and re-verified. */
  async put(data: Uint8Array, expectedSha?: string): Promise<string> {
    const sha = sha256Hex(data);
    if (expectedSha !== undefined && expectedSha !== sha) {
      throw new Error(`blob hashes to ${sha}, expected ${expectedSha}`);
    }
    const final = this.pathOf(sha);
    if (fs.existsSync(final) && this.verifySync(sha)) return sha;
    const tmp = path.join(this.dir, `.tmp-${sha}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, final);
    const dirFd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
    if (!this.verifySync(sha)) throw new Error(`blob ${sha} did not verify after writing`);
    return sha;
  }

  async get(sha256: string): Promise<Buffer> {
    let data: Buffer;
    try {
      data = await fs.promises.readFile(this.pathOf(sha256));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobMissingError(sha256);
      throw err;
    }
    const actual = sha256Hex(data);
    if (actual !== sha256) throw new BlobDamagedError(sha256, actual);
    return data;
  }

  async verify(sha256: string): Promise<boolean> {
    return this.verifySync(sha256);
  }

  private verifySync(sha256: string): boolean {
    try {
      return sha256Hex(fs.readFileSync(this.pathOf(sha256))) === sha256;
    } catch {
      return false;
    }
  }

  async remove(sha256: string): Promise<void> {
    fs.rmSync(this.pathOf(sha256), { force: true });
  }

  /** Removes temporaries left by a crash mid-write; returns how many. */
  async sweepTemporaries(): Promise<number> {
    let n = 0;
    for (const name of fs.readdirSync(this.dir)) {
      if (name.startsWith('.tmp-')) {
        fs.rmSync(path.join(this.dir, name), { force: true });
        n++;
      }
    }
    return n;
  }
}
