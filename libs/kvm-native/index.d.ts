/**
 * @vmctl/kvm-native: a thin N-API layer over the Linux KVM API (Documentation/virt/kvm/api.rst,
 * include/uapi/linux/kvm.h). It mirrors the kernel's file-descriptor hierarchy, Kvm → Vm → Vcpu,
 * with one method per ioctl, and adds no policy. A failed ioctl throws KvmError.
 */

export class KvmError extends Error {
  /** Thrown by the addon; constructing one from JS is possible but rarely useful. */
  constructor(ioctl: string, errno: number, code: string, message?: string);
  /** the ioctl (or syscall) that failed, e.g. "KVM_CREATE_VM" */
  readonly ioctl: string;
  /** errno as a positive number */
  readonly errno: number;
  /** errno's name, e.g. "EINVAL" */
  readonly code: string;
}

export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export interface Regs {
  rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint;
  rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint;
  r8: bigint; r9: bigint; r10: bigint; r11: bigint;
  r12: bigint; r13: bigint; r14: bigint; r15: bigint;
  rip: bigint; rflags: bigint;
}

export interface Segment {
  base: bigint; limit: number; selector: number;
  type: number; present: number; dpl: number; db: number; s: number; l: number; g: number; avl: number;
  unusable: number;
}

export interface DTable { base: bigint; limit: number }

export interface Sregs {
  cs: Segment; ds: Segment; es: Segment; fs: Segment; gs: Segment; ss: Segment;
  tr: Segment; ldt: Segment;
  gdt: DTable; idt: DTable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint;
  efer: bigint; apicBase: bigint;
  /** interrupt_bitmap, 4 × u64 */
  interruptBitmap: bigint[];
}

export interface Fpu {
  fcw: number; fsw: number; ftwx: number; lastOpcode: number;
  lastIp: bigint; lastDp: bigint;
  /** Written by setFpu; the kernel's KVM_GET_FPU never fills it in (reads back 0). */
  mxcsr: number;
  /** 8 × 16 bytes */
  fpr: Uint8Array;
  /** 16 × 16 bytes */
  xmm: Uint8Array;
}

export interface MsrEntry { index: number; data: bigint }

export interface MemoryRegion {
  slot: number;
  flags: number;
  guestPhysAddr: number;
  memorySize: number;
  /** host virtual address of the backing memory (GuestRam.address, plus an offset) */
  userspaceAddr: bigint;
}

export interface IoEventFd {
  /** guest physical address (MMIO) or port (PIO) */
  addr: number;
  /** 0 (any width), 1, 2, 4 or 8 */
  len: number;
  fd: number;
  pio?: boolean;
  /** when set, only writes of this value signal the eventfd */
  datamatch?: bigint;
  deassign?: boolean;
}

export interface IrqFd {
  fd: number;
  gsi: number;
  resampleFd?: number;
  deassign?: boolean;
}

export type GsiRoute =
  | { gsi: number; type: 'irqchip'; irqchip: number; pin: number }
  | { gsi: number; type: 'msi'; addressLo: number; addressHi: number; data: number };

export interface Msi { addressLo: number; addressHi: number; data: number }

export class Kvm {
  /** Opens /dev/kvm (or `path`) with O_RDWR|O_CLOEXEC. */
  constructor(path?: string);
  readonly fd: number;
  /** KVM_GET_API_VERSION (12 on every kernel that matters) */
  getApiVersion(): number;
  /** KVM_CHECK_EXTENSION on the system fd */
  checkExtension(cap: number): number;
  /** KVM_GET_VCPU_MMAP_SIZE */
  getVcpuMmapSize(): number;
  /** KVM_GET_SUPPORTED_CPUID */
  getSupportedCpuid(): CpuidEntry[];
  /** KVM_GET_MSR_INDEX_LIST */
  getMsrIndexList(): number[];
  /** KVM_CREATE_VM */
  createVm(type?: number): Vm;
  close(): void;
}

