// Regression runs: the service, the runs a stopped daemon left (marked
// interrupted before anything else starts), and the nightly schedule.
import fp from 'fastify-plugin';
import { RunService } from '../../regression/runs.js';

declare module 'fastify' {
  interface FastifyInstance {
    runs: RunService;
  }
}

export default fp(
  async (fastify) => {
    const runs = new RunService(fastify.rig);
    const interrupted = await runs.recover();
    if (interrupted.length) fastify.log.warn({ runs: interrupted }, 'runs interrupted by a stop of the daemon are marked so, with the stages they finished');
    runs.schedule();
    fastify.decorate('runs', runs);
    fastify.addHook('onClose', async () => runs.close());
  },
  { name: 'runs', dependencies: ['jobs'] },
);
