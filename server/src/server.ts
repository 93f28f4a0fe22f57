// The daemon process: settings from the environment, the app plugin, listen,
// and a clean stop on SIGINT/SIGTERM (links closed, running jobs failed with a
// reason, store closed).
import { build } from './app.js';

async function main(): Promise<void> {
  // whatever the daemon writes (store, blobs, tokens, logs of its own) is its owner's alone
  process.umask(0o077);
  let app;
  try {
    app = await build();
  } catch (err) {
    process.stderr.write(`tinyrig daemon: cannot start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const { host, port } = app.config;
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  try {
    const address = await app.listen({ host, port });
    app.log.info({ address, docs: `${address}/docs` }, 'tinyrig daemon listening');
  } catch (err) {
    app.log.error({ err }, 'cannot listen');
    await app.close();
    process.exit(1);
  }
}

void main();
