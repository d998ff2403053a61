/**
 * Wires a vmctl machine in one visible order and tears it down in reverse:
 *
 *   1. /dev/kvm and a VM, with the in-kernel irqchip (PIC, IOAPIC, LAPICs) and PIT
 *   2. guest RAM, mapped into the VM
 *   3. the legacy devices on the port I/O bus, wired to their IRQ lines; the PCI bus (config
 *      ports and ECAM) with its virtio devices, their MSI-X routes and notify eventfds, and
 *      the display, its video memory a memory slot of its own with dirty logging
 *   4. ACPI tables, then the kernel, initrd and boot information in guest memory
 *   5. the vCPUs: CPUID, LAPIC, entry state
 *   6. one thread per vCPU, started BSP first
 */
import { VmmError } from './errors.js';
import { KvmClass, constants as K, mmapGuestRam, munmapGuestRam, eventfd, eventfdRead, eventfdWrite, closeFd, watchFd, type Kvm, type Vm, type Vcpu } from './kvm.js';
import { GuestMemory } from './memory/guest-memory.js';
import {
  BOOT_GDT_ADDR,
  BOOT_PD_ADDR,
  BOOT_PDPT_ADDR,
  BOOT_PML4_ADDR,
  BOOT_STACK_TOP,
  KVM_IDENTITY_MAP_ADDR,
  KVM_TSS_ADDR,
  e820Map,
  ramRegions,
  MIN_RAM,
  MAX_RAM,
  PCI_CONFIG_IO_PORT,
  PCI_CONFIG_IO_SIZE,
  PCI_ECAM_BASE,
  PCI_ECAM_SIZE,
} from './memory/layout.js';
import { PioBus, MmioBus } from './bus/io-bus.js';
import type { IrqLine } from './bus/device.js';
import { Uart16550, UART_IER, UART_LCR, UART_LSR, UART_SCR, UART_THR } from './devices/legacy/uart16550.js';
import { I8042 } from './devices/legacy/i8042.js';
import { CmosRtc } from './devices/legacy/rtc.js';
import { Pm1Control } from './devices/legacy/pm1.js';
import { ResetControl } from './devices/legacy/reset-control.js';
import { writeAcpiTables } from './acpi/acpi.js';
import { PciBus, disjointRanges } from './pci/bus.js';
import { PciConfigIo } from './pci/config-io.js';
import { PciEcam } from './pci/ecam.js';
import { KvmMsiRouter, irqchipRoutes } from './pci/msi-router.js';
import { KvmIoEventRegistry } from './pci/ioevent.js';
import { VirtioPciDevice } from './devices/virtio/virtio-pci.js';
import { VirtioRng } from './devices/virtio/rng.js';
import { VirtioBlk } from './devices/virtio/blk.js';
import { RawDisk } from './devices/virtio/disk/raw.js';
import { VirtioNet } from './devices/virtio/net.js';
import type { NetBackend } from './devices/virtio/net/backend.js';
import { VirtioConsole } from './devices/virtio/console.js';
import { VirtioTablet } from './devices/virtio/input.js';
import type { VirtioDevice } from './devices/virtio/device.js';
import { BochsDisplay, DEFAULT_VRAM_SIZE, VBE_DISPI_IOPORT_INDEX, VBE_DISPI_IOPORT_WINDOW } from './devices/display/bochs-display.js';
import type { Framebuffer } from './devices/display/framebuffer.js';
import type { GuestInput } from './vnc/input.js';
import type { DiskOption } from './device-options.js';
import { isElf, loadPvhElf } from './loader/elf.js';
import { readVcpuState, type VcpuState } from './vcpu/state.js';
import { writePvhStartInfo } from './loader/pvh.js';
import { isBzImage, loadBzImage, writeBootParams } from './loader/bzimage.js';
import { placeInitrd } from './loader/initrd.js';
import { cpuidFor, setupFpu, setupLapic, setupLongModeEntry, setupPvhEntry } from './vcpu/cpu-setup.js';
import { VcpuThreadHandle, type VcpuCounters } from './vcpu/vcpu-thread-handle.js';
import { createWriteCounter } from './vcpu/mailbox.js';
import type { VcpuThreadMessage } from './vcpu/protocol.js';

