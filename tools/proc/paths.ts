// Where things are in the repository: its root and the firmware binaries the
// scripts, tests and benchmarks run. Nothing is built here; a missing binary
// is the caller's to report with `make -C firmware`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const firmwareDir = path.join(repoRoot, 'firmware');
/** The board classes and their boards (firmware/boards.json). */
export const BOARDS_FILE = path.join(firmwareDir, 'boards.json');

/** A host binary from firmware/mk/host.mk and friends. */
export const hostBin = (name: string): string => path.join(firmwareDir, 'build', 'host', name);
export const TWIN_BIN = hostBin('tinyrig-twin');
export const TRAIN_BIN = hostBin('tinyrig-train');
export const LINKSIM_BIN = hostBin('tinyrig-linksim');

/** The QEMU board image of a class (m0plus, m4, m7). */
export function qemuElf(cls: string): string {
  return path.join(firmwareDir, 'build', 'qemu', cls, 'tinyrig-board.elf');
}

export function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
