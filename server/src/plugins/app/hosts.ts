// The fleet of rig hosts sharing one PostgreSQL: this host registers itself and
// its boards, runs the requests other hosts queue for its boards, and sends a
// request for a board of another host to that host's queue, answering with
// what that host answered. Also: a host that cannot reach the shared store
// takes no new work (503 TR_STORE_UNREACHABLE) until it can.
import { Readable } from 'node:stream';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { Errors } from '../../errors.js';
import { Fleet } from '../../hosts/fleet.js';
import { deviceSummary } from '../../routes/views.js';
import { version } from '../../version.js';

const DEVICE_ROUTE = /^\/v1\/devices\/([^/?#]+)/;
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

async function readAll(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > limit) throw Errors.PAYLOAD_TOO_LARGE(`request body exceeds the limit (${limit} bytes)`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

export default fp(
  async (fastify) => {
    const { config, store, rig } = fastify;

    fastify.addHook('onRequest', async (req) => {
      if (!store.reachable && !READS.has(req.method)) {
        throw Errors.STORE_UNREACHABLE(`this host (${config.hostId}) cannot reach the shared store: ${store.lastError?.message ?? 'no answer'}`);
      }
    });

    if (!config.databaseUrl) return;
    const log = (fastify.log as unknown as Logger).child({ module: 'hosts' });
    const fleet = await Fleet.start({
      store,
      databaseUrl: config.databaseUrl,
      url: config.hostUrl,
      version,
      heartbeatMs: config.heartbeatMs,
      offlineMs: config.hostOfflineMs,
      concurrency: config.remoteConcurrency,
      timeoutMs: config.remoteTimeoutMs,
      log,
      boards: async () => {
        const leases = await rig.boardJobs.reservations.active();
        return rig.devices.list().map((b) => ({ deviceId: b.id, doc: deviceSummary(rig, b, leases) as unknown as Record<string, unknown> }));
      },
      // a request of another host runs here exactly as if it had come in over HTTP, as its caller
      handle: async (r) => {
        const res = await fastify.inject({
          method: r.method as 'GET',
          url: r.url,
          headers: { ...(r.contentType ? { 'content-type': r.contentType } : {}), ...fastify.internalHeaders({ actor: r.actor, role: r.role }) },
          payload: r.body === null ? undefined : Buffer.from(r.body, 'base64'),
        });
        const type = res.headers['content-type'];
        return { status: res.statusCode, contentType: typeof type === 'string' ? type : null, body: res.rawPayload.toString('base64') };
      },
    });
    rig.fleet = fleet;
    const queued = fastify.metrics.registry.histogram('tinyrig_remote_queue_seconds', 'Requests of other hosts run here: from enqueue on the asking host to the start of the work here', [
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    ]);
    fleet.queue.onQueued = (ms) => queued({}, ms / 1000);

    // a request for a board another host owns goes to that host, body byte for byte
    fastify.addHook('preParsing', async (req, reply, payload) => {
      const m = DEVICE_ROUTE.exec(req.url);
      if (!m || req.forwarded) return payload;
      const id = decodeURIComponent(m[1]);
      if (rig.devices.has(id)) return payload;
      const owner = await fleet.presence.ownerOf(id);
      if (!owner) return payload;
      const body = READS.has(req.method) ? null : await readAll(payload, config.bodyLimitBytes);
      // refusals (host offline, no answer in time) go to the error handler like any other
      const answer = await fleet.send(owner.hostId, {
        method: req.method,
        url: req.url,
        contentType: req.headers['content-type'] ?? null,
        body: body && body.length ? body.toString('base64') : null,
        actor: req.principal?.name ?? null,
        role: req.principal?.role ?? null,
      });
      reply.header('x-tinyrig-host', owner.hostId);
      if (answer.contentType) reply.type(answer.contentType);
      await reply.status(answer.status).send(Buffer.from(answer.body, 'base64'));
      return Readable.from([]);
    });
    // stopped by the jobs plugin's close, before the store
  },
  { name: 'hosts', dependencies: ['config', 'store', 'auth', 'devices', 'jobs'] },
);
