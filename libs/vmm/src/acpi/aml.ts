/**
 * An encoder for the small part of AML (ACPI Machine Language) a VMM's DSDT needs.
 *
 * Written from the ACPI specification, "ACPI Machine Language (AML) Specification" (the AML
 * grammar: name strings, package lengths, data objects, named objects) and "Resource Data
 * Types for ACPI" (the small resource descriptors, and the large Word/DWord/QWord Address
 * Space Descriptors a PCI host bridge's _CRS needs). Every function is pure and returns the
 * encoded bytes; a caller builds a definition block by nesting them, as ASL nests:
 *
 *   scope('\\_SB', device('COM1', name('_HID', eisaId('PNP0501')), ...))
 *
 * Encodings follow what iasl emits for the same ASL, so the tables read back the same in a
 * disassembler. Bad arguments are a bug in the VMM, not guest input: they throw RangeError.
 */

// Opcodes (AML grammar, "Namespace Modifier Objects", "Named Objects", "Data Objects").
export const AML_ZERO_OP = 0x00;
export const AML_ONE_OP = 0x01;
export const AML_NAME_OP = 0x08;
export const AML_BYTE_PREFIX = 0x0a;
export const AML_WORD_PREFIX = 0x0b;
export const AML_DWORD_PREFIX = 0x0c;
export const AML_STRING_PREFIX = 0x0d;
export const AML_QWORD_PREFIX = 0x0e;
export const AML_SCOPE_OP = 0x10;
export const AML_BUFFER_OP = 0x11;
export const AML_PACKAGE_OP = 0x12;
export const AML_METHOD_OP = 0x14;
export const AML_DUAL_NAME_PREFIX = 0x2e;
export const AML_MULTI_NAME_PREFIX = 0x2f;
export const AML_EXT_OP_PREFIX = 0x5b;
export const AML_DEVICE_OP = 0x82; // after AML_EXT_OP_PREFIX
export const AML_ROOT_CHAR = 0x5c; // '\'
export const AML_PARENT_PREFIX_CHAR = 0x5e; // '^'
export const AML_RETURN_OP = 0xa4;
export const AML_ONES_OP = 0xff;

// Small resource descriptors (byte 0 = type << 3 | length).
export const RES_IRQ_NO_FLAGS = 0x22; // type 0x04, length 2
export const RES_IRQ = 0x23; // type 0x04, length 3
export const RES_IO_PORT = 0x47; // type 0x08, length 7
export const RES_END_TAG = 0x79; // type 0x0f, length 1
// Large resource descriptors (byte 0 = 0x80 | type, then the length of the rest, 16 bits LE).
export const RES_DWORD_ADDRESS_SPACE = 0x87;
export const RES_WORD_ADDRESS_SPACE = 0x88;
export const RES_QWORD_ADDRESS_SPACE = 0x8a;
/** Address space descriptor Resource Type */
export const RES_ADDRESS_MEMORY = 0;
export const RES_ADDRESS_IO = 1;
export const RES_ADDRESS_BUS_NUMBER = 2;
/** Address space descriptor General Flags */
export const RES_ADDRESS_CONSUMER = 0x01; // clear: ResourceProducer (a bridge's window)
export const RES_ADDRESS_SUB_DECODE = 0x02; // _DEC
export const RES_ADDRESS_MIN_FIXED = 0x04; // _MIF
export const RES_ADDRESS_MAX_FIXED = 0x08; // _MAF
/** I/O range Type Specific Flags: _RNG */
export const RES_IO_RANGE_NON_ISA = 0x01;
export const RES_IO_RANGE_ISA = 0x02;
export const RES_IO_RANGE_ENTIRE = 0x03;
/** Memory range Type Specific Flags: _RW in bit 0, _MEM in bits 2-1 */
export const RES_MEMORY_READ_WRITE = 0x01;
export const RES_MEMORY_NON_CACHEABLE = 0 << 1;
export const RES_MEMORY_CACHEABLE = 1 << 1;
export const RES_MEMORY_WRITE_COMBINING = 2 << 1;
export const RES_MEMORY_PREFETCHABLE = 3 << 1;
/** IO descriptor information byte: the device decodes all 16 address bits */
export const RES_IO_DECODE16 = 0x01;
/** IRQ descriptor flags */
export const RES_IRQ_EDGE = 0x01; // _HE: 1 edge, 0 level
export const RES_IRQ_ACTIVE_LOW = 0x08; // _LL
export const RES_IRQ_SHARED = 0x10; // _SHR

