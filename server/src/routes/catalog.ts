// /v1/datasets: what can be streamed (models: routes/models.ts).
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorReplies } from './schemas.js';

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/datasets',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Datasets that can be streamed by reference',
        response: {
          200: Type.Object({
            datasets: Type.Array(
              Type.Object({ name: Type.String(), description: Type.String(), classes: Type.Integer(), available: Type.Boolean() }),
            ),
          }),
        },
      },
    },
    async () => ({ datasets: fastify.datasets.describe() }),
  );
};

export default routes;
