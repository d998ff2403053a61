import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MmioBus, PioBus } from '../../bus/io-bus.js';
import { PciBus } from '../../pci/bus.js';
import { PCI_BASE_ADDRESS_0, PCI_CLASS_PROG, PCI_COMMAND, PCI_COMMAND_MEMORY, PCI_DEVICE_ID, PCI_VENDOR_ID } from '../../pci/registers.js';
import { FakeIrqLine } from '../../testing/fake-irq.js';
import { fuzzEveryRegister, inw, outw } from '../../testing/pio.js';
import { xorshift32 } from '../../testing/xorshift.js';
import {
  BochsDisplay,
  BOCHS_MMIO_DISPI,
  type FramebufferMemory,
} from './bochs-display.js';
import {
  VBE_DISPI_ENABLED,
  VBE_DISPI_ID5,
  VBE_DISPI_INDEX_BPP,
  VBE_DISPI_INDEX_ENABLE,
  VBE_DISPI_INDEX_ID,
  VBE_DISPI_INDEX_XRES,
  VBE_DISPI_INDEX_YRES,
  VBE_DISPI_LFB_ENABLED,
} from './dispi.js';

const VRAM = 1 << 24;

class FakeMemory implements FramebufferMemory {
  at: number | undefined;
  calls: (number | undefined)[] = [];
  refuse = new Set<number>();
  map(gpa: number | undefined): boolean {
    this.calls.push(gpa);
    if (gpa !== undefined && this.refuse.has(gpa)) return false;
    this.at = gpa;
    return true;
  }
}

function machine() {
  const mmio = new MmioBus();
  const pio = new PioBus();
  const pci = new PciBus({ mmio, pio, gsiLine: () => new FakeIrqLine() });
  const memory = new FakeMemory();
  const display = new BochsDisplay({ vram: new Uint8Array(VRAM), memory });
  pci.attach(1, display, 'display');
  return { mmio, pio, pci, memory, display };
}

function cfg16(d: BochsDisplay, off: number): number {
  const b = new Uint8Array(2);
  d.configRead(off, b);
  return b[0]! | (b[1]! << 8);
}

function cfg32(d: BochsDisplay, off: number): number {
  const b = new Uint8Array(4);
  d.configRead(off, b);
  return new DataView(b.buffer).getUint32(0, true);
}

function mmioW16(mmio: MmioBus, addr: number, v: number): void {
  mmio.write(addr, Uint8Array.of(v & 0xff, v >> 8));
}

function mmioR16(mmio: MmioBus, addr: number): number {
  const b = new Uint8Array(2);
  mmio.read(addr, b);
  return b[0]! | (b[1]! << 8);
}

test('bochs-display is PCI 1234:1111, a display controller, with a prefetchable VRAM BAR0 and a 4 KiB BAR2', () => {
  const { display, memory } = machine();
  assert.equal(cfg16(display, PCI_VENDOR_ID), 0x1234);
  assert.equal(cfg16(display, PCI_DEVICE_ID), 0x1111);
  assert.equal(cfg32(display, PCI_CLASS_PROG - 1) >>> 8, 0x038000);
  const bar0 = cfg32(display, PCI_BASE_ADDRESS_0);
  assert.equal(bar0 & 0xf, 0x8, 'memory, 32-bit, prefetchable');
  assert.equal(((bar0 & ~0xf) >>> 0) % VRAM, 0, 'naturally aligned');
  assert.equal(memory.at, (bar0 & ~0xf) >>> 0, 'video memory mapped where BAR0 decodes');
  assert.ok(display.barAddress(2) !== undefined);
});

