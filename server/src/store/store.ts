// Opens the store the settings name: PostgreSQL when a database URL is set
// (many rig hosts sharing one fleet), else SQLite in the var directory.
import type { FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export * from './types.js';

export interface StoreSettings {
  varDir: string;
  durable: boolean;
  hostId: string;
  /** postgres://… : the shared engine; absent: SQLite in varDir. */
  databaseUrl?: string | null;
}

export async function openStore(settings: StoreSettings, log?: FastifyBaseLogger): Promise<Store> {
  if (!settings.databaseUrl) return new SqliteStore(settings.varDir, { durable: settings.durable, hostId: settings.hostId });
  const { PgStore } = await import('./postgres.js');
  return PgStore.open(settings.databaseUrl, { hostId: settings.hostId, log: log as Logger | undefined });
}
