/**
 * A vCPU thread: a worker_thread that runs one vCPU with a synchronous KVM_RUN loop.
 *
 * The loop allocates nothing per exit: exit data is read in place from the kvm_run page,
 * port and MMIO routing are table look-ups, and accesses to shared devices go through the
 * mailbox (posted writes, waited reads). Only rare events (stop, debug exit, shutdown,
 * errors) post a message to the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { VcpuClass, constants as K } from '../kvm.js';
import {
  MailboxProducer,
  MB_EXITS,
  MB_MISSED_MMIO,
  MB_MISSED_PIO,
  MB_PARKED,
  MB_PAUSE,
  MB_STOP,
} from './mailbox.js';
import { ROUTE_LOCAL, ROUTE_MIRROR, ROUTE_NONE, ROUTE_REMOTE, ROUTE_REMOTE_QUIET, type VcpuThreadData, type VcpuThreadMessage } from './protocol.js';
import { PioBus } from '../bus/io-bus.js';
import { PostCode } from '../devices/legacy/post-code.js';
import { DebugExit } from '../devices/legacy/debug-exit.js';

const port = parentPort!;

/**
 * Runs one vCPU until its loop ends. A thread may be spawned before its vCPU exists (to
 * overlap the thread's start-up with building the VM): it then waits for its data in a
 * message.
 */
