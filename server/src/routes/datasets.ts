// /v1/datasets/…: one dataset, uploads (multipart files streamed to disk, or
// the raw form as JSON/CBOR) and their removal. The list is in catalog.ts.
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import multipart from '@fastify/multipart';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Errors, RigError } from '../errors.js';
import { MAX_CLASSES, parseShape, type Scale } from '../datasets/formats/common.js';
import { ingest, type Format, type IngestSpec, type SplitSource } from '../datasets/ingest.js';
import type { DatasetStore, StoredDataset } from '../datasets/store.js';
import { errorReplies } from './schemas.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** File parts of each format: the train part(s) and the optional test part(s). */
const FILE_PARTS: Record<Exclude<Format, 'raw'>, { train: string[]; test: string[] }> = {
  csv: { train: ['file'], test: ['testFile'] },
  idx: { train: ['images', 'labels'], test: ['testImages', 'testLabels'] },
  npy: { train: ['x', 'y'], test: ['testX', 'testY'] },
};
const FILE_FIELDS = new Set(Object.values(FILE_PARTS).flatMap((p) => [...p.train, ...p.test]));
const TEXT_FIELDS = new Set(['name', 'format', 'shape', 'classes', 'classNames', 'labelColumn', 'testFraction', 'seed', 'scale']);

const Bytes = Type.Unknown({ description: 'bytes: a CBOR byte string, base64 text, or an array of 0..255' });
const RawBody = Type.Object(
  {
    name: Type.String({ pattern: NAME.source }),
    shape: Type.Union([Type.String(), Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 3 })], { description: '[h, w, c] or "h,w,c"' }),
    classes: Type.Integer({ minimum: 1, maximum: MAX_CLASSES }),
    classNames: Type.Optional(Type.Array(Type.String({ maxLength: 200 }))),
    labels: Bytes,
    data: Bytes,
    testLabels: Type.Optional(Bytes),
    testData: Type.Optional(Bytes),
    testFraction: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff })),
  },
  { additionalProperties: false },
);

const SplitCounts = Type.Object({ count: Type.Integer(), classCounts: Type.Array(Type.Integer()) });
export const DatasetView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  builtIn: Type.Boolean(),
  available: Type.Boolean({ description: 'its files are present (a built-in dataset may not be installed)' }),
  shape: Type.Array(Type.Integer(), { description: '[h, w, c] of one sample' }),
  sampleBytes: Type.Integer({ description: 'bytes of one sample: uint8 elements the model reads as value/255' }),
  classes: Type.Integer(),
  classNames: Type.Union([Type.Array(Type.String()), Type.Null()]),
  splits: Type.Object({ train: SplitCounts, test: SplitCounts }),
  bytes: Type.Integer({ description: 'size of the normalized samples and labels' }),
  sha256: Type.Union([Type.String(), Type.Null()], { description: 'content hash (uploaded datasets)' }),
  format: Type.Union([Type.String(), Type.Null()], { description: 'format it was uploaded in' }),
  createdAt: Type.Union([Type.String(), Type.Null()]),
});
const UploadReply = Type.Object({
  created: Type.Boolean({ description: 'false: the same content was stored already, and this is that dataset' }),
  dataset: DatasetView,
});
const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) });

function bytesOf(v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return Buffer.from(v, 'base64');
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) return Uint8Array.from(v as number[]);
  throw Errors.BAD_REQUEST(`${what} must be bytes: a CBOR byte string, base64 text or an array of 0..255`);
}

function labelsOf(v: unknown, what: string): Uint8Array | number[] {
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
  return bytesOf(v, what);
}

/** Counts the bytes of every file part of one request and stops it past the upload limit. */
function byteBudget(limit: number): (part: string) => Transform {
  let total = 0;
  return (part) =>
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        total += chunk.length;
        if (total > limit) done(Errors.PAYLOAD_TOO_LARGE(`upload exceeds the limit of ${limit} bytes (TINYRIG_UPLOAD_LIMIT) in part '${part}'`));
        else done(null, chunk);
      },
    });
}

