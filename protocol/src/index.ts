// tinyrig wire protocol (protocol/SPEC.md): constants, codec and the board session.
export * from './constants.js';
export * from './errors.js';
export { crc32 } from './crc32.js';
export { cobsEncode, cobsDecode, cobsMaxEncoded } from './cobs.js';
export { encodeFrame, decodeFrame, encodeRaw, decodeRaw, FrameSplitter, type Frame } from './frame.js';
export * from './cbor.js';
export * from './messages.js';
export * from './session/index.js';
