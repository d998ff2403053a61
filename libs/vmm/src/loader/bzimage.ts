/**
 * The Linux x86 boot protocol (Documentation/arch/x86/boot.rst), 64-bit entry.
 *
 * A bzImage is a real-mode setup part (the boot sector and `setup_sects` sectors, starting
 * with the setup header at 0x1f1) followed by the protected-mode kernel. vmctl does what a
 * boot loader does: it loads the protected-mode kernel at 1 MiB, fills a `boot_params`
 * "zero page" (a copy of the setup header plus the e820 map, command line and initrd
 * pointers) and enters the kernel's 64-bit entry point, load address + 0x200, in long mode
 * with %rsi pointing at boot_params.
 */
import { VmmError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { CMDLINE_ADDR, CMDLINE_MAX, type E820Entry, HIMEM_START } from '../memory/layout.js';

/** Setup header field offsets (boot.rst, "The real-mode kernel header"). */
export const HDR_SETUP_SECTS = 0x1f1;
export const HDR_BOOT_FLAG = 0x1fe;
export const HDR_JUMP = 0x200;
export const HDR_HEADER = 0x202;
export const HDR_VERSION = 0x206;
export const HDR_TYPE_OF_LOADER = 0x210;
export const HDR_LOADFLAGS = 0x211;
export const HDR_RAMDISK_IMAGE = 0x218;
export const HDR_RAMDISK_SIZE = 0x21c;
export const HDR_HEAP_END_PTR = 0x224;
export const HDR_CMD_LINE_PTR = 0x228;
export const HDR_INITRD_ADDR_MAX = 0x22c;
export const HDR_KERNEL_ALIGNMENT = 0x230;
export const HDR_RELOCATABLE_KERNEL = 0x234;
export const HDR_XLOADFLAGS = 0x236;
export const HDR_CMDLINE_SIZE = 0x238;
export const HDR_PREF_ADDRESS = 0x258;
export const HDR_INIT_SIZE = 0x260;

/** boot_params fields outside the setup header (arch/x86/include/uapi/asm/bootparam.h). */
export const BP_ACPI_RSDP_ADDR = 0x070;
export const BP_E820_ENTRIES = 0x1e8;
export const BP_E820_TABLE = 0x2d0;
export const BP_E820_MAX = 128;
export const BP_SIZE = 4096;

const HDRS_MAGIC = 0x53726448; // "HdrS"
const BOOT_FLAG = 0xaa55;
const LOADED_HIGH = 0x01;
const CAN_USE_HEAP = 0x80;
const XLF_KERNEL_64 = 0x01;
/** "undefined" boot loader id, as boot.rst asks of loaders without an assigned one */
const LOADER_TYPE_UNDEFINED = 0xff;
/** The 64-bit entry point sits 0x200 past the start of the protected-mode kernel. */
const ENTRY_64_OFFSET = 0x200;

/** Where the zero page goes. */
export const ZERO_PAGE_ADDR = 0x7000;

export interface LoadedBzImage {
  /** 64-bit entry point */
  entry64: number;
  /** address of boot_params, for %rsi */
  bootParams: number;
  /** end of the memory the kernel claims (load address + init_size) */
  kernelEnd: number;
  /** highest address an initrd may reach */
  initrdAddrMax: number;
}

function fail(msg: string): never {
  throw new VmmError('KERNEL_LOAD_FAILED', `Cannot load bzImage: ${msg}`);
}

/** True when `image` carries a Linux setup header. */
export function isBzImage(image: Uint8Array): boolean {
  if (image.length < 0x400) return false;
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  return dv.getUint16(HDR_BOOT_FLAG, true) === BOOT_FLAG && dv.getUint32(HDR_HEADER, true) === HDRS_MAGIC;
}

export interface BzImageBoot {
  cmdline: string;
  e820: E820Entry[];
  initrd?: { addr: number; size: number };
  rsdp?: number;
}

/**
 * Loads the protected-mode kernel at 1 MiB. Call `writeBootParams` once the initrd is
 * placed (it needs `kernelEnd` and `initrdAddrMax` to place it).
 */
export function loadBzImage(mem: GuestMemory, image: Uint8Array): LoadedBzImage & { header: Uint8Array } {
  if (!isBzImage(image)) fail('no Linux setup header (boot flag 0xAA55 and "HdrS")');
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const version = dv.getUint16(HDR_VERSION, true);
  // 2.12 brought xloadflags, which is how a kernel says it has a 64-bit entry point.
  if (version < 0x020c) fail(`boot protocol ${version >> 8}.${version & 0xff} is older than 2.12`);
  const xloadflags = dv.getUint16(HDR_XLOADFLAGS, true);
  if ((xloadflags & XLF_KERNEL_64) === 0) fail('the kernel has no 64-bit entry point (XLF_KERNEL_64)');
  if ((image[HDR_LOADFLAGS]! & LOADED_HIGH) === 0) fail('the kernel is not a bzImage (LOADED_HIGH clear)');
  let setupSects = image[HDR_SETUP_SECTS]!;
  if (setupSects === 0) setupSects = 4;
  const kernelOffset = (setupSects + 1) * 512;
  if (kernelOffset >= image.length) fail('the file ends inside the setup code');
  const kernel = image.subarray(kernelOffset);
  const initSize = dv.getUint32(HDR_INIT_SIZE, true);
  const loadAddr = HIMEM_START;
  const kernelEnd = loadAddr + Math.max(initSize, kernel.length);
  if (!mem.contains(loadAddr, kernelEnd - loadAddr)) {
    fail(`the kernel needs ${kernelEnd - loadAddr} bytes from 1 MiB; give the guest more memory`);
  }
  mem.write(loadAddr, kernel);
  // The setup header runs from 0x1f1 to 0x202 + the byte at 0x201 (its own length).
  const headerEnd = Math.min(0x202 + image[0x201]!, 0x280);
  const header = image.slice(HDR_SETUP_SECTS, headerEnd);
  return {
    entry64: loadAddr + ENTRY_64_OFFSET,
    bootParams: ZERO_PAGE_ADDR,
    kernelEnd,
    initrdAddrMax: dv.getUint32(HDR_INITRD_ADDR_MAX, true),
    header,
  };
}

/** Writes the zero page: the kernel's setup header with the loader's fields filled in. */
export function writeBootParams(mem: GuestMemory, header: Uint8Array, boot: BzImageBoot): number {
  const bp = new Uint8Array(BP_SIZE);
  const dv = new DataView(bp.buffer);
  bp.set(header, HDR_SETUP_SECTS);

  const cmdline = new TextEncoder().encode(boot.cmdline + '\0');
  const cmdlineSize = dv.getUint32(HDR_CMDLINE_SIZE, true);
  const limit = Math.min(CMDLINE_MAX, cmdlineSize > 0 ? cmdlineSize + 1 : 256);
  if (cmdline.length > limit) {
    throw new VmmError('INVALID_CONFIG', `command line is ${cmdline.length - 1} bytes; this kernel takes at most ${limit - 1}`);
  }
  mem.write(CMDLINE_ADDR, cmdline);

  bp[HDR_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
  bp[HDR_LOADFLAGS] = bp[HDR_LOADFLAGS]! | CAN_USE_HEAP;
  dv.setUint16(HDR_HEAP_END_PTR, 0xfe00, true);
  dv.setUint32(HDR_CMD_LINE_PTR, CMDLINE_ADDR, true);
  if (boot.initrd) {
    dv.setUint32(HDR_RAMDISK_IMAGE, boot.initrd.addr, true);
    dv.setUint32(HDR_RAMDISK_SIZE, boot.initrd.size, true);
  }
  if (boot.rsdp) dv.setBigUint64(BP_ACPI_RSDP_ADDR, BigInt(boot.rsdp), true);

  if (boot.e820.length > BP_E820_MAX) throw new VmmError('INVALID_CONFIG', 'e820 map too long');
  bp[BP_E820_ENTRIES] = boot.e820.length;
  boot.e820.forEach((e, i) => {
    const o = BP_E820_TABLE + i * 20;
    dv.setBigUint64(o, BigInt(e.addr), true);
    dv.setBigUint64(o + 8, BigInt(e.size), true);
    dv.setUint32(o + 16, e.type, true);
  });
  mem.write(ZERO_PAGE_ADDR, bp);
  return ZERO_PAGE_ADDR;
}