/** The largest PkgLength (28 bits). */
const PKG_LENGTH_MAX = 0x0fffffff;

/** The bytes of `parts`, one after another. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The PkgLength that precedes a body of `bodyLength` bytes. The encoded length counts its own
 * bytes too. One byte holds up to 63; otherwise bits 7-6 of the lead byte say how many bytes
 * follow (1-3), its bits 3-0 are the low nibble, and each following byte the next 8 bits.
 */
export function pkgLength(bodyLength: number): Uint8Array {
  if (!Number.isInteger(bodyLength) || bodyLength < 0) throw new RangeError(`AML package body length ${bodyLength} is invalid`);
  if (bodyLength + 1 <= 0x3f) return Uint8Array.of(bodyLength + 1);
  for (let follow = 1; follow <= 3; follow++) {
    const total = bodyLength + 1 + follow;
    if (total < 1 << (4 + 8 * follow)) {
      const out = new Uint8Array(1 + follow);
      out[0] = (follow << 6) | (total & 0x0f);
      for (let i = 1; i <= follow; i++) out[i] = (total >>> (4 + 8 * (i - 1))) & 0xff;
      return out;
    }
  }
  throw new RangeError(`AML package body of ${bodyLength} bytes exceeds the PkgLength limit of ${PKG_LENGTH_MAX}`);
}

/** A body preceded by its PkgLength. */
function withPkgLength(body: Uint8Array): Uint8Array {
  return concat(pkgLength(body.length), body);
}

const NAME_SEG = /^[A-Z_][A-Z0-9_]{0,3}$/;

/**
 * A NameSeg: four characters, a leading letter or underscore, then letters, digits or
 * underscores; a shorter name is padded with '_' as ASL does ("RTC" is "RTC_").
 */
export function nameSeg(seg: string): Uint8Array {
  if (!NAME_SEG.test(seg)) throw new RangeError(`"${seg}" is not an AML NameSeg`);
  const out = new Uint8Array(4).fill(0x5f);
  for (let i = 0; i < seg.length; i++) out[i] = seg.charCodeAt(i);
  return out;
}

/**
 * A NameString from an ASL path: an optional root '\' or parent '^' prefixes, then NameSegs
 * joined by '.'. Two segments take DualNamePrefix, more take MultiNamePrefix and a count;
 * '\' alone is the root.
 */
export function nameString(path: string): Uint8Array {
  let i = 0;
  const prefix: number[] = [];
  if (path.startsWith('\\')) {
    prefix.push(AML_ROOT_CHAR);
    i = 1;
  } else {
    while (path[i] === '^') {
      prefix.push(AML_PARENT_PREFIX_CHAR);
      i++;
    }
  }
  const rest = path.slice(i);
  const segs = rest === '' ? [] : rest.split('.').map(nameSeg);
  if (segs.length === 0 && prefix.length === 0) throw new RangeError('an empty AML name');
  if (segs.length > 255) throw new RangeError(`AML name "${path}" has more than 255 segments`);
  const head = Uint8Array.from(prefix);
  switch (segs.length) {
    case 0:
      return concat(head, Uint8Array.of(AML_ZERO_OP)); // NullName
    case 1:
      return concat(head, segs[0]!);
    case 2:
      return concat(head, Uint8Array.of(AML_DUAL_NAME_PREFIX), ...segs);
    default:
      return concat(head, Uint8Array.of(AML_MULTI_NAME_PREFIX, segs.length), ...segs);
  }
}

/**
 * An integer constant in its shortest form: ZeroOp, OneOp, or a Byte/Word/DWord/QWord
 * prefix and the value little-endian (iasl's integer optimisation does the same). Values
 * past 2^53 need a bigint. A definition block of revision 2 or more has 64-bit integers.
 */
export function integer(value: number | bigint): Uint8Array {
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new RangeError(`AML integer ${value} is out of range`);
  if (v === 0n) return Uint8Array.of(AML_ZERO_OP);
  if (v === 1n) return Uint8Array.of(AML_ONE_OP);
  const [prefix, size] =
    v <= 0xffn ? [AML_BYTE_PREFIX, 1]
    : v <= 0xffffn ? [AML_WORD_PREFIX, 2]
    : v <= 0xffff_ffffn ? [AML_DWORD_PREFIX, 4]
    : [AML_QWORD_PREFIX, 8];
  const out = new Uint8Array(1 + size);
  out[0] = prefix;
  for (let i = 0; i < size; i++) out[1 + i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** OnesOp: all bits set (0xffffffffffffffff in a revision-2 definition block). */
export function ones(): Uint8Array {
  return Uint8Array.of(AML_ONES_OP);
}

/** A String: StringPrefix, ASCII characters 0x01-0x7f, a NUL. */
export function string(text: string): Uint8Array {
  const out = new Uint8Array(text.length + 2);
  out[0] = AML_STRING_PREFIX;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x01 || c > 0x7f) throw new RangeError(`AML strings are ASCII; "${text}" is not`);
    out[1 + i] = c;
  }
  return out;
}

