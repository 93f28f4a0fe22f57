// /v1/health: is the daemon up, and how many boards answer.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

const started = Date.now();

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/health',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness and a one-line view of the rig',
        response: {
          200: Type.Object({
            status: Type.Literal('ok'),
            uptimeS: Type.Number(),
            devices: Type.Object({ total: Type.Integer(), online: Type.Integer(), busy: Type.Integer() }),
            jobs: Type.Object({ running: Type.Integer() }),
            store: Type.Object({ schema: Type.Integer() }),
            modelTool: Type.Boolean(),
          }),
        },
      },
    },
    async () => {
      const boards = fastify.devices.list();
      return {
        status: 'ok' as const,
        uptimeS: (Date.now() - started) / 1000,
        devices: {
          total: boards.length,
          online: boards.filter((b) => b.status === 'online').length,
          busy: boards.filter((b) => b.busyWith !== null).length,
        },
        jobs: { running: fastify.jobs.activeCount },
        store: { schema: await fastify.store.schemaVersion() },
        modelTool: fastify.zoo.available(),
      };
    },
  );
};

export default routes;
