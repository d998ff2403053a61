/**
 * The PVH boot information: `struct hvm_start_info` (Xen's public/arch-x86/hvm/start_info.h),
 * version 1, with the command line, the modules (an initrd) and the memory map.
 */
import { VmmError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import {
  CMDLINE_ADDR,
  CMDLINE_MAX,
  type E820Entry,
  PVH_MEMMAP_ADDR,
  PVH_MODLIST_ADDR,
  PVH_START_INFO_ADDR,
} from '../memory/layout.js';

export const HVM_START_MAGIC = 0x336ec578;
const START_INFO_SIZE = 56;
const MEMMAP_ENTRY_SIZE = 24;
const MODLIST_ENTRY_SIZE = 32;

export interface PvhBootInfo {
  cmdline: string;
  memmap: E820Entry[];
  /** an initrd already in guest memory */
  initrd?: { addr: number; size: number };
  /** ACPI RSDP, when the machine has ACPI tables */
  rsdp?: number;
}

/** Writes hvm_start_info and what it points to; returns its guest-physical address. */
export function writePvhStartInfo(mem: GuestMemory, info: PvhBootInfo): number {
  const cmdline = new TextEncoder().encode(info.cmdline + '\0');
  if (cmdline.length > CMDLINE_MAX) {
    throw new VmmError('INVALID_CONFIG', `command line is ${cmdline.length} bytes; at most ${CMDLINE_MAX - 1} fit`);
  }
  mem.write(CMDLINE_ADDR, cmdline);

  const maxEntries = (PVH_START_INFO_ADDR + 0x2000 - PVH_MEMMAP_ADDR) / MEMMAP_ENTRY_SIZE;
  if (info.memmap.length > maxEntries) throw new VmmError('INVALID_CONFIG', 'memory map too long');
  info.memmap.forEach((e, i) => {
    const a = PVH_MEMMAP_ADDR + i * MEMMAP_ENTRY_SIZE;
    mem.writeU64(a, e.addr);
    mem.writeU64(a + 8, e.size);
    mem.writeU32(a + 16, e.type);
    mem.writeU32(a + 20, 0);
  });

  const s = new Uint8Array(START_INFO_SIZE);
  const dv = new DataView(s.buffer);
  dv.setUint32(0, HVM_START_MAGIC, true);
  dv.setUint32(4, 1, true); // version: has the memory map
  dv.setUint32(8, 0, true); // flags
  if (info.initrd) {
    const m = new Uint8Array(MODLIST_ENTRY_SIZE);
    const mdv = new DataView(m.buffer);
    mdv.setBigUint64(0, BigInt(info.initrd.addr), true);
    mdv.setBigUint64(8, BigInt(info.initrd.size), true);
    mem.write(PVH_MODLIST_ADDR, m);
    dv.setUint32(12, 1, true);
    dv.setBigUint64(16, BigInt(PVH_MODLIST_ADDR), true);
  }
  dv.setBigUint64(24, BigInt(CMDLINE_ADDR), true);
  dv.setBigUint64(32, BigInt(info.rsdp ?? 0), true);
  dv.setBigUint64(40, BigInt(PVH_MEMMAP_ADDR), true);
  dv.setUint32(48, info.memmap.length, true);
  mem.write(PVH_START_INFO_ADDR, s);
  return PVH_START_INFO_ADDR;
}
