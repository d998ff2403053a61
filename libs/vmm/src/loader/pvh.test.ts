import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writePvhStartInfo, HVM_START_MAGIC } from './pvh.js';
import { GuestMemory } from '../memory/guest-memory.js';
import { e820Map, MIB } from '../memory/layout.js';

test('writePvhStartInfo lays out hvm_start_info, the memmap and the cmdline', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const memmap = e820Map(64 * MIB);
  const at = writePvhStartInfo(mem, { cmdline: 'console=ttyS0 n=5', memmap, initrd: { addr: 0x3000000, size: 1234 } });
  assert.equal(mem.readU32(at), HVM_START_MAGIC);
  assert.equal(mem.readU32(at + 4), 1);
  assert.equal(mem.readU32(at + 12), 1, 'one module');
  const mod = Number(mem.readU64(at + 16));
  assert.equal(mem.readU64(mod), 0x3000000n);
  assert.equal(mem.readU64(mod + 8), 1234n);
  const cmd = Number(mem.readU64(at + 24));
  const bytes = new Uint8Array(18);
  mem.read(cmd, bytes);
  assert.equal(new TextDecoder().decode(bytes), 'console=ttyS0 n=5\0');
  const mm = Number(mem.readU64(at + 40));
  assert.equal(mem.readU32(at + 48), memmap.length);
  const last = mm + (memmap.length - 1) * 24;
  assert.equal(Number(mem.readU64(last)) + Number(mem.readU64(last + 8)), 64 * MIB);
  assert.equal(mem.readU32(last + 16), 1);
});

test('writePvhStartInfo refuses an over-long command line', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  assert.throws(() => writePvhStartInfo(mem, { cmdline: 'x'.repeat(70000), memmap: [] }), /command line/);
});
