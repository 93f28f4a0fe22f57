// Every model the daemon can deploy: the engine's zoo (built in) and the
// networks users define (POST /v1/models), one list. A network is judged by
// the engine's own parser and planner through its host tool (tinyrig-train
// build --spec / plan), never by a re-implementation here; what it needs is
// compared with each board class's firmware image (firmware/boards.json) and
// with each connected board's HELLO.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Board } from '../devices/board.js';
import { Errors } from '../errors.js';
import type { ModelRow, Store } from '../store/store.js';
import { encodeSpec, type ModelSpec } from './spec.js';
import type { ModelZoo } from './zoo.js';

const run = promisify(execFile);

/** What tinyrig-train plan / build --spec prints for a model the engine accepts. */
export interface ModelPlan {
  sha256_model: string;
  sha256_weights: string;
  bytes: number;
  name: string | null;
  seed: number;
  input: [number, number, number];
  classes: number;
  weights_bytes: number;
  train_bytes: number;
  infer_bytes: number;
  forward_macs: number;
  layers: { kind: string; in: number[]; out: number[]; params: number }[];
}

interface ToolRefusal {
  ok: false;
  status: string;
  layer?: number;
  kind?: string;
  rule: string;
}

/** What a firmware image gives the engine (boards.json `image`, or a board's HELLO). */
export interface ImageLimits {
  arenaBytes: number;
  blobMax: number;
  maxFrame: number;
  sampleBytesMax?: number;
}

export interface Fit {
  fits: boolean;
  reasons: string[];
}

/** Frame bytes around one sample in a SAMPLES frame (operations/samples.ts). */
const SAMPLE_FRAME_OVERHEAD = 49;

export function fitOf(plan: Pick<ModelPlan, 'train_bytes' | 'bytes' | 'weights_bytes' | 'input'>, lim: ImageLimits): Fit {
  const reasons: string[] = [];
  const sample = plan.input[0] * plan.input[1] * plan.input[2];
  if (plan.train_bytes > lim.arenaBytes) reasons.push(`training needs ${plan.train_bytes} B of arena; it has ${lim.arenaBytes} B`);
  if (plan.bytes > lim.blobMax) reasons.push(`the model blob is ${plan.bytes} B; it stages at most ${lim.blobMax} B`);
  else if (plan.weights_bytes > lim.blobMax) reasons.push(`the weights are ${plan.weights_bytes} B; it stages at most ${lim.blobMax} B`);
  if (lim.sampleBytesMax !== undefined && sample > lim.sampleBytesMax) {
    reasons.push(`a sample is ${sample} B; it holds samples of at most ${lim.sampleBytesMax} B`);
  }
  if (sample + SAMPLE_FRAME_OVERHEAD > lim.maxFrame) reasons.push(`a ${sample}-byte sample does not fit its ${lim.maxFrame}-byte frames`);
  return { fits: reasons.length === 0, reasons };
}

export function helloLimits(board: Board): ImageLimits | null {
  const h = board.hello;
  return h ? { arenaBytes: h.arenaBytes, blobMax: h.blobMax, maxFrame: h.maxFrame } : null;
}

interface BoardClassImage {
  class: string;
  boards: string[];
  image: ImageLimits;
}

function readClassImages(boardsFile: string): BoardClassImage[] {
  const json = JSON.parse(fs.readFileSync(boardsFile, 'utf8')) as {
    classes: { class: string; boards: { zephyr: string }[]; image?: { arena_bytes: number; blob_max: number; max_frame: number; sample_bytes_max: number } }[];
  };
  return json.classes
    .filter((c) => c.image)
    .map((c) => ({
      class: c.class,
      boards: c.boards.map((b) => b.zephyr),
      image: { arenaBytes: c.image!.arena_bytes, blobMax: c.image!.blob_max, maxFrame: c.image!.max_frame, sampleBytesMax: c.image!.sample_bytes_max },
    }));
}

export interface CatalogEntry {
  name: string;
  sha256: string | null;
  builtIn: boolean;
  description: string | null;
  seed: number | null;
  plan: ModelPlan;
  createdAt: string | null;
  actor: string | null;
  spec: unknown;
}