/** Legacy PC port and IRQ assignments. */
export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;
export const I8042_PORT = 0x60;
export const I8042_KBD_IRQ = 1;
export const I8042_AUX_IRQ = 12;
export const RTC_PORT = 0x70;
export const RTC_IRQ = 8;
export const PM1_PORT = 0x600;
export const SCI_IRQ = 9;
export const DEBUG_EXIT_PORT = 0xf4;
/** slots in the mirrored-register buffer */
const MIRROR_COM1_LSR = 0;
const MIRROR_COUNT = 1;
/** Input device controller, "other" (the class QEMU gives virtio-input). */
const PCI_CLASS_INPUT_OTHER = 0x098000;
/** The display's video memory slot (guest RAM uses the first few). */
export const FRAMEBUFFER_SLOT = 16;

export interface MachineConfig {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  /** guest RAM in bytes */
  memory: number;
  cpus: number;
  /** attach the debug-exit port (tests) */
  debugExit?: boolean;
  /** a virtio-rng device */
  rng?: boolean;
  /** virtio-blk disks over raw image files */
  disks?: DiskOption[];
  /** virtio-net devices over backends (taps) that outlive the machine */
  nets?: { backend: NetBackend; mac?: Uint8Array }[];
  /** where the console is: the 16550 (default) or a virtio-console port */
  console?: 'serial' | 'virtio';
  /** a bochs-display framebuffer with this much video memory (default 16 MiB) */
  display?: { vramSize?: number };
  /** bytes the guest writes to its serial port */
  serialOutput: (bytes: Uint8Array) => void;
}

/** Why a machine stopped running. */
export type MachineExit =
  | { kind: 'poweroff' }
  | { kind: 'reset'; reason: 'keyboard-controller' | 'reset-register' | 'triple-fault' | 'system-event' | 'host' }
  | { kind: 'debug-exit'; code: number }
  | { kind: 'stopped' }
  | { kind: 'crashed'; detail: string };

const REQUIRED_CAPS: [string, number][] = [
  ['KVM_CAP_IRQCHIP', K.KVM_CAP_IRQCHIP],
  ['KVM_CAP_USER_MEMORY', K.KVM_CAP_USER_MEMORY],
  ['KVM_CAP_PIT2', K.KVM_CAP_PIT2],
  ['KVM_CAP_IOEVENTFD', K.KVM_CAP_IOEVENTFD],
  ['KVM_CAP_IRQFD', K.KVM_CAP_IRQFD],
  ['KVM_CAP_IMMEDIATE_EXIT', K.KVM_CAP_IMMEDIATE_EXIT],
];

const KVM_PIT_SPEAKER_DUMMY = 1;

/** Collects serial output bytes and hands them on in chunks, once per event-loop turn. */
class SerialSink {
  private buf = new Uint8Array(4096);
  private len = 0;
  private scheduled = false;
  constructor(private readonly out: (bytes: Uint8Array) => void) {}
  push = (byte: number): void => {
    if (this.len === this.buf.length) this.flush();
    this.buf[this.len++] = byte;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  };
  flush(): void {
    this.scheduled = false;
    if (this.len === 0) return;
    this.out(this.buf.slice(0, this.len));
    this.len = 0;
  }
}

