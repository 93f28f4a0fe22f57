// /v1/jobs: state of long operations, and their events as server-sent events.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Errors } from '../errors.js';
import type { JobEvent } from '../jobs/runner.js';
import type { Store } from '../store/store.js';
import { errorReplies, IdParams, JobView } from './schemas.js';
import { jobView } from './views.js';

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { jobs, store } = fastify;

  fastify.get(
    '/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Recent jobs, newest first',
        querystring: Type.Object({
          deviceId: Type.Optional(Type.String()),
          state: Type.Optional(Type.Union(['queued', 'running', 'succeeded', 'failed'].map((s) => Type.Literal(s)))),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
        }),
        response: { 200: Type.Object({ jobs: Type.Array(JobView) }), ...errorReplies },
      },
    },
    async (req) => ({ jobs: (await store.listJobs(req.query)).map(jobView) }),
  );

  fastify.get(
    '/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'A job: state, progress done/total, result, error',
        params: IdParams,
        response: { 200: JobView, ...errorReplies },
      },
    },
    async (req) => {
      const job = await jobs.get(req.params.id);
      if (!job) throw Errors.JOB_NOT_FOUND(`no job '${req.params.id}'`);
      return jobView(job);
    },
  );

  fastify.post(
    '/jobs/:id/cancel',
    {
      config: { role: 'operator', rateLimit: { max: fastify.config.rateLimitMax, timeWindow: fastify.config.rateLimitWindowMs } },
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a running job: a training or evaluation stops at its next TRAIN or EVAL, keeping what it applied (TR_JOB_CANCELLED)',
        params: IdParams,
        response: { 202: Type.Object({ id: Type.String(), cancelling: Type.Boolean() }), ...errorReplies },
      },
    },
    async (req, reply) => {
      const job = await jobs.get(req.params.id);
      if (!job) throw Errors.JOB_NOT_FOUND(`no job '${req.params.id}'`);
      if (!jobs.cancel(job.id)) throw Errors.RUN_FINISHED(`job ${job.id} is ${job.state}: only a running job can be cancelled`);
      return reply.status(202).send({ id: job.id, cancelling: true });
    },
  );

  fastify.get(
    '/jobs/:id/events',
    {
      schema: {
        tags: ['jobs'],
        summary:
          'Server-sent events of a job: state, progress, step, loss, accuracy, device (fleet), guard, result, error; the stream ends with the job',
        params: IdParams,
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String()) }),
      },
    },
    async (req, reply) => {
      const job = await jobs.get(req.params.id);
      if (!job) throw Errors.JOB_NOT_FOUND(`no job '${req.params.id}'`);
      const after = Number(req.headers['last-event-id'] ?? 0) || 0;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const write = (ev: JobEvent): void => {
        if (ev.id <= after) return;
        res.write(`id: ${ev.id}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev.data)}\n\n`);
      };
      const live = jobs.follow(job.id);
      const finished = job.state === 'succeeded' || job.state === 'failed';
      if (!live && !finished && fastify.rig.fleet && job.hostId && job.hostId !== fastify.rig.config.hostId) {
        // a job another host runs: its row in the shared store, followed until it ends
        await followRow(fastify.rig.store, job.id, after, write, () => res.writableEnded || res.destroyed);
        res.end();
        return;
      }
      if (!live) {
        // not in memory any more (older job, or from before a restart): its final state only
        write({ id: after + 1, type: 'state', data: { state: job.state } });
        if (job.state === 'succeeded') write({ id: after + 2, type: 'result', data: job.result });
        if (job.state === 'failed') write({ id: after + 2, type: 'error', data: job.error });
        res.end();
        return;
      }
      for (const ev of live.history) write(ev);
      const current = (await jobs.get(job.id))!;
      if (finished || current.state === 'succeeded' || current.state === 'failed') {
        res.end();
        return;
      }
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      const onEvent = (ev: JobEvent): void => write(ev);
      const stop = (): void => {
        clearInterval(heartbeat);
        live.emitter.off('event', onEvent);
        live.emitter.off('end', onEnd);
      };
      const onEnd = (): void => {
        stop();
        res.end();
      };
      live.emitter.on('event', onEvent);
      live.emitter.once('end', onEnd);
      req.raw.on('close', stop);
    },
  );
};

export default routes;

/** Events of a job run by another host, from its row: progress as it moves, then its end. */
async function followRow(store: Store, id: string, after: number, write: (ev: JobEvent) => void, gone: () => boolean): Promise<void> {
  let seq = after;
  let last = '';
  let moved = '';
  for (;;) {
    const row = await store.getJob(id).catch(() => null);
    if (row) {
      const state = `${row.state}`;
      if (state !== last) write({ id: ++seq, type: 'state', data: { state } });
      last = state;
      if (`${row.done}/${row.total}` !== moved) write({ id: ++seq, type: 'progress', data: { done: row.done, total: row.total } });
      moved = `${row.done}/${row.total}`;
      if (row.state === 'succeeded' || row.state === 'failed') {
        write({ id: ++seq, type: row.state === 'succeeded' ? 'result' : 'error', data: row.state === 'succeeded' ? row.result : row.error });
        return;
      }
    }
    if (gone()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}
