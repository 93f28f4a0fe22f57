// Request bodies in CBOR (application/cbor): raw samples travel as byte
// strings, not base64. Replies stay JSON.
import fp from 'fastify-plugin';
import { decode } from 'cbor-x';
import { Errors } from '../../errors.js';

export default fp(
  async (fastify) => {
    fastify.addContentTypeParser('application/cbor', { parseAs: 'buffer' }, (_req, body, done) => {
      try {
        done(null, decode(body as Buffer));
      } catch (err) {
        done(Errors.BAD_REQUEST(`body is not valid CBOR: ${(err as Error).message}`), undefined);
      }
    });
  },
  { name: 'cbor-body' },
);
