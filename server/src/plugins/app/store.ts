// The store the settings name (SQLite in var/, or the PostgreSQL shared by
// the fleet's hosts); after a crash, this host's jobs left running are failed
// and blob temporaries removed before anything else starts.
import fp from 'fastify-plugin';
import { openStore, type Store } from '../../store/store.js';

declare module 'fastify' {
  interface FastifyInstance {
    store: Store;
  }
}

export default fp(
  async (fastify) => {
    const log = fastify.log.child({ module: 'store' });
    const { config } = fastify;
    const store = await openStore(
      { varDir: config.varDir, durable: config.durable, hostId: config.hostId, databaseUrl: config.databaseUrl },
      log,
    );
    const recovered = await store.recoverAfterRestart();
    if (recovered.failedJobs.length > 0 || recovered.temporaries > 0) {
      log.warn(recovered, 'recovered after an unclean stop: interrupted jobs marked failed, partial blobs removed');
    }
    log.info({ engine: store.engine, hostId: store.hostId, varDir: config.varDir, schema: await store.schemaVersion() }, 'store open');
    fastify.decorate('store', store);
    // closed by the rig plugin, after devices and jobs have stopped
  },
  { name: 'store', dependencies: ['config'] },
);
