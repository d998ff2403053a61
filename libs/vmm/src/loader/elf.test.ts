import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPvhElf, isElf, XEN_ELFNOTE_PHYS32_ENTRY } from './elf.js';
import { GuestMemory } from '../memory/guest-memory.js';
import { MIB } from '../memory/layout.js';
import { VmmError } from '../errors.js';

/** Builds a little ELF64 with one PT_LOAD at `paddr` and, unless told not to, a Xen PVH note. */
function elf64(opts: { paddr: number; code: Uint8Array; memsz?: number; entry?: number; note?: boolean }): Uint8Array {
  const ehsize = 64;
  const phentsize = 56;
  const withNote = opts.note !== false;
  const phnum = withNote ? 2 : 1;
  const noteOff = ehsize + phnum * phentsize;
  const note = new Uint8Array(12 + 4 + 4);
  const ndv = new DataView(note.buffer);
  ndv.setUint32(0, 4, true); // "Xen\0"
  ndv.setUint32(4, 4, true);
  ndv.setUint32(8, XEN_ELFNOTE_PHYS32_ENTRY, true);
  note.set([0x58, 0x65, 0x6e, 0], 12);
  ndv.setUint32(16, opts.entry ?? opts.paddr, true);
  const codeOff = noteOff + (withNote ? note.length : 0);
  const img = new Uint8Array(codeOff + opts.code.length);
  const dv = new DataView(img.buffer);
  img.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 62, true); // x86-64
  dv.setBigUint64(32, BigInt(ehsize), true); // phoff
  dv.setUint16(52, ehsize, true);
  dv.setUint16(54, phentsize, true);
  dv.setUint16(56, phnum, true);
  let ph = ehsize;
  dv.setUint32(ph, 1, true); // PT_LOAD
  dv.setBigUint64(ph + 8, BigInt(codeOff), true);
  dv.setBigUint64(ph + 16, BigInt(opts.paddr), true);
  dv.setBigUint64(ph + 24, BigInt(opts.paddr), true);
  dv.setBigUint64(ph + 32, BigInt(opts.code.length), true);
  dv.setBigUint64(ph + 40, BigInt(opts.memsz ?? opts.code.length), true);
  if (withNote) {
    ph += phentsize;
    dv.setUint32(ph, 4, true); // PT_NOTE
    dv.setBigUint64(ph + 8, BigInt(noteOff), true);
    dv.setBigUint64(ph + 32, BigInt(note.length), true);
    img.set(note, noteOff);
  }
  img.set(opts.code, codeOff);
  return img;
}

test('loadPvhElf places segments and returns the PVH entry', () => {
  const mem = GuestMemory.anonymous(16 * MIB);
  mem.fill(0x100000, 0x2000, 0xee);
  const img = elf64({ paddr: 0x100000, code: Uint8Array.of(0xf4, 0x90, 0x90), memsz: 0x1000, entry: 0x100001 });
  assert.equal(isElf(img), true);
  const out = loadPvhElf(mem, img);
  assert.equal(out.pvhEntry, 0x100001);
  assert.equal(out.low, 0x100000);
  assert.equal(out.high, 0x101000);
  assert.equal(mem.readU8(0x100000), 0xf4);
  assert.equal(mem.readU8(0x100003), 0, 'bss is zeroed');
  assert.equal(mem.readU8(0x101000), 0xee, 'nothing past memsz is touched');
});

test('loadPvhElf refuses an image without the PVH note', () => {
  const mem = GuestMemory.anonymous(16 * MIB);
  const img = elf64({ paddr: 0x100000, code: Uint8Array.of(0xf4), note: false });
  assert.throws(() => loadPvhElf(mem, img), (e: unknown) => e instanceof VmmError && e.code === 'KERNEL_LOAD_FAILED' && /PVH/.test(e.message));
});

test('loadPvhElf refuses segments outside guest RAM and entries outside the image', () => {
  const mem = GuestMemory.anonymous(16 * MIB);
  assert.throws(() => loadPvhElf(mem, elf64({ paddr: 16 * MIB - 1, code: Uint8Array.of(1, 2) })), /does not fit/);
  assert.throws(() => loadPvhElf(mem, elf64({ paddr: 0x100000, code: Uint8Array.of(1), entry: 0x200000 })), /outside the loaded image/);
});

test('loadPvhElf refuses truncated and foreign files', () => {
  const mem = GuestMemory.anonymous(16 * MIB);
  const img = elf64({ paddr: 0x100000, code: new Uint8Array(64) });
  assert.throws(() => loadPvhElf(mem, img.subarray(0, 100)), VmmError);
  assert.throws(() => loadPvhElf(mem, new Uint8Array(200)), /not an ELF/);
});
