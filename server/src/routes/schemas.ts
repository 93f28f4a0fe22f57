// Request and response schemas shared by the routes: one declaration gives
// validation, TypeScript types and the OpenAPI page.
import { Type } from '@fastify/type-provider-typebox';
import { DEFAULT_LR, LR_MIN } from '../operations/training.js';

export const ErrorReply = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'stable error code, e.g. TR_DEVICE_BUSY' }),
    error: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  },
  { $id: 'ErrorReply' },
);

export const errorReplies = {
  400: ErrorReply,
  401: ErrorReply,
  403: ErrorReply,
  404: ErrorReply,
  409: ErrorReply,
  413: ErrorReply,
  429: ErrorReply,
  500: ErrorReply,
  501: ErrorReply,
  502: ErrorReply,
  503: ErrorReply,
  504: ErrorReply,
};

export const DeviceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 80 }) });

export const Split = Type.Union([Type.Literal('train'), Type.Literal('test')]);

export const DatasetSlice = {
  dataset: Type.String({ description: 'dataset name, e.g. fashion-mnist' }),
  split: Type.Optional(Split),
  offset: Type.Optional(Type.Integer({ minimum: 0 })),
  count: Type.Integer({ minimum: 1 }),
};

export const WaitQuery = Type.Object({
  wait: Type.Optional(Type.Boolean({ description: 'answer when the job has ended, with the job (200) instead of 202' })),
});

export const JobAccepted = Type.Object({ jobId: Type.String(), state: Type.String(), href: Type.String() });

export const JobView = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  deviceId: Type.Union([Type.String(), Type.Null()]),
  state: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')]),
  progress: Type.Object({ done: Type.Integer(), total: Type.Integer() }),
  params: Type.Unknown(),
  result: Type.Unknown({ description: 'the outcome; of a failed or interrupted job, what it achieved before it stopped' }),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
  createdAt: Type.String(),
  startedAt: Type.Union([Type.String(), Type.Null()]),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
  actor: Type.Union([Type.String(), Type.Null()], { description: 'name of the token that started the job' }),
  host: Type.Union([Type.String(), Type.Null()], { description: 'the rig host that runs the job' }),
});

export const EvalSliceSchema = Type.Object({
  dataset: Type.String(),
  split: Type.String(),
  offset: Type.Integer({ minimum: 0 }),
  count: Type.Integer({ minimum: 1 }),
});

export const SnapshotView = Type.Object({
  id: Type.String(),
  sha256: Type.String(),
  bytes: Type.Integer(),
  device: Type.String(),
  model: Type.Union([Type.String(), Type.Null()], { description: 'zoo model name' }),
  modelSha256: Type.String(),
  step: Type.Integer({ description: 'training steps the weights had seen' }),
  createdAt: Type.String(),
  tags: Type.Array(Type.String()),
  accuracy: Type.Union([Type.Number(), Type.Null()]),
  good: Type.Boolean({ description: 'accuracy at or above TINYRIG_GOOD_ACCURACY on a named dataset slice' }),
  evaluatedOn: Type.Union([EvalSliceSchema, Type.Null()], { description: 'the dataset slice accuracy was measured on' }),
});

export const RollbackReply = Type.Object({
  snapshotId: Type.String(),
  sha256: Type.String({ description: 'hash the device computed over the weights it now holds' }),
  verified: Type.Literal(true),
  deviceId: Type.String(),
  before: Type.Union([Type.String(), Type.Null()]),
  modelReloaded: Type.Boolean(),
  jobId: Type.String(),
});

/** POST /v1/devices/:id/train; the operations' TrainRequest is its static type. */
export const TrainBody = Type.Object(
  {
    dataset: Type.Optional(Type.String()),
    split: Type.Optional(Split),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
    count: Type.Optional(Type.Integer({ minimum: 1, description: 'samples of the slice (default: to the end of the split)' })),
    steps: Type.Optional(Type.Integer({ minimum: 1, description: 'steps over the samples already on the board (the newest, unless range names others)' })),
    range: Type.Optional(
      Type.Object(
        { from: Type.Integer({ minimum: 0 }), to: Type.Integer({ minimum: 1 }) },
        { additionalProperties: false, description: 'held sample numbers from … to-1 for steps (as /samples reports them); steps beyond cycle over them' },
      ),
    ),
    lr: Type.Optional(
      Type.Number({
        minimum: LR_MIN,
        maximum: 100,
        description:
          `learning rate; default ${DEFAULT_LR.standardized} with standardized gradients (the default optimizer, ` +
          `useful range 0.001-0.005), ${DEFAULT_LR.qas} with qas (useful range 0.005-0.02). ` +
          `The wire carries millionths: ${LR_MIN} is the smallest, 100 the largest the engine takes`,
      }),
    ),
    epochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'passes over the dataset slice (each shuffled, seeded by seed)' })),
    shuffle: Type.Optional(Type.Boolean({ description: 'shuffle each epoch (default: true when epochs is given)' })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff, description: 'seeds the shuffle (default 1): the same seed gives the same order, so the same weights' })),
    schedule: Type.Optional(
      Type.Union([Type.Literal('constant'), Type.Literal('step'), Type.Literal('cosine')], {
        description: 'learning-rate schedule over the job, by step number, constant over blocks of 16 steps',
      }),
    ),
    lrMin: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'cosine: the rate it ends at (default 0)' })),
    stepEvery: Type.Optional(Type.Integer({ minimum: 1, description: 'step: steps between decays (default: one epoch)' })),
    gamma: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'step: factor at each decay (default 0.1)' })),
    sparse: Type.Optional(
      Type.Object({ lambdaMin: Type.Number({ minimum: 0, maximum: 1 }), lambdaMax: Type.Number({ minimum: 0, maximum: 1 }) }),
    ),
    trainableLayers: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 31 }), { maxItems: 32 })),
    biasOnlyLayers: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 31 }), { maxItems: 32 })),
    qas: Type.Optional(
      Type.Boolean({
        description: 'optimizer: int8 SGD with quantization-aware gradient scaling instead of standardized gradients (the default)',
      }),
    ),
    stochasticRounding: Type.Optional(Type.Boolean()),
    guard: Type.Optional(
      Type.Union([
        Type.Literal(false),
        Type.Object({
          margin: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          dataset: Type.Optional(Type.String()),
          split: Type.Optional(Split),
          offset: Type.Optional(Type.Integer({ minimum: 0 })),
          count: Type.Optional(Type.Integer({ minimum: 1 })),
        }),
      ]),
    ),
  },
  { additionalProperties: false },
);

/** POST /v1/devices/:id/evaluate; the operations' EvalParams is its static type. */
export const EvalBody = Type.Object(
  {
    dataset: Type.Optional(Type.String()),
    split: Type.Optional(Split),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
    count: Type.Optional(Type.Integer({ minimum: 1, description: 'samples of the slice (default: to the end of the split)' })),
  },
  { additionalProperties: false },
);
