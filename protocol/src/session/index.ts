// The board session: typed requests (board-session.ts) over a window of
// retransmitted requests (window.ts), large ones as pipelined transfers
// (transfers.ts); result and option types in types.ts.
export * from './types.js';
export { chunkBytes, samplesPerFrame } from './transfers.js';
export { BoardSession } from './board-session.js';
