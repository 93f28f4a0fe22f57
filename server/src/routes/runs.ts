// /v1/suites and /v1/runs: overnight regression runs over the rig.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Errors } from '../errors.js';
import { actorOf } from '../jobs/board-jobs.js';
import { renderJunit } from '../regression/junit.js';
import { renderReport } from '../regression/report.js';
import { errorReplies, WaitQuery } from './schemas.js';

const RunId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 80 }) });
// the run document (regression/types.ts RunView) is large and nested; it is described there
const RunReply = Type.Unknown({ description: 'a run: per board and stage status, figures, checks against the baseline, failure class' });

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { runs, rig } = fastify;
  const limit = { rateLimit: { max: rig.config.rateLimitMax, timeWindow: rig.config.rateLimitWindowMs } };

  fastify.get(
    '/suites',
    { schema: { tags: ['runs'], summary: 'The regression suites (suites/*.yaml), each checked', response: { 200: Type.Object({ suites: Type.Array(Type.Unknown()) }), ...errorReplies } } },
    async () => ({
      suites: runs.suites.names().map((name) => {
        try {
          return { name, suite: runs.suites.get(name), error: null };
        } catch (err) {
          return { name, suite: null, error: (err as Error).message };
        }
      }),
    }),
  );

  fastify.post(
    '/runs',
    {
      config: { role: 'operator', ...limit },
      schema: {
        tags: ['runs'],
        summary: 'Start a suite: its boards are reserved for the run; 202 with the run (with ?wait=true, 200 once it ended)',
        querystring: WaitQuery,
        body: Type.Object({ suite: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
        response: { 200: RunReply, 202: RunReply, ...errorReplies },
      },
    },
    async (req, reply) => {
      const doc = await runs.start(req.body.suite, 'api', actorOf(req));
      if (req.query.wait) return reply.status(200).send(await runs.wait(doc.id));
      return reply.status(202).send(doc);
    },
  );

  fastify.get(
    '/runs',
    {
      schema: {
        tags: ['runs'],
        summary: 'Runs, newest first',
        querystring: Type.Object({
          suite: Type.Optional(Type.String()),
          state: Type.Optional(Type.String()),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
        }),
        response: { 200: Type.Object({ runs: Type.Array(RunReply) }), ...errorReplies },
      },
    },
    async (req) => ({ runs: await runs.list(req.query) }),
  );

  fastify.get(
    '/runs/:id',
    { schema: { tags: ['runs'], summary: 'One run', params: RunId, response: { 200: RunReply, ...errorReplies } } },
    async (req) => runs.get(req.params.id),
  );

  fastify.get(
    '/runs/:id/report.html',
    {
      schema: {
        tags: ['runs'],
        summary: 'The run as a self-contained page: a summary per board, then each figure per board over the last 30 runs of its suite, baseline marked, regressions highlighted',
        params: RunId,
        produces: ['text/html'],
      },
    },
    async (req, reply) => {
      const run = await runs.get(req.params.id);
      const history = (await runs.list({ suite: run.suite, limit: 30 })).filter((r) => r.createdAt <= run.createdAt).reverse();
      const baseline = run.baselineRunId ? await runs.get(run.baselineRunId) : null;
      return reply.type('text/html; charset=utf-8').send(renderReport(run, history, baseline));
    },
  );

  fastify.get(
    '/runs/:id/junit.xml',
    { schema: { tags: ['runs'], summary: 'The run in JUnit XML for CI systems: a test case per board and check', params: RunId, produces: ['application/xml'] } },
    async (req, reply) => reply.type('application/xml; charset=utf-8').send(renderJunit(await runs.get(req.params.id))),
  );

  fastify.post(
    '/runs/:id/boards/:deviceId',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['runs'],
        summary: "Fleet-internal: runs this host's board's part of a run another rig host started, answering with the board's record",
        params: Type.Object({ id: Type.String({ maxLength: 80 }), deviceId: Type.String({ maxLength: 64 }) }),
        body: Type.Object(
          { suite: Type.String({ minLength: 1, maxLength: 64 }), baselineRunId: Type.Union([Type.String(), Type.Null()]), holder: Type.String({ maxLength: 100 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      if (!req.forwarded) throw Errors.FORBIDDEN('only a rig host of the fleet asks for a board of its run (POST /v1/runs starts a run)');
      return runs.runBoardFor(req.params.id, req.body.suite, req.params.deviceId, req.body.baselineRunId, req.body.holder);
    },
  );

  fastify.post(
    '/runs/:id/cancel',
    {
      config: { role: 'operator', ...limit },
      schema: { tags: ['runs'], summary: 'Cancel a run: stages not started are cancelled, running ones end on their own', params: RunId, response: { 200: RunReply, ...errorReplies } },
    },
    async (req) => {
      // a run another host runs is cancelled there
      const doc = await runs.get(req.params.id);
      if (rig.fleet && doc.host && doc.host !== rig.config.hostId && doc.state === 'running' && !req.forwarded) {
        return rig.fleet.json(doc.host, 'POST', `/v1/runs/${encodeURIComponent(doc.id)}/cancel`, undefined, {
          actor: req.principal?.name ?? null,
          role: req.principal?.role ?? null,
        });
      }
      return runs.cancel(req.params.id);
    },
  );

  fastify.post(
    '/runs/:id/baseline',
    {
      config: { role: 'operator', ...limit },
      schema: { tags: ['runs'], summary: "Make a finished run the suite's baseline: later runs are compared with its figures", params: RunId, response: { 200: RunReply, ...errorReplies } },
    },
    async (req) => runs.promote(req.params.id, actorOf(req)),
  );
};

export default routes;
