// /v1/hosts: the rig hosts of the fleet (those sharing this host's store),
// each with its heartbeat, whether it is online and how many boards it owns.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { version } from '../version.js';
import { errorReplies } from './schemas.js';

const HostView = Type.Object({
  id: Type.String(),
  url: Type.String(),
  version: Type.String(),
  startedAt: Type.String(),
  heartbeatAt: Type.String(),
  stoppedAt: Type.Union([Type.String(), Type.Null()]),
  online: Type.Boolean(),
  boards: Type.Integer(),
  self: Type.Boolean({ description: 'the host answering' }),
});

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { rig } = fastify;
  const started = new Date().toISOString();
  fastify.get(
    '/hosts',
    {
      schema: {
        tags: ['hosts'],
        summary: 'The rig hosts of the fleet: this one alone without a shared store (TINYRIG_DATABASE_URL)',
        response: { 200: Type.Object({ hosts: Type.Array(HostView) }), ...errorReplies },
      },
    },
    async () => {
      const self = rig.config.hostId;
      if (!rig.fleet) {
        const now = new Date().toISOString();
        return {
          hosts: [{ id: self, url: rig.config.hostUrl, version, startedAt: started, heartbeatAt: now, stoppedAt: null, online: true, boards: rig.devices.list().length, self: true }],
        };
      }
      return { hosts: (await rig.fleet.presence.hosts()).map((h) => ({ ...h, self: h.id === self })) };
    },
  );
};

export default routes;