export class Machine {
  readonly memory: GuestMemory;
  readonly pio = new PioBus();
  readonly mmio = new MmioBus();
  readonly uart: Uart16550;
  readonly i8042: I8042;
  readonly rtc: CmosRtc;
  readonly pm1: Pm1Control;
  readonly pci: PciBus;
  private readonly msiRouter: KvmMsiRouter;
  private readonly ioEvents: KvmIoEventRegistry;
  private readonly virtio: VirtioPciDevice[] = [];
  private readonly blks: VirtioBlk[] = [];
  private readonly nets: VirtioNet[] = [];
  private virtioConsole?: VirtioConsole;
  /** the display, when the machine has one, and the tablet that comes with it */
  readonly display?: BochsDisplay;
  readonly tablet?: VirtioTablet;
  private vramAddress?: bigint;
  /** the keyboard and mouse as a remote console drives them */
  readonly input: GuestInput = {
    keyboard: (set1) => this.i8042.injectKey(set1),
    mouseRelative: (dx, dy, buttons) => injectRelative(this.i8042, dx, dy, buttons),
    // The tablet once its driver is up; until then (or without one) the PS/2 mouse.
    mouseAbsolute: (x, y, buttons, wheel) => this.tablet?.pointer(x, y, buttons, wheel) ?? false,
  };
  /** resolves with the first reason the machine stopped */
  readonly exited: Promise<MachineExit>;

  private readonly kvm: Kvm;
  private readonly vm: Vm;
  private readonly ramAddress: bigint;
  private readonly vcpus: Vcpu[] = [];
  private readonly threads: VcpuThreadHandle[] = [];
  /** device registers mirrored for the vCPU threads (see vcpu/protocol.ts, PortMirror) */
  private readonly mirrors = new SharedArrayBuffer(4 * MIRROR_COUNT);
  /** posted writes on their way, across all vCPUs */
  private readonly writeCounter = createWriteCounter();
  private readonly serial: SerialSink;
  private pendingInput: Uint8Array[] = [];
  private resolveExit!: (e: MachineExit) => void;
  private exitReason?: MachineExit;
  private destroyed = false;
  /** device handlers that threw (a host bug, never the guest's fault) */
  deviceFaults = 0;

