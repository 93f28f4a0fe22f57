// Every error the API returns, with its stable code and HTTP status, in one place.
// Clients match on `code`; `message` is for people and may change.
import http from 'node:http';

export class RigError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly details?: unknown;

  constructor(code: string, statusCode: number, message: string, details?: unknown) {
    super(message);
    this.name = 'RigError';
    this.code = code;
    this.statusCode = statusCode;
    this.details = details;
  }
}

type ErrorFactory = ((message?: string, details?: unknown) => RigError) & {
  code: string;
  statusCode: number;
};

function createError(code: string, defaultMessage: string, statusCode: number): ErrorFactory {
  const factory = ((message?: string, details?: unknown) =>
    new RigError(code, statusCode, message ?? defaultMessage, details)) as ErrorFactory;
  factory.code = code;
  factory.statusCode = statusCode;
  return factory;
}

export const Errors = {
  BAD_REQUEST: createError('TR_BAD_REQUEST', 'invalid request', 400),
  UNAUTHORIZED: createError('TR_UNAUTHORIZED', 'missing or unknown bearer token', 401),
  FORBIDDEN: createError('TR_FORBIDDEN', 'this token lacks the role this route needs', 403),
  HOST_NOT_ALLOWED: createError('TR_HOST_NOT_ALLOWED', 'this daemon does not answer requests for that Host', 403),
  REQUEST_TIMEOUT: createError('TR_REQUEST_TIMEOUT', 'the request did not arrive in time', 408),
  URI_TOO_LONG: createError('TR_URI_TOO_LONG', 'the request URL or one of its path parameters is too long', 414),
  HEADERS_TOO_LARGE: createError('TR_HEADERS_TOO_LARGE', 'the request headers are too large', 431),
  DEVICE_NOT_FOUND: createError('TR_DEVICE_NOT_FOUND', 'no such device', 404),
  JOB_NOT_FOUND: createError('TR_JOB_NOT_FOUND', 'no such job', 404),
  SNAPSHOT_NOT_FOUND: createError('TR_SNAPSHOT_NOT_FOUND', 'no such snapshot', 404),
  MODEL_NOT_FOUND: createError('TR_MODEL_NOT_FOUND', 'no such model', 404),
  DATASET_NOT_FOUND: createError('TR_DATASET_NOT_FOUND', 'no such dataset or split', 404),
  NO_GOOD_SNAPSHOT: createError('TR_NO_GOOD_SNAPSHOT', 'no snapshot marked good for this device', 404),
  NOT_FOUND: createError('TR_NOT_FOUND', 'no such route', 404),
  SAMPLE_INVALID: createError('TR_BAD_SAMPLE', 'a sample does not fit the model on the device', 400),
  DATASET_INVALID: createError('TR_DATASET_INVALID', 'the uploaded dataset is malformed', 400),
  DEVICE_BUSY: createError('TR_DEVICE_BUSY', 'the device is running another job', 409),
  DEVICE_RESERVED: createError('TR_DEVICE_RESERVED', 'someone else holds a reservation of this device', 409),
  LEASE_NOT_FOUND: createError('TR_LEASE_NOT_FOUND', 'no such lease', 404),
  SUITE_NOT_FOUND: createError('TR_SUITE_NOT_FOUND', 'no such suite', 404),
  SUITE_INVALID: createError('TR_SUITE_INVALID', 'the suite file is invalid', 400),
  RUN_NOT_FOUND: createError('TR_RUN_NOT_FOUND', 'no such run', 404),
  RUN_FINISHED: createError('TR_RUN_FINISHED', 'the run or job has ended', 409),
  JOB_CANCELLED: createError('TR_JOB_CANCELLED', 'the job was cancelled', 409),
  NO_MODEL: createError('TR_NO_MODEL', 'the device has no model loaded', 409),
  NO_SAMPLES: createError('TR_NO_SAMPLES', 'the device holds no samples', 409),
  MODEL_MISMATCH: createError('TR_MODEL_MISMATCH', 'the snapshot was taken from a different model', 409),
  DATASET_EXISTS: createError('TR_DATASET_EXISTS', 'a dataset of that name holds other content', 409),
  PAYLOAD_TOO_LARGE: createError('TR_PAYLOAD_TOO_LARGE', 'request too large', 413),
  MODEL_TOO_LARGE: createError('TR_MODEL_TOO_LARGE', 'the model does not fit the memory of this board', 422),
  MODEL_INVALID: createError('TR_MODEL_INVALID', 'the engine refuses this model', 400),
  MODEL_EXISTS: createError('TR_MODEL_EXISTS', 'a model of that name exists with other content', 409),
  MODEL_IN_USE: createError('TR_MODEL_IN_USE', 'snapshots reference this model', 409),
  UNSUPPORTED_MEDIA: createError('TR_UNSUPPORTED_MEDIA_TYPE', 'unsupported content type', 415),
  RATE_LIMITED: createError('TR_RATE_LIMITED', 'too many requests', 429),
  INTERNAL: createError('TR_INTERNAL', 'internal error', 500),
  ENGINE_MISSING: createError('TR_ENGINE_MISSING', 'the firmware on this device has no training engine', 501),
  DEVICE_ERROR: createError('TR_DEVICE_ERROR', 'the device refused the request', 502),
  VERIFY_FAILED: createError('TR_VERIFY_FAILED', 'the device holds weights whose hash differs from the snapshot', 502),
  DEVICE_OFFLINE: createError('TR_DEVICE_OFFLINE', 'the device is not connected', 503),
  TOOL_MISSING: createError('TR_TOOL_MISSING', 'the model tool is not built (make -C firmware)', 503),
  DEVICE_TIMEOUT: createError('TR_DEVICE_TIMEOUT', 'the device did not answer in time', 504),
  DEVICE_DISCONNECTED: createError('TR_DEVICE_DISCONNECTED', 'the device link was lost', 503),
  HOST_OFFLINE: createError('TR_HOST_OFFLINE', 'the rig host that owns the device is offline', 503),
  HOST_TIMEOUT: createError('TR_HOST_TIMEOUT', 'the rig host that owns the device did not answer in time', 504),
  STORE_UNREACHABLE: createError('TR_STORE_UNREACHABLE', 'this host cannot reach the shared store; it takes no new work until it can', 503),
} as const;

export type ErrorCode = (typeof Errors)[keyof typeof Errors]['code'];

/** The JSON body of every error response. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
  details?: unknown;
}

export function toErrorBody(err: RigError): ErrorBody {
  const body: ErrorBody = {
    statusCode: err.statusCode,
    code: err.code,
    error: http.STATUS_CODES[err.statusCode] ?? 'Error',
    message: err.message,
  };
  if (err.details !== undefined) body.details = err.details;
  return body;
}
