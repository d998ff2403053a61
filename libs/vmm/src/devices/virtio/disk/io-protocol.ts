/**
 * The shared-memory protocol between a disk backend (on the device thread) and its I/O
 * thread (`io-worker.ts`). Everything lives in SharedArrayBuffers; nothing is posted per
 * request, so a request costs the device thread a few stores and, only when the I/O thread
 * sleeps, one `Atomics.notify`.
 *
 *   ctrl     Int32Array   the ring indices and flags below
 *   rings    Int32Array   submission ring [0, ring) and completion ring [ring, 2·ring) of
 *                        request tags; each index is free-running, the slot is `index & (ring-1)`
 *   slots    Float64Array per tag: op, file offset, segment count, result
 *   segments Float64Array per tag: `maxSegments` pairs of numbers (see each op)
 *
 * One producer and one consumer per ring: the device thread writes a tag's slot and
 * segments, then its tag in the submission ring, then `Atomics.store`s the submission tail;
 * the I/O thread runs requests in order, writes each result, its tag in the completion ring,
 * then stores the completion tail and notifies it. The atomic store and load of a tail order the plain
 * writes before it for the other side (the JS memory model's synchronizes-with). At most
 * `maxRequests` tags exist, so a ring of at least that many entries never overflows.
 */

/** ctrl: the next free entry of the submission ring (written by the device thread) */
export const IO_CTRL_SUB_TAIL = 0;
/** ctrl: the next free entry of the completion ring (written by the I/O thread) */
export const IO_CTRL_COMP_TAIL = 1;
/** ctrl: 1 while the I/O thread sleeps (or is about to) in Atomics.wait on SEQ */
export const IO_CTRL_IDLE = 2;
/** ctrl: 1 asks the I/O thread to end once the submission ring is empty */
export const IO_CTRL_STOP = 3;
/** ctrl: 1 once the I/O thread has mapped guest RAM and runs */
export const IO_CTRL_READY = 4;
/** ctrl: what the I/O thread sleeps on; the device thread adds 1 and notifies to wake it */
export const IO_CTRL_SEQ = 5;
export const IO_CTRL_WORDS = 8;

// Slot fields (Float64Array words per tag).
export const IO_SLOT_OP = 0;
/** byte offset in the image (reads and writes) */
export const IO_SLOT_OFFSET = 1;
/** segments used */
export const IO_SLOT_NSEG = 2;
/** bytes transferred (≥ 0) or -errno, written by the I/O thread */
export const IO_SLOT_RESULT = 3;
export const IO_SLOT_WORDS = 4;

// Operations. READ/WRITE segments are [host offset in guest RAM, length]; DISCARD and
// WRITE_ZEROES segments are [byte offset in the image, length]; FLUSH has none.
export const IO_OP_READ = 1;
export const IO_OP_WRITE = 2;
export const IO_OP_FLUSH = 3;
/** deallocate ranges (FALLOC_FL_PUNCH_HOLE); where the file system cannot, do nothing */
export const IO_OP_DISCARD = 4;
/** ranges read back as zeros afterwards (FALLOC_FL_ZERO_RANGE, else written zeros) */
export const IO_OP_WRITE_ZEROES = 5;
/** or'ed into a modifying op: fdatasync before completing it (write-through) */
export const IO_OP_SYNC = 0x100;

/** bytes of zeros per write where the file system cannot zero a range in place (no FALLOC_FL_ZERO_RANGE) */
export const IO_ZERO_CHUNK = 256 * 1024;

export const EIO = 5;
export const EFAULT = 14;
export const EOPNOTSUPP = 95;

/** What the I/O thread gets as workerData. */
export interface IoWorkerData {
  kind: 'vmctl-disk-io';
  fd: number;
  /** GuestRam.address of the guest RAM mapping the segments point into */
  ramAddress: bigint;
  ctrl: SharedArrayBuffer;
  rings: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  segments: SharedArrayBuffer;
  /** ring entries (a power of two) */
  ring: number;
  maxSegments: number;
}
