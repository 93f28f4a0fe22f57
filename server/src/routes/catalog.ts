// /v1/datasets: what can be streamed (models: routes/models.ts).
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DatasetView } from './datasets.js';
import { errorReplies } from './schemas.js';

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/datasets',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Datasets that can be streamed by reference: built-in and uploaded (routes/datasets.ts), with shapes and class counts per split',
        response: { 200: Type.Object({ datasets: Type.Array(DatasetView) }), ...errorReplies },
      },
    },
    async () => ({ datasets: fastify.datasets.list() }),
  );
};

export default routes;
