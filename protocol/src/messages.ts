// Bodies of every message of SPEC §3 as one table of fields, and the encoders
// and validating decoders built from it. A missing required key or a key of
// the wrong major type is a ProtocolError(BAD_BODY); unknown keys are ignored.
import { MsgType } from './constants.js';
import { decodeBody, encodeBody, type CborMap, type CborValue } from './cbor.js';
import { ProtocolError } from './errors.js';
import { decodeFrame, type Frame } from './frame.js';

/** u: unsigned integer, b: byte string, t: text, bool, a: array. */
export type FieldType = 'u' | 'b' | 't' | 'bool' | 'a';
export interface Field {
  key: number;
  name: string;
  type: FieldType;
  optional?: boolean;
}
export interface MessageSchema {
  request: Field[];
  response: Field[];
}

const f = (key: number, name: string, type: FieldType, optional = false): Field => ({ key, name, type, optional });

const STAGE_BEGIN = [f(1, 'size', 'u'), f(2, 'sha256', 'b')];
const STAGE_CHUNK = [f(1, 'offset', 'u'), f(2, 'data', 'b')];
const CHUNK_ACK = [f(1, 'offset', 'u'), f(2, 'length', 'u')];

/** Request and response fields of each message type (SPEC §3). */
export const SCHEMAS: Record<number, MessageSchema> = {
  [MsgType.HELLO]: {
    request: [],
    response: [
      f(1, 'proto', 'u'),
      f(2, 'board', 't'),
      f(3, 'build', 't'),
      f(4, 'cpu', 't'),
      f(5, 'clockHz', 'u'),
      f(6, 'ramBytes', 'u'),
      f(7, 'maxFrame', 'u'),
      f(8, 'window', 'u'),
      f(9, 'bootId', 'u'),
      f(10, 'sampleSlots', 'u'),
      f(11, 'arenaBytes', 'u'),
      f(12, 'blobMax', 'u'),
      f(13, 'counter', 't'),
      f(14, 'staticRam', 'u'),
      f(15, 'stackBytes', 'u'),
      f(16, 'maxTrain', 'u'),
      f(17, 'engine', 'bool'),
      f(18, 'watchdogMs', 'u', true),
      f(19, 'storedLoaded', 'u', true),
    ],
  },
  [MsgType.PING]: { request: [f(1, 'data', 'b', true)], response: [f(1, 'data', 'b')] },
  [MsgType.RESET]: { request: [], response: [] },
  [MsgType.MODEL_BEGIN]: { request: STAGE_BEGIN, response: [] },
  [MsgType.MODEL_CHUNK]: { request: STAGE_CHUNK, response: CHUNK_ACK },
  [MsgType.MODEL_COMMIT]: {
    request: [f(1, 'sha256', 'b')],
    response: [
      f(1, 'sha256', 'b'),
      f(2, 'weightsBytes', 'u'),
      f(3, 'inputBytes', 'u'),
      f(4, 'classes', 'u'),
      f(5, 'layers', 'u'),
      f(6, 'trainBytes', 'u'),
      f(7, 'inferBytes', 'u'),
    ],
  },
  [MsgType.WEIGHTS_BEGIN]: { request: STAGE_BEGIN, response: [] },
  [MsgType.WEIGHTS_CHUNK]: { request: STAGE_CHUNK, response: CHUNK_ACK },
  [MsgType.WEIGHTS_COMMIT]: { request: [f(1, 'sha256', 'b')], response: [f(1, 'sha256', 'b'), f(2, 'weightsBytes', 'u')] },
  [MsgType.WEIGHTS_INFO]: {
    request: [],
    response: [f(1, 'sha256', 'b'), f(2, 'weightsBytes', 'u'), f(3, 'stepsApplied', 'u'), f(4, 'modelSha256', 'b')],
  },
  [MsgType.WEIGHTS_READ]: { request: [f(1, 'offset', 'u'), f(2, 'length', 'u')], response: [f(1, 'offset', 'u'), f(2, 'data', 'b')] },
  [MsgType.SAMPLES]: {
    request: [f(1, 'index', 'u'), f(2, 'sampleBytes', 'u'), f(3, 'labels', 'b'), f(4, 'data', 'b')],
    response: [f(1, 'index', 'u'), f(2, 'count', 'u')],
  },
  [MsgType.TRAIN]: {
    request: [
      f(1, 'stepId', 'u'),
      f(2, 'index', 'u'),
      f(3, 'count', 'u'),
      f(4, 'lrPpm', 'u'),
      f(5, 'lambdaMinPpm', 'u', true),
      f(6, 'lambdaMaxPpm', 'u', true),
      // absent: every layer trains; 0 is sent as 0 and names no layer (the device refuses
      // a TRAIN that trains nothing); undefined and null leave the key out
      f(7, 'trainable', 'u', true),
      // absent and 0 are the same: no layer limited to its bias
      f(8, 'biasOnly', 'u', true),
      f(9, 'options', 'u', true),
    ],
    // fault: the engine status that stopped the steps early (records: the steps applied)
    response: [f(1, 'stepId', 'u'), f(2, 'duplicate', 'bool'), f(3, 'stepsApplied', 'u'), f(4, 'records', 'a'), f(5, 'fault', 'u', true)],
  },
  [MsgType.EVAL]: {
    // predictions: true asks for predicted and lossPpm; false and absent are the same
    request: [f(1, 'index', 'u'), f(2, 'count', 'u'), f(3, 'predictions', 'bool', true)],
    // predicted, lossPpm: one uint per sample, only when the request set predictions
    response: [
      f(1, 'count', 'u'),
      f(2, 'correct', 'u'),
      f(3, 'lossPpmSum', 'u'),
      f(4, 'counter', 'u'),
      f(5, 'predicted', 'a', true),
      f(6, 'lossPpm', 'a', true),
    ],
  },
  [MsgType.INFER]: { request: [f(1, 'sample', 'b')], response: [f(1, 'class', 'u'), f(2, 'logits', 'b'), f(3, 'counter', 'u')] },
  [MsgType.STATS]: {
    request: [],
    response: [
      f(1, 'stepsApplied', 'u'),
      f(2, 'lastStepId', 'u'),
      f(3, 'arenaPeak', 'u'),
      f(4, 'stackPeak', 'u'),
      f(5, 'staticRam', 'u'),
      f(6, 'counterTotal', 'u'),
      f(7, 'samplesHeld', 'u'),
      f(8, 'modelSha256', 'b'),
      f(9, 'framesRx', 'u'),
      f(10, 'framesBad', 'u'),
      f(11, 'storedSeq', 'u', true),
      f(12, 'storeFaults', 'u', true),
    ],
  },
};

