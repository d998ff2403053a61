import type { BusRange } from '../bus/io-bus.js';

/** Port routes inside a vCPU thread. */
export const ROUTE_NONE = 0;
/** a device on the main thread: forwarded through the mailbox */
export const ROUTE_REMOTE = 1;
/** a device served inside the vCPU thread itself */
export const ROUTE_LOCAL = 2;
/** a main-thread device register whose value the device mirrors into shared memory: a
 * one-byte read is answered from the mirror, everything else goes through the mailbox */
export const ROUTE_MIRROR = 3;
/** a main-thread device port whose writes change no mirrored register (see PortMirror) */
export const ROUTE_REMOTE_QUIET = 4;

/**
 * A read-only register mirrored for the vCPU threads: `cells[index]` holds the value a read
 * would return, or -1 while a read must reach the device (it would change state).
 */
export interface PortMirror {
  port: number;
  cells: SharedArrayBuffer;
  index: number;
  /** ports whose writes leave the mirrored value as it is (the UART's THR for its LSR): the
   * vCPU does not wait for them to be applied before it reads the mirror. With several
   * mirrors, only a port every one of them lists is treated so. */
  quietWrites: number[];
}

/** What the main thread hands a vCPU thread. */
export interface VcpuThreadData {
  fd: number;
  id: number;
  mailbox: SharedArrayBuffer;
  /** posted writes not yet applied, across every vCPU (createWriteCounter) */
  writeCounter?: SharedArrayBuffer;
  pioRemote: BusRange[];
  mmioRemote: BusRange[];
  pioMirrors: PortMirror[];
  debugExitPort?: number;
}

/** What a vCPU thread reports; each ends its run loop. */
export type VcpuThreadMessage =
  | { type: 'stopped' }
  | { type: 'debug-exit'; code: number }
  | { type: 'shutdown' }
  | { type: 'system-event'; event: number }
  | { type: 'failed'; exitReason: number; detail: string; rip: string };
