/**
 * Loading an ELF kernel with a PVH entry point (the `XEN_ELFNOTE_PHYS32_ENTRY` note, as the
 * PVH boot ABI defines; Linux vmlinux built with CONFIG_PVH carries it, and so do vmctl's
 * test guests). Segments are placed at their physical addresses; every address and size
 * in the file is checked against the file and against guest RAM.
 */
import { VmmError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';

const ELF_MAGIC = 0x464c457f; // "\x7fELF" little-endian
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const PT_LOAD = 1;
const PT_NOTE = 4;
/** from Xen's public/elfnote.h */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;

export interface LoadedElf {
  /** the 32-bit PVH entry point */
  pvhEntry: number;
  /** lowest and highest guest-physical addresses the image occupies */
  low: number;
  high: number;
}

function fail(msg: string): never {
  throw new VmmError('KERNEL_LOAD_FAILED', `Cannot load kernel: ${msg}`);
}

/** True when `image` starts with the ELF magic. */
export function isElf(image: Uint8Array): boolean {
  return image.length >= 4 && new DataView(image.buffer, image.byteOffset).getUint32(0, true) === ELF_MAGIC;
}

interface Phdr {
  type: number;
  offset: number;
  paddr: number;
  filesz: number;
  memsz: number;
}

function programHeaders(image: Uint8Array): Phdr[] {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.length < 52 || !isElf(image)) fail('not an ELF file');
  const cls = image[4];
  if (image[5] !== ELFDATA2LSB) fail('not little-endian');
  const is64 = cls === ELFCLASS64;
  if (!is64 && cls !== ELFCLASS32) fail(`unknown ELF class ${cls}`);
  const phoff = is64 ? Number(dv.getBigUint64(32, true)) : dv.getUint32(28, true);
  const phentsize = dv.getUint16(is64 ? 54 : 42, true);
  const phnum = dv.getUint16(is64 ? 56 : 44, true);
  if (phentsize < (is64 ? 56 : 32) || phoff + phnum * phentsize > image.length) fail('program headers out of the file');
  const out: Phdr[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (is64) {
      out.push({
        type: dv.getUint32(o, true),
        offset: Number(dv.getBigUint64(o + 8, true)),
        paddr: Number(dv.getBigUint64(o + 24, true)),
        filesz: Number(dv.getBigUint64(o + 32, true)),
        memsz: Number(dv.getBigUint64(o + 40, true)),
      });
    } else {
      out.push({
        type: dv.getUint32(o, true),
        offset: dv.getUint32(o + 4, true),
        paddr: dv.getUint32(o + 12, true),
        filesz: dv.getUint32(o + 16, true),
        memsz: dv.getUint32(o + 20, true),
      });
    }
  }
  return out;
}

/** Finds the PVH entry in the PT_NOTE segments, or undefined. */
function findPvhEntry(image: Uint8Array, phdrs: Phdr[]): number | undefined {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const align4 = (n: number) => (n + 3) & ~3;
  for (const ph of phdrs) {
    if (ph.type !== PT_NOTE) continue;
    if (ph.offset + ph.filesz > image.length) fail('note segment out of the file');
    let o = ph.offset;
    const end = ph.offset + ph.filesz;
    while (o + 12 <= end) {
      const namesz = dv.getUint32(o, true);
      const descsz = dv.getUint32(o + 4, true);
      const type = dv.getUint32(o + 8, true);
      const nameOff = o + 12;
      const descOff = nameOff + align4(namesz);
      const next = descOff + align4(descsz);
      if (next > end || next <= o) break;
      const name = new TextDecoder().decode(image.subarray(nameOff, nameOff + Math.max(0, namesz - 1)));
      if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY && descsz >= 4) {
        return descsz >= 8 ? Number(dv.getBigUint64(descOff, true) & 0xffffffffn) : dv.getUint32(descOff, true);
      }
      o = next;
    }
  }
  return undefined;
}

/** Loads a PVH ELF into guest memory. */
export function loadPvhElf(mem: GuestMemory, image: Uint8Array): LoadedElf {
  const phdrs = programHeaders(image);
  const entry = findPvhEntry(image, phdrs);
  if (entry === undefined) fail('no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); is the kernel built with PVH support?');
  let low = Infinity;
  let high = 0;
  for (const ph of phdrs) {
    if (ph.type !== PT_LOAD || ph.memsz === 0) continue;
    if (ph.filesz > ph.memsz) fail('segment file size larger than memory size');
    if (ph.offset + ph.filesz > image.length) fail('segment out of the file');
    if (!mem.contains(ph.paddr, ph.memsz)) {
      fail(`segment at 0x${ph.paddr.toString(16)}+0x${ph.memsz.toString(16)} does not fit in guest RAM`);
    }
    mem.write(ph.paddr, image.subarray(ph.offset, ph.offset + ph.filesz));
    if (ph.memsz > ph.filesz) mem.fill(ph.paddr + ph.filesz, ph.memsz - ph.filesz, 0);
    low = Math.min(low, ph.paddr);
    high = Math.max(high, ph.paddr + ph.memsz);
  }
  if (high === 0) fail('no loadable segments');
  if (!mem.contains(entry, 1) || entry < low || entry >= high) fail(`PVH entry 0x${entry.toString(16)} is outside the loaded image`);
  return { pvhEntry: entry, low, high };
}
