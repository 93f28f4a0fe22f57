// The lab's web page: GET / and its files under /ui/ (server/src/web/, plain
// HTML, CSS and one JavaScript module, nothing to build), plus GET /ui/session,
// which tells the page the role of the token it holds so it offers only what
// that token may do. The page reads the rest through the /v1 API.
import fs from 'node:fs';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Errors } from '../errors.js';

const WEB_DIR = new URL('../web/', import.meta.url);

/** Every file the page is made of, and its content type: nothing else under /ui/ is served. */
const ASSETS: Record<string, string> = {
  'lab.js': 'text/javascript; charset=utf-8',
  'lab.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  // read once: the files are small and change only with the daemon
  const read = (name: string): Buffer => fs.readFileSync(new URL(name, WEB_DIR));
  const index = read('index.html');
  const assets = new Map(Object.keys(ASSETS).map((name) => [name, read(name)]));

  fastify.get('/', { schema: { hide: true } }, async (_req, reply) =>
    reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-cache').send(index),
  );

  fastify.get('/favicon.ico', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ui/icon.svg', 301));

  fastify.get(
    '/ui/:file',
    {
      schema: {
        hide: true,
        params: Type.Object({ file: Type.String({ maxLength: 100 }) }),
      },
    },
    async (req, reply) => {
      const body = assets.get(req.params.file);
      if (!body) throw Errors.NOT_FOUND(`no file /ui/${req.params.file}`);
      return reply.header('content-type', ASSETS[req.params.file]!).header('cache-control', 'no-cache').send(body);
    },
  );

  fastify.get(
    '/ui/session',
    {
      schema: {
        tags: ['web'],
        summary: "The name and role of the bearer token sent (both null without one); an unknown token is 401",
        response: {
          200: Type.Object({
            name: Type.Union([Type.String(), Type.Null()]),
            role: Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin'), Type.Null()]),
          }),
        },
      },
    },
    async (req) => ({ name: req.principal?.name ?? null, role: req.principal?.role ?? null }),
  );
};

export default routes;