/** Bodies of device-initiated frames and of ERROR. */
export const DEVICE_BODIES: Record<number, Field[]> = {
  [MsgType.EVENT]: [f(1, 'kind', 'u'), f(2, 'text', 't', true)],
  [MsgType.LOG]: [f(1, 'level', 'u'), f(2, 'text', 't')],
  [MsgType.NAK]: [f(1, 'seq', 'u', true)],
  [MsgType.ERROR]: [f(1, 'code', 'u'), f(2, 'name', 't'), f(3, 'detail', 'u', true), f(4, 'message', 't', true)],
};

function typeOk(v: CborValue, t: FieldType): boolean {
  switch (t) {
    case 'u':
      return (typeof v === 'number' && v >= 0) || (typeof v === 'bigint' && v >= 0n);
    case 'b':
      return v instanceof Uint8Array;
    case 't':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'a':
      return Array.isArray(v);
  }
}

/** Fields of a decoded map by name; throws ProtocolError(BAD_BODY). */
export function readFields(m: CborMap, fields: Field[], what: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const fl of fields) {
    const v = m.get(fl.key);
    if (v === undefined) {
      if (fl.optional) continue;
      throw new ProtocolError('BAD_BODY', `${what}: key ${fl.key} (${fl.name}) missing`);
    }
    if (!typeOk(v, fl.type)) throw new ProtocolError('BAD_BODY', `${what}: key ${fl.key} (${fl.name}) is not of type ${fl.type}`);
    out[fl.name] = v;
  }
  return out;
}

/** Encode named values as a body; throws ProtocolError(BAD_VALUE) on a missing or mistyped field. */
export function writeFields(values: Record<string, unknown>, fields: Field[], what: string): Uint8Array {
  const m = new Map<number, CborValue>();
  for (const fl of fields) {
    const v = values[fl.name];
    if (v === undefined || v === null) {
      if (fl.optional) continue;
      throw new ProtocolError('BAD_VALUE', `${what}: ${fl.name} missing`);
    }
    if (!typeOk(v as CborValue, fl.type) || (typeof v === 'number' && !Number.isInteger(v)))
      throw new ProtocolError('BAD_VALUE', `${what}: ${fl.name} is not of type ${fl.type}`);
    m.set(fl.key, v as CborValue);
  }
  return encodeBody(m);
}

function schemaOf(type: number): MessageSchema {
  const s = SCHEMAS[type];
  if (!s) throw new ProtocolError('UNKNOWN_TYPE', `no request/response schema for type 0x${type.toString(16)}`);
  return s;
}

export const encodeRequest = (type: number, values: Record<string, unknown>): Uint8Array =>
  writeFields(values, schemaOf(type).request, `request 0x${type.toString(16)}`);
export const encodeResponse = (type: number, values: Record<string, unknown>): Uint8Array =>
  writeFields(values, SCHEMAS[type]?.response ?? DEVICE_BODIES[type] ?? schemaOf(type).response, `response 0x${type.toString(16)}`);
export const decodeRequest = (type: number, body: Uint8Array): Record<string, unknown> =>
  readFields(decodeBody(body), schemaOf(type).request, `request 0x${type.toString(16)}`);
export const decodeResponse = (type: number, body: Uint8Array): Record<string, unknown> =>
  readFields(decodeBody(body), schemaOf(type).response, `response 0x${type.toString(16)}`);

