// /v1/health: is the daemon up, and how many boards answer.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

const started = Date.now();

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  // read once: migrations ran when the store opened, and health must answer while the store is out of reach
  const schema = await fastify.store.schemaVersion();
  fastify.get(
    '/health',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness and a one-line view of the rig',
        response: {
          200: Type.Object({
            status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')], {
              description: 'degraded: the shared store is out of reach; this host takes no new work until it is back',
            }),
            uptimeS: Type.Number(),
            devices: Type.Object({ total: Type.Integer(), online: Type.Integer(), busy: Type.Integer() }),
            jobs: Type.Object({ running: Type.Integer() }),
            store: Type.Object({
              engine: Type.String(),
              schema: Type.Integer(),
              reachable: Type.Boolean(),
              lastError: Type.Union([Type.Object({ message: Type.String(), at: Type.String() }), Type.Null()]),
            }),
            host: Type.Object({
              id: Type.String(),
              acceptingWork: Type.Boolean(),
              lastHeartbeat: Type.Union([Type.String(), Type.Null()], { description: 'when this host last registered in the shared store' }),
              fleet: Type.Union([Type.Object({ hosts: Type.Integer(), online: Type.Integer() }), Type.Null()]),
            }),
            modelTool: Type.Boolean(),
          }),
        },
      },
    },
    async () => {
      const boards = fastify.devices.list();
      const { store, rig } = fastify;
      const fleet = rig.fleet && store.reachable ? await rig.fleet.presence.hosts(1000).catch(() => null) : null;
      const beat = rig.fleet?.presence.lastBeat;
      return {
        status: store.reachable ? ('ok' as const) : ('degraded' as const),
        uptimeS: (Date.now() - started) / 1000,
        devices: {
          total: boards.length,
          online: boards.filter((b) => b.status === 'online').length,
          busy: boards.filter((b) => b.busyWith !== null).length,
        },
        jobs: { running: fastify.jobs.activeCount },
        store: { engine: store.engine, schema, reachable: store.reachable, lastError: store.lastError },
        host: {
          id: store.hostId,
          acceptingWork: store.reachable,
          lastHeartbeat: beat ? new Date(beat).toISOString() : null,
          fleet: fleet ? { hosts: fleet.length, online: fleet.filter((h) => h.online).length } : null,
        },
        modelTool: fastify.zoo.available(),
      };
    },
  );
};

export default routes;
