// The daemon's services in one object, handed to operations and routes
// (fastify.rig). Each is created by its plugin under server/src/plugins/app.
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Datasets } from './datasets/index.js';
import type { DeviceRegistry } from './devices/registry.js';
import type { EnergyService } from './energy/index.js';
import type { Fleet } from './hosts/fleet.js';
import type { BoardJobs } from './jobs/board-jobs.js';
import type { JobRunner } from './jobs/runner.js';
import type { MetricsRegistry } from './metrics.js';
import type { ModelCatalog } from './models/catalog.js';
import type { ModelZoo } from './models/zoo.js';
import type { Store } from './store/store.js';

export interface RigMetrics {
  registry: MetricsRegistry;
  steps: (labels: { device: string }, by?: number) => void;
  linkErrors: (labels: { device: string; kind: string }, by?: number) => void;
  jobDuration: (labels: { kind: string; state: string }, seconds: number) => void;
  httpDuration: (labels: { route: string; method: string; status: string }, seconds: number) => void;
}

export interface Rig {
  config: Config;
  log: Logger;
  store: Store;
  devices: DeviceRegistry;
  jobs: JobRunner;
  boardJobs: BoardJobs;
  energy: EnergyService;
  zoo: ModelZoo;
  models: ModelCatalog;
  datasets: Datasets;
  metrics: RigMetrics;
  /** The other rig hosts sharing the store (PostgreSQL); null when this host is alone (SQLite). */
  fleet: Fleet | null;
}
