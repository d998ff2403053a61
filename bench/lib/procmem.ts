/**
 * A process's memory as /proc shows it, and the part of it that is guest RAM.
 *
 * Guest RAM is one anonymous private mapping of the guest's size in every VMM here, but the
 * kernel may merge it with a neighbouring anonymous mapping of the same flags (the vmm's
 * is), so its size alone does not find it. Instead: for each anonymous
 * read-write mapping at least as large as guest RAM, try its low and high end as the guest's
 * physical address 0 and look (through /proc/PID/mem) for the guest kernel's first loaded
 * segment at its physical address. The pages of that window present in /proc/PID/pagemap
 * are the guest RAM the host has actually allocated ("touched").
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

const PAGE = 4096;
const KIB = 1024;

export interface ProcMemory {
  vmRssKiB: number;
  rssAnonKiB: number;
  rssFileKiB: number;
  pssKiB: number;
  pssAnonKiB: number;
  pssFileKiB: number;
  threads: number;
}

function fieldsKiB(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const r = /^(\w+):\s+(\d+)/.exec(line);
    if (r) m.set(r[1]!, Number(r[2]));
  }
  return m;
}

export function procMemory(pid: number): ProcMemory {
  const status = fieldsKiB(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const rollup = fieldsKiB(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return {
    vmRssKiB: status.get('VmRSS')!,
    rssAnonKiB: status.get('RssAnon')!,
    rssFileKiB: status.get('RssFile')!,
    pssKiB: rollup.get('Pss')!,
    pssAnonKiB: rollup.get('Pss_Anon') ?? NaN,
    pssFileKiB: rollup.get('Pss_File') ?? NaN,
    threads: status.get('Threads')!,
  };
}

/** The first PT_LOAD segment of an ELF64 file: where it goes and its first bytes. */
export function firstLoadSegment(elf: Buffer): { paddr: number; bytes: Buffer } {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== 1 /* PT_LOAD */) continue;
    const offset = Number(elf.readBigUInt64LE(ph + 0x08));
    const paddr = Number(elf.readBigUInt64LE(ph + 0x18));
    const filesz = Number(elf.readBigUInt64LE(ph + 0x20));
    return { paddr, bytes: elf.subarray(offset, offset + Math.min(filesz, 512)) };
  }
  throw new Error('no PT_LOAD segment');
}

interface Vma {
  start: number;
  end: number;
  line: string;
}

function anonymousRwMappings(pid: number): Vma[] {
  return readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .map((line) => {
      const [range, perms, , , inode, path] = line.trim().split(/\s+/);
      if (!range || !perms?.startsWith('rw') || inode !== '0' || path) return null;
      const [s, e] = range.split('-').map((h) => parseInt(h, 16)) as [number, number];
      return { start: s, end: e, line };
    })
    .filter((v): v is Vma => v !== null);
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, pos);
  return b.subarray(0, n);
}

export interface GuestRam {
  /** host virtual address of guest physical 0 */
  base: string;
  /** the /proc/PID/maps line of the mapping that holds it */
  mapping: string;
  /** guest RAM pages present in the host (resident or swapped), in KiB */
  touchedKiB: number;
}

/** Finds guest RAM of `sizeBytes` in `pid` and counts its pages the host has allocated. */
export function guestRam(pid: number, sizeBytes: number, kernel: Buffer): GuestRam | null {
  const seg = firstLoadSegment(kernel);
  const mem = openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const vma of anonymousRwMappings(pid)) {
      if (vma.end - vma.start < sizeBytes) continue;
      for (const base of new Set([vma.start, vma.end - sizeBytes])) {
        let got: Buffer;
        try {
          got = readAt(mem, base + seg.paddr, seg.bytes.length);
        } catch {
          continue;
        }
        if (!got.equals(seg.bytes)) continue;
        return {
          base: `0x${base.toString(16)}`,
          mapping: vma.line.trim(),
          touchedKiB: (presentPages(pid, base, sizeBytes) * PAGE) / KIB,
        };
      }
    }
    return null;
  } finally {
    closeSync(mem);
  }
}

/** Pages of [addr, addr + len) present (bit 63) or swapped (bit 62) per /proc/PID/pagemap. */
function presentPages(pid: number, addr: number, len: number): number {
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const pages = len / PAGE;
    const buf = readAt(fd, (addr / PAGE) * 8, pages * 8);
    let n = 0;
    for (let off = 4; off < buf.length; off += 8) if (buf.readUInt32LE(off) & 0xc0000000) n++;
    return n;
  } finally {
    closeSync(fd);
  }
}
