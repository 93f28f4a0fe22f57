// Reservations: a person reserves boards (who, why, until); others get 409
// TR_DEVICE_RESERVED naming holder and expiry; the holder works as usual; an
// admin can break one; and one that is not renewed frees its board by itself
// after real idle time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';
import { apiClient, buildApp, OPERATOR_TOKEN, tempDir, until } from './helpers.js';

let app: FastifyInstance;
let twins: TwinProcess[] = [];
const admin = apiClient(() => app);
const operator = apiClient(() => app, OPERATOR_TOKEN);

describe.runIf(twinBuilt())('reservations', () => {
  beforeAll(async () => {
    twins = await startTwins(tempDir('tinyrig-leases-'), 2);
    app = await buildApp({ devices: twins.map((t, i) => ({ id: `r${i}`, path: t.path, board: 'host-twin', tags: ['emulated'] })) });
    await until(() => app.devices.list().every((b) => b.status === 'online'), 15_000, 'twins online');
    expect((await admin.post('/v1/devices/r0/model', { model: 'cnn', seed: 1 })).status).toBe(200);
  });
  afterAll(async () => {
    await app?.close();
    await stopTwins(twins);
  });

  it('keeps a reserved board to its holder: others get 409 naming holder and expiry', async () => {
    const lease = await operator.post('/v1/leases', { devices: ['r0'], reason: 'probing the ADC', ttlMs: 60_000 });
    expect(lease.status, JSON.stringify(lease.body)).toBe(201);
    expect(lease.body).toMatchObject({ holder: 'test-operator', deviceIds: ['r0'], reason: 'probing the ADC' });
    const other = await admin.post('/v1/devices/r0/train', { dataset: 'fashion-mnist', count: 4 });
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ code: 'TR_DEVICE_RESERVED', details: { holder: 'test-operator', expiresAt: lease.body.expiresAt } });
    expect((await admin.post('/v1/devices/r0/samples', { dataset: 'fashion-mnist', count: 4 })).body.code).toBe('TR_DEVICE_RESERVED');
    // the holder trains as usual
    const mine = await operator.post('/v1/devices/r0/train?wait=true', { dataset: 'fashion-mnist', count: 4 });
    expect(mine.body.state).toBe('succeeded');
    // a second reservation of a held board is refused whole
    const both = await admin.post('/v1/leases', { devices: ['r1', 'r0'] });
    expect(both.status).toBe(409);
    expect((await admin.get('/v1/leases')).leases.map((l: { id: string }) => l.id)).toEqual([lease.body.id]);
    expect((await admin.get('/v1/devices/r0')).reservation).toMatchObject({ holder: 'test-operator' });
    // an admin breaks it
    const broken = await app.inject({ method: 'DELETE', url: `/v1/leases/${lease.body.id}`, headers: { authorization: 'Bearer test-admin-token-0123456789abcdef' } });
    expect(broken.json()).toMatchObject({ ended: true, endedBy: 'test-admin' });
    expect((await admin.post('/v1/devices/r0/train?wait=true', { dataset: 'fashion-mnist', count: 4 })).body.state).toBe('succeeded');
  });

  it('frees a board by itself when its reservation is not renewed', async () => {
    const lease = await operator.post('/v1/leases', { devices: ['r0'], ttlMs: 1000 });
    expect((await admin.post('/v1/devices/r0/train', { dataset: 'fashion-mnist', count: 4 })).status).toBe(409);
    const renewed = await operator.post(`/v1/leases/${lease.body.id}/renew`, { ttlMs: 1500 });
    expect(Date.parse(renewed.body.expiresAt)).toBeGreaterThan(Date.parse(lease.body.expiresAt));
    await new Promise((r) => setTimeout(r, 2500)); // nobody renews it
    expect((await admin.get('/v1/leases')).leases).toEqual([]);
    expect((await admin.get('/v1/devices/r0')).reservation).toBeNull();
    expect((await admin.post('/v1/devices/r0/train?wait=true', { dataset: 'fashion-mnist', count: 4 })).body.state).toBe('succeeded');
    const gone = await operator.post(`/v1/leases/${lease.body.id}/renew`, { ttlMs: 1000 });
    expect(gone.status).toBe(404);
  });
});

describe.runIf(!twinBuilt())('reservations (twin missing)', () => {
  it('needs the host twin binary', () => {
    throw new Error('firmware/build/host/tinyrig-twin is not built: run make -C firmware');
  });
});
