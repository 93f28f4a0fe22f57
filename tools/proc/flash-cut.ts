// Power cuts between flash operations, injected from outside the firmware:
// breakpoints on the flash driver's erase and write entries (QEMU's gdbstub)
// count the operations a request makes, and at the chosen one the machine is
// reset once that operation has returned, or while it writes a given address
// (a torn operation). The image is the ordinary build; nothing in it knows.
import { REG } from './gdb-remote.js';
import { SIMFLASH_ADDR, type ZephyrQemu } from './zephyr-qemu.js';

export interface FlashOp {
  kind: 'erase' | 'write';
  /** Offset in the flash device (the partition's offset included). */
  offset: number;
  len: number;
  /** The driver's return value (0: done), when the run went past its return. */
  rc?: number;
}

/** Where a run is cut: after operation `afterOp` (1-based) returned, or in
 * operation `inOp` when it writes the flash byte at device offset `atByte` (torn). */
export type Cut = { afterOp: number } | { inOp: number; atByte: number };

/** The entries of the driver's erase and write (the Zephyr flash simulator on mps2:
 * flash_sim_erase(dev, offset, len), flash_sim_write(dev, offset, data, len)). */
export interface FlashEntries {
  erase: number;
  write: number;
}

export class FlashCutter {
  readonly ops: FlashOp[] = [];
  private watching: number | null = null;

  constructor(
    private readonly q: ZephyrQemu,
    private readonly entries: FlashEntries,
  ) {}

  /** With the target stopped: arms the breakpoints and lets it run. */
  async arm(): Promise<void> {
    const { gdb } = this.q;
    await gdb.setBreakpoint(this.entries.erase);
    await gdb.setBreakpoint(this.entries.write);
    await gdb.resume();
  }

  /**
   * Follows the run, recording each operation, until `work` settles (returns
   * false: no cut; breakpoints removed, the target left running) or the cut
   * came (returns true: the machine was reset there and runs again, unwatched).
   */
  async follow(work: Promise<unknown>, cut?: Cut, timeoutMs = 120_000): Promise<boolean> {
    const { gdb } = this.q;
    const settled = work.then(
      () => 'settled' as const,
      () => 'settled' as const,
    );
    const end = Date.now() + timeoutMs;
    for (;;) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no cut and no end of the work within ${timeoutMs} ms (${this.ops.length} flash operations)`);
      const stop = await Promise.race([gdb.stopped(left), settled]);
      if (stop === 'settled') {
        await gdb.interrupt();
        await this.disarm();
        await gdb.resume();
        return false;
      }
      if (stop === null) continue;
      if (/watch:/.test(stop.raw)) {
        await this.reset();
        return true;
      }
      const pc = await gdb.readRegister(REG.pc);
      const r1 = await gdb.readRegister(1);
      if (pc === this.entries.erase) this.ops.push({ kind: 'erase', offset: r1, len: await gdb.readRegister(2) });
      else if (pc === this.entries.write) this.ops.push({ kind: 'write', offset: r1, len: await gdb.readRegister(3) });
      else throw new Error(`stopped at 0x${pc.toString(16)}, not at a flash entry: ${stop.raw}`);
      if (cut && 'afterOp' in cut && this.ops.length === cut.afterOp) {
        // run the operation to its return, then cut
        const ret = (await gdb.readRegister(REG.lr)) & ~1;
        await gdb.setBreakpoint(ret);
        const back = await gdb.cont(30_000);
        if (!back) throw new Error(`flash operation ${cut.afterOp} did not return within 30 s`);
        const at = await gdb.readRegister(REG.pc);
        if (at !== ret) throw new Error(`expected the return of operation ${cut.afterOp} at 0x${ret.toString(16)}, stopped at 0x${at.toString(16)}`);
        this.ops[this.ops.length - 1].rc = (await gdb.readRegister(0)) | 0;
        await gdb.clearBreakpoint(ret);
        await this.reset();
        return true;
      }
      if (cut && 'inOp' in cut && this.ops.length === cut.inOp) {
        // armed only now: the erase before it writes that byte too
        await gdb.setWriteWatchpoint(SIMFLASH_ADDR + cut.atByte, 1);
        this.watching = SIMFLASH_ADDR + cut.atByte;
      }
      await gdb.resume();
    }
  }

  private async disarm(): Promise<void> {
    const { gdb } = this.q;
    await gdb.clearBreakpoint(this.entries.erase);
    await gdb.clearBreakpoint(this.entries.write);
    if (this.watching !== null) await gdb.clearWriteWatchpoint(this.watching, 1);
    this.watching = null;
  }

  /** The cut: QEMU's system reset, as the monitor's `system_reset` (the flash's RAM keeps its bytes). */
  private async reset(): Promise<void> {
    const { gdb } = this.q;
    await this.disarm();
    await gdb.monitor('system_reset');
    await gdb.resume();
  }
}
