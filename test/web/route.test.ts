// The lab page's routes in-process: the page and its files, nothing else under
// /ui/, the daemon's CSP on them, and GET /ui/session naming the token's role.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { OPERATOR_TOKEN, VIEWER_TOKEN, auth, buildApp } from '../server/helpers.js';

let app: FastifyInstance;
let closed: FastifyInstance;

beforeAll(async () => {
  app = await buildApp();
  closed = await buildApp({ readsNeedToken: true });
});

afterAll(async () => {
  await app?.close();
  await closed?.close();
});

describe('lab page routes', () => {
  it('serves the page with its script as a file (no inline script) under the daemon CSP', async () => {
    const r = await app.inject({ method: 'GET', url: '/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toContain("script-src 'self'");
    expect(r.body).toContain('<script type="module" src="/ui/lab.js"></script>');
    expect(r.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(r.body).not.toMatch(/https?:\/\//);
    expect(r.body).not.toMatch(/\son[a-z]+=/i);
  });

  it('serves the page files with their types, and nothing else under /ui/', async () => {
    const types: Record<string, string> = {
      '/ui/lab.js': 'text/javascript; charset=utf-8',
      '/ui/lab.css': 'text/css; charset=utf-8',
      '/ui/icon.svg': 'image/svg+xml',
    };
    for (const [url, type] of Object.entries(types)) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(200);
      expect(r.headers['content-type']).toBe(type);
      expect(r.body.length).toBeGreaterThan(100);
    }
    for (const url of ['/ui/index.html', '/ui/..%2Fapp.ts', '/ui/%2e%2e%2f%2e%2e%2fpackage.json', '/ui/']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(404);
      expect(r.json().code).toBe('TR_NOT_FOUND');
    }
    const icon = await app.inject({ method: 'GET', url: '/favicon.ico' });
    expect(icon.statusCode).toBe(301);
    expect(icon.headers.location).toBe('/ui/icon.svg');
  });

  it('GET /ui/session names the role of the token sent: none, viewer, operator; an unknown token is 401', async () => {
    expect((await app.inject({ method: 'GET', url: '/ui/session' })).json()).toEqual({ name: null, role: null });
    expect((await app.inject({ method: 'GET', url: '/ui/session', headers: auth(VIEWER_TOKEN) })).json()).toEqual({ name: 'test-viewer', role: 'viewer' });
    expect((await app.inject({ method: 'GET', url: '/ui/session', headers: auth(OPERATOR_TOKEN) })).json()).toEqual({ name: 'test-operator', role: 'operator' });
    const bad = await app.inject({ method: 'GET', url: '/ui/session', headers: auth('x'.repeat(32)) });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().code).toBe('TR_UNAUTHORIZED');
  });

  it('where reads need a token, the page still loads (and asks for one) while the API refuses without it', async () => {
    expect((await closed.inject({ method: 'GET', url: '/' })).statusCode).toBe(200);
    expect((await closed.inject({ method: 'GET', url: '/ui/lab.js' })).statusCode).toBe(200);
    expect((await closed.inject({ method: 'GET', url: '/v1/devices' })).statusCode).toBe(401);
    expect((await closed.inject({ method: 'GET', url: '/v1/devices', headers: auth(VIEWER_TOKEN) })).statusCode).toBe(200);
  });
});