export class Vm {
  readonly fd: number;
  /** KVM_CHECK_EXTENSION on the VM fd */
  checkExtension(cap: number): number;
  /** KVM_CREATE_VCPU; maps the vCPU's kvm_run page */
  createVcpu(id: number): Vcpu;
  /** KVM_SET_USER_MEMORY_REGION */
  setUserMemoryRegion(region: MemoryRegion): void;
  /** KVM_SET_TSS_ADDR */
  setTssAddr(addr: number): void;
  /** KVM_SET_IDENTITY_MAP_ADDR */
  setIdentityMapAddr(addr: number): void;
  /** KVM_CREATE_IRQCHIP (PIC, IOAPIC, and an in-kernel LAPIC for each vCPU) */
  createIrqchip(): void;
  /** KVM_CREATE_PIT2 */
  createPit2(flags?: number): void;
  /** KVM_IRQ_LINE */
  irqLine(irq: number, level: boolean): void;
  /** KVM_IOEVENTFD */
  ioeventfd(e: IoEventFd): void;
  /** KVM_IRQFD */
  irqfd(e: IrqFd): void;
  /** KVM_SET_GSI_ROUTING (replaces the whole table) */
  setGsiRouting(routes: GsiRoute[]): void;
  /** KVM_SIGNAL_MSI; returns the kernel's answer (>0 delivered, 0 blocked) */
  signalMsi(msi: Msi): number;
  /** KVM_GET_DIRTY_LOG: fills `bitmap` with one bit per 4 KiB page of memory slot `slot`
   * (bit i of byte i/8 = page i; the slot must carry KVM_MEM_LOG_DIRTY_PAGES) and clears the
   * kernel's log. The slot must have been set through this Vm and `bitmap` must hold its
   * pages rounded up to 64 bits (RangeError otherwise). */
  getDirtyLog(slot: number, bitmap: Uint8Array | BigUint64Array): void;
  close(): void;
}

export class Vcpu {
  /** Takes a vCPU fd created elsewhere in this process (e.g. by the main thread, for a
   * vCPU worker thread) and maps its own view of the kvm_run page. Does not take ownership. */
  static fromFd(fd: number, id: number): Vcpu;
  readonly fd: number;
  readonly id: number;
  /** The vCPU's kvm_run page, shared with the kernel. Read exit data in place. */
  readonly runBuffer: ArrayBuffer;
  /** KVM_RUN; returns kvm_run.exit_reason. When the call is interrupted by a signal
   * (EINTR, e.g. after `kickVcpu`) it returns KVM_EXIT_INTR (10). Other errors throw.
   * Records the calling thread so that kickVcpu can reach it. */
  run(): number;
  /** `run()` as a plain function bound to this vCPU: the same call, without looking up the
   * native object behind `this` on every exit. For the vCPU thread's hot loop. */
  runFunction(): () => number;
  getRegs(): Regs;
  setRegs(regs: Regs): void;
  getSregs(): Sregs;
  setSregs(sregs: Sregs): void;
  getFpu(): Fpu;
  setFpu(fpu: Fpu): void;
  /** KVM_GET_MSRS for these indices. Like the kernel, stops at the first MSR it cannot read:
   * the result has fewer entries than `indices` then. */
  getMsrs(indices: number[]): MsrEntry[];
  /** KVM_SET_MSRS; returns how many were set */
  setMsrs(entries: MsrEntry[]): number;
  /** KVM_GET_LAPIC: the 1024-byte register page */
  getLapic(): Uint8Array;
  /** KVM_SET_LAPIC */
  setLapic(regs: Uint8Array): void;
  /** KVM_SET_CPUID2 */
  setCpuid2(entries: CpuidEntry[]): void;
  /** KVM_GET_MP_STATE / KVM_SET_MP_STATE */
  getMpState(): number;
  setMpState(state: number): void;
  /** Forgets this vCPU for kickVcpu, detaches runBuffer (it becomes zero-length) and, for a
   * vCPU from createVcpu, closes the fd (fromFd views never close it). */
  close(): void;
}

/** Makes the vCPU with this fd leave KVM_RUN: sets kvm_run.immediate_exit and signals the
 * thread that last called run() on it (a real-time signal with an empty handler, installed
 * without SA_RESTART). Safe from any thread. Returns false if no thread has run it yet. */
