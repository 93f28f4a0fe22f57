// Content-addressed blobs in the shared database (table blobs), so every rig
// host reaches the same weights and models. As with the blob files, a read is
// re-hashed before it is answered, and a stored row found damaged is replaced
// by the next put of the right bytes.
import { sha256Hex } from './blobs.js';
import type { PgDb, Queryable } from './pg-db.js';
import { BlobDamagedError, BlobMissingError, type BlobStore } from './types.js';

const SHA_RE = /^[0-9a-f]{64}$/;

/** Inserts the blob, or repairs a stored row whose bytes no longer hash to its name; idempotent. */
export async function putBlobRow(q: Queryable, sha: string, data: Uint8Array): Promise<void> {
  await q.query(
    `INSERT INTO blobs (sha256, data, bytes, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (sha256) DO UPDATE SET data = excluded.data, bytes = excluded.bytes
       WHERE encode(sha256(blobs.data), 'hex') <> blobs.sha256`,
    [sha, Buffer.from(data.buffer, data.byteOffset, data.byteLength), data.byteLength, new Date().toISOString()],
  );
}

export class PgBlobStore implements BlobStore {
  constructor(private readonly db: PgDb) {}

  async has(sha256: string): Promise<boolean> {
    if (!SHA_RE.test(sha256)) return false;
    return (await this.db.query(`SELECT 1 FROM blobs WHERE sha256 = $1`, [sha256])).rowCount! > 0;
  }

  async put(data: Uint8Array, expectedSha?: string): Promise<string> {
    const sha = sha256Hex(data);
    if (expectedSha !== undefined && expectedSha !== sha) {
      throw new Error(`blob hashes to ${sha}, expected ${expectedSha}`);
    }
    await putBlobRow(this.db, sha, data);
    return sha;
  }

  async get(sha256: string): Promise<Buffer> {
    const r = await this.db.query<{ data: Buffer }>(`SELECT data FROM blobs WHERE sha256 = $1`, [sha256]);
    if (r.rows.length === 0) throw new BlobMissingError(sha256);
    const data = r.rows[0]!.data;
    const actual = sha256Hex(data);
    if (actual !== sha256) throw new BlobDamagedError(sha256, actual);
    return data;
  }

  async verify(sha256: string): Promise<boolean> {
    // hashed where the bytes are: a check need not carry the blob over the network
    const r = await this.db.query<{ ok: boolean }>(`SELECT encode(sha256(data), 'hex') = sha256 AS ok FROM blobs WHERE sha256 = $1`, [sha256]);
    return r.rows[0]?.ok === true;
  }

  async remove(sha256: string): Promise<void> {
    await this.db.query(`DELETE FROM blobs WHERE sha256 = $1`, [sha256]);
  }

  /** A row is written whole or not at all: there are no temporaries to sweep. */
  async sweepTemporaries(): Promise<number> {
    return 0;
  }
}