function runVcpu(data: VcpuThreadData): void {
  const vcpu = VcpuClass.fromFd(data.fd, data.id);
  const mb = new MailboxProducer(data.mailbox, data.writeCounter);
  const ctl = new Int32Array(data.mailbox);

  const runOnce = vcpu.runFunction();
  const run = new Uint8Array(vcpu.runBuffer);
  const dv = new DataView(vcpu.runBuffer);

  // Views of the I/O data area for each access width, made once: KVM keeps data_offset fixed
  // for a vCPU, so these are rebuilt only if it ever moves.
  let ioViewsOffset = -1;
  const ioViews: Uint8Array[] = [];
  function ioView(off: number, size: number): Uint8Array {
    if (off !== ioViewsOffset) {
      ioViewsOffset = off;
      for (let n = 0; n <= 4; n++) ioViews[n] = run.subarray(off, off + n);
    }
    return ioViews[size]!;
  }

  // Devices that keep no state shared between vCPUs are served in this thread, with no
  // round trip to the device thread: the POST code port (each vCPU keeps its last code) and,
  // when a test asks for it, the debug-exit port.
  let debugExitCode = -1;
  const localBus = new PioBus();
  localBus.insert('post-code', 0x80, 1, new PostCode());
  if (data.debugExitPort !== undefined) {
    localBus.insert('debug-exit', data.debugExitPort, 4, new DebugExit({ onExit: (code) => { debugExitCode = code; } }));
  }

  // Port routing: one byte per port.
  const pioRoute = new Uint8Array(0x10000);
  for (const r of data.pioRemote) pioRoute.fill(ROUTE_REMOTE, r.base, r.base + r.size);
  for (const r of localBus.ranges()) pioRoute.fill(ROUTE_LOCAL, r.base, r.base + r.size);

  // Mirrored registers (the UART's LSR, which a console polls before every byte): a one-byte
  // read comes from shared memory when the device says the value holds, no other vCPU has a
  // posted write on its way, and every write of this vCPU that could change the value has
  // been applied (`barrier`; THR writes cannot). The answer is then the one a round trip
  // would give, and a console prints without ever waiting for the device thread.
  const mirrorPorts: number[] = [];
  const mirrorCells: Int32Array[] = [];
  const mirrorIndex: number[] = [];
  const mirrors = data.pioMirrors ?? [];
  // a port's writes are quiet only if they leave every mirrored value as it is
  const quietFor = new Map<number, number>();
  for (const m of mirrors) for (const q of m.quietWrites) quietFor.set(q, (quietFor.get(q) ?? 0) + 1);
  for (const [q, n] of quietFor) if (n === mirrors.length && pioRoute[q] === ROUTE_REMOTE) pioRoute[q] = ROUTE_REMOTE_QUIET;
  for (const m of mirrors) {
    pioRoute[m.port] = ROUTE_MIRROR;
    mirrorPorts.push(m.port);
    mirrorCells.push(new Int32Array(m.cells));
    mirrorIndex.push(m.index);
  }
  let barrier = mb.mark();
  /** The mirrored value of `port`, or -1 when the read must go to the device. */
  function mirrored(port: number): number {
    for (let i = 0; i < mirrorPorts.length; i++) {
      if (mirrorPorts[i] !== port) continue;
      return mb.othersSettled() && mb.applied(barrier) ? Atomics.load(mirrorCells[i]!, mirrorIndex[i]!) : -1;
    }
    return -1;
  }

  /** Posts a port write; unless it is quiet, mirrored reads wait until it is applied. */
  function postPio(p: number, size: number, off: number, quiet: boolean): void {
    mb.write(false, p, size, readIo(off, size), 0);
    if (!quiet) barrier = mb.mark();
  }

  // MMIO routing: sorted [base, end) pairs of ranges owned by the device thread.
  const mmioRanges = new Float64Array(data.mmioRemote.length * 2);
  data.mmioRemote
    .slice()
    .sort((a, b) => a.base - b.base)
    .forEach((r, i) => {
      mmioRanges[2 * i] = r.base;
      mmioRanges[2 * i + 1] = r.base + r.size;
    });

  function mmioRemote(addr: number): boolean {
    let lo = 0;
    let hi = (mmioRanges.length >> 1) - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (addr < mmioRanges[2 * mid]!) hi = mid - 1;
      else if (addr >= mmioRanges[2 * mid + 1]!) lo = mid + 1;
      else return true;
    }
    return false;
  }

  const EXIT_IO = K.KVM_EXIT_IO;
  const EXIT_MMIO = K.KVM_EXIT_MMIO;
  const EXIT_INTR = K.KVM_EXIT_INTR;
  const IO_OUT = K.KVM_EXIT_IO_OUT;
  const IO_DIRECTION = K.RUN_IO_DIRECTION;
  const IO_SIZE = K.RUN_IO_SIZE;
  const IO_PORT = K.RUN_IO_PORT;
  const IO_COUNT = K.RUN_IO_COUNT;
  const IO_DATA_OFFSET = K.RUN_IO_DATA_OFFSET;
  const MMIO_ADDR = K.RUN_MMIO_PHYS_ADDR;
  const MMIO_DATA = K.RUN_MMIO_DATA;
  const MMIO_LEN = K.RUN_MMIO_LEN;
  const MMIO_IS_WRITE = K.RUN_MMIO_IS_WRITE;
  const IMMEDIATE_EXIT = K.RUN_IMMEDIATE_EXIT;

  let exits = 0;
  let missedPio = 0;
  let missedMmio = 0;

  function send(msg: VcpuThreadMessage): void {
    Atomics.store(ctl, MB_EXITS, exits);
    Atomics.store(ctl, MB_MISSED_PIO, missedPio);
    Atomics.store(ctl, MB_MISSED_MMIO, missedMmio);
    port.postMessage(msg);
  }

  function readIo(off: number, size: number): number {
    return size === 1 ? run[off]! : size === 2 ? dv.getUint16(off, true) : dv.getUint32(off, true);
  }

  function writeIo(off: number, size: number, v: number): void {
    if (size === 1) run[off] = v;
    else if (size === 2) dv.setUint16(off, v, true);
    else dv.setUint32(off, v, true);
  }

  /** Handles one KVM_EXIT_IO. Returns false when the loop must end (debug exit). */
  function handleIo(): boolean {
    const out = run[IO_DIRECTION] === IO_OUT;
    const size = run[IO_SIZE]!;
    const p = dv.getUint16(IO_PORT, true);
    const count = dv.getUint32(IO_COUNT, true);
    // data_offset is a small offset into the kvm_run mapping; the high half is zero
    let off = dv.getUint32(IO_DATA_OFFSET, true);
    const route = pioRoute[p]!;
    for (let i = 0; i < count; i++, off += size) {
      if (route === ROUTE_REMOTE || route === ROUTE_REMOTE_QUIET) {
        if (out) postPio(p, size, off, route === ROUTE_REMOTE_QUIET);
        else writeIo(off, size, mb.read(false, p, size));
      } else if (route === ROUTE_MIRROR) {
        const v = out || size !== 1 ? -1 : mirrored(p);
        if (v >= 0) writeIo(off, 1, v);
        else if (out) postPio(p, size, off, false);
        else writeIo(off, size, mb.read(false, p, size));
      } else if (route === ROUTE_LOCAL) {
        const view = count === 1 ? ioView(off, size) : run.subarray(off, off + size);
        if (out) localBus.write(p, view);
        else localBus.read(p, view);
        if (debugExitCode >= 0) {
          send({ type: 'debug-exit', code: debugExitCode });
          return false;
        }
      } else if (route === ROUTE_NONE) {
        missedPio++;
        if (!out) writeIo(off, size, 0xffffffff);
      }
    }
    return true;
  }

  function handleMmio(): void {
    const addr = dv.getUint32(MMIO_ADDR, true) + dv.getUint32(MMIO_ADDR + 4, true) * 0x100000000;
    const len = dv.getUint32(MMIO_LEN, true);
    const write = run[MMIO_IS_WRITE] !== 0;
    if (!mmioRemote(addr)) {
      missedMmio++;
      if (!write) run.fill(0xff, MMIO_DATA, MMIO_DATA + 8);
      return;
    }
    if (write) {
      mb.write(true, addr, len, dv.getInt32(MMIO_DATA, true), dv.getInt32(MMIO_DATA + 4, true));
      barrier = mb.mark();
    } else {
      const lo = mb.read(true, addr, len);
      dv.setInt32(MMIO_DATA, lo, true);
      dv.setInt32(MMIO_DATA + 4, len > 4 ? mb.respHi() : 0, true);
    }
  }

  /** Waits outside KVM_RUN while the device thread keeps the vCPU paused. */
  function park(): void {
    Atomics.store(ctl, MB_EXITS, exits);
    Atomics.store(ctl, MB_PARKED, 1);
    Atomics.notify(ctl, MB_PARKED);
    while (Atomics.load(ctl, MB_PAUSE) !== 0 && Atomics.load(ctl, MB_STOP) === 0) {
      Atomics.wait(ctl, MB_PAUSE, 1, 1000);
    }
    Atomics.store(ctl, MB_PARKED, 0);
  }

  function loop(): void {
    for (;;) {
      let reason: number;
      try {
        reason = runOnce();
      } catch (err) {
        // An AP waiting for INIT/SIPI leaves KVM_RUN with EAGAIN when its INIT arrives; the
        // KVM API asks us to simply enter again.
        if ((err as { code?: string }).code === 'EAGAIN') continue;
        throw err;
      }
      exits++;
      if (reason === EXIT_IO) {
        if (!handleIo()) return;
      } else if (reason === EXIT_MMIO) {
        handleMmio();
      } else if (reason === EXIT_INTR) {
        run[IMMEDIATE_EXIT] = 0;
        if (Atomics.load(ctl, MB_PAUSE) !== 0) park();
        if (Atomics.load(ctl, MB_STOP) !== 0) {
          send({ type: 'stopped' });
          return;
        }
      } else if (reason === K.KVM_EXIT_SHUTDOWN) {
        // A triple fault: on a PC this resets the machine.
        send({ type: 'shutdown' });
        return;
      } else if (reason === K.KVM_EXIT_SYSTEM_EVENT) {
        const type = dv.getUint32(K.RUN_SYSTEM_EVENT_TYPE, true);
        send({ type: 'system-event', event: type });
        return;
      } else {
        const regs = vcpu.getRegs();
        send({
          type: 'failed',
          exitReason: reason,
          detail:
            reason === K.KVM_EXIT_INTERNAL_ERROR
              ? `internal error, suberror ${dv.getUint32(K.RUN_INTERNAL_SUBERROR, true)}`
              : reason === K.KVM_EXIT_FAIL_ENTRY
                ? `entry failed, hardware reason 0x${dv.getBigUint64(K.RUN_FAIL_ENTRY_REASON, true).toString(16)}`
                : `unexpected exit ${reason}`,
          rip: `0x${regs.rip.toString(16)}`,
        });
        return;
      }
    }
  }

  try {
    loop();
  } catch (err) {
    send({ type: 'failed', exitReason: -1, detail: err instanceof Error ? `${err.name}: ${err.message}` : String(err), rip: '' });
  }
}

if (workerData) runVcpu(workerData as VcpuThreadData);
else port.once('message', (data: VcpuThreadData) => runVcpu(data));
