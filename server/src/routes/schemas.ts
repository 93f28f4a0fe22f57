// Request and response schemas shared by the routes: one declaration gives
// validation, TypeScript types and the OpenAPI page.
import { Type } from '@fastify/type-provider-typebox';

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
