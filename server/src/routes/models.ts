// /v1/models: the zoo and the networks users define, one list. A network is
// given in JSON (FORMAT.md's vocabulary) or as a ready CBOR model blob; the
// engine's own planner judges it, and the answer says what it needs and
// which board classes and connected boards it fits.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import { Errors } from '../errors.js';
import type { CatalogEntry } from '../models/catalog.js';
import type { ModelSpec } from '../models/spec.js';
import { actorOf } from '../jobs/board-jobs.js';
import { errorReplies } from './schemas.js';

const Fit = { fits: Type.Boolean(), reasons: Type.Array(Type.String()) };

export const ModelView = Type.Object({
  name: Type.String(),
  sha256: Type.Union([Type.String(), Type.Null()], { description: 'hash of the model blob (built-in models: built per seed, so none)' }),
  builtIn: Type.Boolean(),
  description: Type.Union([Type.String(), Type.Null()]),
  seed: Type.Union([Type.Integer(), Type.Null()]),
  input: Type.Array(Type.Integer()),
  classes: Type.Integer(),
  bytes: Type.Integer({ description: 'model blob bytes' }),
  weightsBytes: Type.Integer(),
  trainBytes: Type.Integer({ description: 'arena one training step needs' }),
  inferBytes: Type.Integer({ description: 'arena one inference needs' }),
  forwardMacs: Type.Integer(),
  layers: Type.Array(
    Type.Object({ kind: Type.String(), in: Type.Array(Type.Integer()), out: Type.Array(Type.Integer()), params: Type.Integer() }),
  ),
  fits: Type.Object({
    classes: Type.Array(Type.Object({ class: Type.String(), boards: Type.Array(Type.String()), ...Fit })),
    devices: Type.Array(Type.Object({ id: Type.String(), ...Fit })),
  }),
  spec: Type.Unknown({ description: 'the JSON network it was built from (user models given as JSON)' }),
  createdAt: Type.Union([Type.String(), Type.Null()]),
  actor: Type.Union([Type.String(), Type.Null()]),
});

const LayerSpec = Type.Object(
  {
    kind: Type.String({ description: 'conv2d, dwconv2d, dense, relu, maxpool, avgpool, gap, flatten, softmax' }),
  },
  {
    additionalProperties: true,
    description:
      'FORMAT.md fields: conv2d units, kh, kw (or kernel), stride (1), pad (0), act ("none"|"relu"), wq ("per-channel"|"per-tensor"); ' +
      'dwconv2d the same without units; dense units, act, wq; maxpool/avgpool k, stride (k)',
  },
);

const ModelSpecBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    input: Type.Tuple([Type.Integer({ minimum: 1 }), Type.Integer({ minimum: 1 }), Type.Integer({ minimum: 1 })], {
      description: '[h, w, c] of one uint8 sample (HWC); the model reads each byte as value/255',
    }),
    classes: Type.Integer({ minimum: 2, maximum: 65535 }),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff, description: 'seeds the initial weights (default 1)' })),
    layers: Type.Array(LayerSpec, { minItems: 1, maxItems: 32 }),
  },
  { additionalProperties: false },
);

// the same strict (non-coercing) validation as every other body
const checkSpec = new Ajv({ strict: false, coerceTypes: false }).compile(ModelSpecBody);

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const rig = fastify.rig;
  const view = (e: CatalogEntry) => ({
    name: e.name,
    sha256: e.sha256,
    builtIn: e.builtIn,
    description: e.description,
    seed: e.seed,
    input: e.plan.input,
    classes: e.plan.classes,
    bytes: e.plan.bytes,
    weightsBytes: e.plan.weights_bytes,
    trainBytes: e.plan.train_bytes,
    inferBytes: e.plan.infer_bytes,
    forwardMacs: e.plan.forward_macs,
    layers: e.plan.layers,
    fits: rig.models.fits(e.plan, rig.devices.list()),
    spec: e.spec,
    createdAt: e.createdAt,
    actor: e.actor,
  });

  // a model blob arrives as bytes: application/cbor here is the blob itself, not a body to decode
  fastify.removeContentTypeParser('application/cbor');
  fastify.addContentTypeParser(['application/cbor', 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );

  fastify.post(
    '/models',
    {
      config: { role: 'operator', rateLimit: { max: rig.config.rateLimitMax, timeWindow: rig.config.rateLimitWindowMs } },
      schema: {
        tags: ['models'],
        summary:
          'Define a model: a network in JSON (FORMAT.md vocabulary) or a CBOR model blob (application/cbor or application/octet-stream, ?name=). ' +
          'The engine plans it; the answer says which board classes and connected boards it fits. 201 new, 200 when the same model is stored already.',
        querystring: Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }),
        // JSON bodies are checked against ModelSpecBody in the handler: a blob is bytes, which no JSON schema describes
        response: { 200: ModelView, 201: ModelView, ...errorReplies },
      },
    },
    async (req, reply) => {
      const body = req.body as unknown;
      if (body === undefined) throw Errors.BAD_REQUEST('give a network in JSON or a model blob');
      if (!Buffer.isBuffer(body)) {
        if (!checkSpec(body)) {
          const err = checkSpec.errors![0];
          throw Errors.BAD_REQUEST(`body${err.instancePath.replace(/\//g, '.')} ${err.message}`, { validation: checkSpec.errors });
        }
      }
      const out = Buffer.isBuffer(body)
        ? await rig.models.createFromBlob(body, req.query.name, actorOf(req))
        : await rig.models.createFromSpec(body as ModelSpec, actorOf(req));
      return reply.status(out.created ? 201 : 200).send(view(out.entry));
    },
  );

  fastify.get(
    '/models',
    {
      schema: {
        tags: ['models'],
        summary: 'Every model: the zoo (built in) and those users defined, each with its plan and where it fits',
        response: { 200: Type.Object({ models: Type.Array(ModelView) }), ...errorReplies },
      },
    },
    async () => ({ models: (await rig.models.list()).map(view) }),
  );

  fastify.get(
    '/models/:id',
    {
      schema: {
        tags: ['models'],
        summary: 'One model, by name or blob hash',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: ModelView, ...errorReplies },
      },
    },
    async (req) => view(await rig.models.get(req.params.id)),
  );

  fastify.delete(
    '/models/:id',
    {
      config: { role: 'admin', rateLimit: { max: rig.config.rateLimitMax, timeWindow: rig.config.rateLimitWindowMs } },
      schema: {
        tags: ['models'],
        summary: 'Delete a model users defined (409 while a snapshot references it; built-in models stay)',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: Type.Object({ name: Type.String(), sha256: Type.String(), deleted: Type.Boolean() }), ...errorReplies },
      },
    },
    async (req) => ({ ...(await rig.models.delete(req.params.id)), deleted: true }),
  );
};

export default routes;
