// /v1/models and /v1/datasets: what can be deployed and streamed.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorReplies } from './schemas.js';

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/models',
    {
      schema: {
        tags: ['catalog'],
        summary: 'The model zoo (from the engine host tool)',
        response: {
          200: Type.Object({
            models: Type.Array(
              Type.Object({
                name: Type.String(),
                description: Type.String(),
                input: Type.Array(Type.Integer()),
                classes: Type.Integer(),
                layers: Type.Integer(),
                weights_bytes: Type.Integer(),
                train_bytes: Type.Integer(),
                infer_bytes: Type.Integer(),
              }),
            ),
          }),
          ...errorReplies,
        },
      },
    },
    async () => ({ models: await fastify.zoo.list() }),
  );

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