function uploadError(e: unknown): unknown {
  const code = (e as { code?: string }).code;
  if (code === 'FST_REQ_FILE_TOO_LARGE' || code === 'FST_PARTS_LIMIT' || code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT') {
    return Errors.PAYLOAD_TOO_LARGE(`upload refused: ${(e as Error).message}`);
  }
  if (code === 'FST_PROTO_VIOLATION') return Errors.BAD_REQUEST('a multipart field name is reserved');
  return e;
}

interface Received {
  fields: Map<string, string>;
  files: Map<string, string>;
}

/** Streams every part of a multipart request: text fields into a Map, files into `dir` as sent. */
async function receiveMultipart(req: FastifyRequest, dir: string, limit: number): Promise<Received> {
  const fields = new Map<string, string>();
  const files = new Map<string, string>();
  const budget = byteBudget(limit);
  try {
    for await (const part of req.parts({ limits: { fileSize: limit, files: FILE_FIELDS.size, fields: 32, fieldSize: 64 * 1024, parts: 64 } })) {
      if (part.type === 'field') {
        if (!TEXT_FIELDS.has(part.fieldname)) throw Errors.BAD_REQUEST(`unknown field '${part.fieldname}' (fields: ${[...TEXT_FIELDS].join(', ')})`);
        if (fields.has(part.fieldname)) throw Errors.BAD_REQUEST(`field '${part.fieldname}' given twice`);
        fields.set(part.fieldname, String(part.value));
        continue;
      }
      if (!FILE_FIELDS.has(part.fieldname)) {
        part.file.resume();
        throw Errors.BAD_REQUEST(`unknown file part '${part.fieldname}' (csv: file, testFile; idx: images, labels, testImages, testLabels; npy: x, y, testX, testY)`);
      }
      if (files.has(part.fieldname)) {
        part.file.resume();
        throw Errors.BAD_REQUEST(`file part '${part.fieldname}' given twice`);
      }
      const file = path.join(dir, `upload-${part.fieldname}`);
      files.set(part.fieldname, file);
      await pipeline(part.file, budget(part.fieldname), fs.createWriteStream(file, { mode: 0o600 }));
    }
  } catch (e) {
    throw uploadError(e);
  }
  return { fields, files };
}