const EISA_ID = /^[A-Z]{3}[0-9A-F]{4}$/;

/**
 * The 32-bit value of ASL's EisaId("PNP0501"): three letters compressed to 5 bits each
 * ('A' = 1) in bits 14-0 of the first big-endian word, the four hex digits in the second,
 * the whole stored so that the bytes in memory read in that (big-endian) order.
 */
export function eisaIdValue(id: string): number {
  if (!EISA_ID.test(id)) throw new RangeError(`"${id}" is not an EISA id (three capitals, four hex digits)`);
  const c = (i: number) => id.charCodeAt(i) - 0x40;
  const vendor = (c(0) << 10) | (c(1) << 5) | c(2);
  const product = parseInt(id.slice(3), 16);
  const bytes = Uint8Array.of(vendor >> 8, vendor & 0xff, product >> 8, product & 0xff);
  return new DataView(bytes.buffer).getUint32(0, true);
}

/** EisaId("PNP0501") as an AML integer (a DWordConst). */
export function eisaId(id: string): Uint8Array {
  return integer(eisaIdValue(id));
}

/** Name(path, object): NameOp NameString DataRefObject. */
export function name(path: string, object: Uint8Array): Uint8Array {
  return concat(Uint8Array.of(AML_NAME_OP), nameString(path), object);
}

/** Scope(path) { terms }: ScopeOp PkgLength NameString TermList. */
export function scope(path: string, ...terms: readonly Uint8Array[]): Uint8Array {
  return concat(Uint8Array.of(AML_SCOPE_OP), withPkgLength(concat(nameString(path), ...terms)));
}

/** Device(path) { terms }: ExtOpPrefix DeviceOp PkgLength NameString TermList. */
export function device(path: string, ...terms: readonly Uint8Array[]): Uint8Array {
  return concat(Uint8Array.of(AML_EXT_OP_PREFIX, AML_DEVICE_OP), withPkgLength(concat(nameString(path), ...terms)));
}

export interface MethodOptions {
  /** 0-7 arguments */
  args?: number;
  serialized?: boolean;
  /** 0-15 */
  syncLevel?: number;
}

/**
 * Method(path, args, Serialized|NotSerialized, syncLevel) { terms }: MethodOp PkgLength
 * NameString MethodFlags TermList; MethodFlags holds ArgCount in bits 2-0, SerializeFlag in
 * bit 3 and SyncLevel in bits 7-4.
 */
export function method(path: string, options: MethodOptions, ...terms: readonly Uint8Array[]): Uint8Array {
  const args = options.args ?? 0;
  const sync = options.syncLevel ?? 0;
  if (!Number.isInteger(args) || args < 0 || args > 7) throw new RangeError(`AML methods take 0-7 arguments, not ${args}`);
  if (!Number.isInteger(sync) || sync < 0 || sync > 15) throw new RangeError(`AML sync level ${sync} is not 0-15`);
  const flags = args | (options.serialized ? 0x08 : 0) | (sync << 4);
  return concat(Uint8Array.of(AML_METHOD_OP), withPkgLength(concat(nameString(path), Uint8Array.of(flags), ...terms)));
}

/** Return(value): ReturnOp ArgObject. */
export function returnValue(value: Uint8Array): Uint8Array {
  return concat(Uint8Array.of(AML_RETURN_OP), value);
}

/** Package() { elements }: PackageOp PkgLength NumElements PackageElementList. */
export function pkg(...elements: readonly Uint8Array[]): Uint8Array {
  if (elements.length > 255) throw new RangeError(`an AML Package holds at most 255 elements, not ${elements.length}`);
  return concat(Uint8Array.of(AML_PACKAGE_OP), withPkgLength(concat(Uint8Array.of(elements.length), ...elements)));
}

/** Buffer() { bytes }: BufferOp PkgLength BufferSize ByteList; the size is an integer. */
export function buffer(bytes: Uint8Array): Uint8Array {
  return concat(Uint8Array.of(AML_BUFFER_OP), withPkgLength(concat(integer(bytes.length), bytes)));
}

