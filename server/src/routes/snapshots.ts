// /v1/snapshots: stored weight snapshots and their bytes.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Errors } from '../errors.js';
import { errorReplies, IdParams, SnapshotView } from './schemas.js';
import { snapshotView } from './views.js';

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store, rig } = fastify;

  fastify.get(
    '/snapshots',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Stored snapshots, newest first',
        querystring: Type.Object({
          deviceId: Type.Optional(Type.String()),
          good: Type.Optional(Type.Boolean()),
          tag: Type.Optional(Type.String()),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
        }),
        response: { 200: Type.Object({ snapshots: Type.Array(SnapshotView) }), ...errorReplies },
      },
    },
    async (req) => ({ snapshots: (await store.listSnapshots(req.query)).map(snapshotView) }),
  );

  fastify.get(
    '/snapshots/:id',
    {
      schema: { tags: ['snapshots'], summary: 'One snapshot', params: IdParams, response: { 200: SnapshotView, ...errorReplies } },
    },
    async (req) => {
      const snap = await store.getSnapshot(req.params.id);
      if (!snap) throw Errors.SNAPSHOT_NOT_FOUND(`no snapshot '${req.params.id}'`);
      return snapshotView(snap);
    },
  );

  fastify.get(
    '/snapshots/:id/weights',
    {
      // the learned weights are the lab's work: reading them takes a token even where other reads are open
      config: { role: 'viewer' },
      schema: {
        tags: ['snapshots'],
        summary: 'The weights blob (the engine parameter memory, byte for byte); ETag is its SHA-256',
        params: IdParams,
        produces: ['application/octet-stream'],
      },
    },
    async (req, reply) => {
      const snap = await store.getSnapshot(req.params.id);
      if (!snap) throw Errors.SNAPSHOT_NOT_FOUND(`no snapshot '${req.params.id}'`);
      const blob = await store.blobs.get(snap.sha256);
      return reply
        .header('content-type', 'application/octet-stream')
        .header('etag', `"${snap.sha256}"`)
        .header('x-tinyrig-sha256', snap.sha256)
        .header('content-disposition', `attachment; filename="${snap.id}.weights"`)
        .send(blob);
    },
  );

  fastify.delete(
    '/snapshots/:id',
    {
      config: { role: 'admin', rateLimit: { max: rig.config.rateLimitMax, timeWindow: rig.config.rateLimitWindowMs } },
      schema: {
        tags: ['snapshots'],
        summary: 'Delete a snapshot (its blob goes when no other snapshot holds the same weights)',
        params: IdParams,
        response: { 200: Type.Object({ id: Type.String(), deleted: Type.Boolean() }), ...errorReplies },
      },
    },
    async (req) => {
      if (!await store.deleteSnapshot(req.params.id)) throw Errors.SNAPSHOT_NOT_FOUND(`no snapshot '${req.params.id}'`);
      return { id: req.params.id, deleted: true };
    },
  );
};

export default routes;
