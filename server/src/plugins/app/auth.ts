// Bearer tokens with roles. A route declares the role it needs in
// config.role; mutating routes need operator or admin. With no token
// configured anywhere, an admin token is created in var/admin.token (mode 600).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fp from 'fastify-plugin';
import { Value } from '@sinclair/typebox/value';
import { Type } from '@sinclair/typebox';
import { TokenEntry, type Role } from '../../config.js';
import { Errors } from '../../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Least role a caller needs; absent: open (reads, unless readsNeedToken). */
    role?: Role;
  }
  interface FastifyRequest {
    principal: { name: string; role: Role } | null;
    /** Set on a request another rig host forwarded (already authenticated there). */
    forwarded: boolean;
  }
  interface FastifyInstance {
    /** Headers that make an in-process request (fastify.inject) act for a caller another host authenticated. */
    internalHeaders(who: { actor: string | null; role: string | null }): Record<string, string>;
  }
}

/** A secret that never leaves this process: only fastify.inject() can carry it. */
const INTERNAL = 'x-tinyrig-internal';

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

const hash = (token: string): string => crypto.createHash('sha256').update(token).digest('hex');

export function readTokensFile(file: string): TokenEntry[] {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  const list = Array.isArray(json) ? json : (json as { tokens?: unknown }).tokens;
  const schema = Type.Array(TokenEntry);
  if (!Value.Check(schema, list)) throw new Error(`tokens file ${file}: expected [{token, role, name?}] with tokens of 16+ characters`);
  return list;
}

export default fp(
  async (fastify) => {
    const cfg = fastify.config;
    const log = fastify.log.child({ module: 'auth' });
    const entries: TokenEntry[] = [...cfg.tokens];
    const sources: string[] = cfg.tokens.length ? ['TINYRIG_TOKEN'] : [];
    if (cfg.tokensFile) {
      entries.push(...readTokensFile(cfg.tokensFile));
      sources.push(cfg.tokensFile);
    }
    if (entries.length === 0) {
      const file = path.join(cfg.varDir, 'admin.token');
      let token: string;
      const existed = fs.existsSync(file);
      if (existed) {
        token = fs.readFileSync(file, 'utf8').trim();
        fs.chmodSync(file, 0o600);
      } else {
        token = crypto.randomBytes(32).toString('base64url');
        fs.writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
      }
      entries.push({ token, role: 'admin', name: 'admin.token' });
      sources.push(file);
      if (!existed) log.info({ path: file }, 'no API token configured: created an admin token (send it as Authorization: Bearer <token>)');
    }
    log.info({ sources, tokens: entries.length }, `API tokens from ${sources.join(', ')}`);
    // looked up by hash, so comparing never leaks a prefix through timing
    const byHash = new Map(entries.map((e) => [hash(e.token), { name: e.name ?? e.role, role: e.role }]));

    const secret = crypto.randomBytes(32);
    fastify.decorate('internalHeaders', (who: { actor: string | null; role: string | null }) => ({
      [INTERNAL]: secret.toString('hex'),
      ...(who.role ? { 'x-tinyrig-actor': who.actor ?? '', 'x-tinyrig-role': who.role } : {}),
    }));
    const isInternal = (v: string | string[] | undefined): boolean => {
      if (typeof v !== 'string' || v.length !== secret.length * 2) return false;
      return crypto.timingSafeEqual(Buffer.from(v, 'hex'), secret);
    };

    fastify.decorateRequest('principal', null);
    fastify.decorateRequest('forwarded', false);
    fastify.addHook('onRequest', async (req) => {
      const header = req.headers.authorization;
      if (isInternal(req.headers[INTERNAL])) {
        req.forwarded = true;
        const role = req.headers['x-tinyrig-role'];
        req.principal = typeof role === 'string' && role in RANK ? { name: String(req.headers['x-tinyrig-actor'] ?? ''), role: role as Role } : null;
        if (req.principal) req.log = req.log.child({ actor: req.principal.name, forwarded: true });
      } else if (header) {
        const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
        req.principal = m ? (byHash.get(hash(m[1])) ?? null) : null;
        if (!req.principal) throw Errors.UNAUTHORIZED('unknown bearer token');
        // every line this request logs names who sent it
        req.log = req.log.child({ actor: req.principal.name });
      }
      let need = req.routeOptions.config?.role;
      if (!need && cfg.readsNeedToken && req.url.startsWith('/v1/')) need = 'viewer';
      if (!need) return;
      if (!req.principal) throw Errors.UNAUTHORIZED(`this route needs Authorization: Bearer <token> with role ${need} or higher`);
      if (RANK[req.principal.role] < RANK[need]) {
        throw Errors.FORBIDDEN(`token '${req.principal.name}' has role ${req.principal.role}; this route needs ${need}`);
      }
    });
  },
  { name: 'auth', dependencies: ['config'] },
);