/**
 * ResourceTemplate() { descriptors }: a Buffer of resource descriptors closed by an End Tag.
 * The End Tag's checksum is 0, which tells OSPM the template is valid without summing it.
 */
export function resourceTemplate(...descriptors: readonly Uint8Array[]): Uint8Array {
  return buffer(concat(...descriptors, Uint8Array.of(RES_END_TAG, 0)));
}

export interface IoPortOptions {
  /** the lowest base address the device can be set to (_MIN) */
  min: number;
  /** the highest (_MAX); equal to min for a fixed range */
  max?: number;
  /** base alignment in bytes (_ALN) */
  alignment?: number;
  /** ports in the range (_LEN) */
  length: number;
}

/** IO(Decode16, min, max, alignment, length): the 8-byte I/O Port Descriptor. */
export function io(options: IoPortOptions): Uint8Array {
  const { min, length } = options;
  const max = options.max ?? min;
  const alignment = options.alignment ?? 1;
  const fields = [['min', min, 0xffff], ['max', max, 0xffff], ['alignment', alignment, 0xff], ['length', length, 0xff]] as const;
  for (const [what, v, limit] of fields) {
    if (!Number.isInteger(v) || v < 0 || v > limit) throw new RangeError(`IO descriptor ${what} ${v} does not fit`);
  }
  return Uint8Array.of(RES_IO_PORT, RES_IO_DECODE16, min & 0xff, min >> 8, max & 0xff, max >> 8, alignment, length);
}

function irqMask(irqs: readonly number[]): number {
  let mask = 0;
  for (const irq of irqs) {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`IRQ descriptor takes ISA IRQs 0-15, not ${irq}`);
    mask |= 1 << irq;
  }
  return mask;
}

/**
 * IRQNoFlags() { irqs }: the 2-byte-body IRQ descriptor. With no flags byte the interrupt is
 * edge-triggered, active high and exclusive: an ISA interrupt.
 */
export function irqNoFlags(...irqs: readonly number[]): Uint8Array {
  const mask = irqMask(irqs);
  return Uint8Array.of(RES_IRQ_NO_FLAGS, mask & 0xff, mask >> 8);
}

export interface IrqOptions {
  edge: boolean;
  activeLow: boolean;
  shared?: boolean;
}

/** IRQ(Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) { irqs }: with the flags byte. */
export function irq(options: IrqOptions, ...irqs: readonly number[]): Uint8Array {
  const mask = irqMask(irqs);
  const flags =
    (options.edge ? RES_IRQ_EDGE : 0) | (options.activeLow ? RES_IRQ_ACTIVE_LOW : 0) | (options.shared ? RES_IRQ_SHARED : 0);
  return Uint8Array.of(RES_IRQ, mask & 0xff, mask >> 8, flags);
}

export interface AddressSpaceOptions {
  /** the lowest address (_MIN) */
  min: number | bigint;
  /** the highest address (_MAX) */
  max: number | bigint;
  /** the range's length (_LEN); default max - min + 1, the only length a fixed range may have */
  length?: number | bigint;
  /** _GRA; default 0 */
  granularity?: number | bigint;
  /** _TRA: what to add to a bus-side address to get the primary-side one; default 0 */
  translation?: number | bigint;
  /** ResourceProducer: a bridge's window that its children's resources come from. Default
   * false: ResourceConsumer, the device's own range, as in ASL. */
  producer?: boolean;
  /** _MIF and _MAF, both: the range cannot move; default true */
  fixed?: boolean;
  /** SubDecode (_DEC): a subtractive-decode bridge; default false (PosDecode) */
  subtractive?: boolean;
}

export type IoRanges = 'entire' | 'isa' | 'non-isa';

export interface IoAddressSpaceOptions extends AddressSpaceOptions {
  /** which ISA-aliased ranges it decodes (_RNG); default 'entire' (EntireRange) */
  ranges?: IoRanges;
}

export type MemoryCaching = 'non-cacheable' | 'cacheable' | 'write-combining' | 'prefetchable';

export interface MemoryAddressSpaceOptions extends AddressSpaceOptions {
  /** _MEM; default 'non-cacheable' (NonCacheable), as in ASL */
  caching?: MemoryCaching;
  /** _RW clear (ReadOnly); default false: ReadWrite */
  readOnly?: boolean;
}

