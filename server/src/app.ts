// The daemon as a Fastify plugin: external plugins, then app services, then
// routes. server.ts runs it as a process; tests build() it in-process.
import fp from 'fastify-plugin';
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { loadConfig, type Config } from './config.js';
import type { LinkOpener } from './devices/board.js';
import { Errors, RigError, toErrorBody } from './errors.js';
import { serverOptions, validatorCompiler } from './http/server-options.js';
import cborBody from './plugins/external/cbor.js';
import security from './plugins/external/security.js';
import rateLimit from './plugins/external/rate-limit.js';
import swagger from './plugins/external/swagger.js';
import configPlugin from './plugins/app/config.js';
import storePlugin from './plugins/app/store.js';
import servicesPlugin from './plugins/app/services.js';
import devicesPlugin from './plugins/app/devices.js';
import jobsPlugin from './plugins/app/jobs.js';
import runsPlugin from './plugins/app/runs.js';
import authPlugin from './plugins/app/auth.js';
import hostsPlugin from './plugins/app/hosts.js';
import healthRoutes from './routes/health.js';
import hostRoutes from './routes/hosts.js';
import deviceRoutes from './routes/devices.js';
import jobRoutes from './routes/jobs.js';
import snapshotRoutes from './routes/snapshots.js';
import fleetRoutes from './routes/fleet.js';
import catalogRoutes from './routes/catalog.js';
import datasetRoutes from './routes/datasets.js';
import modelRoutes from './routes/models.js';
import leaseRoutes from './routes/leases.js';
import runRoutes from './routes/runs.js';
import metricsRoutes from './routes/metrics.js';

export interface AppOptions {
  config: Config;
  /** How board links are opened (default: serial ports through the protocol session). */
  opener?: LinkOpener;
}

/** Maps any error (ours, validation, body parser, rate limit) to a stable code. */
export function normalizeError(err: unknown): RigError {
  if (err instanceof RigError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  if (e?.validation) return Errors.BAD_REQUEST(e.message ?? 'invalid request', { validation: e.validation });
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return Errors.PAYLOAD_TOO_LARGE(`request body exceeds the limit (${e.message})`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return Errors.UNSUPPORTED_MEDIA(e.message ?? 'unsupported content type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return Errors.BAD_REQUEST(e.message ?? 'invalid body');
  }
  if (e?.statusCode === 429) return Errors.RATE_LIMITED(e.message);
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new RigError('TR_BAD_REQUEST', e.statusCode, e.message ?? 'invalid request');
  }
  return Errors.INTERNAL(e?.message ?? String(err));
}

const appPlugin: FastifyPluginAsync<AppOptions> = async (fastify, opts) => {
  await fastify.register(configPlugin, { config: opts.config });
  // external
  await fastify.register(security);
  await fastify.register(cborBody);
  await fastify.register(swagger);
  await fastify.register(rateLimit);
  // app services
  await fastify.register(storePlugin);
  await fastify.register(servicesPlugin);
  await fastify.register(authPlugin);
  await fastify.register(devicesPlugin, { opener: opts.opener });
  await fastify.register(jobsPlugin);
  await fastify.register(runsPlugin);
  await fastify.register(hostsPlugin);

  fastify.setErrorHandler((err, req, reply) => {
    const rig = normalizeError(err);
    req.refusal = rig.code;
    // only a fault of the daemon's own carries a stack; refusals are logged once, in onResponse
    if (rig.statusCode === 500) req.log.error({ err, code: rig.code }, rig.message);
    void reply.status(rig.statusCode).send(toErrorBody(rig));
  });
  fastify.setNotFoundHandler((req, reply) => {
    const rig = Errors.NOT_FOUND(`no route ${req.method} ${req.routeOptions.url ?? req.url.split('?')[0].slice(0, 200)}`);
    req.refusal = rig.code;
    void reply.status(404).send(toErrorBody(rig));
  });
  fastify.addHook('onResponse', async (req, reply) => {
    fastify.metrics.httpDuration(
      { route: req.routeOptions.url ?? 'unmatched', method: req.method, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    if (reply.statusCode >= 400) {
      const line = {
        method: req.method,
        url: req.url.length > 200 ? `${req.url.slice(0, 200)}…` : req.url,
        actor: req.principal?.name ?? null,
        statusCode: reply.statusCode,
        code: req.refusal ?? null,
        remote: req.ip,
      };
      // a client's mistake is info; a board that is offline, busy elsewhere or slow is warn
      if (reply.statusCode < 500) req.log.info(line, 'request refused');
      else req.log.warn(line, 'request failed');
    }
  });

  // routes
  await fastify.register(metricsRoutes);
  await fastify.register(import('./routes/web.js')); // the lab page at / and its files under /ui/
  await fastify.register(healthRoutes, { prefix: '/v1' });
  await fastify.register(hostRoutes, { prefix: '/v1' });
  await fastify.register(deviceRoutes, { prefix: '/v1' });
  await fastify.register(jobRoutes, { prefix: '/v1' });
  await fastify.register(snapshotRoutes, { prefix: '/v1' });
  await fastify.register(fleetRoutes, { prefix: '/v1' });
  await fastify.register(catalogRoutes, { prefix: '/v1' });
  await fastify.register(datasetRoutes, { prefix: '/v1' });
  await fastify.register(modelRoutes, { prefix: '/v1' });
  await fastify.register(leaseRoutes, { prefix: '/v1' });
  await fastify.register(runRoutes, { prefix: '/v1' });
};

/** Not encapsulated, so its decorations (rig, devices, store, …) are visible to the caller. */
const app = fp(appPlugin, { name: 'tinyrig' });
export default app;

export interface BuildOptions {
  /** Field-by-field overrides of the settings read from the environment. */
  config?: Partial<Config>;
  env?: NodeJS.ProcessEnv;
  opener?: LinkOpener;
  logger?: FastifyServerOptions['logger'];
}

/** A ready daemon instance (not listening): for server.ts and in-process tests. */
export async function build(opts: BuildOptions = {}): Promise<FastifyInstance> {
  const config = loadConfig(opts.env ?? process.env, opts.config ?? {});
  const fastify = Fastify({
    logger: opts.logger ?? { level: config.logLevel },
    logController: new LogController({ disableRequestLogging: config.logLevel !== 'debug' && config.logLevel !== 'trace' }),
    ...serverOptions(config),
  }).withTypeProvider<TypeBoxTypeProvider>();
  fastify.setValidatorCompiler(validatorCompiler());
  await fastify.register(app, { config, opener: opts.opener });
  await fastify.ready();
  return fastify as unknown as FastifyInstance;
}
