// Open a PTY (or a real tty) with serialport, as the daemon does.
import { SerialPort } from 'serialport';

export function openSerial(path: string, baudRate = 115200): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate, autoOpen: false });
    port.open((err) => (err ? reject(new Error(`cannot open ${path}: ${err.message}`)) : resolve(port)));
  });
}

export function closeSerial(port: SerialPort): Promise<void> {
  return new Promise((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));
}

/** Write raw bytes and wait until they have left the host. */
export function writeRaw(port: SerialPort, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => port.write(Buffer.from(bytes), (err) => (err ? reject(err) : port.drain(() => resolve()))));
}
