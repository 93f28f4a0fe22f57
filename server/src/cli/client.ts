// HTTP client of the CLI: one place that adds the bearer token, turns the
// daemon's JSON errors into ApiError (status + stable code + message) and a
// refused connection into a clear message.
import fs from 'node:fs';
import path from 'node:path';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The daemon could not be reached at all (refused, DNS, reset). */
export class ConnectError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach the tinyrig daemon at ${url}: ${describeCause(cause)}`);
    this.name = 'ConnectError';
  }
}

function describeCause(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } })?.cause;
  if (c?.code) return c.code;
  if (c?.message) return c.message;
  return e instanceof Error ? e.message : String(e);
}

/** --token, then TINYRIG_TOKEN, then the admin token the daemon wrote in its var directory. */
export function resolveToken(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (explicit) return explicit;
  if (env.TINYRIG_TOKEN) return env.TINYRIG_TOKEN;
  const file = path.resolve(env.TINYRIG_VAR ?? 'var', 'admin.token');
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    return t || undefined;
  } catch {
    return undefined;
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export class ApiClient {
  readonly base: string;

  constructor(
    url: string,
    private readonly token: string | undefined,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  url(route: string, query?: Query): string {
    const u = new URL(this.base + route);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  async request<T>(
    method: string,
    route: string,
    opts: { body?: unknown; query?: Query; bytes?: { data: Uint8Array; type: string } } = {},
  ): Promise<{ status: number; body: T }> {
    const url = this.url(route, opts.query);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: this.headers(
          opts.bytes ? { 'content-type': opts.bytes.type } : opts.body !== undefined ? { 'content-type': 'application/json' } : {},
        ),
        body: opts.bytes ? (opts.bytes.data as unknown as BodyInit) : opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      });
    } catch (e) {
      throw new ConnectError(this.base, e);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) {
      const e = (parsed ?? {}) as { code?: string; message?: string; details?: unknown };
      const code = typeof e.code === 'string' ? e.code : `HTTP_${res.status}`;
      const message = typeof e.message === 'string' ? e.message : typeof parsed === 'string' ? parsed : res.statusText;
      throw new ApiError(res.status, code, message, e.details);
    }
    return { status: res.status, body: parsed as T };
  }

  get<T>(route: string, query?: Query): Promise<T> {
    return this.request<T>('GET', route, { query }).then((r) => r.body);
  }

  post<T>(route: string, body: unknown, query?: Query): Promise<{ status: number; body: T }> {
    return this.request<T>('POST', route, { body, query });
  }

  /** POSTs raw bytes (a model blob) with their content type. */
  postBytes<T>(route: string, data: Uint8Array, type: string, query?: Query): Promise<{ status: number; body: T }> {
    return this.request<T>('POST', route, { bytes: { data, type }, query });
  }

  delete<T>(route: string): Promise<{ status: number; body: T }> {
    return this.request<T>('DELETE', route);
  }

  /** Opens a streaming GET (server-sent events). */
  async stream(route: string, headers: Record<string, string> = {}): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.url(route), { headers: this.headers({ accept: 'text/event-stream', ...headers }) });
    } catch (e) {
      throw new ConnectError(this.base, e);
    }
    if (!res.ok) {
      const text = await res.text();
      let e: { code?: string; message?: string } = {};
      try {
        e = JSON.parse(text) as typeof e;
      } catch {
        // not JSON
      }
      throw new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? (text || res.statusText));
    }
    return res;
  }
}