export function kickVcpu(fd: number): boolean;
/** The signal number kickVcpu sends (SIGRTMIN+4). */
export const kickSignal: number;

export interface GuestRam {
  /** host virtual address of the mapping */
  address: bigint;
  size: number;
  /** views of the mapping, in order, each at most `chunkSize` bytes (≤ 1 GiB) */
  chunks: ArrayBuffer[];
  chunkSize: number;
}

/** mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE) `size` bytes (a multiple of 4096), starting
 * on a 2 MiB boundary and advised MADV_HUGEPAGE (so KVM can map it with large pages), and
 * return external ArrayBuffers over it. The mapping lives until munmapGuestRam. */
export function mmapGuestRam(size: number, chunkSize?: number): GuestRam;
/** The same mapping, viewed again from another thread of this process. Only addresses
 * returned by mmapGuestRam are accepted (others throw KvmError ENOENT). */
export function viewGuestRam(address: bigint): GuestRam;
/** Unmaps guest RAM. Views made by the calling thread are detached (zero-length); while
 * views made by another thread are still alive (that thread has not dropped them, or has not
 * ended), it throws KvmError EBUSY and unmaps nothing. Unknown addresses throw ENOENT. */
export function munmapGuestRam(address: bigint): void;

/** eventfd(2) with EFD_CLOEXEC|EFD_NONBLOCK (plus `flags`) */
export function eventfd(initval?: number, flags?: number): number;
/** reads the 8-byte counter; returns 0n when it would block */
export function eventfdRead(fd: number): bigint;
/** adds `value` (default 1) to the counter */
export function eventfdWrite(fd: number, value?: bigint | number): void;
export function closeFd(fd: number): void;

/** What an FdWatch waits for: readable, writable, or either. */
export type FdWatchEvents = 'r' | 'w' | 'rw';

/**
 * Calls `callback` on the thread that made it (the main thread or a worker_thread: a uv_poll_t
 * on that thread's libuv loop) whenever `fd` is ready: the way to hear from an eventfd
 * (KVM_IOEVENTFD) or a tap fd, which net.Socket and fs streams cannot read. Level-triggered:
 * while the fd stays ready, the callback comes again on every loop turn, so read until -1/0n
 * (readv, eventfdRead) or stop(). Created started and ref'd. From watchFd() only.
 */
export class FdWatch {
  readonly fd: number;
  readonly events: FdWatchEvents;
  /** polling (started, not stopped, closed, or stopped by a poll error) */
  readonly active: boolean;
  /** the callback given to watchFd (held by the object, so the GC sees it) */
  readonly callback: (this: FdWatch, events: number) => void;
  /** Polls again after stop(). Throws KvmError uv_poll_init EEXIST if this thread polls the
   * fd by other means meanwhile, uv_poll_start EBADF after close(). */
  start(): void;
  /** Stops polling and releases the libuv handle: no callback comes after it returns (not
   * even one already pending in this loop turn), and the fd may be closed right after.
   * Call stop() or close() before closing the fd. */
  stop(): void;
  /** Changes what it waits for (also while active). */
  update(events: FdWatchEvents): void;
  /** Keep the thread's loop alive while active (the default), like a Node handle. */
  ref(): this;
  /** Let the thread end (or the worker exit) even while this watch is active. */
  unref(): this;
  hasRef(): boolean;
  /** stop(), for good: start() throws afterwards. A dropped watch that is not active is
   * collected like any object; an active one is kept alive by its loop. */
  close(): void;
}

/**
 * Starts watching `fd` on the calling thread's loop. `callback(events)` gets, as a small
 * integer (no allocation), UV_READABLE | UV_WRITABLE bits (constants.UV_*), or a negative
 * errno when polling failed (-9, EBADF, for EPOLLERR: e.g. a pipe whose reader is gone or a
 * tap whose device was deleted); the watch is then stopped. `this` is the FdWatch. Runs
 * through napi_make_callback: nextTicks and promise reactions run after it, async_hooks see
 * an "FdWatch" resource, and a throw is an uncaught exception of the thread.
 * Sets O_NONBLOCK on the fd. One active watch per fd per thread: a second one throws KvmError
 * uv_poll_init EEXIST; so do fds a Node handle of this thread polls. Regular files cannot be
 * watched (EPERM). Watches end with their thread (worker exit/terminate) cleanly.
 */
