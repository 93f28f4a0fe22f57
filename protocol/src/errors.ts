// Typed errors of the protocol session: what the device said (DeviceError),
// what the link did (TimeoutError, DisconnectedError) and what did not parse
// (ProtocolError).
import { errorCodeName } from './constants.js';

/** The device answered ERROR (SPEC §3, 0x7F). */
export class DeviceError extends Error {
  override readonly name = 'DeviceError';
  /** Numeric error code (ErrorCode). */
  readonly code: number;
  /** SPEC name of the code, e.g. `HASH_MISMATCH`. */
  readonly codeName: string;
  readonly detail: number | undefined;
  /** Request type that failed. */
  readonly requestType: string;
  constructor(code: number, codeName: string | undefined, detail: number | undefined, message: string | undefined, requestType = '') {
    const nm = codeName || errorCodeName(code);
    const parts = [`${requestType ? requestType + ': ' : ''}device error ${nm} (${code})`];
    if (detail !== undefined) parts.push(`detail ${detail}`);
    if (message) parts.push(message);
    super(parts.join(', '));
    this.code = code;
    this.codeName = nm;
    this.detail = detail;
    this.requestType = requestType;
  }
}

/** A request went unanswered through every attempt. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly attempts: number;
  constructor(message: string, attempts = 0) {
    super(message);
    this.attempts = attempts;
  }
}

/** The stream closed or failed; every outstanding request is rejected with this. */
export class DisconnectedError extends Error {
  override readonly name = 'DisconnectedError';
  constructor(message = 'link disconnected') {
    super(message);
  }
}

/** Bytes that are not a valid frame or body. `code` names the defect (BAD_CRC, BAD_COBS, BAD_CBOR, …). */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}
