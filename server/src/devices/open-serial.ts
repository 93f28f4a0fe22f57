// Opens a board's serial port (real board, QEMU PTY or host twin PTY) and a
// protocol session on it; the session owns the port from then on. The daemon
// is the only process on each port.
import type { SerialPortStream } from '@serialport/stream';
import { SerialPort } from 'serialport';
import { BoardSession, type BoardLink } from '../../../protocol/src/index.js';
import type { OpenLinkOptions } from './board.js';

/** Opens a serial port (or PTY) at a line rate. */
export function openPort(path: string, baudRate = 115200): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate, autoOpen: false });
    port.open((err) => (err ? reject(new Error(`cannot open ${path}: ${err.message}`)) : resolve(port)));
  });
}

/** Closes a port if it is open; never fails. */
export const closePort = (port: SerialPortStream): Promise<void> => new Promise((r) => (port.isOpen ? port.close(() => r()) : r()));

/** The daemon's LinkOpener: the board's serial port at its line rate, a session on it. */
export async function openSerialLink(opts: OpenLinkOptions): Promise<BoardLink> {
  return openSessionOn(await openPort(opts.path, opts.baudRate), opts);
}

/** A session on an open port of any binding; it closes the port when closed or when the handshake fails. */
export function openSessionOn(port: SerialPortStream, opts: OpenLinkOptions): Promise<BoardSession> {
  return BoardSession.open(port, {
    requestTimeoutMs: opts.requestTimeoutMs,
    // a port whose other end never answers HELLO must not hold the board in 'connecting' forever
    helloTimeoutMs: Math.max(5000, opts.requestTimeoutMs * 5),
    log: opts.log,
    label: `port ${opts.path}`,
    closeStream: () => closePort(port),
  });
}
