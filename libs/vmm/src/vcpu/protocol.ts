import type { BusRange } from '../bus/io-bus.js';

/** Port routes inside a vCPU thread. */
export const ROUTE_NONE = 0;
/** a device on the main thread: forwarded through the mailbox */
export const ROUTE_REMOTE = 1;
/** a device served inside the vCPU thread itself */
export const ROUTE_LOCAL = 2;

/** What the main thread hands a vCPU thread. */
export interface VcpuThreadData {
  fd: number;
  id: number;
  mailbox: SharedArrayBuffer;
  pioRemote: BusRange[];
  mmioRemote: BusRange[];
  debugExitPort?: number;
}

/** What a vCPU thread reports; each ends its run loop. */
export type VcpuThreadMessage =
  | { type: 'stopped' }
  | { type: 'debug-exit'; code: number }
  | { type: 'shutdown' }
  | { type: 'system-event'; event: number }
  | { type: 'failed'; exitReason: number; detail: string; rip: string };