  constructor(private readonly config: MachineConfig) {
    validate(config);
    this.exited = new Promise((r) => (this.resolveExit = r));

    // 1. KVM, the VM, the in-kernel interrupt controllers and timer
    this.kvm = new KvmClass();
    if (this.kvm.getApiVersion() !== K.KVM_API_VERSION) {
      throw new VmmError('VCPU_FAILED', `KVM API version ${this.kvm.getApiVersion()} is not ${K.KVM_API_VERSION}`);
    }
    for (const [name, cap] of REQUIRED_CAPS) {
      if (this.kvm.checkExtension(cap) <= 0) throw new VmmError('VCPU_FAILED', `this KVM lacks ${name}`);
    }
    this.vm = this.kvm.createVm();
    this.vm.setTssAddr(KVM_TSS_ADDR);
    this.vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
    this.vm.createIrqchip();
    this.vm.createPit2(KVM_PIT_SPEAKER_DUMMY);

    // 2. guest RAM
    const ram = mmapGuestRam(config.memory);
    this.ramAddress = ram.address;
    ramRegions(config.memory).forEach((r, slot) =>
      this.vm.setUserMemoryRegion({
        slot,
        flags: 0,
        guestPhysAddr: r.gpa,
        memorySize: r.size,
        userspaceAddr: ram.address + BigInt(r.hostOffset),
      }),
    );
    this.memory = new GuestMemory(config.memory, ram.chunks, ram.chunkSize);

    // 3. legacy devices
    this.serial = new SerialSink(config.serialOutput);
    this.uart = new Uart16550({ irq: this.irqLine(COM1_IRQ), output: this.serial.push, rxSpace: () => this.feedSerial() });
    this.i8042 = new I8042({
      kbdIrq: this.irqLine(I8042_KBD_IRQ),
      auxIrq: this.irqLine(I8042_AUX_IRQ),
      onReset: () => this.finish({ kind: 'reset', reason: 'keyboard-controller' }),
    });
    this.rtc = new CmosRtc({ irq: this.irqLine(RTC_IRQ), memoryBytes: config.memory });
    this.pm1 = new Pm1Control({ sci: this.irqLine(SCI_IRQ), onPowerOff: () => this.finish({ kind: 'poweroff' }) });
    this.pio.insert('com1', COM1_PORT, 8, this.uart);
    this.uart.mirrorLsr(new Int32Array(this.mirrors), MIRROR_COM1_LSR);
    this.pio.insert('i8042', I8042_PORT, 5, this.i8042);
    this.pio.insert('rtc', RTC_PORT, 2, this.rtc);
    this.pio.insert('pm1', PM1_PORT, 6, this.pm1);

    // The PCI bus. Its configuration ports 0xCF8–0xCFF also carry the reset control
    // register at 0xCF9 (byte accesses), as on a PC chipset.
    const resetControl = new ResetControl({ onReset: () => this.finish({ kind: 'reset', reason: 'reset-register' }) });
    this.pci = new PciBus({ mmio: this.mmio, pio: this.pio, gsiLine: (gsi) => this.irqLine(gsi) });
    this.pio.insert('pci-config', PCI_CONFIG_IO_PORT, PCI_CONFIG_IO_SIZE, new PciConfigIo({ bus: this.pci, resetControl }));
    this.mmio.insert('pci-ecam', PCI_ECAM_BASE, PCI_ECAM_SIZE, new PciEcam(this.pci));
    this.msiRouter = new KvmMsiRouter({
      vm: this.vm,
      fds: { eventfd: () => eventfd(), eventfdWrite: (fd) => eventfdWrite(fd), closeFd },
      baseRoutes: irqchipRoutes(K),
    });
    // Queue notifications are caught by KVM (ioeventfd) and polled on this thread's loop:
    // a guest kick costs no vCPU exit.
    this.ioEvents = new KvmIoEventRegistry(this.vm, {
      eventfd: () => eventfd(),
      eventfdRead,
      closeFd,
      watch: (fd, onReadable) => {
        const w = watchFd(fd, 'r', () => onReadable());
        w.unref();
        return () => w.close();
      },
    });
    let slot = 1;
    if (config.rng) this.attachVirtio(slot++, 'virtio-rng', new VirtioRng());
    try {
      for (const [i, d] of (config.disks ?? []).entries()) {
        const disk = new RawDisk({ path: d.path, readOnly: d.readOnly, ramAddress: ram.address });
        const blk = new VirtioBlk({ disk, ...(d.serial ? { serial: d.serial } : {}) });
        this.blks.push(blk);
        this.attachVirtio(slot++, `virtio-blk${i}`, blk);
      }
    } catch (err) {
      // a disk that cannot be opened: release the ones already open (their I/O threads)
      for (const b of this.blks) void b.close();
      throw err;
    }
    for (const [i, n] of (config.nets ?? []).entries()) {
      const net = new VirtioNet({ backend: n.backend, ...(n.mac ? { mac: n.mac } : {}) });
      this.nets.push(net);
      this.attachVirtio(slot++, `virtio-net${i}`, net);
    }
    if (config.console === 'virtio') {
      this.virtioConsole = new VirtioConsole({ output: config.serialOutput, rxSpace: () => this.feedSerial() });
      this.attachVirtio(slot++, 'virtio-console', this.virtioConsole);
    }
    if (config.display) {
      this.display = this.attachDisplay(slot++, config.display.vramSize ?? DEFAULT_VRAM_SIZE);
      this.tablet = new VirtioTablet();
      this.attachVirtio(slot++, 'virtio-tablet', this.tablet, PCI_CLASS_INPUT_OTHER);
    }

    // 4. ACPI tables (the FADT, DSDT and MADT describe the devices above and the vCPUs
    //    below), then the kernel, initrd and boot information
    const { rsdp } = writeAcpiTables(this.memory, { cpus: config.cpus, pci: { routes: this.pci.intxRoutes() } });
    const boot = this.loadKernel(rsdp);

    // 5. vCPUs; KVM keeps the APs waiting for INIT/SIPI from the BSP
    const supported = this.kvm.getSupportedCpuid();
    const cpuidOpts = { tscDeadline: this.kvm.checkExtension(K.KVM_CAP_TSC_DEADLINE_TIMER) > 0 };
    for (let id = 0; id < config.cpus; id++) {
      const vcpu = this.vm.createVcpu(id);
      vcpu.setCpuid2(cpuidFor(supported, id, config.cpus, cpuidOpts));
      setupLapic(vcpu);
      setupFpu(vcpu);
      if (id === 0) boot(vcpu);
      this.vcpus.push(vcpu);
    }
  }

