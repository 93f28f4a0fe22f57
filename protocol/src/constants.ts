// Wire constants of protocol/SPEC.md, version 1: frame layout, message types,
// flags, error codes and event kinds, each with its SPEC name.

export const PROTO_VERSION = 1;
/** Header bytes before the body: ver, type, seq (u16 LE), flags. */
export const HEADER_BYTES = 5;
export const CRC_BYTES = 4;
/** Smallest raw frame: header + empty body + CRC. */
export const MIN_RAW_FRAME = HEADER_BYTES + CRC_BYTES;
/** Largest raw frame the host accepts (SPEC §1). */
export const HOST_MAX_RAW_FRAME = 65_535;
/** Chunk and read lengths stay this far under max_frame (SPEC §3). */
export const FRAME_OVERHEAD = 32;
/** Staging granule: chunk offsets and lengths are multiples of it. */
export const GRANULE = 64;

export const MsgType = {
  HELLO: 0x01,
  PING: 0x02,
  RESET: 0x03,
  MODEL_BEGIN: 0x10,
  MODEL_CHUNK: 0x11,
  MODEL_COMMIT: 0x12,
  WEIGHTS_BEGIN: 0x20,
  WEIGHTS_CHUNK: 0x21,
  WEIGHTS_COMMIT: 0x22,
  WEIGHTS_INFO: 0x23,
  WEIGHTS_READ: 0x24,
  SAMPLES: 0x30,
  TRAIN: 0x31,
  EVAL: 0x32,
  INFER: 0x33,
  STATS: 0x40,
  EVENT: 0x50,
  LOG: 0x51,
  NAK: 0x7e,
  ERROR: 0x7f,
} as const;
export type MsgTypeName = keyof typeof MsgType;
export type MsgTypeCode = (typeof MsgType)[MsgTypeName];

export const Flags = {
  /** Answers the request with the same seq. */
  RESP: 0x01,
  /** Sent by the device on its own (EVENT, LOG, NAK). */
  DEV: 0x02,
} as const;

export const ErrorCode = {
  BAD_FRAME: 1,
  UNKNOWN_TYPE: 2,
  BAD_BODY: 3,
  TOO_LARGE: 4,
  BAD_CHUNK: 5,
  INCOMPLETE: 6,
  HASH_MISMATCH: 7,
  NO_MODEL: 8,
  MODEL_INVALID: 9,
  MODEL_TOO_LARGE: 10,
  BAD_WEIGHTS: 11,
  BAD_SAMPLE: 12,
  BAD_ARG: 13,
  NOT_SUPPORTED: 14,
  INTERNAL: 15,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

export const EventKind = {
  BOOT: 1,
  FAULT: 2,
  MODEL_LOADED: 3,
  WATCHDOG: 4,
} as const;
export type EventKindName = keyof typeof EventKind;

export const LogLevel = { DEBUG: 0, INFO: 1, WARN: 2, ERROR: 3 } as const;

function invert<T extends Record<string, number>>(o: T): Map<number, keyof T & string> {
  return new Map(Object.entries(o).map(([k, v]) => [v, k as keyof T & string]));
}

const typeNames = invert(MsgType);
const errorNames = invert(ErrorCode);
const eventNames = invert(EventKind);

/** SPEC name of a message type, or `0xNN` for an unknown one. */
export function msgTypeName(type: number): string {
  return typeNames.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}
export function isKnownMsgType(type: number): boolean {
  return typeNames.has(type);
}
export function errorCodeName(code: number): string {
  return errorNames.get(code) ?? `ERROR_${code}`;
}
export function eventKindName(kind: number): string {
  return eventNames.get(kind) ?? `EVENT_${kind}`;
}
