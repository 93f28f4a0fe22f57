// The SQLite store and blob directory; after a crash, jobs left running are
// failed and blob temporaries removed before anything else starts.
import fp from 'fastify-plugin';
import { Store } from '../../store/store.js';

declare module 'fastify' {
  interface FastifyInstance {
    store: Store;
  }
}

export default fp(
  async (fastify) => {
    const log = fastify.log.child({ module: 'store' });
    const store = new Store(fastify.config.varDir, { durable: fastify.config.durable });
    const recovered = store.recoverAfterRestart();
    if (recovered.failedJobs.length > 0 || recovered.temporaries > 0) {
      log.warn(recovered, 'recovered after an unclean stop: interrupted jobs marked failed, partial blobs removed');
    }
    log.info({ varDir: fastify.config.varDir, schema: store.schemaVersion }, 'store open');
    fastify.decorate('store', store);
    // closed by the rig plugin, after devices and jobs have stopped
  },
  { name: 'store', dependencies: ['config'] },
);
