import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buffer,
  device,
  dwordMemory,
  eisaId,
  eisaIdValue,
  integer,
  io,
  irq,
  irqNoFlags,
  method,
  name,
  nameSeg,
  nameString,
  ones,
  pkg,
  pkgLength,
  qwordMemory,
  resourceTemplate,
  returnValue,
  scope,
  string,
  wordBusNumber,
  wordIo,
} from './aml.js';

/** Bytes from a hex string such as "08 5f 53 35 5f". */
function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, '');
  return Uint8Array.from(digits.match(/../g) ?? [], (h) => parseInt(h, 16));
}

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

test('pkgLength() uses one byte up to a total of 63', () => {
  assert.deepEqual(pkgLength(0), hex('01'));
  assert.deepEqual(pkgLength(7), hex('08'));
  assert.deepEqual(pkgLength(62), hex('3f'));
});

test('pkgLength() counts its own bytes and spreads the length over lead nibble and following bytes', () => {
  // body 63: total 65 = 0x041 in two bytes: lead 0x40 | 0x1, then 0x04
  assert.deepEqual(pkgLength(63), hex('41 04'));
  // body 4093: total 4095 = 0xfff, the largest two-byte length
  assert.deepEqual(pkgLength(4093), hex('4f ff'));
  // body 4094: total 4097 = 0x01001 in three bytes
  assert.deepEqual(pkgLength(4094), hex('81 00 01'));
  // body 0x100000: total 0x100004 in four bytes
  assert.deepEqual(pkgLength(0x100000), hex('c4 00 00 01'));
});

test('pkgLength() refuses lengths past 28 bits', () => {
  assert.throws(() => pkgLength(0x10000000), RangeError);
  assert.throws(() => pkgLength(-1), RangeError);
});

test('nameSeg() pads short names with underscores', () => {
  assert.deepEqual(nameSeg('RTC'), Uint8Array.from(ascii('RTC_')));
  assert.deepEqual(nameSeg('_S5'), Uint8Array.from(ascii('_S5_')));
  assert.deepEqual(nameSeg('COM1'), Uint8Array.from(ascii('COM1')));
});

test('nameSeg() refuses names AML cannot hold', () => {
  for (const bad of ['', '1ABC', 'abcd', 'TOOLONG', 'A-B']) assert.throws(() => nameSeg(bad), RangeError, bad);
});

test('nameString() encodes root, parent, dual and multi-segment paths', () => {
  assert.deepEqual(nameString('\\_SB'), Uint8Array.from([0x5c, ...ascii('_SB_')]));
  assert.deepEqual(nameString('^^FOO'), Uint8Array.from([0x5e, 0x5e, ...ascii('FOO_')]));
  assert.deepEqual(nameString('\\_SB.PCI0'), Uint8Array.from([0x5c, 0x2e, ...ascii('_SB_PCI0')]));
  assert.deepEqual(nameString('_SB.PCI0.ISA'), Uint8Array.from([0x2f, 0x03, ...ascii('_SB_PCI0ISA_')]));
  assert.deepEqual(nameString('\\'), hex('5c 00'));
});

test('integer() picks ZeroOp, OneOp or the shortest prefixed constant', () => {
  assert.deepEqual(integer(0), hex('00'));
  assert.deepEqual(integer(1), hex('01'));
  assert.deepEqual(integer(5), hex('0a 05'));
  assert.deepEqual(integer(0xff), hex('0a ff'));
  assert.deepEqual(integer(0x100), hex('0b 00 01'));
  assert.deepEqual(integer(0x3f8), hex('0b f8 03'));
  assert.deepEqual(integer(0x10000), hex('0c 00 00 01 00'));
  assert.deepEqual(integer(0xfec00000), hex('0c 00 00 c0 fe'));
  assert.deepEqual(integer(0x1_0000_0000), hex('0e 00 00 00 00 01 00 00 00'));
  assert.deepEqual(integer(0xffff_ffff_ffff_ffffn), hex('0e ff ff ff ff ff ff ff ff'));
  assert.deepEqual(ones(), hex('ff'));
  assert.throws(() => integer(-1), RangeError);
  assert.throws(() => integer(1n << 64n), RangeError);
});

test('string() is StringPrefix, ASCII and a NUL', () => {
  assert.deepEqual(string('ok'), hex('0d 6f 6b 00'));
  assert.deepEqual(string(''), hex('0d 00'));
  assert.throws(() => string('é'), RangeError);
});

test('eisaId() compresses the vendor letters as ASL EisaId() does', () => {
  // PNP = 10000 01110 10000 = 0x41d0; the id reads 41 d0 05 01 in memory
  assert.equal(eisaIdValue('PNP0501'), 0x0105d041);
  assert.equal(eisaIdValue('PNP0A03'), 0x030ad041);
  assert.deepEqual(eisaId('PNP0B00'), hex('0c 41 d0 0b 00'));
  assert.throws(() => eisaId('pnp0501'), RangeError);
  assert.throws(() => eisaId('PNP050'), RangeError);
});

