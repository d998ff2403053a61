// KVM_GET_DIRTY_LOG on a memory slot with KVM_MEM_LOG_DIRTY_PAGES: the pages a guest wrote
// since the last call, then a clean log. Real /dev/kvm; the guest is hand-assembled 16-bit x86.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { constants as C, mmapGuestRam, munmapGuestRam } from '@vmctl/kvm-native';

import { realModeGuest, skipWithoutKvm } from './helpers.js';

const opts = skipWithoutKvm();

const LOGGED_GPA = 0x10000;
const LOGGED_SIZE = 0x10000; // 16 pages

function dirtyPages(bitmap: Uint8Array): number[] {
  const pages: number[] = [];
  for (let i = 0; i < bitmap.length * 8; i++) if (bitmap[i >> 3]! & (1 << (i & 7))) pages.push(i);
  return pages;
}

describe('Vm.getDirtyLog()', opts, () => {
  it('reports the pages the guest wrote in a logged slot, then nothing until it writes again', () => {
    const g = realModeGuest([
      0xb8, 0x00, 0x10, //             mov ax, 0x1000
      0x8e, 0xd8, //                   mov ds, ax
      0xc6, 0x06, 0x00, 0x30, 0x11, // mov byte [0x3000], 0x11   (gpa 0x13000: page 3)
      0xc6, 0x06, 0x00, 0x50, 0x22, // mov byte [0x5000], 0x22   (gpa 0x15000: page 5)
      0xe6, 0x10, //                   out 0x10, al
      0xc6, 0x06, 0x00, 0xf0, 0x33, // mov byte [0xf000], 0x33   (gpa 0x1f000: page 15)
      0xf4, //                         hlt
    ]);
    const logged = mmapGuestRam(LOGGED_SIZE);
    try {
      g.vm.setUserMemoryRegion({
        slot: 1,
        flags: C.KVM_MEM_LOG_DIRTY_PAGES,
        guestPhysAddr: LOGGED_GPA,
        memorySize: LOGGED_SIZE,
        userspaceAddr: logged.address,
      });
      const bitmap = new Uint8Array(8);
      g.vm.getDirtyLog(1, bitmap);
      assert.deepEqual(dirtyPages(bitmap), [], 'a new slot starts clean');

      assert.equal(g.vcpu.run(), C.KVM_EXIT_IO);
      g.vm.getDirtyLog(1, bitmap);
      assert.deepEqual(dirtyPages(bitmap), [3, 5]);
      const bytes = new Uint8Array(logged.chunks[0]!);
      assert.equal(bytes[0x3000], 0x11);
      assert.equal(bytes[0x5000], 0x22);

      g.vm.getDirtyLog(1, bitmap);
      assert.deepEqual(dirtyPages(bitmap), [], 'the log was cleared by the previous call');

      assert.equal(g.vcpu.run(), C.KVM_EXIT_HLT);
      const wide = new BigUint64Array(1);
      g.vm.getDirtyLog(1, wide);
      assert.equal(wide[0], 1n << 15n, 'a BigUint64Array gets the same bits');
    } finally {
      g.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: LOGGED_GPA, memorySize: 0, userspaceAddr: logged.address });
      g.close();
      munmapGuestRam(logged.address);
    }
  });

  it('refuses a slot it did not set and a bitmap too small for the slot, before any ioctl', () => {
    const g = realModeGuest([0xf4]);
    const logged = mmapGuestRam(LOGGED_SIZE * 8); // 128 pages: 16 bytes of bitmap
    try {
      assert.throws(() => g.vm.getDirtyLog(7, new Uint8Array(64)), RangeError);
      g.vm.setUserMemoryRegion({
        slot: 1,
        flags: C.KVM_MEM_LOG_DIRTY_PAGES,
        guestPhysAddr: LOGGED_GPA,
        memorySize: LOGGED_SIZE * 8,
        userspaceAddr: logged.address,
      });
      assert.throws(() => g.vm.getDirtyLog(1, new Uint8Array(8)), /at least 16 bytes/);
      assert.throws(() => g.vm.getDirtyLog(1, [] as unknown as Uint8Array), TypeError);
      g.vm.getDirtyLog(1, new Uint8Array(16));
      g.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: LOGGED_GPA, memorySize: 0, userspaceAddr: logged.address });
      assert.throws(() => g.vm.getDirtyLog(1, new Uint8Array(16)), RangeError, 'a deleted slot is forgotten');
    } finally {
      g.close();
      munmapGuestRam(logged.address);
    }
  });
});