  /**
   * Loads the kernel in the format it comes in — a bzImage through the Linux boot protocol's
   * 64-bit entry, or an ELF through its PVH entry — and returns how to set up the BSP.
   */
  private loadKernel(rsdp: number): (bsp: Vcpu) => void {
    const { kernel, initrd, cmdline, memory } = this.config;
    const e820 = e820Map(memory);
    if (isBzImage(kernel)) {
      const bz = loadBzImage(this.memory, kernel);
      const rd = initrd ? placeInitrd(this.memory, initrd, bz.kernelEnd, bz.initrdAddrMax) : undefined;
      const bootParams = writeBootParams(this.memory, bz.header, { cmdline, e820, rsdp, ...(rd ? { initrd: rd } : {}) });
      const addrs = { gdt: BOOT_GDT_ADDR, pml4: BOOT_PML4_ADDR, pdpt: BOOT_PDPT_ADDR, pd: BOOT_PD_ADDR, stack: BOOT_STACK_TOP };
      return (bsp) => setupLongModeEntry(bsp, this.memory, addrs, bz.entry64, bootParams);
    }
    if (isElf(kernel)) {
      const elf = loadPvhElf(this.memory, kernel);
      const rd = initrd ? placeInitrd(this.memory, initrd, elf.high) : undefined;
      const startInfo = writePvhStartInfo(this.memory, { cmdline, memmap: e820, rsdp, ...(rd ? { initrd: rd } : {}) });
      return (bsp) => setupPvhEntry(bsp, elf.pvhEntry, startInfo);
    }
    throw new VmmError('KERNEL_LOAD_FAILED', 'Cannot load kernel: neither a bzImage nor an ELF image with a PVH entry note');
  }

  private attachVirtio(slot: number, name: string, device: VirtioDevice, classCode?: number): void {
    const fn = new VirtioPciDevice({
      device,
      memory: this.memory,
      msiRouter: this.msiRouter,
      ioEvents: this.ioEvents,
      ...(classCode !== undefined ? { classCode } : {}),
    });
    this.pci.attach(slot, fn, name);
    this.virtio.push(fn);
  }

  /**
   * The display: its video memory is mapped by the addon like guest RAM and given to KVM as a
   * memory slot with dirty logging wherever the guest puts BAR0, so drawing costs no exit.
   */
  private attachDisplay(slot: number, vramSize: number): BochsDisplay {
    const vram = mmapGuestRam(vramSize);
    this.vramAddress = vram.address;
    let mapped: number | undefined;
    const region = (gpa: number, memorySize: number) => ({
      slot: FRAMEBUFFER_SLOT,
      flags: K.KVM_MEM_LOG_DIRTY_PAGES,
      guestPhysAddr: gpa,
      memorySize,
      userspaceAddr: vram.address,
    });
    const display = new BochsDisplay({
      vram: new Uint8Array(vram.chunks[0]!),
      memory: {
        map: (gpa) => {
          if (mapped !== undefined) this.vm.setUserMemoryRegion(region(mapped, 0));
          mapped = undefined;
          if (gpa === undefined) return true;
          try {
            this.vm.setUserMemoryRegion(region(gpa, vramSize));
          } catch {
            // Over RAM or another slot: the guest's placement, not our fault; the device counts it.
            return false;
          }
          mapped = gpa;
          return true;
        },
      },
      dirtyLog: {
        collect: (bitmap) => {
          if (mapped === undefined) bitmap.fill(0);
          else this.vm.getDirtyLog(FRAMEBUFFER_SLOT, bitmap);
        },
      },
    });
    this.pio.insert('dispi', VBE_DISPI_IOPORT_INDEX, VBE_DISPI_IOPORT_WINDOW, display.ports);
    this.pci.attach(slot, display, 'display');
    return display;
  }