test('name() encodes the \\_S5 package as iasl does', () => {
  const s5 = name('_S5', pkg(integer(5), integer(5), integer(0), integer(0)));

  // NameOp '_S5_' PackageOp PkgLength(8) NumElements(4) 0x05 0x05 Zero Zero
  assert.deepEqual(s5, hex('08 5f 53 35 5f 12 08 04 0a 05 0a 05 00 00'));
});

test('pkg() refuses more than 255 elements', () => {
  assert.throws(() => pkg(...Array.from({ length: 256 }, () => integer(0))), RangeError);
});

test('buffer() carries its size as an integer before the bytes', () => {
  assert.deepEqual(buffer(hex('aa bb')), hex('11 05 0a 02 aa bb'));
  assert.deepEqual(buffer(hex('')), hex('11 02 00'));
});

test('scope() and device() wrap a name and terms in a package length', () => {
  const dev = device('RTC', name('_UID', integer(0)));

  // ExtOpPrefix DeviceOp PkgLength NameSeg | NameOp '_UID' Zero
  assert.deepEqual(dev, hex('5b 82 0b 52 54 43 5f 08 5f 55 49 44 00'));
  assert.deepEqual(scope('\\_SB', dev), Uint8Array.from([0x10, 0x13, 0x5c, ...ascii('_SB_'), ...dev]));
});

test('method() packs argument count, serialization and sync level into MethodFlags', () => {
  const sta = method('_STA', {}, returnValue(integer(0x0f)));

  // MethodOp PkgLength '_STA' flags(0) ReturnOp 0x0f
  assert.deepEqual(sta, hex('14 09 5f 53 54 41 00 a4 0a 0f'));
  assert.equal(method('M', { args: 2, serialized: true, syncLevel: 3 }).at(6), 0x3a);
  assert.throws(() => method('M', { args: 8 }), RangeError);
});

test('io() is the 8-byte I/O port descriptor with 16-bit decode', () => {
  assert.deepEqual(io({ min: 0x3f8, length: 8 }), hex('47 01 f8 03 f8 03 01 08'));
  assert.deepEqual(io({ min: 0x100, max: 0x1f0, alignment: 0x10, length: 4 }), hex('47 01 00 01 f0 01 10 04'));
  assert.throws(() => io({ min: 0x10000, length: 1 }), RangeError);
});

test('irqNoFlags() and irq() set one mask bit per IRQ', () => {
  assert.deepEqual(irqNoFlags(4), hex('22 10 00'));
  assert.deepEqual(irqNoFlags(12), hex('22 00 10'));
  assert.deepEqual(irqNoFlags(3, 4), hex('22 18 00'));
  assert.deepEqual(irq({ edge: false, activeLow: true, shared: true }, 9), hex('23 00 02 18'));
  assert.deepEqual(irq({ edge: true, activeLow: false }, 1), hex('23 02 00 01'));
  assert.throws(() => irqNoFlags(16), RangeError);
});

test('resourceTemplate() ends the descriptors with an End Tag inside a Buffer', () => {
  const crs = resourceTemplate(io({ min: 0x3f8, length: 8 }), irqNoFlags(4));

  // BufferOp PkgLength(16) BufferSize(13) | IO | IRQNoFlags | EndTag checksum 0
  assert.deepEqual(crs, hex('11 10 0a 0d 47 01 f8 03 f8 03 01 08 22 10 00 79 00'));
});

test('pkg() nests packages, as a _PRT is a Package of Packages', () => {
  const prt = pkg(
    pkg(integer(0xffff), integer(0), integer(0), integer(16)),
    pkg(integer(0x1ffff), integer(3), integer(0), integer(23)),
  );

  // PackageOp PkgLength NumElements(2) | PackageOp PkgLength(9) NumElements(4) 0xFFFF Zero Zero 0x10
  //                                    | PackageOp PkgLength(12) NumElements(4) 0x1FFFF 0x03 Zero 0x17
  assert.deepEqual(prt, hex('12 19 02  12 09 04 0b ff ff 00 00 0a 10  12 0c 04 0c ff ff 01 00 0a 03 00 0a 17'));
  const entry = (i: number) => pkg(integer(((i >> 2) << 16) | 0xffff), integer(i & 3), integer(0), integer(16));
  const many = pkg(...Array.from({ length: 128 }, (_, i) => entry(i)));
  assert.equal(many[0], 0x12);
  assert.equal(many[1]! >> 6, 1, 'a two-byte PkgLength once the body passes 63 bytes');
  assert.equal(many[3], 128, 'NumElements');
});

