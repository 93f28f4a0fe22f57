// The boards the daemon owns: from the devices file (or settings), plus ports
// found by SerialPort.list() when discovery is on. One Board per port.
import fs from 'node:fs';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { SerialPort } from 'serialport';
import type { Logger } from 'pino';
import { DevicesFile, type Config, type DeviceEntry } from '../config.js';
import { Errors } from '../errors.js';
import type { Store } from '../store/store.js';
import { Board, type LinkOpener } from './board.js';

export function readDevicesFile(file: string): DeviceEntry[] {
  if (!fs.existsSync(file)) return [];
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  const errors = [...Value.Errors(DevicesFile, json)];
  if (errors.length > 0) {
    const e = errors[0];
    throw new Error(`devices file ${file}: ${e.path || '/'} ${e.message}`);
  }
  const devices = (json as { devices: DeviceEntry[] }).devices;
  const ids = new Set<string>();
  for (const d of devices) {
    if (ids.has(d.id)) throw new Error(`devices file ${file}: device id '${d.id}' appears twice`);
    ids.add(d.id);
  }
  return devices.map((d) => ({ ...d, path: path.isAbsolute(d.path) ? d.path : path.resolve(path.dirname(file), d.path) }));
}

export class DeviceRegistry {
  private readonly boards = new Map<string, Board>();

  constructor(
    private readonly config: Config,
    private readonly store: Store,
    private readonly opener: LinkOpener,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const entries = this.config.devices ?? readDevicesFile(this.config.devicesFile);
    for (const e of entries) this.add(e, false);
    if (this.config.discovery) await this.discover();
    this.log.info({ devices: this.boards.size }, 'devices configured');
  }

  /** A board outside the list (the golden host twin of a run): connected like the others, closed by its user. */
  transient(entry: DeviceEntry): Board {
    const board = this.make(entry, false);
    board.start();
    return board;
  }

  private make(entry: DeviceEntry, discovered: boolean): Board {
    return new Board(entry, {
      opener: this.opener,
      store: this.store,
      log: this.log,
      reconnectMinMs: this.config.reconnectMinMs,
      reconnectMaxMs: this.config.reconnectMaxMs,
      requestTimeoutMs: this.config.requestTimeoutMs,
      discovered,
    });
  }

  private add(entry: DeviceEntry, discovered: boolean): Board {
    const board = this.make(entry, discovered);
    this.boards.set(entry.id, board);
    board.start();
    return board;
  }

  /** Adds USB serial ports whose vendor id is one of our boards', unless a configured device uses them. */
  async discover(): Promise<DeviceEntry[]> {
    const taken = new Set<string>();
    for (const b of this.boards.values()) {
      taken.add(b.entry.path);
      try {
        taken.add(fs.realpathSync(b.entry.path));
      } catch {
        // a configured port that is unplugged right now
      }
    }
    const vids = new Set(this.config.discoveryVendorIds.map((v) => v.toLowerCase()));
    const found: DeviceEntry[] = [];
    for (const p of await SerialPort.list()) {
      if (!p.vendorId || !vids.has(p.vendorId.toLowerCase())) continue;
      if (taken.has(p.path)) continue;
      const id = `usb-${(p.serialNumber ?? path.basename(p.path)).replace(/[^A-Za-z0-9_.:-]/g, '_')}`.slice(0, 64);
      if (this.boards.has(id)) continue;
      const byId = p.pnpId ? `/dev/serial/by-id/${p.pnpId}` : p.path;
      const entry: DeviceEntry = {
        id,
        path: fs.existsSync(byId) ? byId : p.path,
        tags: ['discovered'],
        label: [p.manufacturer, p.serialNumber].filter(Boolean).join(' ') || undefined,
      };
      found.push(entry);
      this.add(entry, true);
    }
    if (found.length) this.log.info({ found: found.map((f) => f.id) }, 'discovered boards');
    return found;
  }

  list(): Board[] {
    return [...this.boards.values()];
  }

  get(id: string): Board {
    const b = this.boards.get(id);
    if (!b) throw Errors.DEVICE_NOT_FOUND(`no device '${id}'`);
    return b;
  }

  has(id: string): boolean {
    return this.boards.has(id);
  }

  /** Boards matching a fleet selector: explicit ids, board kind, or tag (all given criteria must hold). */
  select(sel: { devices?: string[]; board?: string; tag?: string }): Board[] {
    // explicit ids keep the caller's order (it decides which boards are canaries)
    const pool = sel.devices ? [...new Set(sel.devices)].map((id) => this.get(id)) : this.list();
    return pool.filter((b) => {
      if (sel.board && b.entry.board !== sel.board && b.hello?.board !== sel.board && b.entry.class !== sel.board) return false;
      if (sel.tag && !(b.entry.tags ?? []).includes(sel.tag)) return false;
      return true;
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.list().map((b) => b.close()));
  }
}
