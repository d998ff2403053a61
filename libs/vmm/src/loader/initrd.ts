import { VmmError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { RAM_32BIT_END } from '../memory/layout.js';

const PAGE = 4096;

/**
 * Places an initrd at the top of low RAM (below the 32-bit hole and below `maxAddr`, the
 * highest address the kernel can reach for it), page-aligned, above the kernel image.
 */
export function placeInitrd(mem: GuestMemory, initrd: Uint8Array, kernelEnd: number, maxAddr = 0xffffffff): { addr: number; size: number } {
  const top = Math.min(mem.size, RAM_32BIT_END, maxAddr + 1);
  const addr = Math.floor((top - initrd.length) / PAGE) * PAGE;
  if (addr < kernelEnd || !mem.contains(addr, initrd.length)) {
    throw new VmmError('KERNEL_LOAD_FAILED', `Cannot load initrd: ${initrd.length} bytes do not fit between the kernel (ends 0x${kernelEnd.toString(16)}) and 0x${top.toString(16)}; give the guest more memory`);
  }
  mem.write(addr, initrd);
  return { addr, size: initrd.length };
}
