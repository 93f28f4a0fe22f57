// What every request passes before any route sees it: the Host header is one
// this daemon answers for (a page elsewhere cannot reach it through DNS
// rebinding), security headers on every answer, a JSON parser that takes an
// empty body as no body, and routes whose body schema is optional get {}.
import fp from 'fastify-plugin';
import helmet from '@fastify/helmet';
import { Errors } from '../../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's body may be left out: it is then {}. */
    optionalBody?: boolean;
  }
}

/** The host name of a Host header: lower case, port and IPv6 brackets removed. */
export function hostName(header: string | undefined): string | null {
  if (!header) return null;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(1, end) : null;
  }
  const colon = h.indexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

export default fp(
  async (fastify) => {
    const allowed = new Set(fastify.config.allowedHosts.map((h) => h.toLowerCase()));
    const any = allowed.has('*');
    fastify.addHook('onRequest', async (req) => {
      if (any) return;
      const name = hostName(req.headers.host);
      if (name === null || !allowed.has(name)) {
        throw Errors.HOST_NOT_ALLOWED(
          `this daemon answers requests for ${[...allowed].join(', ')} only (TINYRIG_ALLOWED_HOSTS adds names)`,
        );
      }
    });

    // /docs serves its own scripts and styles; everything else is JSON or bytes
    await fastify.register(helmet, {
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'", "'unsafe-inline'"],
          imgSrc: ["'self'", 'data:'],
          frameAncestors: ["'none'"],
        },
      },
      crossOriginResourcePolicy: { policy: 'same-origin' },
    });

    const json = fastify.getDefaultJsonParser('error', 'error');
    fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
      if (body === '') return done(null, undefined);
      json(req, body as string, done);
    });

    fastify.addHook('preValidation', async (req) => {
      if (req.body === undefined && req.routeOptions.config?.optionalBody) req.body = {};
    });
    fastify.removeContentTypeParser('text/plain'); // bodies are JSON or CBOR
  },
  { name: 'security', dependencies: ['config'] },
);
