/**
 * What virtio-net needs from the host side of its link: a place that takes and gives whole
 * Ethernet frames, each preceded by a 12-byte `virtio_net_hdr` (virtio 1.2 §5.1.6), and
 * tells the device thread when it can. A tap with IFF_VNET_HDR (`tap.ts`) is one; the unit
 * tests use an in-memory one (`fake-backend.ts`).
 */

/** The offloads of one direction, in virtio-net's terms (§5.1.3). */
export interface NetOffloads {
  /** partially checksummed packets (NEEDS_CSUM) */
  csum: boolean;
  /** TCP over IPv4 segmentation */
  tso4: boolean;
  /** TCP over IPv6 segmentation */
  tso6: boolean;
  /** TSO with the ECN (CWR) bit */
  ecn: boolean;
  /** UDP fragmentation */
  ufo: boolean;
}

export const NO_OFFLOADS: Readonly<NetOffloads> = Object.freeze({ csum: false, tso4: false, tso6: false, ecn: false, ufo: false });

/** Called on the device thread. None of them may throw. */
export interface NetBackendHandler {
  /** a frame may be waiting (while read interest is on; level-triggered: again next turn while one does) */
  readable(): void;
  /** the backend may take a frame again (while write interest is on) */
  writable(): void;
  /** the backend failed for good (e.g. the tap was deleted): `errno` positive */
  failed(errno: number): void;
}

/**
 * Transmission through a submission ring (a tap's io_uring): the device queues whole packets
 * during a turn and hands them to the kernel with one call, instead of one writev each. A
 * packet is the 12-byte header (copied into the ring's own memory: the device's copy is
 * checked and reused) and the frame's buffers, which stay in guest RAM: the kernel reads them
 * when the packet is written, so the device returns a chain to the driver only once its
 * packet is `done`.
 */
export interface NetTxRing {
  /**
   * Queues one packet under `token`: `buffers[0]` is the header, the rest the frame (views
   * of guest RAM). False when it cannot be queued now (the batch is full): flush() first.
   */
  queue(token: number, buffers: readonly Uint8Array[]): boolean;
  /**
   * Writes what is queued. `done(token, result)` comes for every packet written (bytes, or
   * -errno when the kernel refused it), in queue order; returns how many are still in flight,
   * whose `done` comes later through `onLateDone` (the tap was full). The device queues
   * nothing more until those are done.
   */
  flush(done: (token: number, result: number) => void): number;
  /** packets handed to the kernel and not yet done */
  readonly inFlight: number;
  /** set by the device: completions that came after flush() returned (on the device thread) */
  onLateDone: (token: number, result: number) => void;
  /** Blocks up to `timeoutMs` until nothing is in flight (before guest RAM goes away); true when so. */
  drainSync(timeoutMs: number): boolean;
}

/**
 * Reception through a submission ring (a tap's io_uring): the device queues one chain of
 * receive buffers per frame it may take, and one call reads as many frames as wait, in
 * order, into the first chains queued.
 */
export interface NetRxRing {
  /** the most chains one flush takes */
  readonly capacity: number;
  /** Queues a read of one frame into `buffers` (one chain's views of guest RAM); false when the batch is full. */
  queue(token: number, buffers: readonly Uint8Array[]): boolean;
  /**
   * Reads: `done(token, bytes)` for each chain that got a frame (header included; more than
   * the chain holds when the frame was longer and was cut), in queue order; returns how many
   * did. Usually the first ones queued; a frame that arrived meanwhile may follow a chain
   * that got none. Never blocks: a chain the kernel could fill later is never left with it.
   */
  flush(done: (token: number, bytes: number) => void): number;
}

export interface NetBackend {
  /** what the backend can hand the guest, if the guest accepts it (GUEST_* features) */
  readonly guestOffloads: Readonly<NetOffloads>;
  /** what the backend takes from the guest (CSUM, HOST_* features) */
  readonly hostOffloads: Readonly<NetOffloads>;
  /** the most buffers one readv/writev takes */
  readonly maxBuffers: number;
  /**
   * Reads one frame, header first, into `buffers` in order. Returns the bytes stored, or -1
   * when no frame waits. A frame longer than the buffers is cut to fit (the rest is lost),
   * so a caller that must know adds a spare buffer at the end. Throws on backend failure.
   */
  readv(buffers: readonly Uint8Array[]): number;
  /** Writes one frame, header first. Returns the bytes taken, or -1 when full for now. Throws when the frame is refused. */
  writev(buffers: readonly Uint8Array[]): number;
  /** The offloads the guest accepts: frames handed to it will use no others (TUNSETOFFLOAD). */
  setOffloads(offloads: Readonly<NetOffloads>): void;
  /** The device that gets readiness callbacks from now on (one at a time). */
  attach(handler: NetBackendHandler): void;
  /** No more callbacks, and no interest. */
  detach(): void;
  /** What to be told about. With neither, the backend is not polled at all. */
  setInterest(read: boolean, write: boolean): void;
  /** Ends the backend for good (for a tap: the interface goes away). Its owner calls it. */
  close(): void;
  /** where it has one, the batched transmit path the device uses instead of writev */
  readonly txRing?: NetTxRing;
  /** where it has one, the batched receive path the device uses instead of readv */
  readonly rxRing?: NetRxRing;
}
