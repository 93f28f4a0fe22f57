// A network described in JSON with the vocabulary of firmware/core/model/FORMAT.md,
// turned into the engine's CBOR layer list (weights empty: the engine's host
// tool gives them their seeded initial values). Only the vocabulary is checked
// here — kinds, fields and their types; shapes, fan-in and sizes are the
// engine's own planner's to judge (tinyrig-train build --spec).
import { encodeBody, type CborEncodable } from '../../../protocol/src/index.js';
import { Errors } from '../errors.js';

export interface LayerSpec {
  kind: string;
  [field: string]: unknown;
}

export interface ModelSpec {
  name: string;
  input: [number, number, number];
  classes: number;
  seed?: number;
  description?: string;
  layers: LayerSpec[];
}

/** FORMAT.md layer kinds and, in array order after the kind, their fields. */
const KINDS = new Map<string, { code: number; fields: string[] }>([
  ['conv2d', { code: 1, fields: ['units', 'kh', 'kw', 'stride', 'pad', 'act', 'wq'] }],
  ['dwconv2d', { code: 2, fields: ['kh', 'kw', 'stride', 'pad', 'act', 'wq'] }],
  ['dense', { code: 3, fields: ['units', 'act', 'wq'] }],
  ['relu', { code: 4, fields: [] }],
  ['maxpool', { code: 5, fields: ['k', 'stride'] }],
  ['avgpool', { code: 6, fields: ['k', 'stride'] }],
  ['gap', { code: 7, fields: [] }],
  ['flatten', { code: 8, fields: [] }],
  ['softmax', { code: 9, fields: [] }],
]);

const ACT = new Map<unknown, number>([['none', 0], ['relu', 1], [0, 0], [1, 1]]);
const WQ = new Map<unknown, number>([['per-channel', 0], ['per-tensor', 1], [0, 0], [1, 1]]);

/** Written defaults: the shorthand `kernel` for kh = kw, stride 1, pad 0, no activation, per-channel scales. */
function fieldValue(kind: string, L: LayerSpec, field: string, where: string): number {
  const bad = (rule: string): never => {
    throw Errors.MODEL_INVALID(`${where} (${kind}): ${rule}`, { layer: where, kind, field });
  };
  let v: unknown = L[field];
  if (v === undefined) {
    if ((field === 'kh' || field === 'kw') && L.kernel !== undefined) v = L.kernel;
    else if (field === 'stride') v = kind === 'maxpool' || kind === 'avgpool' ? L.k : 1;
    else if (field === 'pad') v = 0;
    else if (field === 'act') v = 'none';
    else if (field === 'wq') v = 'per-channel';
    else bad(`${field} is required`);
  }
  if (field === 'act') return ACT.get(v) ?? bad(`act is "none" or "relu", not ${JSON.stringify(v)}`);
  if (field === 'wq') return WQ.get(v) ?? bad(`wq is "per-channel" or "per-tensor", not ${JSON.stringify(v)}`);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) {
    bad(`${field} is an integer 0 … 65535, not ${JSON.stringify(v)}`);
  }
  return v as number;
}

/** The CBOR layer list of FORMAT.md (keys 1–6, weights an empty byte string) for a JSON network. */
export function encodeSpec(spec: ModelSpec): Uint8Array {
  if (!Array.isArray(spec.layers) || spec.layers.length === 0 || spec.layers.length > 32) {
    throw Errors.MODEL_INVALID('layers: 1 … 32 layers, the last a softmax');
  }
  const layers: CborEncodable[] = spec.layers.map((L, i) => {
    const where = `layer ${i}`;
    const k = typeof L?.kind === 'string' ? KINDS.get(L.kind) : undefined;
    if (!k) {
      throw Errors.MODEL_INVALID(`${where}: unknown kind ${JSON.stringify(L?.kind)} (known: ${[...KINDS.keys()].join(', ')})`, {
        layer: i,
      });
    }
    const known = new Set([...k.fields, 'kind', ...(k.fields.includes('kh') ? ['kernel'] : [])]);
    for (const f of Object.keys(L)) {
      if (!known.has(f)) throw Errors.MODEL_INVALID(`${where} (${L.kind}): unknown field ${f} (fields: ${[...known].join(', ')})`, { layer: i });
    }
    return [k.code, ...k.fields.map((f) => fieldValue(L.kind, L, f, where))];
  });
  return encodeBody({
    1: 1,
    2: spec.input,
    3: spec.classes,
    4: layers,
    5: new Uint8Array(0),
    6: spec.name,
  });
}