export function watchFd(fd: number, events: FdWatchEvents, callback: (this: FdWatch, events: number) => void): FdWatch;

export interface TapOptions {
  /** IFF_VNET_HDR: every frame is prefixed by a virtio-net header (10 bytes until
   * tapSetVnetHdrSize; virtio 1.x wants 12) */
  vnetHdr?: boolean;
  /** IFF_MULTI_QUEUE: open the same name again for more queues */
  multiQueue?: boolean;
}

/**
 * Opens /dev/net/tun (O_RDWR|O_NONBLOCK|O_CLOEXEC) and attaches it (TUNSETIFF,
 * IFF_TAP|IFF_NO_PI plus the options) to the tap `name` in the caller's network namespace,
 * creating it if needed (not persistent: it goes with its last fd). `name` is at most 15
 * bytes; "" or "tap%d" lets the kernel choose. Returns the fd and the device's name. Read
 * and write one frame per readv/writev call.
 */
export function tapOpen(name: string, opts?: TapOptions): { fd: number; name: string };
/** TUNSETOFFLOAD: TUN_F_* flags of what the reader (the guest) handles. TSO/UFO need
 * TUN_F_CSUM; unknown flags are EINVAL. */
export function tapSetOffload(fd: number, flags: number): void;
/** TUNSETVNETHDRSZ (at least 10; 12 for virtio 1.x's virtio_net_hdr_v1) */
export function tapSetVnetHdrSize(fd: number, size: number): void;
/** TUNGETVNETHDRSZ */
export function tapGetVnetHdrSize(fd: number): number;
/** TUNSETQUEUE: attach (true) or detach (false) this queue of a multi-queue tap */
export function tapSetQueue(fd: number, attached: boolean): void;
/** TUNGETFEATURES: the IFF_* flags this kernel's TUNSETIFF takes */
export function tapGetFeatures(): number;

/**
 * Scatter/gather I/O straight between `fd` and JS memory: each buffer's bytes (its backing
 * store from byteOffset, byteLength bytes; guest RAM views included) become one iovec, with
 * no copy. Synchronous, on the calling thread. At most constants.IOV_MAX buffers (RangeError
 * above). A detached buffer counts as empty. Return the bytes transferred (0 at end of file),
 * or -1 when the fd is non-blocking and not ready (EAGAIN). Other errors throw KvmError with
 * the syscall's name (`ioctl: 'readv'`...). Short transfers are the caller's to finish.
 */
export function readv(fd: number, buffers: readonly ArrayBufferView[]): number;
export function writev(fd: number, buffers: readonly ArrayBufferView[]): number;
/** readv/writev at a file offset (disk images); the fd's position does not move. */
export function preadv(fd: number, buffers: readonly ArrayBufferView[], offset: number | bigint): number;
export function pwritev(fd: number, buffers: readonly ArrayBufferView[], offset: number | bigint): number;
/** fdatasync(2) (a virtio-blk flush) */
export function fdatasync(fd: number): void;
/** fallocate(2): mode FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE to discard,
 * FALLOC_FL_ZERO_RANGE (|KEEP_SIZE) to write zeroes, 0 to allocate */
export function fallocate(fd: number, mode: number, offset: number | bigint, len: number | bigint): void;

/** Where the fields of an io_uring's rings lie in their mappings (io_uring_params' sq_off and cq_off). */
export interface IoUringSqOffsets { head: number; tail: number; ringMask: number; ringEntries: number; flags: number; dropped: number; array: number }
export interface IoUringCqOffsets { head: number; tail: number; ringMask: number; ringEntries: number; overflow: number; cqes: number }