  /** The display's picture, when the machine has a display. */
  get framebuffer(): Framebuffer | undefined {
    return this.display?.framebuffer;
  }

  private irqLine(irq: number): IrqLine {
    return { set: (level: boolean) => this.vm.irqLine(irq, level) };
  }

  /** 6. Starts every vCPU thread, the BSP first. */
  start(): void {
    const access = (mmio: boolean, isRead: boolean, addr: number, data: Uint8Array) => {
      const bus = mmio ? this.mmio : this.pio;
      try {
        if (isRead) bus.read(addr, data);
        else bus.write(addr, data);
      } catch (err) {
        // A device must not throw on guest input; if one does, that is our bug. Keep the
        // guest running (reads see all-ones), count it, and say it once.
        this.deviceFaults++;
        if (isRead) data.fill(0xff);
        if (this.deviceFaults === 1) {
          process.emitWarning(`device fault at ${mmio ? 'mmio' : 'port'} 0x${addr.toString(16)}: ${(err as Error).stack ?? err}`);
        }
      }
    };
    for (const vcpu of this.vcpus) {
      const t = new VcpuThreadHandle({
        fd: vcpu.fd,
        id: vcpu.id,
        // BARs move when the guest reprograms them, but the routing tables are fixed when
        // the threads start: route the whole PCI windows to the device thread.
        pioRemote: disjointRanges([...this.pio.ranges(), ...this.pci.routedWindows().pio]),
        mmioRemote: disjointRanges([...this.mmio.ranges(), ...this.pci.routedWindows().mmio]),
        pioMirrors: [
          {
            port: COM1_PORT + UART_LSR,
            cells: this.mirrors,
            index: MIRROR_COM1_LSR,
            // THR (or DLL), IER (or DLM), LCR and SCR: writing them leaves LSR as it is
            quietWrites: [UART_THR, UART_IER, UART_LCR, UART_SCR].map((r) => COM1_PORT + r),
          },
        ],
        writeCounter: this.writeCounter,
        ...(this.config.debugExit ? { debugExitPort: DEBUG_EXIT_PORT } : {}),
        access,
        onEnd: (msg) => this.onVcpuEnd(msg),
      });
      this.threads.push(t);
      t.start();
    }
  }

  private onVcpuEnd(msg: VcpuThreadMessage): void {
    switch (msg.type) {
      case 'stopped':
        this.finish({ kind: 'stopped' });
        break;
      case 'debug-exit':
        this.finish({ kind: 'debug-exit', code: msg.code });
        break;
      case 'shutdown':
        this.finish({ kind: 'reset', reason: 'triple-fault' });
        break;
      case 'system-event':
        this.finish(
          msg.event === K.KVM_SYSTEM_EVENT_RESET
            ? { kind: 'reset', reason: 'system-event' }
            : msg.event === K.KVM_SYSTEM_EVENT_SHUTDOWN
              ? { kind: 'poweroff' }
              : { kind: 'crashed', detail: `system event ${msg.event}` },
        );
        break;
      case 'failed':
        this.finish({ kind: 'crashed', detail: `vCPU failed: ${msg.detail}${msg.rip ? ` at rip ${msg.rip}` : ''}` });
        break;
    }
  }

  /** Records why the machine ends (the first reason wins) and stops every vCPU. */
  private finish(reason: MachineExit): void {
    if (this.exitReason) return;
    this.exitReason = reason;
    void Promise.all(this.threads.map((t) => t.stop())).then(() => {
      this.serial.flush();
      this.resolveExit(reason);
    });
  }

