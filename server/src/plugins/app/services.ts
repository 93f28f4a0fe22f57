// Services without I/O of their own at start: metrics, energy, datasets, model zoo and catalog.
import path from 'node:path';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { Datasets } from '../../datasets/index.js';
import { EnergyService } from '../../energy/index.js';
import { MetricsRegistry } from '../../metrics.js';
import { ModelCatalog } from '../../models/catalog.js';
import { ModelZoo } from '../../models/zoo.js';
import type { RigMetrics } from '../../rig.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: RigMetrics;
    energy: EnergyService;
    datasets: Datasets;
    zoo: ModelZoo;
    models: ModelCatalog;
  }
}

export default fp(
  async (fastify) => {
    const registry = new MetricsRegistry();
    const metrics: RigMetrics = {
      registry,
      steps: registry.counter('tinyrig_training_steps_total', 'Training steps (one sample each) applied, per board'),
      linkErrors: registry.counter('tinyrig_link_errors_total', 'Link errors per board: disconnects and time-outs'),
      jobDuration: registry.histogram('tinyrig_job_duration_seconds', 'Job durations by kind and final state', [
        0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800,
      ]),
      httpDuration: registry.histogram('tinyrig_http_request_duration_seconds', 'API request durations', [
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
      ]),
    };
    fastify.decorate('metrics', metrics);
    fastify.decorate('energy', new EnergyService(fastify.config.boardsFile, (fastify.log as unknown as Logger).child({ module: 'energy' })));
    fastify.decorate('datasets', new Datasets(fastify.config.datasetDir, fastify.config.uploadsDir, fastify.config.hostId));
    const zoo = new ModelZoo(fastify.config.modelTool, fastify.store);
    fastify.decorate('zoo', zoo);
    fastify.decorate('models', new ModelCatalog(fastify.config.modelTool, fastify.store, zoo, fastify.config.boardsFile));
  },
  { name: 'services', dependencies: ['config', 'store'] },
);