/** Body of EVENT, LOG, NAK or ERROR. */
export function decodeDeviceBody(type: number, body: Uint8Array): Record<string, unknown> {
  const fields = DEVICE_BODIES[type];
  if (!fields) throw new ProtocolError('UNKNOWN_TYPE', `type 0x${type.toString(16)} is not a device message`);
  return readFields(decodeBody(body), fields, `0x${type.toString(16)}`);
}
export function encodeDeviceBody(type: number, values: Record<string, unknown>): Uint8Array {
  const fields = DEVICE_BODIES[type];
  if (!fields) throw new ProtocolError('UNKNOWN_TYPE', `type 0x${type.toString(16)} is not a device message`);
  return writeFields(values, fields, `0x${type.toString(16)}`);
}

export interface TrainRecord {
  lossPpm: number;
  counter: number;
  updatedPpm: number;
  correct: boolean;
  peakRam: number;
}

/** TRAIN records `[loss_ppm, counter, updated_ppm, correct, peak_ram]`. */
export function decodeTrainRecords(v: unknown): TrainRecord[] {
  if (!Array.isArray(v)) throw new ProtocolError('BAD_BODY', 'TRAIN records is not an array');
  return v.map((r, i) => {
    if (
      !Array.isArray(r) ||
      r.length < 5 ||
      !typeOk(r[0], 'u') ||
      !typeOk(r[1], 'u') ||
      !typeOk(r[2], 'u') ||
      typeof r[3] !== 'boolean' ||
      !typeOk(r[4], 'u')
    )
      throw new ProtocolError('BAD_BODY', `TRAIN record ${i} is not [u, u, u, bool, u]`);
    return { lossPpm: Number(r[0]), counter: Number(r[1]), updatedPpm: Number(r[2]), correct: r[3], peakRam: Number(r[4]) };
  });
}

export const encodeTrainRecords = (records: TrainRecord[]): CborValue[] =>
  records.map((r) => [r.lossPpm, r.counter, r.updatedPpm, r.correct, r.peakRam]);

/** An array of unsigned integers (EVAL's predicted and loss_ppm) of exactly `count` entries; throws ProtocolError(BAD_BODY). */
export function decodeUintArray(v: unknown, count: number, what: string): number[] {
  if (!Array.isArray(v)) throw new ProtocolError('BAD_BODY', `${what} is not an array`);
  if (v.length !== count) throw new ProtocolError('BAD_BODY', `${what} has ${v.length} entries, not ${count}`);
  return v.map((x, i) => {
    if (!typeOk(x as CborValue, 'u')) throw new ProtocolError('BAD_BODY', `${what}[${i}] is not an unsigned integer`);
    return Number(x);
  });
}

export type MessageDirection = 'request' | 'response' | 'device';

export interface DecodedMessage {
  frame: Frame;
  direction: MessageDirection;
  /** Body fields by name (ERROR responses: code, name, detail?, message?). */
  values: Record<string, unknown>;
}

const CBOR_DEFECTS = new Set(['TRUNCATED', 'INDEFINITE', 'FLOAT', 'TAG', 'TOO_DEEP', 'BAD_KEY', 'TRAILING', 'BAD_CBOR']);

/**
 * Decode wire bytes down to validated fields, as a receiver must (SPEC §1, §2).
 * Throws ProtocolError whose code is one of the vector errors: BAD_COBS,
 * TOO_SHORT, TOO_LONG, BAD_CRC (dropped, the device NAKs) or BAD_VERSION,
 * UNKNOWN_TYPE, BAD_CBOR, BAD_BODY (the device answers ERROR).
 */
export function decodeMessage(wire: Uint8Array, maxRaw?: number): DecodedMessage {
  const frame = decodeFrame(wire, maxRaw);
  if (frame.ver !== 1) throw new ProtocolError('BAD_VERSION', `version ${frame.ver}`);
  const direction: MessageDirection = frame.flags & 0x02 ? 'device' : frame.flags & 0x01 ? 'response' : 'request';
  let fields: Field[] | undefined;
  if (direction === 'device') fields = DEVICE_BODIES[frame.type] && frame.type !== MsgType.ERROR ? DEVICE_BODIES[frame.type] : undefined;
  else if (direction === 'response' && frame.type === MsgType.ERROR) fields = DEVICE_BODIES[MsgType.ERROR];
  else fields = SCHEMAS[frame.type]?.[direction];
  if (!fields) throw new ProtocolError('UNKNOWN_TYPE', `no ${direction} of type 0x${frame.type.toString(16)}`);
  let m: CborMap;
  try {
    m = decodeBody(frame.body);
  } catch (err) {
    if (err instanceof ProtocolError && CBOR_DEFECTS.has(err.code)) throw new ProtocolError('BAD_CBOR', err.message);
    throw err;
  }
  return { frame, direction, values: readFields(m, fields, `${direction} 0x${frame.type.toString(16)}`) };
}
