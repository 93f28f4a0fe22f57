// /v1/fleet: operations over many boards at once.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { resolveFleet, runFleetRollback, type FleetRollbackParams } from '../operations/fleet.js';
import { actorOf } from '../jobs/board-jobs.js';
import { errorReplies, EvalSliceSchema, JobAccepted, JobView, WaitQuery } from './schemas.js';
import { jobView } from './views.js';

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const rig = fastify.rig;

  fastify.post(
    '/fleet/rollback',
    {
      config: { role: 'operator', rateLimit: { max: rig.config.rateLimitMax, timeWindow: rig.config.rateLimitWindowMs } },
      schema: {
        tags: ['fleet'],
        summary:
          'Roll many boards back: canary boards first, one by one, then the rest in parallel; halts when failures exceed maxFailures. The job result lists before/after hash, verified and error per device.',
        querystring: WaitQuery,
        body: Type.Object(
          {
            selector: Type.Object(
              {
                devices: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 1024 })),
                board: Type.Optional(Type.String({ description: 'board kind: HELLO board, configured board or class' })),
                tag: Type.Optional(Type.String()),
              },
              { additionalProperties: false },
            ),
            to: Type.String({ description: 'a snapshot id, or "last-good" (each board its own latest good snapshot)' }),
            goodSlice: Type.Optional({ ...EvalSliceSchema, description: 'last-good: only snapshots measured on this slice' }),
            canary: Type.Optional(Type.Integer({ minimum: 0 })),
            maxFailures: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: JobView, 202: JobAccepted, ...errorReplies },
      },
    },
    async (req, reply) => {
      const params = req.body as FleetRollbackParams;
      const boards = await resolveFleet(rig, params);
      const row = await rig.jobs.submit('fleet-rollback', null, { ...params, devices: boards.map((b) => b.id) }, (ctx) =>
        runFleetRollback(rig, ctx, params, boards),
      { total: boards.length, actor: actorOf(req) });
      if (req.query.wait) return reply.status(200).send(jobView((await rig.jobs.wait(row.id))!));
      return reply.status(202).send({ jobId: row.id, state: row.state, href: `/v1/jobs/${row.id}` });
    },
  );
};

export default routes;