test('bochs-display: the DISPI registers at BAR2 + 0x500 set the mode the framebuffer publishes', () => {
  const { display, mmio } = machine();
  const regs = display.barAddress(2)! + BOCHS_MMIO_DISPI;
  assert.equal(mmioR16(mmio, regs + 2 * VBE_DISPI_INDEX_ID), VBE_DISPI_ID5);
  let changes = 0;
  display.framebuffer.onModeChange(() => changes++);
  mmioW16(mmio, regs + 2 * VBE_DISPI_INDEX_XRES, 800);
  mmioW16(mmio, regs + 2 * VBE_DISPI_INDEX_YRES, 600);
  mmioW16(mmio, regs + 2 * VBE_DISPI_INDEX_BPP, 16);
  mmioW16(mmio, regs + 2 * VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
  assert.equal(changes, 1);
  assert.deepEqual(display.framebuffer.mode, { width: 800, height: 600, format: 'RGB565', stride: 1600, blank: false });
  // A 32-bit write sets two registers; an odd or byte-wide write is dropped and counted.
  mmio.write(regs + 2 * VBE_DISPI_INDEX_ENABLE, Uint8Array.of(0, 0, 0, 0));
  assert.equal(display.framebuffer.mode.blank, true);
  mmio.write(regs + 1, Uint8Array.of(1, 2));
  mmio.write(regs, Uint8Array.of(1));
  assert.equal(display.metrics.missedWrites, 2);
  // EDID, VGA and QEMU extension areas read as zeros.
  assert.equal(mmioR16(mmio, display.barAddress(2)! + 0x600), 0);
  assert.equal(mmioR16(mmio, display.barAddress(2)!), 0);
});

test('bochs-display: the legacy ports 0x1CE/0x1CF reach the same registers', () => {
  const { display } = machine();
  outw(display.ports, 0, VBE_DISPI_INDEX_ID);
  assert.equal(inw(display.ports, 1), VBE_DISPI_ID5);
  outw(display.ports, 0, VBE_DISPI_INDEX_XRES);
  outw(display.ports, 1, 1024);
  assert.equal(inw(display.ports, 0), VBE_DISPI_INDEX_XRES);
  assert.equal(inw(display.ports, 1), 1024);
});

test('bochs-display follows BAR0: decoding off unmaps video memory, a move remaps it, a refused place is counted', () => {
  const { display, memory } = machine();
  const t = display.framebuffer.track();
  t.takeDirty();
  const cmd = cfg16(display, PCI_COMMAND);
  display.configWrite(PCI_COMMAND, Uint8Array.of(cmd & ~PCI_COMMAND_MEMORY, 0));
  assert.equal(memory.at, undefined);
  const moved = 0xc8000000;
  display.configWrite(PCI_BASE_ADDRESS_0, new Uint8Array(new Uint32Array([moved]).buffer));
  display.configWrite(PCI_COMMAND, Uint8Array.of(cmd, 0));
  assert.equal(memory.at, moved);
  assert.equal(display.metrics.mapFailures, 0);
  memory.refuse.add(0xc9000000);
  display.configWrite(PCI_BASE_ADDRESS_0, new Uint8Array(new Uint32Array([0xc9000000]).buffer));
  assert.equal(memory.at, undefined, 'unmapped rather than left at the old place');
  assert.equal(display.metrics.mapFailures, 1);
});

test('bochs-display: video memory accesses that exit are served from VRAM and mark it dirty', () => {
  const { display, mmio } = machine();
  const base = display.barAddress(0)!;
  const regs = display.barAddress(2)! + BOCHS_MMIO_DISPI;
  mmioW16(mmio, regs + 2 * VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
  const t = display.framebuffer.track();
  t.takeDirty();
  mmio.write(base + 2560 * 3, Uint8Array.of(1, 2, 3, 4));
  assert.equal(display.framebuffer.vram[2560 * 3 + 2], 3);
  const b = new Uint8Array(4);
  mmio.read(base + 2560 * 3, b);
  assert.deepEqual([...b], [1, 2, 3, 4]);
  // Byte 7680 is in page 1 (bytes 4096..8191): lines 1 to 3 of 2560 bytes.
  assert.deepEqual(t.takeDirty(), [{ x: 0, y: 1, width: 640, height: 3 }]);
  assert.equal(display.metrics.slowVramAccesses, 2);
});

test('bochs-display survives any register access the guest makes', () => {
  const { display, mmio } = machine();
  fuzzEveryRegister(display.ports, 3);
  const regs = display.barAddress(2)!;
  const rand = xorshift32(7);
  for (let i = 0; i < 200000; i++) {
    const width = [1, 2, 4, 8][rand() & 3]!;
    const off = rand() % 0x1000;
    if (off + width > 0x1000) continue;
    const data = new Uint8Array(width);
    for (let k = 0; k < width; k++) data[k] = rand() & 0xff;
    if (rand() & 1) mmio.write(regs + off, data);
    else mmio.read(regs + off, data);
  }
  // Whatever mode that left, the framebuffer stays inside video memory.
  const fb = display.framebuffer;
  assert.ok(fb.pixels.byteOffset + fb.pixels.length <= fb.vram.byteOffset + fb.vram.length || fb.mode.blank);
});

test('bochs-display refuses video memory that is not a power of two between 1 and 256 MiB', () => {
  assert.throws(() => new BochsDisplay({ vram: new Uint8Array(3 << 20), memory: new FakeMemory() }), /power of two/);
});

test('bochs-display state survives save and restore', () => {
  const { display } = machine();
  outw(display.ports, 0, VBE_DISPI_INDEX_ENABLE);
  outw(display.ports, 1, VBE_DISPI_ENABLED);
  const again = new BochsDisplay({ vram: new Uint8Array(VRAM), memory: new FakeMemory(), state: JSON.parse(JSON.stringify(display.save())) });
  assert.deepEqual(again.framebuffer.mode, display.framebuffer.mode);
  assert.equal(again.restored, true);
});
