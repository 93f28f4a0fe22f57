// The daemon's HTTP edge without boards: bodies validated as sent (no type
// coercion), every refusal (the router's and the HTTP parser's included) a
// JSON body with a TR_ code, slow clients cut off, the Host allow-list,
// security headers, owner-only files, and refusals logged once at info with
// method, URL, actor and code.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { auth, buildApp, tempDir } from './helpers.js';

let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

/** Sends raw bytes to a listening daemon and collects what it answers until it closes the connection. */
async function raw(port: number, chunks: string[], gapMs = 0): Promise<{ text: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    sock.on('data', (d) => (text += d.toString('latin1')));
    sock.on('close', () => resolve({ text, ms: Date.now() - t0 }));
    sock.on('error', reject);
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) break;
        sock.write(c);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

const jsonOf = (httpText: string): Record<string, unknown> => JSON.parse(httpText.slice(httpText.indexOf('\r\n\r\n') + 4));

describe('request bodies are validated as sent', () => {
  it.each([
    ['lr true', { steps: 4, lr: true }],
    ['lr as text', { steps: 4, lr: '0.01' }],
    ['lr in an array', { steps: 4, lr: [0.01] }],
    ['count as text', { dataset: 'fashion-mnist', count: '4' }],
    ['lr below the wire resolution', { steps: 4, lr: 0.0000004 }],
    ['an unknown field', { steps: 4, lr: 0.01, learningRate: 1 }],
  ])('refuses %s with 400 TR_BAD_REQUEST before looking at the board', async (_what, body) => {
    app = await buildApp();
    const r = await app.inject({ method: 'POST', url: '/v1/devices/m4-0/train', payload: body, headers: auth() });
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe('TR_BAD_REQUEST');
  });

  it('still parses query strings into their types', async () => {
    app = await buildApp();
    // wait=true is parsed as a boolean, so the only refusal left is the unknown device
    const r = await app.inject({ method: 'POST', url: '/v1/devices/m4-0/train?wait=true', payload: { steps: 4 }, headers: auth() });
    expect(r.json().code).toBe('TR_DEVICE_NOT_FOUND');
    const list = await app.inject({ method: 'GET', url: '/v1/jobs?limit=5' });
    expect(list.statusCode).toBe(200);
    const bad = await app.inject({ method: 'GET', url: '/v1/jobs?limit=many' });
    expect(bad.json().code).toBe('TR_BAD_REQUEST');
  });

  it('takes a missing body where the body is optional (evaluate, snapshot) and an empty JSON body as none', async () => {
    app = await buildApp();
    for (const url of ['/v1/devices/m4-0/evaluate', '/v1/devices/m4-0/snapshots']) {
      const none = await app.inject({ method: 'POST', url, headers: auth() });
      expect(none.json().code, url).toBe('TR_DEVICE_NOT_FOUND');
      const empty = await app.inject({ method: 'POST', url, headers: { ...auth(), 'content-type': 'application/json' }, payload: '' });
      expect(empty.json().code, url).toBe('TR_DEVICE_NOT_FOUND');
    }
    // where a body is required, its absence is a 400 with our code
    const train = await app.inject({ method: 'POST', url: '/v1/devices/m4-0/train', headers: auth() });
    expect(train.statusCode).toBe(400);
    expect(train.json().code).toBe('TR_BAD_REQUEST');
  });

  it('answers bad JSON, a wrong media type and a prototype key with TR_ codes', async () => {
    app = await buildApp();
    const url = '/v1/devices/m4-0/train';
    const h = { ...auth(), 'content-type': 'application/json' };
    expect((await app.inject({ method: 'POST', url, headers: h, payload: '{"steps": 4,' })).json().code).toBe('TR_BAD_REQUEST');
    const proto = await app.inject({ method: 'POST', url, headers: h, payload: '{"steps":4,"__proto__":{"lr":1}}' });
    expect(proto.statusCode).toBe(400);
    expect(proto.json().code).toBe('TR_BAD_REQUEST');
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const media = await app.inject({ method: 'POST', url, headers: { ...auth(), 'content-type': type }, payload: 'steps=4' });
      expect(media.statusCode, type).toBe(415);
      expect(media.json().code).toBe('TR_UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('answers a 5,000-character device id with 414 TR_URI_TOO_LONG, not echoing it', async () => {
    app = await buildApp();
    const id = 'x'.repeat(5000);
    const r = await app.inject({ method: 'GET', url: `/v1/devices/${id}` });
    expect(r.statusCode).toBe(414);
    expect(r.json().code).toBe('TR_URI_TOO_LONG');
    expect(r.body).not.toContain(id);
    const long65 = await app.inject({ method: 'GET', url: `/v1/devices/${'y'.repeat(65)}` });
    expect(long65.json().code).toBe('TR_BAD_REQUEST');
  });

  it('answers a body over the limit with 413 TR_PAYLOAD_TOO_LARGE', async () => {
    app = await buildApp({ bodyLimitBytes: 2048 });
    const r = await app.inject({ method: 'POST', url: '/v1/devices/m4-0/samples', headers: auth(), payload: { data: 'A'.repeat(4096) } });
    expect(r.statusCode).toBe(413);
    expect(r.json().code).toBe('TR_PAYLOAD_TOO_LARGE');
  });
});

describe('the HTTP parser and slow clients', () => {
  it('answers an 80,000-character URL with 431 TR_HEADERS_TOO_LARGE as JSON', async () => {
    app = await buildApp({ port: 0 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as net.AddressInfo).port;
    const r = await raw(port, [`GET /v1/devices?tag=${'a'.repeat(80_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`]);
    expect(r.text).toMatch(/^HTTP\/1.1 431 /);
    expect(jsonOf(r.text)).toMatchObject({ statusCode: 431, code: 'TR_HEADERS_TOO_LARGE' });
  });

  it('ends a client whose headers never finish, and one whose body never finishes, with 408 TR_REQUEST_TIMEOUT', async () => {
    app = await buildApp({ headersTimeoutMs: 400, bodyTimeoutMs: 800 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as net.AddressInfo).port;
    // headers: one line, then nothing (real idle time, past the setting)
    const headers = await raw(port, ['GET /v1/health HTTP/1.1\r\nHost: localhost\r\n']);
    expect(headers.text).toMatch(/^HTTP\/1.1 408 /);
    expect(jsonOf(headers.text)).toMatchObject({ code: 'TR_REQUEST_TIMEOUT' });
    expect(headers.ms).toBeLessThan(5000);
    // body: promised 100 bytes, sends 10 and goes quiet
    const body = await raw(port, [
      `POST /v1/devices/m4-0/train HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${auth().authorization}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
      '{"steps": ',
    ]);
    expect(body.text).toMatch(/^HTTP\/1.1 408 /);
    expect(jsonOf(body.text)).toMatchObject({ code: 'TR_REQUEST_TIMEOUT' });
    expect(body.ms).toBeGreaterThanOrEqual(700);
    expect(body.ms).toBeLessThan(5000);
    // the daemon still serves the next client
    const ok = await raw(port, ['GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n']);
    expect(ok.text).toMatch(/^HTTP\/1.1 200 /);
  });
});

describe('what a browser page cannot reach', () => {
  it('answers only the Host names it is configured for (DNS rebinding)', async () => {
    app = await buildApp({ allowedHosts: ['localhost', '127.0.0.1', '::1', 'rig-1.lab'] });
    for (const host of ['localhost:8080', '127.0.0.1', '[::1]:8080', 'RIG-1.lab:8080']) {
      expect((await app.inject({ method: 'GET', url: '/v1/health', headers: { host } })).statusCode, host).toBe(200);
    }
    for (const host of ['evil.example', 'localhost.evil.example:8080', '10.0.0.7']) {
      const r = await app.inject({ method: 'GET', url: '/v1/snapshots', headers: { host } });
      expect(r.statusCode, host).toBe(403);
      expect(r.json().code).toBe('TR_HOST_NOT_ALLOWED');
    }
  });

  it('allows any Host when told to with *', async () => {
    app = await buildApp({ allowedHosts: ['*'] });
    expect((await app.inject({ method: 'GET', url: '/v1/health', headers: { host: 'anything.example' } })).statusCode).toBe(200);
  });

  it('sends security headers, and a snapshot\'s weights need a token even where reads are open', async () => {
    app = await buildApp();
    const r = await app.inject({ method: 'GET', url: '/v1/health' });
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBeDefined();
    expect(String(r.headers['content-security-policy'])).toContain("frame-ancestors 'none'");
    const weights = await app.inject({ method: 'GET', url: '/v1/snapshots/snap_x/weights' });
    expect(weights.statusCode).toBe(401);
    const withToken = await app.inject({ method: 'GET', url: '/v1/snapshots/snap_x/weights', headers: auth() });
    expect(withToken.json().code).toBe('TR_SNAPSHOT_NOT_FOUND');
    // the API page still loads under the policy
    const docs = await app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['content-security-policy']).toBeDefined();
  });

  it('keeps var/ owner-only (0700) and its files 0600, also when var/ was made open by an older version', async () => {
    const varDir = tempDir();
    fs.chmodSync(varDir, 0o755);
    app = await buildApp({ varDir, tokens: [] });
    await app.close();
    app = null;
    const mode = (p: string): number => fs.statSync(p).mode & 0o777;
    expect(mode(varDir)).toBe(0o700);
    expect(mode(path.join(varDir, 'store.db'))).toBe(0o600);
    expect(mode(path.join(varDir, 'admin.token'))).toBe(0o600);
    expect(mode(path.join(varDir, 'blobs'))).toBe(0o700);
  });
});

describe('refusals in the log', () => {
  it('logs each refusal once, at info, with method, URL, actor and code, and no stack', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    app = await buildApp({}, { logger: { level: 'info', stream } });
    await app.inject({ method: 'POST', url: '/v1/devices/m4-0/train', payload: { steps: 1, lr: true }, headers: auth() });
    await app.inject({ method: 'GET', url: '/v1/devices/nope' });
    const refused = lines.filter((l) => l.msg === 'request refused');
    expect(refused).toHaveLength(2);
    expect(refused[0]).toMatchObject({ level: 30, method: 'POST', url: '/v1/devices/m4-0/train', actor: 'test-admin', code: 'TR_BAD_REQUEST', statusCode: 400 });
    expect(refused[1]).toMatchObject({ level: 30, method: 'GET', actor: null, code: 'TR_DEVICE_NOT_FOUND', statusCode: 404 });
    expect(lines.some((l) => l.level as number >= 50)).toBe(false);
    expect(JSON.stringify(lines)).not.toContain('"stack"');
  });
});
