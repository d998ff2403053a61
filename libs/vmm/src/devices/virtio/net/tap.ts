/**
 * A tap device as virtio-net's backend (Linux Documentation/networking/tuntap.rst).
 *
 * Opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and TUNSETVNETHDRSZ 12, so every frame read
 * or written carries the `virtio_net_hdr` of virtio 1.x (`num_buffers` included) in front:
 * the device passes headers through with no translation. TUNSETOFFLOAD is set from the
 * GUEST_* features the driver accepted (`tunOffloadFlags`), so the tap hands the guest
 * partial checksums and GSO frames only when it takes them; without it, the kernel
 * checksums and segments before the tap. The other direction needs no setting: a tap takes
 * any header the kernel understands on write.
 *
 * Readiness comes from one FdWatch (a uv_poll_t on the calling thread's loop, level-triggered)
 * whose events follow the device's interest: 'r' while the guest has receive buffers, 'w'
 * while a transmit waits for room, stopped when neither (libuv allows one watch per fd per
 * loop, hence one watch for both).
 *
 * The fd is non-blocking (tapOpen); readv/writev move one frame per call and answer -1
 * when they would block. Where the kernel has io_uring, frames go through two rings instead
 * (`tap-uring.ts`: `txRing`, `rxRing`): a turn's packets, or the frames waiting, in one
 * system call instead of a writev or readv each. The tap is not persistent: it disappears with its last fd, so the
 * owner of a TapBackend keeps it open for as long as the link should exist (across a
 * machine's rebuild on reset, say) and closes it at the end.
 */
import type { FdWatch, FdWatchEvents } from '@vmctl/kvm-native';
import { VmmError } from '../../../errors.js';
import * as kvm from '../../../kvm.js';
import { NO_OFFLOADS, type NetBackend, type NetBackendHandler, type NetOffloads, type NetRxRing, type NetTxRing } from './backend.js';
import { TapRxRing, TapTxRing } from './tap-uring.js';

/** struct virtio_net_hdr_v1: virtio 1.x's header, num_buffers included (§5.1.6). */
export const TAP_VNET_HDR_SIZE = 12;

/** The system calls a TapBackend makes: libs/kvm-native's, unless a test passes others. */
export interface TapSys {
  tapOpen: typeof kvm.tapOpen;
  tapSetVnetHdrSize: typeof kvm.tapSetVnetHdrSize;
  tapSetOffload: typeof kvm.tapSetOffload;
  readv: typeof kvm.readv;
  writev: typeof kvm.writev;
  watchFd: (fd: number, events: FdWatchEvents, callback: (events: number) => void) => Pick<FdWatch, 'start' | 'stop' | 'update' | 'close' | 'active'>;
  closeFd: typeof kvm.closeFd;
  constants: Pick<typeof kvm.constants, 'TUN_F_CSUM' | 'TUN_F_TSO4' | 'TUN_F_TSO6' | 'TUN_F_TSO_ECN' | 'TUN_F_UFO' | 'IOV_MAX' | 'UV_READABLE' | 'UV_WRITABLE'>;
}

const NATIVE: TapSys = {
  tapOpen: kvm.tapOpen,
  tapSetVnetHdrSize: kvm.tapSetVnetHdrSize,
  tapSetOffload: kvm.tapSetOffload,
  readv: kvm.readv,
  writev: kvm.writev,
  watchFd: kvm.watchFd,
  closeFd: kvm.closeFd,
  constants: kvm.constants,
};

/**
 * The TUN_F_* flags of TUNSETOFFLOAD for the offloads the guest accepts. TSO, ECN and UFO
 * only with CSUM (the kernel refuses them alone, and virtio-net's GUEST_TSO4/6 and
 * GUEST_UFO require GUEST_CSUM, §5.1.3.1); ECN only with TSO.
 */
export function tunOffloadFlags(o: Readonly<NetOffloads>, C: TapSys['constants'] = kvm.constants): number {
  if (!o.csum) return 0;
  let f = C.TUN_F_CSUM;
  if (o.tso4) f |= C.TUN_F_TSO4;
  if (o.tso6) f |= C.TUN_F_TSO6;
  if (o.ecn && (o.tso4 || o.tso6)) f |= C.TUN_F_TSO_ECN;
  if (o.ufo) f |= C.TUN_F_UFO;
  return f;
}

export class TapBackend implements NetBackend {
  /** the interface's name (in the namespace the VMM runs in) */
  readonly name: string;
  readonly guestOffloads: Readonly<NetOffloads>;
  readonly hostOffloads: Readonly<NetOffloads>;
  readonly maxBuffers: number;

  readonly #sys: TapSys;
  #fd: number;
  #handler: NetBackendHandler | undefined;
  #watch: ReturnType<TapSys['watchFd']> | undefined;
  #read = false;
  #write = false;
  #failed = false;
  #txRing: TapTxRing | undefined;
  #rxRing: TapRxRing | undefined;
  /** why frames do not go through io_uring (undefined when they do) */
  readonly ringNote: string | undefined;