const IO_RANGES: Record<IoRanges, number> = {
  entire: RES_IO_RANGE_ENTIRE,
  isa: RES_IO_RANGE_ISA,
  'non-isa': RES_IO_RANGE_NON_ISA,
};

const MEMORY_CACHING: Record<MemoryCaching, number> = {
  'non-cacheable': RES_MEMORY_NON_CACHEABLE,
  cacheable: RES_MEMORY_CACHEABLE,
  'write-combining': RES_MEMORY_WRITE_COMBINING,
  prefetchable: RES_MEMORY_PREFETCHABLE,
};

/**
 * A Word, DWord or QWord Address Space Descriptor ("Resource Data Types for ACPI", Large
 * Resource Data Type): tag, length of the rest (3 + 5 fields of `size` bytes), Resource Type,
 * General Flags, Type Specific Flags, then _GRA, _MIN, _MAX, _TRA and _LEN little-endian. No
 * ResourceSource follows. A range with fixed ends must be exactly max - min + 1 long.
 */
function addressSpace(
  tag: number,
  size: 2 | 4 | 8,
  resourceType: number,
  typeFlags: number,
  o: AddressSpaceOptions,
): Uint8Array {
  const what = `${{ 2: 'Word', 4: 'DWord', 8: 'QWord' }[size]} address space descriptor`;
  const limit = (1n << BigInt(8 * size)) - 1n;
  const value = (field: string, v: number | bigint): bigint => {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`${what} ${field} ${v} is not an integer`);
    const b = BigInt(v);
    if (b < 0n || b > limit) throw new RangeError(`${what} ${field} ${v} does not fit`);
    return b;
  };
  const min = value('min', o.min);
  const max = value('max', o.max);
  if (max < min) throw new RangeError(`${what} max ${o.max} is below min ${o.min}`);
  const length = value('length', o.length ?? max - min + 1n);
  const fixed = o.fixed ?? true;
  if (fixed && length !== max - min + 1n) {
    throw new RangeError(`${what} with fixed ends has length ${length}, not max - min + 1 = ${max - min + 1n}`);
  }
  const fields = [
    value('granularity', o.granularity ?? 0),
    min,
    max,
    value('translation', o.translation ?? 0),
    length,
  ];
  const generalFlags =
    (o.producer ? 0 : RES_ADDRESS_CONSUMER) |
    (o.subtractive ? RES_ADDRESS_SUB_DECODE : 0) |
    (fixed ? RES_ADDRESS_MIN_FIXED | RES_ADDRESS_MAX_FIXED : 0);
  const out = new Uint8Array(6 + 5 * size);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, tag);
  dv.setUint16(1, out.length - 3, true);
  dv.setUint8(3, resourceType);
  dv.setUint8(4, generalFlags);
  dv.setUint8(5, typeFlags);
  fields.forEach((v, i) => {
    for (let b = 0; b < size; b++) out[6 + i * size + b] = Number((v >> BigInt(8 * b)) & 0xffn);
  });
  return out;
}

/** WordBusNumber(...): a range of bus numbers (a host bridge's: the buses below it). */
export function wordBusNumber(options: AddressSpaceOptions): Uint8Array {
  return addressSpace(RES_WORD_ADDRESS_SPACE, 2, RES_ADDRESS_BUS_NUMBER, 0, options);
}

/** WordIO(...): a range of I/O ports. */
export function wordIo(options: IoAddressSpaceOptions): Uint8Array {
  return addressSpace(RES_WORD_ADDRESS_SPACE, 2, RES_ADDRESS_IO, IO_RANGES[options.ranges ?? 'entire'], options);
}

function memoryFlags(o: MemoryAddressSpaceOptions): number {
  return MEMORY_CACHING[o.caching ?? 'non-cacheable'] | (o.readOnly ? 0 : RES_MEMORY_READ_WRITE);
}

/** DWordMemory(...): a range of memory addresses below 4 GiB. */
export function dwordMemory(options: MemoryAddressSpaceOptions): Uint8Array {
  return addressSpace(RES_DWORD_ADDRESS_SPACE, 4, RES_ADDRESS_MEMORY, memoryFlags(options), options);
}

/** QWordMemory(...): a range of memory addresses anywhere in 64 bits (past 2^53, bigints). */
export function qwordMemory(options: MemoryAddressSpaceOptions): Uint8Array {
  return addressSpace(RES_QWORD_ADDRESS_SPACE, 8, RES_ADDRESS_MEMORY, memoryFlags(options), options);
}
