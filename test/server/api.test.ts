// The daemon's HTTP surface without boards: auth, validation, stable error
// codes, the generated admin token, docs and metrics.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { auth, buildApp, OPERATOR_TOKEN, tempDir, VIEWER_TOKEN } from './helpers.js';

let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

describe('daemon API without boards', () => {
  it('answers health, docs and Prometheus metrics', async () => {
    app = await buildApp();
    const health = await app.inject({ method: 'GET', url: '/v1/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({ status: 'ok', devices: { total: 0, online: 0 }, store: { engine: 'sqlite', schema: 7, reachable: true } });
    const docs = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(docs.statusCode).toBe(200);
    const paths = Object.keys(docs.json().paths);
    for (const p of ['/v1/devices/{id}/train', '/v1/fleet/rollback', '/v1/devices/{id}/rollback', '/v1/jobs/{id}/events']) {
      expect(paths).toContain(p);
    }
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
    expect(metrics.body).toContain('tinyrig_http_request_duration_seconds_bucket{method="GET",route="/v1/health",status="200"');
  });

  it('refuses mutating routes without a token, with a wrong token, and with too low a role', async () => {
    app = await buildApp();
    const body = { selector: { tag: 'x' }, to: 'last-good' };
    const none = await app.inject({ method: 'POST', url: '/v1/fleet/rollback', payload: body });
    expect(none.statusCode).toBe(401);
    expect(none.json().code).toBe('TR_UNAUTHORIZED');
    const wrong = await app.inject({ method: 'POST', url: '/v1/fleet/rollback', payload: body, headers: auth('not-a-real-token-at-all') });
    expect(wrong.statusCode).toBe(401);
    const viewer = await app.inject({ method: 'POST', url: '/v1/fleet/rollback', payload: body, headers: auth(VIEWER_TOKEN) });
    expect(viewer.statusCode).toBe(403);
    expect(viewer.json().code).toBe('TR_FORBIDDEN');
    const operator = await app.inject({ method: 'POST', url: '/v1/fleet/rollback', payload: body, headers: auth(OPERATOR_TOKEN) });
    expect(operator.statusCode).toBe(404);
    expect(operator.json().code).toBe('TR_DEVICE_NOT_FOUND');
    const adminOnly = await app.inject({ method: 'DELETE', url: '/v1/snapshots/snap_x', headers: auth(OPERATOR_TOKEN) });
    expect(adminOnly.statusCode).toBe(403);
    // reads are open by default
    expect((await app.inject({ method: 'GET', url: '/v1/devices' })).statusCode).toBe(200);
  });

  it('can require a token for reads too', async () => {
    app = await buildApp({ readsNeedToken: true });
    expect((await app.inject({ method: 'GET', url: '/v1/devices' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/devices', headers: auth(VIEWER_TOKEN) })).statusCode).toBe(200);
  });

  it('creates an admin token file with mode 600 when no token is configured, and reuses it', async () => {
    const varDir = tempDir();
    app = await buildApp({ varDir, tokens: [] });
    const file = path.join(varDir, 'admin.token');
    const st = fs.statSync(file);
    expect(st.mode & 0o777).toBe(0o600);
    const token = fs.readFileSync(file, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    const ok = await app.inject({ method: 'DELETE', url: '/v1/snapshots/snap_none', headers: auth(token) });
    expect(ok.json().code).toBe('TR_SNAPSHOT_NOT_FOUND');
    await app.close();
    app = await buildApp({ varDir, tokens: [] });
    expect(fs.readFileSync(file, 'utf8').trim()).toBe(token);
  });

  it('gives stable codes to bad input', async () => {
    app = await buildApp();
    const unknownDevice = await app.inject({ method: 'POST', url: '/v1/devices/nope/train', headers: auth(), payload: { steps: 1, lr: 0.01 } });
    expect(unknownDevice.statusCode).toBe(404);
    expect(unknownDevice.json().code).toBe('TR_DEVICE_NOT_FOUND');
    const invalid = await app.inject({ method: 'POST', url: '/v1/devices/nope/train', headers: auth(), payload: { steps: 1, lr: -1 } });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().code).toBe('TR_BAD_REQUEST');
    const extra = await app.inject({ method: 'POST', url: '/v1/devices/nope/rollback', headers: auth(), payload: { snapshotId: 'a', x: 1 } });
    expect(extra.statusCode).toBe(400);
    const badJson = await app.inject({
      method: 'POST', url: '/v1/devices/nope/rollback', headers: { ...auth(), 'content-type': 'application/json' }, payload: '{"snapshotId":',
    });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().code).toBe('TR_BAD_REQUEST');
    const media = await app.inject({
      method: 'POST', url: '/v1/devices/nope/rollback', headers: { ...auth(), 'content-type': 'application/xml' }, payload: '<a/>',
    });
    expect(media.statusCode).toBe(415);
    expect(media.json().code).toBe('TR_UNSUPPORTED_MEDIA_TYPE');
    const job = await app.inject({ method: 'GET', url: '/v1/jobs/job_missing' });
    expect(job.statusCode).toBe(404);
    expect(job.json().code).toBe('TR_JOB_NOT_FOUND');
    const route = await app.inject({ method: 'GET', url: '/v1/nothing-here' });
    expect(route.statusCode).toBe(404);
    expect(route.json().code).toBe('TR_NOT_FOUND');
  });

  it('bounds request bodies', async () => {
    app = await buildApp({ bodyLimitBytes: 2048 });
    const big = await app.inject({
      method: 'POST', url: '/v1/devices/x/samples', headers: auth(),
      payload: { sampleBytes: 784, labels: [1], data: Buffer.alloc(4096).toString('base64') },
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().code).toBe('TR_PAYLOAD_TOO_LARGE');
  });

  it('rate-limits mutating routes per token', async () => {
    app = await buildApp({ rateLimitMax: 3, rateLimitWindowMs: 60_000 });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await app.inject({ method: 'POST', url: '/v1/devices/nope/rollback', headers: auth(), payload: { snapshotId: 'a' } });
      codes.push(r.statusCode);
      if (r.statusCode === 429) expect(r.json().code).toBe('TR_RATE_LIMITED');
    }
    expect(codes).toEqual([404, 404, 404, 429, 429]);
    // reads are not limited
    for (let i = 0; i < 5; i++) expect((await app.inject({ method: 'GET', url: '/v1/health' })).statusCode).toBe(200);
  });

  it('lists the zoo and datasets', async () => {
    app = await buildApp();
    const ds = await app.inject({ method: 'GET', url: '/v1/datasets' });
    expect(ds.json().datasets[0]).toMatchObject({ name: 'fashion-mnist', classes: 10, available: true });
    const models = await app.inject({ method: 'GET', url: '/v1/models' });
    if (models.statusCode === 503) {
      expect(models.json().code).toBe('TR_TOOL_MISSING');
    } else {
      expect(models.json().models.map((m: { name: string }) => m.name)).toContain('cnn');
    }
  });
});
