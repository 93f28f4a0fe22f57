// /v1/leases: people and runs reserve boards for a while. A reservation that
// is not renewed expires by itself; an admin can break one.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Errors } from '../errors.js';
import { actorOf } from '../jobs/board-jobs.js';
import { errorReplies } from './schemas.js';

const LeaseView = Type.Object({
  id: Type.String(),
  deviceIds: Type.Array(Type.String()),
  holder: Type.String({ description: 'the token name (or run) that holds the boards' }),
  reason: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  expiresAt: Type.String(),
});

const MAX_TTL_MS = 7 * 24 * 3600_000;

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const rig = fastify.rig;
  const reservations = rig.boardJobs.reservations;
  const limit = { rateLimit: { max: rig.config.rateLimitMax, timeWindow: rig.config.rateLimitWindowMs } };
  const holderOf = (req: Parameters<typeof actorOf>[0]): string => {
    const a = actorOf(req);
    if (!a) throw Errors.UNAUTHORIZED('a reservation needs a token: its name is the holder');
    return a;
  };

  fastify.get(
    '/leases',
    {
      schema: { tags: ['leases'], summary: 'Reservations in force', response: { 200: Type.Object({ leases: Type.Array(LeaseView) }), ...errorReplies } },
    },
    async () => ({ leases: await reservations.active() }),
  );

  fastify.post(
    '/leases',
    {
      config: { role: 'operator', ...limit },
      schema: {
        tags: ['leases'],
        summary: 'Reserve boards for hand work (who: the token, why, until): others get 409 TR_DEVICE_RESERVED until it ends or expires',
        body: Type.Object(
          {
            devices: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 1024 }),
            reason: Type.Optional(Type.String({ maxLength: 200 })),
            ttlMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: MAX_TTL_MS, description: 'how long it lasts unless renewed (default 1 h)' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: LeaseView, ...errorReplies },
      },
    },
    async (req, reply) => {
      // 404 for a board no host has, before anything is held (a lease covers boards of any host: they check it themselves)
      for (const id of req.body.devices) {
        if (!rig.devices.has(id) && !(await rig.fleet?.presence.ownerOf(id))) rig.devices.get(id);
      }
      const lease = await reservations.reserve(req.body.devices, holderOf(req), req.body.ttlMs ?? 3600_000, req.body.reason ?? null);
      return reply.status(201).send(lease);
    },
  );

  fastify.post(
    '/leases/:id/renew',
    {
      config: { role: 'operator', ...limit },
      schema: {
        tags: ['leases'],
        summary: 'Move the expiry of a reservation you hold',
        params: Type.Object({ id: Type.String({ maxLength: 80 }) }),
        body: Type.Object({ ttlMs: Type.Integer({ minimum: 1000, maximum: MAX_TTL_MS }) }, { additionalProperties: false }),
        response: { 200: LeaseView, ...errorReplies },
      },
    },
    async (req) => await reservations.renew(req.params.id, holderOf(req), req.body.ttlMs),
  );

  fastify.delete(
    '/leases/:id',
    {
      config: { role: 'operator', ...limit },
      schema: {
        tags: ['leases'],
        summary: 'End a reservation: its holder, or an admin breaking it',
        params: Type.Object({ id: Type.String({ maxLength: 80 }) }),
        response: { 200: Type.Object({ ...LeaseView.properties, ended: Type.Boolean(), endedBy: Type.String() }), ...errorReplies },
      },
    },
    async (req) => {
      const by = holderOf(req);
      const l = await reservations.release(req.params.id, by, { admin: req.principal?.role === 'admin' });
      return { ...l, ended: true, endedBy: by };
    },
  );
};

export default routes;
