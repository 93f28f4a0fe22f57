// The model zoo and model blobs, from the engine's host tool
// (`tinyrig-train zoo --json`, `tinyrig-train build …`). Built blobs go into
// the blob store and the models table, so a model is built once per seed.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Errors } from '../errors.js';
import type { ModelRow, Store } from '../store/store.js';

const run = promisify(execFile);

export interface ZooEntry {
  name: string;
  description: string;
  input: [number, number, number];
  classes: number;
  layers: number;
  weights_bytes: number;
  train_bytes: number;
  infer_bytes: number;
}

export interface BuildOptions {
  model: string;
  seed: number;
  input?: [number, number, number];
  classes?: number;
}

export class ModelZoo {
  private zoo: ZooEntry[] | null = null;

  constructor(
    private readonly tool: string,
    private readonly store: Store,
  ) {}

  available(): boolean {
    try {
      fs.accessSync(this.tool, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }

  private requireTool(): void {
    if (!this.available()) throw Errors.TOOL_MISSING(`model tool ${this.tool} is not built (run make -C firmware)`);
  }

  async list(): Promise<ZooEntry[]> {
    if (this.zoo) return this.zoo;
    this.requireTool();
    const { stdout } = await run(this.tool, ['zoo', '--json'], { maxBuffer: 4 * 1024 * 1024 });
    const parsed = JSON.parse(stdout) as ZooEntry[] | { models: ZooEntry[] };
    this.zoo = Array.isArray(parsed) ? parsed : parsed.models;
    return this.zoo;
  }

  async find(name: string): Promise<ZooEntry> {
    const entry = (await this.list()).find((z) => z.name === name);
    if (!entry) {
      const names = (await this.list()).map((z) => z.name).join(', ');
      throw Errors.MODEL_NOT_FOUND(`no zoo model '${name}' (known: ${names})`);
    }
    return entry;
  }

  /** A seeded model blob: from the store when built before, else built now. */
  async build(opts: BuildOptions): Promise<{ row: ModelRow; blob: Buffer }> {
    const entry = await this.find(opts.model);
    const custom = opts.input !== undefined || opts.classes !== undefined;
    const name = custom
      ? `${opts.model}@${(opts.input ?? entry.input).join('x')}/${opts.classes ?? entry.classes}`
      : opts.model;
    if (!custom) {
      const known = await this.store.findModel(name, opts.seed);
      // a missing or damaged blob is built again
      const blob = known ? await this.store.blobs.get(known.sha256).catch(() => null) : null;
      if (known && blob) return { row: known, blob };
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-model-'));
    try {
      const out = path.join(dir, 'model.cbor');
      const args = ['build', '--model', opts.model, '--seed', String(opts.seed), '--out', out];
      if (opts.input) args.push('--input', opts.input.join('x'));
      if (opts.classes !== undefined) args.push('--classes', String(opts.classes));
      let stdout: string;
      try {
        ({ stdout } = await run(this.tool, args, { maxBuffer: 4 * 1024 * 1024 }));
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw Errors.BAD_REQUEST(`model build failed: ${(e.stderr ?? e.message).trim()}`);
      }
      const info = JSON.parse(stdout) as { sha256_model: string; sha256_weights?: string; bytes: number; weights_bytes: number };
      const blob = fs.readFileSync(out);
      const sha = await this.store.blobs.put(blob, info.sha256_model);
      const input = opts.input ?? entry.input;
      const row = await this.store.putModel({
        sha256: sha,
        name,
        seed: opts.seed,
        bytes: blob.length,
        weightsBytes: info.weights_bytes ?? null,
        inputBytes: input[0] * input[1] * input[2],
        classes: opts.classes ?? entry.classes,
      });
      return { row, blob };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}
