// The boards: read from the devices file (or settings), connected in the
// background; each board reconnects on its own after an unplug.
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { DeviceRegistry } from '../../devices/registry.js';
import type { LinkOpener } from '../../devices/board.js';
import { openSerialLink } from '../../devices/open-serial.js';

declare module 'fastify' {
  interface FastifyInstance {
    devices: DeviceRegistry;
  }
}

export default fp<{ opener?: LinkOpener }>(
  async (fastify, opts) => {
    const registry = new DeviceRegistry(fastify.config, fastify.store, opts.opener ?? openSerialLink, (fastify.log as unknown as Logger).child({ module: 'devices' }));
    fastify.decorate('devices', registry);
    await registry.start();
    for (const board of registry.list()) {
      fastify.energy.attach(board.entry);
      board.on('offline', () => fastify.metrics.linkErrors({ device: board.id, kind: 'disconnect' }));
      board.on('reset', () => fastify.metrics.linkErrors({ device: board.id, kind: 'reset' }));
    }
  },
  { name: 'devices', dependencies: ['config', 'store', 'services'] },
);