  /** Parks every vCPU outside KVM_RUN; devices and timers keep their state. */
  async pause(): Promise<boolean> {
    const ok = await Promise.all(this.threads.map((t) => t.pause()));
    return ok.every(Boolean);
  }

  resume(): void {
    for (const t of this.threads) t.resume();
  }

  /** Every vCPU's registers. The vCPUs must be parked (`pause()`): KVM hands a vCPU's
   * registers out only while no thread is inside its KVM_RUN. */
  vcpuStates(): VcpuState[] {
    return this.vcpus.map((v, i) => readVcpuState(v, this.threads[i]?.counters().exits ?? 0));
  }

  /** A hard reset from the host: the machine ends with a reset, and its owner rebuilds it. */
  reset(): void {
    this.finish({ kind: 'reset', reason: 'host' });
  }

  /** Stops the machine from the host side. */
  stop(): Promise<MachineExit> {
    this.finish({ kind: 'stopped' });
    return this.exited;
  }

  /** Host input for the serial console. Bytes the UART cannot take yet are kept in order. */
  serialInput(bytes: Uint8Array): void {
    this.pendingInput.push(bytes);
    this.feedSerial();
  }

  private feedSerial(): void {
    while (this.pendingInput.length > 0) {
      const head = this.pendingInput[0]!;
      const taken = this.virtioConsole ? this.virtioConsole.input(head) : this.uart.receive(head);
      if (taken < head.length) {
        this.pendingInput[0] = head.subarray(taken);
        return;
      }
      this.pendingInput.shift();
    }
  }

  /** Presses the ACPI power button: a guest with ACPI shuts down cleanly. */
  pressPowerButton(): void {
    this.pm1.pressPowerButton();
  }

  /** Sends Ctrl-Alt-Del on the PS/2 keyboard. Returns false when the keyboard is not scanning. */
  ctrlAltDel(): boolean {
    return this.i8042.ctrlAltDel();
  }

  counters(): VcpuCounters[] {
    return this.threads.map((t) => t.counters());
  }

  /** Releases everything, in the reverse order of building. Call after `exited`. Disks
   * finish their requests and flush before guest RAM goes away. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.rtc.close();
    await Promise.all(this.blks.map((b) => b.close()));
    for (const n of this.nets) n.close();
    for (const d of this.virtio) d.close();
    this.msiRouter.close();
    for (const v of this.vcpus.reverse()) v.close();
    this.vm.close();
    munmapGuestRam(this.ramAddress);
    if (this.vramAddress !== undefined) munmapGuestRam(this.vramAddress);
    this.kvm.close();
  }
}

/**
 * Relative motion as PS/2 packets (dy flipped: PS/2 counts up as positive). A packet holds
 * −256..255 per axis; a longer move goes as several, as far as the mouse's buffer takes them.
 */
function injectRelative(i8042: I8042, dx: number, dy: number, buttons: number): boolean {
  let x = Math.trunc(dx) || 0;
  let y = -(Math.trunc(dy) || 0);
  for (let packets = 0; packets < 8; packets++) {
    const px = Math.max(-256, Math.min(255, x));
    const py = Math.max(-256, Math.min(255, y));
    if (!i8042.injectMouse(px, py, buttons)) return packets > 0;
    x -= px;
    y -= py;
    if (x === 0 && y === 0) return true;
  }
  return true;
}

function validate(c: MachineConfig): void {
  if (!Number.isSafeInteger(c.memory) || c.memory < MIN_RAM || c.memory > MAX_RAM || c.memory % 4096 !== 0) {
    throw new VmmError('INVALID_CONFIG', `memory must be a multiple of 4 KiB between ${MIN_RAM} and ${MAX_RAM} bytes, not ${c.memory}`);
  }
  if (!Number.isInteger(c.cpus) || c.cpus < 1 || c.cpus > 255) {
    throw new VmmError('INVALID_CONFIG', `cpus must be between 1 and 255, not ${c.cpus}`);
  }
}
