// Rate limits on mutating routes (those that declare config.rateLimit),
// counted per bearer token, or per address without one.
import crypto from 'node:crypto';
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import { Errors } from '../../errors.js';

export default fp(
  async (fastify) => {
    await fastify.register(rateLimit, {
      global: false,
      max: fastify.config.rateLimitMax,
      timeWindow: fastify.config.rateLimitWindowMs,
      keyGenerator: (req) => {
        const auth = req.headers.authorization;
        return auth ? crypto.createHash('sha256').update(auth).digest('hex').slice(0, 24) : req.ip;
      },
      errorResponseBuilder: (_req, ctx) => {
        const e = Errors.RATE_LIMITED(`rate limit of ${ctx.max} requests exceeded; retry in ${ctx.after}`);
        return Object.assign(e, { statusCode: ctx.statusCode });
      },
    });
  },
  { name: 'rate-limit', dependencies: ['config'] },
);
