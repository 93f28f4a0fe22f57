// Fastify and Node HTTP settings that make every refusal a JSON body with a
// stable code — the router's own (bad URL, long path parameter) and the HTTP
// parser's (headers too large, request too slow) included — and that end
// clients whose headers or body never finish.
import type { Socket } from 'node:net';
import { Ajv } from 'ajv';
import type { FastifyHttpOptions, FastifyReply, FastifyRequest } from 'fastify';
import type { Server } from 'node:http';
import type { Config } from '../config.js';
import { Errors, RigError, toErrorBody } from '../errors.js';

/** Longest path parameter the router takes (a device id is at most 64). */
export const MAX_PARAM_LENGTH = 100;

function rawReply(socket: Socket, err: RigError): void {
  const body = JSON.stringify(toErrorBody(err));
  socket.end(
    `HTTP/1.1 ${err.statusCode} ${toErrorBody(err).error}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** The parser's refusals, answered on the raw socket (there is no request object yet). */
export function clientErrorFor(code: string | undefined): RigError {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return Errors.REQUEST_TIMEOUT('the request headers or body did not arrive in time; the connection is closed');
    case 'HPE_HEADER_OVERFLOW':
      return Errors.HEADERS_TOO_LARGE('the request line and headers exceed the size this daemon reads');
    default:
      return Errors.BAD_REQUEST('malformed HTTP request');
  }
}

export function serverOptions(config: Config): Partial<FastifyHttpOptions<Server>> {
  return {
    bodyLimit: config.bodyLimitBytes,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // the whole request (headers and body) must arrive within bodyTimeoutMs, the headers within headersTimeoutMs
    requestTimeout: config.bodyTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.bodyTimeoutMs,
      // how often Node checks those two; the default (30 s) would let a short time-out run long
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(config.headersTimeoutMs, config.bodyTimeoutMs) / 4))),
    },
    frameworkErrors: (error: Error & { code?: string }, req: FastifyRequest, reply: FastifyReply) => {
      const rig =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? Errors.URI_TOO_LONG(`a path parameter exceeds ${MAX_PARAM_LENGTH} characters`)
          : Errors.BAD_REQUEST('the request URL is malformed');
      req.refusal = rig.code;
      void reply.status(rig.statusCode).send(toErrorBody(rig));
    },
    clientErrorHandler(this: { log: { info: (o: object, m: string) => void } }, err: Error & { code?: string }, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const rig = clientErrorFor(err.code);
      this.log.info({ code: rig.code, statusCode: rig.statusCode, remote: socket.remoteAddress, parser: err.code }, 'request refused');
      if (socket.writable) rawReply(socket, rig);
      else socket.destroy(err);
    },
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The stable code of a refused request, for its log line. */
    refusal?: string;
  }
}

/**
 * Bodies are validated as sent: no type coercion (`{"lr": true}` or
 * `{"count": "4"}` is a 400, never lr 1 or count 4). Path parameters and
 * query strings are text on the wire, so those are parsed into the numbers
 * and booleans their schemas name.
 */
export function validatorCompiler(): (route: { schema: object; httpPart?: string }) => (data: unknown) => boolean {
  const common = { useDefaults: true, removeAdditional: false, allErrors: false, strict: false } as const;
  const strict = new Ajv({ ...common, coerceTypes: false });
  const parsing = new Ajv({ ...common, coerceTypes: 'array' });
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : parsing).compile(schema);
}
