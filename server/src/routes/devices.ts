// /v1/devices: the boards, and everything done to one board.
import type { FastifyRequest } from 'fastify';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Board } from '../devices/board.js';
import { Errors, RigError } from '../errors.js';
import { actorOf } from '../jobs/board-jobs.js';
import type { JobContext } from '../jobs/runner.js';
import { checkSliceFits, streamSlice } from '../operations/samples.js';
import { deployModel, rollbackBoard, takeSnapshot } from '../operations/snapshots.js';
import { lastGood } from '../operations/fleet.js';
import {
  checkEvalParams,
  checkTrainParams,
  evaluateSlice,
  runTraining,
  withTrainDefaults,
  withWholeSplit,
  type EvalParams,
  type TrainRequest,
} from '../operations/training.js';
import type { Rig } from '../rig.js';
import type { JobRow } from '../store/store.js';
import {
  DatasetSlice,
  DeviceParams,
  EvalBody,
  EvalSliceSchema,
  TrainBody,
  errorReplies,
  JobAccepted,
  JobView,
  RollbackReply,
  SnapshotView,
  Split,
  WaitQuery,
} from './schemas.js';
import { deviceSummary, jobView, matchesSelector, remoteDeviceView, snapshotView } from './views.js';

const DeviceView = Type.Object(
  {
    id: Type.String(),
    board: Type.Union([Type.String(), Type.Null()]),
    state: Type.Union([Type.Literal('online'), Type.Literal('offline'), Type.Literal('connecting')]),
    busy: Type.Union([Type.String(), Type.Null()], { description: 'id of the job holding the board' }),
  },
  { additionalProperties: true },
);

const mutating = (rig: Rig, role: 'operator' | 'admin' = 'operator', optionalBody = false) => ({
  role,
  optionalBody,
  rateLimit: { max: rig.config.rateLimitMax, timeWindow: rig.config.rateLimitWindowMs },
});

function bytesFrom(v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return Buffer.from(v, 'base64');
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) return Uint8Array.from(v as number[]);
  throw Errors.BAD_REQUEST(`${what} must be bytes: a CBOR byte string, base64 text or an array of 0..255`);
}

const Overwrite = Type.Optional(
  Type.Boolean({ description: 'send a batch larger than the ring anyway: only its last ring-full stays held (default: refused, 413)' }),
);