// Address space descriptors: tag, length of the rest (LE16), Resource Type, General Flags
// (bit 0 consumer, 1 _DEC, 2 _MIF, 3 _MAF), Type Specific Flags, then _GRA _MIN _MAX _TRA _LEN.

test('wordBusNumber() is the 16-byte Word Address Space Descriptor of resource type 2', () => {
  // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0, 0x100)
  assert.deepEqual(
    wordBusNumber({ producer: true, min: 0, max: 0xff }),
    hex('88 0d 00 02 0c 00  0000 0000 ff00 0000 0001'),
  );
});

test('wordIo() is the Word Address Space Descriptor of resource type 1 with _RNG in the type flags', () => {
  // WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0xD00, 0xFFFF, 0, 0xF300)
  assert.deepEqual(wordIo({ producer: true, min: 0xd00, max: 0xffff }), hex('88 0d 00 01 0c 03  0000 000d ffff 0000 00f3'));
  // WordIO (ResourceConsumer, MinNotFixed, MaxNotFixed, SubDecode, ISAOnlyRanges, 0, 0x100, 0x1FF, 0, 0x10)
  assert.deepEqual(
    wordIo({ min: 0x100, max: 0x1ff, length: 0x10, fixed: false, subtractive: true, ranges: 'isa' }),
    hex('88 0d 00 01 03 02  0000 0001 ff01 0000 1000'),
  );
  assert.deepEqual(wordIo({ min: 0, max: 0xcf7, ranges: 'non-isa' }).subarray(3, 6), hex('01 0d 01'));
});

test('dwordMemory() is the 26-byte DWord Address Space Descriptor with _MEM and _RW in the type flags', () => {
  // DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
  //              0, 0xC0000000, 0xCFFFFFFF, 0, 0x10000000)
  assert.deepEqual(
    dwordMemory({ producer: true, min: 0xc0000000, max: 0xcfffffff }),
    hex('87 17 00 00 0c 01  00000000 000000c0 ffffffcf 00000000 00000010'),
  );
  const flags = (caching: 'cacheable' | 'write-combining' | 'prefetchable', readOnly: boolean) =>
    dwordMemory({ min: 0, max: 0xfff, caching, readOnly })[5];
  assert.equal(flags('cacheable', false), 0b011);
  assert.equal(flags('write-combining', false), 0b101);
  assert.equal(flags('prefetchable', true), 0b110);
});

test('qwordMemory() is the 46-byte QWord Address Space Descriptor and takes 64-bit values', () => {
  // QWordMemory (ResourceConsumer, PosDecode, MinFixed, MaxFixed, Prefetchable, ReadOnly,
  //              0, 0x100000000, 0x1FFFFFFFF, 0, 0x100000000)
  assert.deepEqual(
    qwordMemory({ min: 0x1_0000_0000, max: 0x1_ffff_ffff, caching: 'prefetchable', readOnly: true }),
    hex(`8a 2b 00 00 0d 06  0000000000000000 0000000001000000 ffffffff01000000
         0000000000000000 0000000001000000`),
  );
  const top = qwordMemory({ min: 0xffff_ffff_0000_0000n, max: 0xffff_ffff_ffff_ffffn });
  assert.deepEqual(top.subarray(22, 30), hex('ff ff ff ff ff ff ff ff'), '_MAX');
  assert.deepEqual(top.subarray(38, 46), hex('00 00 00 00 01 00 00 00'), '_LEN');
});

test('address space descriptors refuse values that do not fit and fixed ranges of the wrong length', () => {
  assert.throws(() => wordIo({ min: 0, max: 0x10000 }), RangeError);
  assert.throws(() => dwordMemory({ min: 0, max: 0x1_0000_0000 }), RangeError);
  assert.throws(() => wordBusNumber({ min: 0x10, max: 0x0f }), RangeError);
  assert.throws(() => wordBusNumber({ min: 0, max: 0xff, length: 0x80 }), RangeError);
  assert.throws(() => qwordMemory({ min: -1, max: 0 }), RangeError);
  assert.throws(() => qwordMemory({ min: 0, max: 1n << 64n }), RangeError);
  assert.throws(() => dwordMemory({ min: 0.5, max: 1 }), RangeError);
});

test('resourceTemplate() takes large descriptors too', () => {
  const crs = resourceTemplate(wordBusNumber({ producer: true, min: 0, max: 0xff }));

  // BufferOp PkgLength(21) BufferSize(18) | WordBusNumber | EndTag
  assert.deepEqual(crs, hex('11 15 0a 12 88 0d 00 02 0c 00 0000 0000 ff00 0000 0001 79 00'));
});
