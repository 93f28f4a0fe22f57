// Helpers for the daemon tests: an in-process app over a fresh var/ directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { build, type BuildOptions } from '../../server/src/app.js';
import type { Config } from '../../server/src/config.js';

export const TEST_TOKEN = 'test-admin-token-0123456789abcdef';
export const OPERATOR_TOKEN = 'test-operator-token-0123456789ab';
export const VIEWER_TOKEN = 'test-viewer-token-0123456789abcd';

export function tempDir(prefix = 'tinyrig-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A daemon instance with the three test tokens and quick reconnects; not listening. */
export async function buildApp(config: Partial<Config> = {}, opts: Omit<BuildOptions, 'config'> = {}): Promise<FastifyInstance> {
  return build({
    env: {},
    logger: opts.logger ?? (process.env.TINYRIG_TEST_LOG ? { level: process.env.TINYRIG_TEST_LOG } : false),
    ...opts,
    config: {
      varDir: config.varDir ?? tempDir(),
      devices: [],
      tokens: [
        { token: TEST_TOKEN, role: 'admin', name: 'test-admin' },
        { token: OPERATOR_TOKEN, role: 'operator', name: 'test-operator' },
        { token: VIEWER_TOKEN, role: 'viewer', name: 'test-viewer' },
      ],
      reconnectMinMs: 50,
      reconnectMaxMs: 500,
      durable: false,
      ...config,
    },
  });
}

export const auth = (token = TEST_TOKEN): Record<string, string> => ({ authorization: `Bearer ${token}` });

export { until } from '../../tools/proc/child.js';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** REST calls on an in-process daemon (the app is read when called, so it may be built in beforeAll). */
export function apiClient(app: () => FastifyInstance, token = TEST_TOKEN) {
  const post = async (url: string, payload: unknown = {}): Promise<{ status: number; body: Json }> => {
    const r = await app().inject({ method: 'POST', url, payload: payload as object, headers: auth(token) });
    return { status: r.statusCode, body: r.json() };
  };
  const get = async (url: string): Promise<Json> => {
    const r = await app().inject({ method: 'GET', url, headers: auth(token) });
    if (r.statusCode !== 200) throw new Error(`GET ${url}: ${r.statusCode} ${r.body}`);
    return r.json();
  };
  /** Runs a job to its end (?wait=true) and returns the job; fails with its error when it failed. */
  const job = async (url: string, payload: unknown): Promise<Json> => {
    const r = await post(`${url}?wait=true`, payload);
    if (r.status !== 200) throw new Error(`POST ${url}: ${r.status} ${JSON.stringify(r.body)}`);
    if (r.body.state !== 'succeeded') throw new Error(`job ${url} ${r.body.state}: ${JSON.stringify(r.body.error)}`);
    return r.body;
  };
  return { post, get, job };
}