function fieldInt(fields: Map<string, string>, key: string, min: number, max: number): number | undefined {
  const v = fields.get(key);
  if (v === undefined) return undefined;
  if (!/^\d{1,10}$/.test(v.trim()) || Number(v) < min || Number(v) > max) throw Errors.BAD_REQUEST(`${key} must be an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

function classNamesOf(v: string | string[] | undefined, classes: number): string[] | undefined {
  if (v === undefined) return undefined;
  let names: unknown = v;
  if (typeof v === 'string') {
    try {
      names = v.trim().startsWith('[') ? JSON.parse(v) : v.split(',').map((s) => s.trim());
    } catch {
      throw Errors.BAD_REQUEST('classNames must be a JSON array of strings or a comma-separated list');
    }
  }
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw Errors.BAD_REQUEST('classNames must be a list of strings');
  if (names.length !== classes) throw Errors.BAD_REQUEST(`classNames names ${names.length} classes; classes is ${classes}`);
  return names as string[];
}

/** The ingest spec of a multipart upload, from its fields and the file parts present. */
function multipartSpec(r: Received, maxInputBytes: number): { name: string; spec: IngestSpec } {
  const f = r.fields;
  const name = f.get('name');
  if (!name) throw Errors.BAD_REQUEST('field name is required');
  if (!NAME.test(name)) throw Errors.BAD_REQUEST(`name must match ${NAME.source}`);
  let format = f.get('format') as Format | undefined;
  if (format === undefined) format = r.files.has('file') ? 'csv' : r.files.has('images') ? 'idx' : r.files.has('x') ? 'npy' : undefined;
  if (format === undefined || format === 'raw' || !Object.hasOwn(FILE_PARTS, format)) {
    throw Errors.BAD_REQUEST(`format must be csv, idx or npy (got ${JSON.stringify(f.get('format') ?? null)}); the raw form is a JSON or CBOR body`);
  }
  const parts = FILE_PARTS[format as keyof typeof FILE_PARTS];
  for (const p of r.files.keys()) {
    if (!parts.train.includes(p) && !parts.test.includes(p)) throw Errors.BAD_REQUEST(`file part '${p}' does not belong to format ${format} (it takes ${[...parts.train, ...parts.test].join(', ')})`);
  }
  for (const p of parts.train) if (!r.files.has(p)) throw Errors.BAD_REQUEST(`format ${format} needs the file part '${p}'`);
  const testGiven = parts.test.filter((p) => r.files.has(p));
  if (testGiven.length > 0 && testGiven.length < parts.test.length) throw Errors.BAD_REQUEST(`a test split needs every one of ${parts.test.join(', ')}`);
  const classes = fieldInt(f, 'classes', 1, MAX_CLASSES);
  if (classes === undefined) throw Errors.BAD_REQUEST(`field classes is required (1..${MAX_CLASSES})`);
  const scale = (f.get('scale') ?? 'byte') as Scale;
  if (scale !== 'byte' && scale !== 'unit') throw Errors.BAD_REQUEST(`scale must be byte (integers 0..255, the default) or unit (values in [0,1], stored as round(v*255))`);
  let testFraction: number | undefined;
  if (f.has('testFraction')) {
    testFraction = Number(f.get('testFraction'));
    if (!/^\s*(0?\.\d+|0|1)\s*$/.test(f.get('testFraction')!) || !(testFraction > 0 && testFraction < 1)) {
      throw Errors.BAD_REQUEST(`testFraction must be a number between 0 and 1 (exclusive), got ${JSON.stringify(f.get('testFraction'))}`);
    }
    if (testGiven.length > 0) throw Errors.BAD_REQUEST('give either test file parts or testFraction, not both');
  }
  const source = (which: 'train' | 'test'): SplitSource => {
    const [a, b] = parts[which];
    if (format === 'csv') return { format, file: r.files.get(a)!, part: a };
    if (format === 'idx') return { format, images: r.files.get(a)!, labels: r.files.get(b)!, parts: [a, b] };
    return { format: 'npy', x: r.files.get(a)!, y: r.files.get(b)!, parts: [a, b] };
  };
  return {
    name,
    spec: {
      format,
      shape: f.has('shape') ? parseShape(f.get('shape')) : undefined,
      classes,
      classNames: classNamesOf(f.get('classNames'), classes),
      labelColumn: f.get('labelColumn') ?? 'label',
      scale,
      train: source('train'),
      test: testGiven.length > 0 ? source('test') : undefined,
      testFraction,
      seed: fieldInt(f, 'seed', 0, 0xffffffff) ?? 0,
      maxInputBytes,
    },
  };
}

function rawSpec(body: Record<string, unknown>, maxInputBytes: number): { name: string; spec: IngestSpec } {
  const classes = body.classes as number;
  const hasTest = body.testLabels !== undefined || body.testData !== undefined;
  if (hasTest && (body.testLabels === undefined || body.testData === undefined)) throw Errors.BAD_REQUEST('a test split needs both testLabels and testData');
  if (hasTest && body.testFraction !== undefined) throw Errors.BAD_REQUEST('give either testLabels/testData or testFraction, not both');
  return {
    name: body.name as string,
    spec: {
      format: 'raw',
      shape: parseShape(body.shape),
      classes,
      classNames: classNamesOf(body.classNames as string[] | undefined, classes),
      labelColumn: 'label',
      scale: 'byte',
      train: { format: 'raw', labels: labelsOf(body.labels, 'labels'), data: bytesOf(body.data, 'data'), parts: ['labels', 'data'] },
      test: hasTest ? { format: 'raw', labels: labelsOf(body.testLabels, 'testLabels'), data: bytesOf(body.testData, 'testData'), parts: ['testLabels', 'testData'] } : undefined,
      testFraction: body.testFraction as number | undefined,
      seed: (body.seed as number | undefined) ?? 0,
      maxInputBytes,
    },
  };
}

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { datasets, config } = fastify;
  const log = (fastify.log as unknown as Logger).child({ module: 'datasets' });
  const store = datasets.uploads as DatasetStore;
  // multipart bodies stream (bodyLimit does not apply to them); their own limit is uploadLimitBytes
  await fastify.register(multipart, { limits: { fileSize: config.uploadLimitBytes } });

  fastify.get(
    '/datasets/:name',
    { schema: { tags: ['datasets'], summary: 'One dataset', params: NameParams, response: { 200: DatasetView, ...errorReplies } } },
    async (req) => datasets.entry(req.params.name),
  );

  fastify.post(
    '/datasets',
    {
      config: { role: 'operator', rateLimit: { max: config.rateLimitMax, timeWindow: config.rateLimitWindowMs } },
      schema: {
        tags: ['datasets'],
        summary:
          'Upload a dataset: multipart/form-data with file parts (csv: file [testFile]; idx: images labels [testImages testLabels]; npy: x y [testX testY]) ' +
          'and fields name, format, shape, classes, classNames, labelColumn, scale, testFraction, seed; or the raw form as a JSON/CBOR body',
        consumes: ['multipart/form-data', 'application/json', 'application/cbor'],
        body: { content: { 'application/json': { schema: RawBody }, 'application/cbor': { schema: RawBody } } } as unknown as typeof RawBody,
        response: { 200: UploadReply, 201: UploadReply, ...errorReplies },
      },
    },
    async (req, reply) => {
      const started = Date.now();
      const { work, out } = store.scratch();
      try {
        let name: string;
        let spec: IngestSpec;
        let files: Record<string, number> = {};
        if (req.isMultipart()) {
          const got = await receiveMultipart(req, work, config.uploadLimitBytes);
          ({ name, spec } = multipartSpec(got, config.uploadLimitBytes * 8));
          files = Object.fromEntries([...got.files].map(([k, f]) => [k, fs.statSync(f).size]));
        } else {
          ({ name, spec } = rawSpec(req.body as Record<string, unknown>, config.uploadLimitBytes * 8));
        }
        if (datasets.isBuiltIn(name)) throw Errors.DATASET_EXISTS(`'${name}' is a built-in dataset`, { name });
        const taken = store.get(name);
        const normalized = await ingest(spec, work, out);
        if (taken && taken.sha256 !== normalized.sha256) {
          throw Errors.DATASET_EXISTS(`dataset name '${name}' is taken by other content (sha256 ${taken.sha256.slice(0, 12)})`, { name, sha256: taken.sha256 });
        }
        const meta: StoredDataset = {
          name,
          format: spec.format,
          createdAt: new Date().toISOString(),
          createdBy: req.principal?.name ?? null,
          source: {
            files,
            labelColumn: spec.format === 'csv' ? spec.labelColumn : undefined,
            scale: spec.scale,
            testFraction: spec.testFraction ?? null,
            seed: spec.testFraction !== undefined ? spec.seed : null,
          },
          ...normalized,
        };
        const { dataset, created } = store.commit(out, meta, (n) => datasets.isBuiltIn(n));
        log.info(
          { name: dataset.name, sha256: dataset.sha256, created, train: dataset.splits.train.count, test: dataset.splits.test.count, bytes: dataset.bytes, ms: Date.now() - started },
          created ? 'dataset stored' : 'dataset already stored',
        );
        void reply.status(created ? 201 : 200);
        return { created, dataset: datasets.entry(dataset.name) };
      } catch (e) {
        if (e instanceof RigError && e.code === 'TR_DATASET_INVALID') log.info({ err: e.message, details: e.details }, 'dataset refused');
        throw e;
      } finally {
        await store.discard(work);
      }
    },
  );

  fastify.delete(
    '/datasets/:name',
    {
      config: { role: 'admin', rateLimit: { max: config.rateLimitMax, timeWindow: config.rateLimitWindowMs } },
      schema: {
        tags: ['datasets'],
        summary: 'Delete an uploaded dataset (built-in ones stay)',
        params: NameParams,
        response: { 200: Type.Object({ deleted: Type.String(), sha256: Type.String() }), ...errorReplies },
      },
    },
    async (req) => {
      const { name } = req.params;
      if (datasets.isBuiltIn(name)) throw Errors.FORBIDDEN(`'${name}' is a built-in dataset and cannot be deleted`);
      const gone = await store.remove(name);
      if (!gone) throw Errors.DATASET_NOT_FOUND(`no uploaded dataset '${name}'`);
      log.info({ name, sha256: gone.sha256, actor: req.principal?.name ?? null }, 'dataset deleted');
      return { deleted: name, sha256: gone.sha256 };
    },
  );
};

export default routes;