/** A model to deploy: its blob and its plan. */
export interface Deployable {
  name: string;
  blob: Buffer;
  row: ModelRow;
  plan: ModelPlan;
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export class ModelCatalog {
  private readonly images: BoardClassImage[];
  private readonly zooPlans = new Map<string, Promise<ModelPlan>>();

  constructor(
    private readonly tool: string,
    private readonly store: Store,
    private readonly zoo: ModelZoo,
    boardsFile: string,
  ) {
    this.images = readClassImages(boardsFile);
  }

  /** Runs the host tool in a scratch directory; its JSON answer, or the refusal as 400 TR_MODEL_INVALID. */
  private async tool_(args: (dir: string) => string[], files: Record<string, Uint8Array> = {}): Promise<{ plan: ModelPlan; dir: string }> {
    if (!this.zoo.available()) throw Errors.TOOL_MISSING(`model tool ${this.tool} is not built (run make -C firmware)`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrig-model-'));
    for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), data);
    let stdout: string;
    try {
      ({ stdout } = await run(this.tool, args(dir), { maxBuffer: 4 * 1024 * 1024 }));
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      fs.rmSync(dir, { recursive: true, force: true });
      let refusal: ToolRefusal | null = null;
      try {
        refusal = JSON.parse(e.stdout ?? '') as ToolRefusal;
      } catch {
        // not the tool's JSON: a crash or a missing file
      }
      if (!refusal) throw Errors.INTERNAL(`model tool failed: ${(e.stderr ?? e.message).trim()}`);
      const where = refusal.layer !== undefined ? `layer ${refusal.layer} (${refusal.kind}): ` : '';
      throw Errors.MODEL_INVALID(`the engine refuses this model: ${where}${refusal.rule} (${refusal.status})`, {
        status: refusal.status,
        layer: refusal.layer ?? null,
        kind: refusal.kind ?? null,
        rule: refusal.rule,
      });
    }
    return { plan: JSON.parse(stdout) as ModelPlan, dir };
  }

  /** Plans a whole model blob with the engine (and returns it). */
  async planBlob(blob: Uint8Array): Promise<ModelPlan> {
    const { plan, dir } = await this.tool_((d) => ['plan', '--in', path.join(d, 'model.cbor')], { 'model.cbor': blob });
    fs.rmSync(dir, { recursive: true, force: true });
    return plan;
  }

  private async isZoo(name: string): Promise<boolean> {
    return (await this.zoo.list()).some((z) => z.name === name);
  }

  private async checkName(name: string): Promise<void> {
    if (!NAME_RE.test(name)) throw Errors.BAD_REQUEST(`model name '${name}' must be a letter then up to 63 letters, digits, _ . -`);
    if (await this.isZoo(name)) throw Errors.MODEL_EXISTS(`'${name}' is a built-in model of the zoo`);
  }

  /** Stores a model by its hash under a name; the same name with other content is 409. */
  private async put(name: string, blob: Uint8Array, plan: ModelPlan, spec: unknown, actor: string | null): Promise<{ row: ModelRow; created: boolean }> {
    const taken = await this.store.userModelByName(name);
    if (taken) {
      if (taken.sha256 === plan.sha256_model) return { row: taken, created: false };
      throw Errors.MODEL_EXISTS(`a model named '${name}' exists with other content (${taken.sha256}); delete it or choose another name`);
    }
    const known = await this.store.getModel(plan.sha256_model);
    if (known) throw Errors.MODEL_EXISTS(`this model is stored already as '${known.name}'`);
    await this.store.blobs.put(blob, plan.sha256_model);
    const row = await this.store.putUserModel({
      sha256: plan.sha256_model,
      name,
      seed: plan.seed,
      bytes: plan.bytes,
      weightsBytes: plan.weights_bytes,
      inputBytes: plan.input[0] * plan.input[1] * plan.input[2],
      classes: plan.classes,
      plan,
      spec,
      actor,
    });
    return { row, created: true };
  }