const SamplesBody = Type.Union([
  Type.Object({ ...DatasetSlice, overwrite: Overwrite }, { additionalProperties: false }),
  Type.Object(
    {
      overwrite: Overwrite,
      sampleBytes: Type.Integer({ minimum: 1 }),
      labels: Type.Unknown({ description: 'n labels: byte string (CBOR), base64 text or array of integers' }),
      data: Type.Unknown({ description: 'n × sampleBytes bytes: byte string (CBOR) or base64 text' }),
    },
    { additionalProperties: false },
  ),
]);

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const rig = fastify.rig;

  /** Validates, then starts a job on the board (409 when it is busy). */
  const boardJob = <P>(
    req: FastifyRequest,
    deviceId: string,
    kind: string,
    params: P,
    check: (rig: Rig, board: Board, p: P) => { total: number },
    run: (rig: Rig, board: Board, ctx: JobContext, p: P) => Promise<unknown>,
    wait: boolean | undefined,
  ) => {
    const board = rig.devices.get(deviceId);
    if (board.busyWith) throw Errors.DEVICE_BUSY(`device ${board.id} is busy with ${board.busyWith}`, { owner: board.busyWith });
    // everything the job would refuse is refused here, before the 202
    const { total } = check(rig, board, params);
    return rig.boardJobs.start(board, kind, params, (ctx) => run(rig, board, ctx, params), { total, wait, actor: actorOf(req) });
  };

  fastify.get(
    '/devices',
    {
      schema: {
        tags: ['devices'],
        summary: 'Every board: state, firmware, CPU, clock, RAM, model, step count',
        querystring: Type.Object({ tag: Type.Optional(Type.String()), board: Type.Optional(Type.String()) }),
        response: { 200: Type.Object({ devices: Type.Array(DeviceView) }), ...errorReplies },
      },
    },
    async (req) => {
      let boards = rig.devices.list();
      if (req.query.tag || req.query.board) boards = rig.devices.select({ tag: req.query.tag, board: req.query.board });
      const leases = await rig.boardJobs.reservations.active();
      const local = boards.map((b) => deviceSummary(rig, b, leases));
      // with a shared store, the boards of every other host too, as their hosts last published them
      const remote = rig.fleet ? (await rig.fleet.remoteBoards()).filter((b) => matchesSelector(b.doc, req.query)).map(remoteDeviceView) : [];
      return { devices: [...local, ...remote] };
    },
  );

  fastify.get(
    '/devices/:id',
    {
      schema: {
        tags: ['devices'],
        summary: 'One board; refresh=true reads its STATS now (when idle)',
        params: DeviceParams,
        querystring: Type.Object({ refresh: Type.Optional(Type.Boolean()) }),
        response: { 200: DeviceView, ...errorReplies },
      },
    },
    async (req) => {
      const board = rig.devices.get(req.params.id);
      if (req.query.refresh && board.status === 'online' && !board.busyWith) await board.refreshStats();
      return { ...deviceSummary(rig, board, await rig.boardJobs.reservations.active()), recordedSteps: await rig.store.countSteps(board.id) };
    },
  );

  fastify.post(
    '/devices/:id/model',
    {
      config: mutating(rig),
      schema: {
        tags: ['devices'],
        summary: 'Deploy a model (a zoo model with a fresh seeded init, or one you defined; 422 when it does not fit the board, before any byte is sent), or a stored snapshot (its model and weights, verified)',
        params: DeviceParams,
        body: Type.Union([
          Type.Object(
            {
              model: Type.String({ description: 'a model of GET /v1/models, by name or blob hash: cnn, or one you defined' }),
              seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff })),
              input: Type.Optional(Type.Tuple([Type.Integer({ minimum: 1 }), Type.Integer({ minimum: 1 }), Type.Integer({ minimum: 1 })])),
              classes: Type.Optional(Type.Integer({ minimum: 2, maximum: 255 })),
            },
            { additionalProperties: false },
          ),
          Type.Object({ snapshotId: Type.String() }, { additionalProperties: false }),
        ]),
        response: { 200: Type.Object({ deviceId: Type.String(), jobId: Type.String() }, { additionalProperties: true }), ...errorReplies },
      },
    },
    async (req) => {
      const board = rig.devices.get(req.params.id);
      if (board.status !== 'online') throw Errors.DEVICE_OFFLINE(`device ${board.id} is ${board.status}`);
      const out = await rig.boardJobs.operation(board, 'deploy', req.body, () =>
        deployModel(rig, board, req.body as Parameters<typeof deployModel>[2]),
      actorOf(req));
      return out as { deviceId: string; jobId: string };
    },
  );

  fastify.post(
    '/devices/:id/samples',
    {
      config: mutating(rig),
      schema: {
        tags: ['devices'],
        summary: 'Stream samples into the board ring: a dataset slice, or raw samples (JSON with base64, or application/cbor with byte strings)',
        params: DeviceParams,
        body: SamplesBody,
        response: {
          200: Type.Object({
            deviceId: Type.String(),
            first: Type.Integer({ description: 'sample number of the first sample sent' }),
            count: Type.Integer(),
            heldFrom: Type.Integer({ description: 'the board now holds sample numbers heldFrom … heldTo-1' }),
            heldTo: Type.Integer(),
            slots: Type.Integer({ description: 'samples the ring holds' }),
            overwritten: Type.Union([Type.Object({ from: Type.Integer(), to: Type.Integer() }), Type.Null()], {
              description: 'sample numbers from … to-1 that this batch pushed out of the ring (null: none)',
            }),
          }),
          ...errorReplies,
        },
      },
    },
    async (req) => {
      const board = rig.devices.get(req.params.id);
      const body = req.body as Record<string, unknown>;
      let slice;
      if (typeof body.dataset === 'string') {
        const count = body.count as number;
        if (count > rig.config.maxSamplesPerRequest) {
          throw Errors.PAYLOAD_TOO_LARGE(`count ${count} exceeds the limit of ${rig.config.maxSamplesPerRequest} samples a request`);
        }
        slice = rig.datasets.slice(body.dataset, (body.split as 'train' | 'test') ?? 'train', (body.offset as number) ?? 0, count);
      } else {
        const sampleBytes = body.sampleBytes as number;
        const labels = bytesFrom(body.labels, 'labels');
        const data = bytesFrom(body.data, 'data');
        if (labels.length === 0) throw Errors.BAD_REQUEST('no samples given');
        if (labels.length > rig.config.maxSamplesPerRequest) throw Errors.PAYLOAD_TOO_LARGE(`${labels.length} samples exceed the limit of ${rig.config.maxSamplesPerRequest}`);
        if (data.length !== labels.length * sampleBytes) {
          throw Errors.BAD_REQUEST(`data has ${data.length} bytes; ${labels.length} samples of ${sampleBytes} bytes need ${labels.length * sampleBytes}`);
        }
        slice = { sampleBytes, labels, data };
      }
      if (board.status !== 'online') throw Errors.DEVICE_OFFLINE(`device ${board.id} is ${board.status}`);
      checkSliceFits(board, slice);
      const slots = board.hello?.sampleSlots ?? 0;
      if (slice.labels.length > slots && !body.overwrite) {
        throw Errors.PAYLOAD_TOO_LARGE(
          `${slice.labels.length} samples do not fit the ${slots}-sample ring of device ${board.id}: ` +
            `train or evaluate a dataset slice (the daemon sends it ring by ring), or send overwrite: true to keep only the last ${slots}`,
          { slots, count: slice.labels.length },
        );
      }
      return rig.boardJobs.withLease(board, 'a samples request', actorOf(req), async () => {
        const { first, overwritten } = await streamSlice(board, slice);
        return {
          deviceId: board.id,
          first,
          count: slice.labels.length,
          heldFrom: board.heldFrom,
          heldTo: board.heldTo,
          slots,
          overwritten,
        };
      });
    },
  );

  fastify.post(
    '/devices/:id/train',
    {
      config: mutating(rig),
      schema: {
        tags: ['devices'],
        summary: 'Train one step per sample: stream a dataset slice and train on it, or {steps} over the samples on the board',
        params: DeviceParams,
        querystring: WaitQuery,
        body: TrainBody,
        response: { 200: JobView, 202: JobAccepted, ...errorReplies },
      },
    },
    async (req, reply) => {
      const params = withWholeSplit(rig, withTrainDefaults(req.body as TrainRequest), 'train');
      const out = await boardJob(req, req.params.id, 'train', params, checkTrainParams, runTraining, req.query.wait);
      return reply.status(out.status).send(out.body);
    },
  );

  fastify.post(
    '/devices/:id/evaluate',
    {
      config: mutating(rig, 'operator', true),
      schema: {
        tags: ['devices'],
        summary: 'Evaluate a dataset slice (default split: test) or the samples on the board: accuracy and loss',
        params: DeviceParams,
        querystring: WaitQuery,
        body: Type.Optional(EvalBody),
        response: { 200: JobView, 202: JobAccepted, ...errorReplies },
      },
    },
    async (req, reply) => {
      const params = withWholeSplit(rig, (req.body ?? {}) as EvalParams, 'test');
      const out = await boardJob(req, req.params.id, 'evaluate', params, checkEvalParams, evaluateSlice, req.query.wait);
      return reply.status(out.status).send(out.body);
    },
  );

  fastify.get(
    '/devices/:id/metrics',
    {
      schema: {
        tags: ['devices'],
        summary: 'Every recorded training step: loss, cycles (instructions on emulated boards), peak RAM, fraction updated, energy',
        params: DeviceParams,
        querystring: Type.Object({
          after: Type.Optional(Type.Integer({ minimum: 0, description: 'only steps with seq above this (paging)' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
          jobId: Type.Optional(Type.String()),
        }),
        response: {
          200: Type.Object({
            deviceId: Type.String(),
            counterUnit: Type.Union([Type.String(), Type.Null()]),
            energy: Type.Object({ source: Type.String(), basis: Type.Union([Type.String(), Type.Null()]) }),
            steps: Type.Array(
              Type.Object({
                seq: Type.Integer(),
                stepId: Type.Integer(),
                sampleIndex: Type.Integer(),
                jobId: Type.Union([Type.String(), Type.Null()]),
                loss: Type.Number(),
                counter: Type.Integer(),
                counterUnit: Type.String({ description: 'cycles, instructions (emulated) or ns (host twin)' }),
                cycles: Type.Union([Type.Integer(), Type.Null()], { description: 'set only when the board counts cycles' }),
                instructions: Type.Union([Type.Integer(), Type.Null()], { description: 'set only on emulated boards' }),
                peakRam: Type.Integer(),
                updatedFraction: Type.Number(),
                correct: Type.Boolean(),
                energyUj: Type.Union([Type.Number(), Type.Null()]),
                energySource: Type.Union([Type.Literal('measured'), Type.Literal('estimated'), Type.Null()]),
                createdAt: Type.String(),
              }),
            ),
            next: Type.Union([Type.Integer(), Type.Null()]),
          }),
          ...errorReplies,
        },
      },
    },
    async (req) => {
      const board = rig.devices.get(req.params.id);
      const limit = req.query.limit ?? 1000;
      const rows = await rig.store.listSteps(board.id, { after: req.query.after, limit, jobId: req.query.jobId });
      const power = rig.energy.info(board.entry, board.hello?.board);
      const m = power.model;
      const unit = board.hello?.counter ?? rows[0]?.counterUnit ?? null;
      const basis = power.meter
        ? `measured by ${power.meter}`
        : m
          ? `${unit === 'instructions' ? 'emulated instructions counted as cycles' : unit === 'ns' ? 'host time' : 'cycles'} at ${m.clockHz} Hz x ${m.activeMw} mW (${m.board}: ${m.source})`
          : null;
      return {
        deviceId: board.id,
        counterUnit: unit,
        energy: { source: power.source, basis },
        steps: rows.map((r) => ({
          seq: r.seq,
          stepId: r.stepId,
          sampleIndex: r.sampleIndex,
          jobId: r.jobId,
          loss: r.lossPpm / 1e6,
          counter: r.counter,
          counterUnit: r.counterUnit,
          cycles: r.counterUnit === 'cycles' ? r.counter : null,
          instructions: r.counterUnit === 'instructions' ? r.counter : null,
          peakRam: r.peakRam,
          updatedFraction: r.updatedPpm / 1e6,
          correct: r.correct,
          energyUj: r.energyUj,
          energySource: r.energySource,
          createdAt: r.createdAt,
        })),
        next: rows.length === limit ? rows[rows.length - 1].seq : null,
      };
    },
  );

  fastify.post(
    '/devices/:id/snapshots',
    {
      config: mutating(rig, 'operator', true),
      schema: {
        tags: ['snapshots'],
        summary: 'Pull the board weights, verify them against the hash the board computes, store them',
        params: DeviceParams,
        body: Type.Optional(
          Type.Object(
            {
              tags: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
              evaluate: Type.Optional(Type.Object({ ...DatasetSlice }, { additionalProperties: false })),
            },
            { additionalProperties: false },
          ),
        ),
        response: { 201: Type.Intersect([SnapshotView, Type.Object({ jobId: Type.String() })]), ...errorReplies },
      },
    },
    async (req, reply) => {
      const board = rig.devices.get(req.params.id);
      const body = req.body ?? {};
      if (board.status !== 'online') throw Errors.DEVICE_OFFLINE(`device ${board.id} is ${board.status}`);
      if (body.evaluate) checkEvalParams(rig, board, body.evaluate);
      const out = await rig.boardJobs.operation(board, 'snapshot', body, async (ctx) => {
        if (body.evaluate) await evaluateSlice(rig, board, ctx, body.evaluate);
        return snapshotView(await takeSnapshot(rig, board, { tags: body.tags, jobId: ctx.id }));
      }, actorOf(req));
      return reply.status(201).send(out);
    },
  );

  fastify.post(
    '/devices/:id/rollback',
    {
      config: mutating(rig),
      schema: {
        tags: ['snapshots'],
        summary: 'Write a snapshot to the board, commit it, read the board hash back: success only when it matches',
        params: DeviceParams,
        body: Type.Object(
          {
            snapshotId: Type.String({ description: 'a snapshot id, or "last-good"' }),
            goodSlice: Type.Optional(EvalSliceSchema),
          },
          { additionalProperties: false },
        ),
        response: { 200: RollbackReply, ...errorReplies },
      },
    },
    async (req) => {
      const board = rig.devices.get(req.params.id);
      const snap = req.body.snapshotId === 'last-good' ? await lastGood(rig, board, req.body.goodSlice) : await rig.store.getSnapshot(req.body.snapshotId);
      if (!snap) throw Errors.SNAPSHOT_NOT_FOUND(`no snapshot '${req.body.snapshotId}'`);
      if (board.status !== 'online') throw Errors.DEVICE_OFFLINE(`device ${board.id} is ${board.status}`);
      const out = await rig.boardJobs.operation(board, 'rollback', { snapshotId: snap.id }, () => rollbackBoard(rig, board, snap), actorOf(req));
      return {
        snapshotId: out.snapshotId,
        sha256: out.sha256,
        verified: out.verified,
        deviceId: out.deviceId,
        before: out.before,
        modelReloaded: out.modelReloaded,
        jobId: out.jobId,
      };
    },
  );

  fastify.post(
    '/devices/:id/reset',
    {
      config: mutating(rig, 'admin'),
      schema: {
        tags: ['devices'],
        summary: 'Restart the board (its samples, model and step memory are lost)',
        params: DeviceParams,
        response: { 200: Type.Object({ deviceId: Type.String(), reset: Type.Boolean() }), ...errorReplies },
      },
    },
    async (req) => {
      const board = rig.devices.get(req.params.id);
      await rig.boardJobs.withLease(board, 'a reset request', actorOf(req), async () => {
        try {
          await board.run('reset', (l) => l.reset());
        } catch (err) {
          // the link drops as the board restarts; that is the expected outcome
          if (!(err instanceof RigError) || err.code !== 'TR_DEVICE_DISCONNECTED') throw err;
        }
      });
      return { deviceId: board.id, reset: true };
    },
  );
};

export default routes;
