// Work-around for @serialport/bindings-cpp 13 on Linux: when a write waits on
// EAGAIN, its poller re-arms only UV_WRITABLE and stops reporting readable, so
// a board blocked writing its answers to us never drains our write (full-duplex
// stall). The window's byte budget keeps writes small enough not to block; if
// one still waits, re-arming UV_READABLE | UV_WRITABLE lets reads go on without
// losing the writable wait. Measured over a PTY to the twin (max_frame 16384,
// window 32, reads and samples at once): 3 of 8 runs stalled with neither
// guard, 0 of 8 with either.
import type { Duplex } from 'node:stream';

const UV_READABLE_WRITABLE = 0b0011;
const NUDGE_MS = 20;

/** Re-arms a serialport stream's poller for reads every 20 ms while one of our writes is pending. */
export class ReadNudge {
  private writesPending = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly stream: Duplex,
    private readonly enabled: boolean,
  ) {}

  /** A write went to the stream; call writeDone() from its callback. */
  writeStarted(): void {
    this.writesPending++;
    this.arm();
  }

  writeDone(): void {
    this.writesPending--;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.timer || !this.enabled) return;
    this.timer = setInterval(() => {
      if (this.writesPending === 0) return this.stop();
      const poller = (this.stream as unknown as { port?: { poller?: { poll?(flags: number): void } } }).port?.poller;
      try {
        poller?.poll?.(UV_READABLE_WRITABLE);
      } catch {
        // a poller of a closed port
      }
    }, NUDGE_MS);
    this.timer.unref?.();
  }
}
