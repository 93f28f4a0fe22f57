// The job runner, the board-jobs service (leases and board jobs), and the rig object bundling every service for operations;
// it also closes everything in order when the daemon stops.
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { BoardJobs } from '../../jobs/board-jobs.js';
import { Reservations } from '../../jobs/reservations.js';
import { JobRunner } from '../../jobs/runner.js';
import type { Rig } from '../../rig.js';

declare module 'fastify' {
  interface FastifyInstance {
    jobs: JobRunner;
    boardJobs: BoardJobs;
    rig: Rig;
  }
}

export default fp(
  async (fastify) => {
    const jobs = new JobRunner(fastify.store, (fastify.log as unknown as Logger).child({ module: 'jobs' }));
    jobs.onFinished = (kind, state, seconds) => fastify.metrics.jobDuration({ kind, state }, seconds);
    fastify.decorate('jobs', jobs);
    const reservations = new Reservations(fastify.store, (fastify.log as unknown as Logger).child({ module: 'reservations' }));
    const boardJobs = new BoardJobs(jobs, reservations);
    fastify.decorate('boardJobs', boardJobs);
    const rig: Rig = {
      config: fastify.config,
      log: (fastify.log as unknown as Logger).child({ module: 'rig' }),
      store: fastify.store,
      devices: fastify.devices,
      jobs,
      boardJobs,
      energy: fastify.energy,
      zoo: fastify.zoo,
      models: fastify.models,
      datasets: fastify.datasets,
      metrics: fastify.metrics,
      fleet: null, // set by the hosts plugin when the store is shared
    };
    fastify.decorate('rig', rig);
    fastify.addHook('onClose', async () => {
      // the other hosts' requests first, then links (running jobs fail fast with a clear error), then jobs, then the store
      await rig.fleet?.stop();
      reservations.close();
      await fastify.devices.close();
      await jobs.drain();
      await fastify.energy.close();
      await fastify.store.close();
    });
  },
  { name: 'jobs', dependencies: ['config', 'store', 'services', 'devices'] },
);
