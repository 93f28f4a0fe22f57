// Models as data: a network in JSON or a ready CBOR blob, judged by the
// engine's own planner (the host tool), stored by hash under a name, listed
// beside the zoo with where it fits; deployable on a board it fits, refused
// (422, nothing sent) on one it does not; not deletable while a snapshot
// references it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { TRAIN_BIN, executable } from '../../tools/proc/paths.js';
import { startTwins, stopTwins, twinBuilt, TwinProcess } from '../../tools/proc/twin.js';
import { apiClient, auth, buildApp, tempDir, until, VIEWER_TOKEN, type Json } from './helpers.js';

const MLP = {
  name: 'mlp-8x8',
  input: [8, 8, 1],
  classes: 10,
  seed: 1,
  layers: [{ kind: 'dense', units: 32, act: 'relu' }, { kind: 'dense', units: 10 }, { kind: 'softmax' }],
};

let app: FastifyInstance;
let twins: TwinProcess[] = [];
const { post, get } = apiClient(() => app);

const ready = twinBuilt() && executable(TRAIN_BIN);

describe.runIf(ready)('models as data', () => {
  beforeAll(async () => {
    const dir = tempDir('tinyrig-models-');
    twins = [
      ...(await startTwins(dir, 1)),
      // a board with a small arena: the CNN does not fit it
      await TwinProcess.start({ link: path.join(dir, 'small.pty'), arena: 32 * 1024 }),
    ];
    app = await buildApp({
      devices: [
        { id: 'big', path: twins[0].path, board: 'host-twin', tags: ['emulated'] },
        { id: 'small', path: twins[1].path, board: 'host-twin', tags: ['emulated'] },
      ],
    });
    await until(() => app.devices.list().every((b) => b.status === 'online'), 15_000, 'twins online');
  });
  afterAll(async () => {
    await app?.close();
    await stopTwins(twins);
  });

  it('defines a network in JSON: the engine plans it, the answer says where it fits', async () => {
    const r = await post('/v1/models', MLP);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ name: 'mlp-8x8', builtIn: false, input: [8, 8, 1], classes: 10, seed: 1, actor: 'test-admin' });
    expect(r.body.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.body.layers.map((l: Json) => [l.kind, l.out])).toEqual([
      ['dense', [1, 1, 32]],
      ['dense', [1, 1, 10]],
      ['softmax', [1, 1, 10]],
    ]);
    expect(r.body.layers[0].params).toBe(64 * 32 + 32);
    expect(r.body.trainBytes).toBeGreaterThan(r.body.weightsBytes);
    expect(r.body.fits.classes.map((c: Json) => [c.class, c.fits])).toEqual([['m0plus', true], ['m4', true], ['m7', true]]);
    expect(r.body.fits.devices.map((d: Json) => [d.id, d.fits])).toEqual([['big', true], ['small', true]]);
    // the same network again is the same model
    const again = await post('/v1/models', MLP);
    expect(again.status).toBe(200);
    expect(again.body.sha256).toBe(r.body.sha256);
    // the same name with other content is refused
    const other = await post('/v1/models', { ...MLP, seed: 2 });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('TR_MODEL_EXISTS');
  });

  it('lists the zoo and user models in one list, and shows one by name or hash', async () => {
    const { models } = await get('/v1/models');
    const cnn = models.find((m: Json) => m.name === 'cnn');
    expect(cnn).toMatchObject({ builtIn: true, input: [28, 28, 1], classes: 10 });
    // the zoo CNN needs more arena than the small board has
    expect(cnn.fits.devices.find((d: Json) => d.id === 'small')).toMatchObject({ fits: false });
    expect(cnn.fits.devices.find((d: Json) => d.id === 'small').reasons[0]).toMatch(/training needs \d+ B of arena; it has 32768 B/);
    const mine = models.find((m: Json) => m.name === 'mlp-8x8');
    expect(mine.builtIn).toBe(false);
    expect((await get(`/v1/models/${mine.sha256}`)).name).toBe('mlp-8x8');
    expect((await get('/v1/models/mlp-8x8')).sha256).toBe(mine.sha256);
    const none = await app.inject({ method: 'GET', url: '/v1/models/constructor' });
    expect(none.json().code).toBe('TR_MODEL_NOT_FOUND');
  });

  it.each([
    [{ ...MLP, name: 'bad1', layers: [{ kind: 'dense', units: 32 }, { kind: 'dense', units: 7 }, { kind: 'softmax' }] }, 2, 'softmax over 7 values, but the model has 10 classes'],
    [{ ...MLP, name: 'bad2', layers: [{ kind: 'conv2d', units: 4, kernel: 9 }, { kind: 'softmax' }] }, 0, 'does not fit the 8x8 input'],
    [{ ...MLP, name: 'bad3', input: [200, 200, 1], layers: [{ kind: 'dense', units: 10 }, { kind: 'softmax' }] }, 0, 'fan-in 40000'],
    [{ ...MLP, name: 'bad4', layers: [{ kind: 'dense', units: 10 }] }, 0, 'last layer must be softmax'],
    [{ ...MLP, name: 'bad5', layers: [{ kind: 'lstm', units: 10 }, { kind: 'softmax' }] }, 0, 'unknown kind "lstm"'],
    [{ ...MLP, name: 'bad6', layers: [{ kind: 'dense', units: 10, act: 'tanh' }, { kind: 'softmax' }] }, 0, 'act is "none" or "relu"'],
  ])('refuses a network the engine refuses with 400 TR_MODEL_INVALID naming the layer and the rule (%#)', async (spec, layer, rule) => {
    const r = await post('/v1/models', spec);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.code).toBe('TR_MODEL_INVALID');
    expect(r.body.message).toContain(`layer ${layer}`);
    expect(r.body.message).toContain(rule);
    expect((await get('/v1/models')).models.some((m: Json) => m.name === spec.name)).toBe(false);
  });

  it('takes a model blob built with tinyrig-train build, as application/cbor or application/octet-stream', async () => {
    const out = path.join(tempDir(), 'cnn14.cbor');
    execFileSync(TRAIN_BIN, ['build', '--model', 'cnn', '--seed', '3', '--input', '14x14x1', '--out', out]);
    const blob = fs.readFileSync(out);
    for (const type of ['application/cbor', 'application/octet-stream']) {
      const r = await app.inject({ method: 'POST', url: '/v1/models?name=cnn14', headers: { ...auth(), 'content-type': type }, payload: blob });
      expect(r.statusCode, r.body).toBe(type === 'application/cbor' ? 201 : 200);
      expect(r.json()).toMatchObject({ name: 'cnn14', input: [14, 14, 1], seed: 3, bytes: blob.length });
    }
    const broken = await app.inject({
      method: 'POST', url: '/v1/models?name=broken', headers: { ...auth(), 'content-type': 'application/cbor' }, payload: blob.subarray(0, 100),
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().code).toBe('TR_MODEL_INVALID');
  });

  it('deploys by name or hash where it fits; where it does not, 422 before any byte is sent', async () => {
    const d = await post('/v1/devices/small/model', { model: 'mlp-8x8' });
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    expect(d.body.model).toMatchObject({ name: 'mlp-8x8', inputBytes: 64, classes: 10 });
    const sha = (await get('/v1/models/mlp-8x8')).sha256;
    expect((await post('/v1/devices/big/model', { model: sha })).status).toBe(200);
    const board = app.devices.get('small');
    const before = board.linkCounters()?.bytesTx;
    const tooBig = await post('/v1/devices/small/model', { model: 'cnn' });
    expect(tooBig.status).toBe(422);
    expect(tooBig.body.code).toBe('TR_MODEL_TOO_LARGE');
    expect(tooBig.body.message).toMatch(/training needs/);
    // no byte of the model went out (the only frame is the STATS read that follows every job)
    await until(() => !board.busyWith, 2000, 'the deploy job ended');
    await new Promise((r) => setTimeout(r, 100));
    expect(board.linkCounters()!.bytesTx - before!).toBeLessThan(64);
    expect(board.model?.name).toBe('mlp-8x8'); // still the model it had
    // the model trains: one step per sample of 8x8 random images
    const labels = Array.from({ length: 8 }, (_, i) => i % 10);
    const s = await post('/v1/devices/small/samples', { sampleBytes: 64, labels, data: Buffer.alloc(8 * 64, 9).toString('base64') });
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    const t = await post('/v1/devices/small/train?wait=true', { steps: 8 });
    expect(t.body.state, JSON.stringify(t.body)).toBe('succeeded');
  });

  it('deletes a user model only while no snapshot references it (admin), never a built-in one', async () => {
    const snap = await post('/v1/devices/small/snapshots', {});
    expect(snap.status).toBe(201);
    const viewer = await app.inject({ method: 'DELETE', url: '/v1/models/mlp-8x8', headers: auth(VIEWER_TOKEN) });
    expect(viewer.statusCode).toBe(403);
    const inUse = await app.inject({ method: 'DELETE', url: '/v1/models/mlp-8x8', headers: auth() });
    expect(inUse.statusCode).toBe(409);
    expect(inUse.json().code).toBe('TR_MODEL_IN_USE');
    expect((await app.inject({ method: 'DELETE', url: '/v1/models/cnn', headers: auth() })).statusCode).toBe(409);
    await app.inject({ method: 'DELETE', url: `/v1/snapshots/${snap.body.id}`, headers: auth() });
    const gone = await app.inject({ method: 'DELETE', url: '/v1/models/mlp-8x8', headers: auth() });
    expect(gone.statusCode, gone.body).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/models/mlp-8x8' })).statusCode).toBe(404);
  });
});

describe.runIf(!ready)('models as data (twin or model tool missing)', () => {
  it('needs the host twin and tinyrig-train', () => {
    throw new Error('firmware/build/host/tinyrig-twin or tinyrig-train is not built: run make -C firmware');
  });
});