/** An io_uring instance: its fd and its three mappings (each unmapped when its ArrayBuffer is collected). */
export interface IoUring {
  /** O_CLOEXEC; close with closeFd once nothing is in flight */
  fd: number;
  /** IORING_FEAT_* the kernel reported */
  features: number;
  sqEntries: number;
  cqEntries: number;
  /** the submission queue ring (head, tail, mask, array of SQE indices) */
  sq: ArrayBuffer;
  /** the completion queue ring (head, tail, mask, CQEs) */
  cq: ArrayBuffer;
  /** the submission queue entries, ioUringConstants.SQE_SIZE bytes each */
  sqes: ArrayBuffer;
  sqOff: IoUringSqOffsets;
  cqOff: IoUringCqOffsets;
}

/** io_uring_setup(2) with `entries` SQEs (and `cqEntries` CQEs: IORING_SETUP_CQSIZE). Throws
 * KvmError io_uring_setup (ENOSYS, EPERM where io_uring is disabled or filtered). */
export function ioUringSetup(entries: number, cqEntries?: number): IoUring;
/** io_uring_enter(2) without a signal mask: the kernel's result (SQEs consumed), or -errno.
 * Never throws. */
export function ioUringEnter(fd: number, toSubmit: number, minComplete: number, flags: number): number;
/** Blocks until `minComplete` CQEs wait (IORING_ENTER_GETEVENTS with a timeout through
 * IORING_ENTER_EXT_ARG): 0, -ETIME (62) after `timeoutMs`, or another -errno (EINTR: call again). */
export function ioUringWait(fd: number, minComplete: number, timeoutMs: number): number;
/** IORING_REGISTER_EVENTFD: `eventfd` is signalled for every completion. */
export function ioUringRegisterEventfd(fd: number, eventfd: number): void;
/** IORING_REGISTER_IOWQ_MAX_WORKERS: caps the kernel's worker threads for this ring (0 keeps
 * a cap); returns the previous [bounded, unbounded]. */
export function ioUringRegisterIowqMaxWorkers(fd: number, bounded: number, unbounded: number): [number, number];
/** From include/uapi/linux/io_uring.h: opcodes, flags, features, and the byte offsets of the
 * SQE/CQE fields (offsetof on the build host's headers). */
export const ioUringConstants: {
  IORING_OP_NOP: number; IORING_OP_POLL_ADD: number; IORING_OP_READV: number; IORING_OP_WRITEV: number; IORING_OP_FSYNC: number;
  IORING_OP_FALLOCATE: number; IORING_OP_READ: number; IORING_OP_WRITE: number;
  IOSQE_IO_DRAIN: number; IOSQE_IO_LINK: number; IOSQE_ASYNC: number;
  IORING_FSYNC_DATASYNC: number; IORING_ENTER_GETEVENTS: number; RWF_NOWAIT: number; POLLIN: number; POLLOUT: number;
  IORING_FEAT_SINGLE_MMAP: number; IORING_FEAT_NODROP: number; IORING_FEAT_SUBMIT_STABLE: number; IORING_FEAT_EXT_ARG: number;
  SQE_SIZE: number; SQE_OPCODE: number; SQE_FLAGS: number; SQE_IOPRIO: number; SQE_FD: number; SQE_OFF: number;
  SQE_ADDR: number; SQE_LEN: number; SQE_OP_FLAGS: number; SQE_USER_DATA: number;
  CQE_SIZE: number; CQE_USER_DATA: number; CQE_RES: number; CQE_FLAGS: number;
  IOVEC_SIZE: number; UIO_MAXIOV: number;
};
/** mmap(MAP_PRIVATE|MAP_ANONYMOUS) of `size` bytes (a multiple of 4096, ≤ 1 GiB): memory whose
 * address may be handed to the kernel (iovec arrays). Unmapped when `buffer` is collected. */
export function mmapAnonymous(size: number): { buffer: ArrayBuffer; address: bigint };
/** The host address of an ArrayBuffer's memory (a Number: user addresses are below 2^47). It
 * never moves and stays valid while the buffer lives. For handing guest RAM to io_uring. */
export function arrayBufferAddress(buffer: ArrayBuffer): number;