  /** A network in JSON: the engine builds it with seeded weights and plans it. */
  async createFromSpec(spec: ModelSpec, actor: string | null): Promise<{ entry: CatalogEntry; created: boolean }> {
    await this.checkName(spec.name);
    const seed = spec.seed ?? 1;
    const { plan, dir } = await this.tool_(
      (d) => ['build', '--spec', path.join(d, 'spec.cbor'), '--seed', String(seed), '--name', spec.name, '--out', path.join(d, 'model.cbor')],
      { 'spec.cbor': encodeSpec(spec) },
    );
    try {
      const blob = fs.readFileSync(path.join(dir, 'model.cbor'));
      const { row, created } = await this.put(spec.name, blob, plan, spec, actor);
      return { entry: this.userEntry(row), created };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** A ready model blob (e.g. from tinyrig-train build): checked and planned by the engine. */
  async createFromBlob(blob: Uint8Array, name: string | undefined, actor: string | null): Promise<{ entry: CatalogEntry; created: boolean }> {
    const plan = await this.planBlob(blob);
    const as = name ?? plan.name;
    if (!as) throw Errors.BAD_REQUEST('the blob carries no name: give one (?name=…)');
    await this.checkName(as);
    const { row, created } = await this.put(as, blob, plan, null, actor);
    return { entry: this.userEntry(row), created };
  }

  private userEntry(row: ModelRow): CatalogEntry {
    const spec = row.spec as { description?: string } | null;
    return {
      name: row.name,
      sha256: row.sha256,
      builtIn: false,
      description: spec?.description ?? null,
      seed: row.seed,
      plan: row.plan as ModelPlan,
      createdAt: row.createdAt,
      actor: row.actor ?? null,
      spec: row.spec ?? null,
    };
  }

  /** The zoo model's plan at its default shape (its seed-1 blob, planned by the engine once). */
  private zooPlan(name: string): Promise<ModelPlan> {
    let p = this.zooPlans.get(name);
    if (!p) {
      p = this.zoo.build({ model: name, seed: 1 }).then(({ blob }) => this.planBlob(blob));
      p.catch(() => this.zooPlans.delete(name));
      this.zooPlans.set(name, p);
    }
    return p;
  }

  async list(): Promise<CatalogEntry[]> {
    const zoo = await Promise.all(
      (await this.zoo.list()).map(async (z) => ({
        name: z.name,
        sha256: null,
        builtIn: true,
        description: z.description,
        seed: null,
        plan: await this.zooPlan(z.name),
        createdAt: null,
        actor: null,
        spec: null,
      })),
    );
    return [...zoo, ...(await this.store.listUserModels()).map((r) => this.userEntry(r))];
  }

  /** A user model by name, or any stored model by hash. */
  private async row(id: string): Promise<ModelRow | null> {
    return (await this.store.userModelByName(id)) ?? (/^[0-9a-f]{64}$/.test(id) ? this.store.getModel(id) : null);
  }

  /** A user model by name or hash, or a zoo model by name; null when there is none. */
  async find(id: string): Promise<CatalogEntry | null> {
    const row = await this.row(id);
    if (row?.source === 'user') return this.userEntry(row);
    if (await this.isZoo(id)) return (await this.list()).find((e) => e.builtIn && e.name === id) ?? null;
    return null;
  }

  async get(id: string): Promise<CatalogEntry> {
    const e = await this.find(id);
    if (!e) throw Errors.MODEL_NOT_FOUND(`no model '${id}' (GET /v1/models lists them)`);
    return e;
  }

  /** The blob of a user model to deploy, or null when `id` names no user model. */
  async deployable(id: string): Promise<Deployable | null> {
    const row = await this.row(id);
    if (!row || row.source !== 'user') return null;
    const blob = await this.store.blobs.get(row.sha256).catch((err: Error) => {
      throw Errors.INTERNAL(`the stored blob of model '${row.name}' cannot be used: ${err.message}`);
    });
    return { name: row.name, blob, row, plan: row.plan as ModelPlan };
  }

  async delete(id: string): Promise<{ name: string; sha256: string }> {
    if (await this.isZoo(id)) throw Errors.MODEL_EXISTS(`'${id}' is a built-in model of the zoo and cannot be deleted`);
    const row = await this.row(id);
    if (!row || row.source !== 'user') throw Errors.MODEL_NOT_FOUND(`no model '${id}'`);
    const snaps = await this.store.countSnapshotsOfModel(row.sha256);
    if (snaps > 0) throw Errors.MODEL_IN_USE(`model '${row.name}' is referenced by ${snaps} snapshot(s); delete them first`, { snapshots: snaps });
    await this.store.deleteModel(row.sha256);
    return { name: row.name, sha256: row.sha256 };
  }

  /** Whether a plan fits each board class's firmware image and each connected board, with the reasons when not. */
  fits(plan: ModelPlan, boards: Board[]): { classes: (Fit & { class: string; boards: string[] })[]; devices: (Fit & { id: string })[] } {
    return {
      classes: this.images.map((c) => ({ class: c.class, boards: c.boards, ...fitOf(plan, c.image) })),
      devices: boards.map((b) => {
        const lim = helloLimits(b);
        return lim ? { id: b.id, ...fitOf(plan, lim) } : { id: b.id, fits: false, reasons: [`device ${b.id} is ${b.status}: its limits are not known`] };
      }),
    };
  }

  classImage(cls: string): ImageLimits | null {
    return this.images.find((c) => c.class === cls)?.image ?? null;
  }
}
