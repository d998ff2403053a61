import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  loadBzImage,
  writeBootParams,
  isBzImage,
  HDR_SETUP_SECTS,
  HDR_BOOT_FLAG,
  HDR_HEADER,
  HDR_VERSION,
  HDR_LOADFLAGS,
  HDR_XLOADFLAGS,
  HDR_INIT_SIZE,
  HDR_INITRD_ADDR_MAX,
  HDR_CMDLINE_SIZE,
  HDR_CMD_LINE_PTR,
  HDR_RAMDISK_IMAGE,
  HDR_RAMDISK_SIZE,
  HDR_TYPE_OF_LOADER,
  BP_E820_ENTRIES,
  BP_E820_TABLE,
  BP_ACPI_RSDP_ADDR,
  ZERO_PAGE_ADDR,
} from './bzimage.js';
import { GuestMemory } from '../memory/guest-memory.js';
import { CMDLINE_ADDR, e820Map, MIB } from '../memory/layout.js';
import { VmmError } from '../errors.js';

/** A bzImage-shaped file: 2 setup sectors after the boot sector, then `payload`. */
function fakeBzImage(opts: { version?: number; xloadflags?: number; payload?: Uint8Array; initSize?: number } = {}): Uint8Array {
  const payload = opts.payload ?? Uint8Array.from({ length: 0x400 }, (_, i) => i & 0xff);
  const img = new Uint8Array(3 * 512 + payload.length);
  const dv = new DataView(img.buffer);
  img[HDR_SETUP_SECTS] = 2;
  dv.setUint16(HDR_BOOT_FLAG, 0xaa55, true);
  img[0x201] = 0x66; // header length: up to 0x268
  dv.setUint32(HDR_HEADER, 0x53726448, true);
  dv.setUint16(HDR_VERSION, opts.version ?? 0x020f, true);
  img[HDR_LOADFLAGS] = 0x01;
  dv.setUint16(HDR_XLOADFLAGS, opts.xloadflags ?? 0x1, true);
  dv.setUint32(HDR_INITRD_ADDR_MAX, 0x7fffffff, true);
  dv.setUint32(HDR_CMDLINE_SIZE, 2047, true);
  dv.setUint32(HDR_INIT_SIZE, opts.initSize ?? 0x10000, true);
  img.set(payload, 3 * 512);
  return img;
}

test('loadBzImage puts the protected-mode kernel at 1 MiB and enters at +0x200', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const img = fakeBzImage();
  assert.equal(isBzImage(img), true);
  const bz = loadBzImage(mem, img);
  assert.equal(bz.entry64, 0x100200);
  assert.equal(bz.kernelEnd, 0x100000 + 0x10000);
  assert.equal(bz.initrdAddrMax, 0x7fffffff);
  assert.equal(mem.readU8(0x100000 + 0x3ff), 0xff);
});

test('writeBootParams fills the zero page: header copy, loader fields, e820, cmdline, initrd, RSDP', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const bz = loadBzImage(mem, fakeBzImage());
  const e820 = e820Map(64 * MIB);
  const at = writeBootParams(mem, bz.header, { cmdline: 'console=ttyS0 quiet', e820, initrd: { addr: 0x3000000, size: 4321 }, rsdp: 0xe0000 });
  assert.equal(at, ZERO_PAGE_ADDR);
  assert.equal(mem.readU32(at + HDR_HEADER), 0x53726448, 'the setup header is copied');
  assert.equal(mem.readU8(at + HDR_TYPE_OF_LOADER), 0xff);
  assert.equal(mem.readU32(at + HDR_CMD_LINE_PTR), CMDLINE_ADDR);
  assert.equal(mem.readU32(at + HDR_RAMDISK_IMAGE), 0x3000000);
  assert.equal(mem.readU32(at + HDR_RAMDISK_SIZE), 4321);
  assert.equal(mem.readU64(at + BP_ACPI_RSDP_ADDR), 0xe0000n);
  assert.equal(mem.readU8(at + BP_E820_ENTRIES), e820.length);
  const last = at + BP_E820_TABLE + (e820.length - 1) * 20;
  assert.equal(mem.readU64(last) + mem.readU64(last + 8), BigInt(64 * MIB));
  const cmd = new Uint8Array(20);
  mem.read(CMDLINE_ADDR, cmd);
  assert.equal(new TextDecoder().decode(cmd), 'console=ttyS0 quiet\0');
});

test('loadBzImage refuses old protocols, 32-bit-only kernels and files that are not bzImages', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  assert.throws(() => loadBzImage(mem, fakeBzImage({ version: 0x020a })), /older than 2.12/);
  assert.throws(() => loadBzImage(mem, fakeBzImage({ xloadflags: 0 })), /64-bit/);
  assert.throws(() => loadBzImage(mem, new Uint8Array(4096)), (e: unknown) => e instanceof VmmError && e.code === 'KERNEL_LOAD_FAILED');
  assert.throws(() => loadBzImage(GuestMemory.anonymous(16 * MIB), fakeBzImage({ initSize: 64 * MIB })), /more memory/);
});

test('writeBootParams refuses a command line longer than the kernel takes', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const bz = loadBzImage(mem, fakeBzImage());
  assert.throws(() => writeBootParams(mem, bz.header, { cmdline: 'x'.repeat(3000), e820: [] }), /at most 2047/);
});