/** Constants from include/uapi/linux/kvm.h (and if_tun.h, falloc.h, libuv's uv.h) */
export const constants: {
  KVM_API_VERSION: number;
  KVM_EXIT_UNKNOWN: number; KVM_EXIT_EXCEPTION: number; KVM_EXIT_IO: number; KVM_EXIT_HYPERCALL: number;
  KVM_EXIT_DEBUG: number; KVM_EXIT_HLT: number; KVM_EXIT_MMIO: number; KVM_EXIT_IRQ_WINDOW_OPEN: number;
  KVM_EXIT_SHUTDOWN: number; KVM_EXIT_FAIL_ENTRY: number; KVM_EXIT_INTR: number;
  KVM_EXIT_SET_TPR: number; KVM_EXIT_TPR_ACCESS: number; KVM_EXIT_NMI: number;
  KVM_EXIT_INTERNAL_ERROR: number; KVM_EXIT_SYSTEM_EVENT: number;
  KVM_EXIT_IO_IN: number; KVM_EXIT_IO_OUT: number;
  KVM_SYSTEM_EVENT_SHUTDOWN: number; KVM_SYSTEM_EVENT_RESET: number; KVM_SYSTEM_EVENT_CRASH: number;
  KVM_CAP_IRQCHIP: number; KVM_CAP_USER_MEMORY: number; KVM_CAP_SET_TSS_ADDR: number;
  KVM_CAP_EXT_CPUID: number; KVM_CAP_NR_VCPUS: number; KVM_CAP_MAX_VCPUS: number;
  KVM_CAP_PIT2: number; KVM_CAP_IOEVENTFD: number; KVM_CAP_IRQFD: number; KVM_CAP_IRQ_ROUTING: number;
  KVM_CAP_SIGNAL_MSI: number; KVM_CAP_IMMEDIATE_EXIT: number; KVM_CAP_NR_MEMSLOTS: number;
  KVM_CAP_READONLY_MEM: number; KVM_CAP_SPLIT_IRQCHIP: number; KVM_CAP_X2APIC_API: number; KVM_CAP_TSC_DEADLINE_TIMER: number;
  KVM_MP_STATE_RUNNABLE: number; KVM_MP_STATE_UNINITIALIZED: number; KVM_MP_STATE_INIT_RECEIVED: number;
  KVM_MP_STATE_HALTED: number; KVM_MP_STATE_SIPI_RECEIVED: number;
  KVM_MEM_LOG_DIRTY_PAGES: number; KVM_MEM_READONLY: number;
  KVM_IRQCHIP_PIC_MASTER: number; KVM_IRQCHIP_PIC_SLAVE: number; KVM_IRQCHIP_IOAPIC: number;
  KVM_PIT_SPEAKER_DUMMY: number;
  /** kvm_run field offsets (offsetof in the addon). RUN_IO_DATA_OFFSET is the offset of the u64
   * field io.data_offset; the PIO data itself is at runBuffer[that field's value]. */
  RUN_IMMEDIATE_EXIT: number; RUN_EXIT_REASON: number;
  RUN_IO_DIRECTION: number; RUN_IO_SIZE: number; RUN_IO_PORT: number; RUN_IO_COUNT: number; RUN_IO_DATA_OFFSET: number;
  RUN_MMIO_PHYS_ADDR: number; RUN_MMIO_DATA: number; RUN_MMIO_LEN: number; RUN_MMIO_IS_WRITE: number;
  RUN_SYSTEM_EVENT_TYPE: number;
  RUN_INTERNAL_SUBERROR: number;
  RUN_FAIL_ENTRY_REASON: number;
  /** TUNSETIFF flags (tapOpen sets them; tapGetFeatures answers with them) */
  IFF_TAP: number; IFF_NO_PI: number; IFF_VNET_HDR: number; IFF_MULTI_QUEUE: number;
  /** tapSetOffload flags */
  TUN_F_CSUM: number; TUN_F_TSO4: number; TUN_F_TSO6: number; TUN_F_TSO_ECN: number; TUN_F_UFO: number;
  /** fallocate modes */
  FALLOC_FL_KEEP_SIZE: number; FALLOC_FL_PUNCH_HOLE: number; FALLOC_FL_ZERO_RANGE: number;
  /** the most buffers readv/writev/preadv/pwritev take (1024) */
  IOV_MAX: number;
  /** FdWatch callback bits */
  UV_READABLE: number; UV_WRITABLE: number;
};