  /**
   * Opens (creating it if needed) the tap `name`, "" or "tap%d" letting the kernel choose,
   * with 12-byte virtio-net headers, and finds which offloads it can hand a guest. Throws
   * VmmError INVALID_CONFIG when it cannot (no CAP_NET_ADMIN, a name in use by another
   * kind of device, a tap already attached elsewhere).
   */
  static open(name: string, sys: TapSys = NATIVE, options: { rings?: boolean } = {}): TapBackend {
    let tap: { fd: number; name: string };
    try {
      tap = sys.tapOpen(name, { vnetHdr: true });
    } catch (err) {
      throw new VmmError('INVALID_CONFIG', `Cannot open tap "${name}": ${(err as Error).message}`, { cause: err });
    }
    try {
      sys.tapSetVnetHdrSize(tap.fd, TAP_VNET_HDR_SIZE);
      const offloads = probeOffloads(sys, tap.fd);
      // The rings need the real system calls: with a test's TapSys, readv and writev it is.
      const rings = sys === NATIVE && (options.rings ?? true);
      const tx = rings ? TapTxRing.open(tap.fd) : 'not asked for';
      const rx = rings && typeof tx !== 'string' ? TapRxRing.open(tap.fd) : typeof tx === 'string' ? tx : 'not asked for';
      return new TapBackend(tap.fd, tap.name, offloads, sys, tx, rx);
    } catch (err) {
      sys.closeFd(tap.fd);
      throw new VmmError('INVALID_CONFIG', `Cannot set up tap "${tap.name}": ${(err as Error).message}`, { cause: err });
    }
  }

  private constructor(fd: number, name: string, guestOffloads: NetOffloads, sys: TapSys, tx: TapTxRing | string, rx: TapRxRing | string) {
    this.#fd = fd;
    if (typeof tx !== 'string') this.#txRing = tx;
    if (typeof rx !== 'string') this.#rxRing = rx;
    this.ringNote = typeof tx === 'string' ? tx : typeof rx === 'string' ? rx : undefined;
    this.name = name;
    this.#sys = sys;
    this.guestOffloads = Object.freeze(guestOffloads);
    // On write a tap takes every header the kernel's virtio_net_hdr_to_skb() understands:
    // partial checksums, TCPv4/v6 with or without ECN, and UDP (UFO) since the kernel's
    // "accept UFO datagrams from tuntap" (4.14.x), the era of its TUN_F_UFO, probed above.
    this.hostOffloads = Object.freeze({ csum: true, tso4: true, tso6: true, ecn: true, ufo: guestOffloads.ufo });
    this.maxBuffers = sys.constants.IOV_MAX;
  }

  get fd(): number {
    return this.#fd;
  }

  get txRing(): NetTxRing | undefined {
    const r = this.#txRing;
    return r !== undefined && r.usable && this.#fd >= 0 ? r : undefined;
  }

  get rxRing(): NetRxRing | undefined {
    const r = this.#rxRing;
    return r !== undefined && r.usable && this.#fd >= 0 ? r : undefined;
  }

  readv(buffers: readonly Uint8Array[]): number {
    return this.#sys.readv(this.#fd, buffers);
  }

  writev(buffers: readonly Uint8Array[]): number {
    return this.#sys.writev(this.#fd, buffers);
  }

  setOffloads(offloads: Readonly<NetOffloads>): void {
    if (this.#fd < 0) return;
    this.#sys.tapSetOffload(this.#fd, tunOffloadFlags(offloads, this.#sys.constants));
  }

  attach(handler: NetBackendHandler): void {
    this.#handler = handler;
  }

  detach(): void {
    this.setInterest(false, false);
    this.#handler = undefined;
  }

  setInterest(read: boolean, write: boolean): void {
    if (this.#fd < 0 || this.#failed) read = write = false;
    if (read === this.#read && write === this.#write && (this.#watch?.active ?? false) === (read || write)) return;
    this.#read = read;
    this.#write = write;
    if (!read && !write) {
      this.#watch?.stop();
      return;
    }
    const events: FdWatchEvents = read && write ? 'rw' : read ? 'r' : 'w';
    if (this.#watch === undefined) {
      this.#watch = this.#sys.watchFd(this.#fd, events, (ev) => this.#onEvents(ev));
      return;
    }
    this.#watch.update(events);
    if (!this.#watch.active) this.#watch.start();
  }

  /** Stops watching and closes the fd; the tap goes away with it (unless someone else holds it). */
  close(): void {
    if (this.#fd < 0) return;
    this.#watch?.close();
    this.#watch = undefined;
    this.#txRing?.close();
    this.#txRing = undefined;
    this.#rxRing?.close();
    this.#rxRing = undefined;
    this.#handler = undefined;
    this.#read = this.#write = false;
    this.#sys.closeFd(this.#fd);
    this.#fd = -1;
  }

  #onEvents(events: number): void {
    const h = this.#handler;
    if (events < 0) {
      // EPOLLERR (the tap was deleted): libuv stopped the watch; the link is gone for good.
      this.#failed = true;
      this.#read = this.#write = false;
      h?.failed(-events);
      return;
    }
    const C = this.#sys.constants;
    if (this.#write && (events & C.UV_WRITABLE) !== 0) h?.writable();
    if (this.#read && (events & C.UV_READABLE) !== 0) h?.readable();
  }
}

/**
 * Which offloads the tap can hand a guest: every TUN_F_* flag this kernel takes (UFO went
 * away in 4.14 and came back for virtio guests; very old kernels lack the rest). Leaves the
 * tap with none set: the device sets them when a driver is up.
 */
function probeOffloads(sys: TapSys, fd: number): NetOffloads {
  const candidates: NetOffloads[] = [
    { csum: true, tso4: true, tso6: true, ecn: true, ufo: true },
    { csum: true, tso4: true, tso6: true, ecn: true, ufo: false },
    { csum: true, tso4: false, tso6: false, ecn: false, ufo: false },
  ];
  let found: NetOffloads = { ...NO_OFFLOADS };
  for (const o of candidates) {
    try {
      sys.tapSetOffload(fd, tunOffloadFlags(o, sys.constants));
      found = o;
      break;
    } catch {
      // EINVAL: a flag this kernel does not know; try fewer.
    }
  }
  sys.tapSetOffload(fd, 0);
  return { ...found };
}
