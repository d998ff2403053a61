/**
 * virtio-blk, the block device (virtio 1.2 §5.2): device type 2, one request queue, over a
 * disk backend (`disk/raw.ts`).
 *
 * What it offers: SIZE_MAX, SEG_MAX, BLK_SIZE (512: the logical sector, so images keep their
 * partition tables), FLUSH, and either RO, or DISCARD and WRITE_ZEROES. Requests: IN, OUT,
 * FLUSH, GET_ID, DISCARD, WRITE_ZEROES; every other type is answered VIRTIO_BLK_S_UNSUPP.
 *
 * Not offered: VIRTIO_BLK_F_MQ. One device thread takes every request, and the disk's
 * io_uring already runs large ones in parallel on the kernel's workers; on this 2-core host
 * more queues would add interrupts and rings, not parallelism. CONFIG_WCE, TOPOLOGY,
 * GEOMETRY, LIFETIME, SECURE_ERASE and ZONED neither.
 *
 * The data path: a notification (an ioeventfd on the device thread's loop) makes the device
 * take every available request (the whole ring, not one), parse each and queue it at the
 * disk; the disk submits them all with one io_uring_enter at the end of the turn, where 4 KiB
 * reads found in the page cache complete at once, so their answers are in the used ring
 * before the turn ends. While requests are out the driver is asked not to notify.
 *
 * A request is parsed by `parseBlkRequest` (no I/O: it reads the chain and decides) and either
 * answered at once — errors, GET_ID, a read-only FLUSH — or handed to the backend under a
 * tag; the answer (status byte, used element, one interrupt per batch) goes out when the
 * backend completes it, in order of completion (§5.2: requests are serviced "probably out of
 * order"). At most `disk.maxRequests` requests are in flight: past that the device leaves the
 * ring alone until one completes, so a guest cannot pile up host work.
 *
 * Framing (§2.7.4: the device MUST NOT assume a particular arrangement of descriptors): the
 * 16-byte header is the first 16 device-readable bytes, the status byte is the last
 * device-writable byte, and data is what lies between, however the driver split it.
 *
 * Used length: every device-writable byte of the request (data + status), whatever the
 * outcome, as QEMU does: the status byte comes last, and the driver must not look past `len`
 * (§2.7.8.3). On a failed read that overstates what was written (§2.7.8.2 asks for at least
 * `len` bytes); the data bytes are then unspecified, and a driver looks at the status first.
 */
import type { DeviceMetrics } from '../../bus/device.js';
import { VmmError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import {
  VIRTIO_ID_BLOCK,
  VIRTIO_RING_FEATURES,
  type VirtioActivation,
  type VirtioDevice,
} from './device.js';
import {
  IO_OP_DISCARD,
  IO_OP_FLUSH,
  IO_OP_READ,
  IO_OP_SYNC,
  IO_OP_WRITE,
  IO_OP_WRITE_ZEROES,
  SECTOR_SIZE,
  type DiskBackend,
} from './disk/raw.js';
import { isQueueError, readFromChain, writeToChain, type DescriptorChain } from './queue.js';

// Feature bits (§5.2.3).
export const VIRTIO_BLK_F_SIZE_MAX = 1n << 1n;
export const VIRTIO_BLK_F_SEG_MAX = 1n << 2n;
export const VIRTIO_BLK_F_GEOMETRY = 1n << 4n;
export const VIRTIO_BLK_F_RO = 1n << 5n;
export const VIRTIO_BLK_F_BLK_SIZE = 1n << 6n;
export const VIRTIO_BLK_F_FLUSH = 1n << 9n;
export const VIRTIO_BLK_F_TOPOLOGY = 1n << 10n;
export const VIRTIO_BLK_F_CONFIG_WCE = 1n << 11n;
export const VIRTIO_BLK_F_MQ = 1n << 12n;
export const VIRTIO_BLK_F_DISCARD = 1n << 13n;
export const VIRTIO_BLK_F_WRITE_ZEROES = 1n << 14n;

// struct virtio_blk_config (§5.2.4): byte offsets.
export const VIRTIO_BLK_CFG_CAPACITY = 0; // le64, 512-byte sectors
export const VIRTIO_BLK_CFG_SIZE_MAX = 8; // le32
export const VIRTIO_BLK_CFG_SEG_MAX = 12; // le32
export const VIRTIO_BLK_CFG_GEOMETRY = 16; // le16 cylinders, u8 heads, u8 sectors
export const VIRTIO_BLK_CFG_BLK_SIZE = 20; // le32
export const VIRTIO_BLK_CFG_TOPOLOGY = 24; // 8 bytes
export const VIRTIO_BLK_CFG_WRITEBACK = 32; // u8
export const VIRTIO_BLK_CFG_NUM_QUEUES = 34; // le16
export const VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS = 36; // le32
export const VIRTIO_BLK_CFG_MAX_DISCARD_SEG = 40; // le32
export const VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT = 44; // le32
export const VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS = 48; // le32
export const VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG = 52; // le32
export const VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP = 56; // u8, then unused1[3]
/** the configuration through unused1: the fields past it belong to features we do not offer */
export const VIRTIO_BLK_CONFIG_SIZE = 60;

// Request types and status values (§5.2.6).
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;
/** struct virtio_blk_req's type, reserved and sector */
export const VIRTIO_BLK_REQ_HEADER_SIZE = 16;
/** struct virtio_blk_discard_write_zeroes */
export const VIRTIO_BLK_DISCARD_WZ_SIZE = 16;
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;
/** the device ID string of GET_ID: NUL-padded ASCII, no terminator at 20 bytes */
export const VIRTIO_BLK_ID_BYTES = 20;

export const VIRTIO_BLK_QUEUE_SIZE = 256;
/**
 * The largest segment we advertise. Not enforced (a descriptor may hold more; the I/O thread
 * takes any size), but with seg_max it bounds a well-formed request: see MAX_DATA_BYTES.
 */
export const VIRTIO_BLK_SIZE_MAX = 1024 * 1024;
/** Discards: up to 128 MiB per segment (hole punching is a metadata operation). */
export const VIRTIO_BLK_MAX_DISCARD_SECTORS = (128 * 1024 * 1024) / SECTOR_SIZE;
/** Write-zeroes: up to 32 MiB per segment, which may be written as zeros where the file system cannot zero a range. */
export const VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS = (32 * 1024 * 1024) / SECTOR_SIZE;
/** Segments per discard or write-zeroes request (Linux merges adjacent discards into one). */
export const VIRTIO_BLK_MAX_RANGE_SEG = 32;
/** How long a device reset waits for requests in flight before it gives up on them. */
export const VIRTIO_BLK_RESET_DRAIN_MS = 5000;

/** Why a request was refused, for metrics and `lastError`. */
export type BlkRequestError =
  /** no device-writable byte to put a status in */
  | 'NO_STATUS'
  /** fewer than 16 device-readable bytes */
  | 'SHORT_HEADER'
  /** data in the wrong direction for the type (e.g. device-readable data on a read) */
  | 'MALFORMED'
  /** data not a multiple of 512 (IN/OUT) or 16 (DISCARD/WRITE_ZEROES), or empty where it may not be */
  | 'BAD_LENGTH'
  /** more data segments than seg_max, or discard/write-zeroes segments than their max */
  | 'TOO_MANY_SEGMENTS'
  /** more data than seg_max × size_max, or a range longer than its max */
  | 'TOO_LARGE'
  /** sectors past the capacity */
  | 'OUT_OF_RANGE'
  /** a write, discard or write-zeroes on a read-only disk */
  | 'READ_ONLY'
  /** an unknown type, a feature not negotiated, or flags the spec says to refuse */
  | 'UNSUPPORTED';

/** What the driver negotiated and the disk allows: the inputs of `parseBlkRequest`. */
export interface BlkLimits {
  /** 512-byte sectors */
  capacity: number;
  readOnly: boolean;
  segMax: number;
  maxDataBytes: number;
  /** VIRTIO_BLK_F_DISCARD negotiated */
  discard: boolean;
  /** VIRTIO_BLK_F_WRITE_ZEROES negotiated */
  writeZeroes: boolean;
  /** VIRTIO_BLK_F_FLUSH not negotiated: writes must be stable when they complete */
  writeThrough: boolean;
  /** max_discard_seg and max_write_zeroes_seg */
  maxRangeSegments: number;
}

/** parseBlkRequest's verdicts. */
export const BLK_NO_STATUS = 0;
/** answer now with `status` */
export const BLK_ANSWER = 1;
/** hand `op` to the backend */
export const BLK_SUBMIT = 2;
/** answer now with the device ID in the data, then OK */
export const BLK_GET_ID = 3;

/** One parsed request; reused from request to request. */
export class BlkRequest {
  verdict = BLK_NO_STATUS;
  status = VIRTIO_BLK_S_OK;
  error: BlkRequestError | undefined;
  /** request type from the header (-1 when there is no header) */
  type = -1;
  /** guest-physical address of the status byte */
  statusAddr = 0;
  /** the used length: all device-writable bytes */
  usedLen = 0;
  /** IO_OP_* (| IO_OP_SYNC) for BLK_SUBMIT */
  op = 0;
  /** byte offset in the disk (IN/OUT) */
  offset = 0;
  /** segments written into the caller's array */
  nseg = 0;
  /** data bytes (IN/OUT), bytes covered (DISCARD/WRITE_ZEROES), ID bytes (GET_ID) */
  bytes = 0;
}

const header = new Uint8Array(VIRTIO_BLK_REQ_HEADER_SIZE + VIRTIO_BLK_DISCARD_WZ_SIZE * VIRTIO_BLK_MAX_RANGE_SEG);
const headerView = new DataView(header.buffer);

function refuse(out: BlkRequest, status: number, error: BlkRequestError): void {
  out.verdict = BLK_ANSWER;
  out.status = status;
  out.error = error;
}

/** A sector number from two 32-bit halves, or -1 past 2^53 (never inside a disk). */
function sectorAt(view: DataView, at: number): number {
  const hi = view.getUint32(at + 4, true);
  return hi >= 0x200000 ? -1 : hi * 0x100000000 + view.getUint32(at, true);
}

function inRange(sector: number, count: number, capacity: number): boolean {
  return sector >= 0 && sector <= capacity && count <= capacity - sector;
}

/**
 * The guest RAM behind bytes [start, start+len) of the chain's device-readable (or
 * device-writable) part, as [host offset, length] pairs in `segs`. Returns the count, or -1
 * past `max` segments.
 */
export function chainSegments(memory: GuestMemory, chain: DescriptorChain, writable: boolean, start: number, len: number, segs: Float64Array, max: number): number {
  let skip = start;
  let left = len;
  let n = 0;
  for (let i = 0; i < chain.length && left > 0; i++) {
    if (chain.writable(i) !== writable) continue;
    const blen = chain.len(i);
    if (skip >= blen) {
      skip -= blen;
      continue;
    }
    const take = Math.min(blen - skip, left);
    if (n === max) return -1;
    // The queue checked every buffer against guest RAM (BUFFER_OUT_OF_RANGE), so this holds.
    segs[2 * n] = memory.hostOffset(chain.addr(i) + skip, take);
    segs[2 * n + 1] = take;
    n++;
    left -= take;
    skip = 0;
  }
  return n;
}

/**
 * Parses and checks one request (virtio 1.2 §5.2.6) into `out`, and for BLK_SUBMIT writes
 * its segments into `segs` (2 × limits.segMax numbers at least). Reads the chain's
 * device-readable bytes; writes nothing.
 */
export function parseBlkRequest(memory: GuestMemory, chain: DescriptorChain, limits: BlkLimits, segs: Float64Array, out: BlkRequest): void {
  out.error = undefined;
  out.type = -1;
  out.op = 0;
  out.offset = 0;
  out.nseg = 0;
  out.bytes = 0;
  out.status = VIRTIO_BLK_S_OK;
  // The status byte is the last device-writable byte (writable buffers come last: the queue
  // refuses a readable one after a writable one, §2.7.4.2). Without one there is no answer.
  const last = chain.length - 1;
  if (chain.writableBytes === 0 || last < 0 || !chain.writable(last)) {
    out.verdict = BLK_NO_STATUS;
    out.error = 'NO_STATUS';
    out.usedLen = 0;
    return;
  }
  out.statusAddr = chain.addr(last) + chain.len(last) - 1;
  out.usedLen = chain.writableBytes;
  if (chain.readableBytes < VIRTIO_BLK_REQ_HEADER_SIZE) return refuse(out, VIRTIO_BLK_S_IOERR, 'SHORT_HEADER');
  readFromChain(memory, chain, header.subarray(0, VIRTIO_BLK_REQ_HEADER_SIZE));
  const type = headerView.getUint32(0, true);
  out.type = type;
  const sector = sectorAt(headerView, 8);
  const dataOut = chain.readableBytes - VIRTIO_BLK_REQ_HEADER_SIZE;
  const dataIn = chain.writableBytes - 1;

  switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
      const write = type === VIRTIO_BLK_T_OUT;
      // §5.2.6.2: on a read-only device a write MUST get IOERR, and no data is written.
      if (write && limits.readOnly) return refuse(out, VIRTIO_BLK_S_IOERR, 'READ_ONLY');
      // Data goes one way: device-writable for IN, device-readable for OUT.
      if ((write ? dataIn : dataOut) !== 0) return refuse(out, VIRTIO_BLK_S_IOERR, 'MALFORMED');
      const bytes = write ? dataOut : dataIn;
      // §5.2.6.1: the driver MUST use a multiple of 512 bytes.
      if (bytes % SECTOR_SIZE !== 0) return refuse(out, VIRTIO_BLK_S_IOERR, 'BAD_LENGTH');
      if (bytes > limits.maxDataBytes) return refuse(out, VIRTIO_BLK_S_IOERR, 'TOO_LARGE');
      // §5.2.6.1: the driver MUST NOT read or write past the capacity; we answer IOERR.
      if (!inRange(sector, bytes / SECTOR_SIZE, limits.capacity)) return refuse(out, VIRTIO_BLK_S_IOERR, 'OUT_OF_RANGE');
      const nseg = chainSegments(memory, chain, !write, write ? VIRTIO_BLK_REQ_HEADER_SIZE : 0, bytes, segs, limits.segMax);
      if (nseg < 0) return refuse(out, VIRTIO_BLK_S_IOERR, 'TOO_MANY_SEGMENTS');
      out.bytes = bytes;
      if (bytes === 0) {
        out.verdict = BLK_ANSWER;
        return;
      }
      out.verdict = BLK_SUBMIT;
      out.op = write ? IO_OP_WRITE | (limits.writeThrough ? IO_OP_SYNC : 0) : IO_OP_READ;
      out.offset = sector * SECTOR_SIZE;
      out.nseg = nseg;
      return;
    }
    case VIRTIO_BLK_T_FLUSH:
      // §5.2.6.1: the driver sets sector 0 and SHOULD NOT send data; neither matters here.
      // Nothing can be dirty on a read-only disk.
      out.verdict = limits.readOnly ? BLK_ANSWER : BLK_SUBMIT;
      out.op = IO_OP_FLUSH;
      return;
    case VIRTIO_BLK_T_GET_ID:
      // §5.2.6.1 wants exactly 20 bytes of data; like QEMU we fill what there is, up to 20.
      if (dataIn === 0) return refuse(out, VIRTIO_BLK_S_IOERR, 'BAD_LENGTH');
      out.verdict = BLK_GET_ID;
      out.bytes = Math.min(dataIn, VIRTIO_BLK_ID_BYTES);
      return;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      const discard = type === VIRTIO_BLK_T_DISCARD;
      // They change the disk: refused on a read-only one as writes are (§5.2.6.2).
      if (limits.readOnly) return refuse(out, VIRTIO_BLK_S_IOERR, 'READ_ONLY');
      if (!(discard ? limits.discard : limits.writeZeroes)) return refuse(out, VIRTIO_BLK_S_UNSUPP, 'UNSUPPORTED');
      if (dataIn !== 0) return refuse(out, VIRTIO_BLK_S_IOERR, 'MALFORMED');
      // §5.2.6.1: data is one or more 16-byte segments, at most max_discard_seg /
      // max_write_zeroes_seg of them.
      if (dataOut === 0 || dataOut % VIRTIO_BLK_DISCARD_WZ_SIZE !== 0) return refuse(out, VIRTIO_BLK_S_IOERR, 'BAD_LENGTH');
      const count = dataOut / VIRTIO_BLK_DISCARD_WZ_SIZE;
      if (count > limits.maxRangeSegments) return refuse(out, VIRTIO_BLK_S_IOERR, 'TOO_MANY_SEGMENTS');
      readFromChain(memory, chain, header.subarray(0, VIRTIO_BLK_REQ_HEADER_SIZE + dataOut));
      const maxSectors = discard ? VIRTIO_BLK_MAX_DISCARD_SECTORS : VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS;
      let refused: BlkRequestError | undefined;
      let total = 0;
      for (let i = 0; i < count; i++) {
        const at = VIRTIO_BLK_REQ_HEADER_SIZE + i * VIRTIO_BLK_DISCARD_WZ_SIZE;
        const flags = headerView.getUint32(at + 12, true);
        // §5.2.6.2: the device MUST answer UNSUPP to an unknown flag, and to unmap on a discard.
        if ((flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0 || (discard && flags !== 0)) {
          return refuse(out, VIRTIO_BLK_S_UNSUPP, 'UNSUPPORTED');
        }
        const start = sectorAt(headerView, at);
        const n = headerView.getUint32(at + 8, true);
        if (n > maxSectors) refused ??= 'TOO_LARGE';
        else if (!inRange(start, n, limits.capacity)) refused ??= 'OUT_OF_RANGE';
        segs[2 * i] = start * SECTOR_SIZE;
        segs[2 * i + 1] = n * SECTOR_SIZE;
        total += n * SECTOR_SIZE;
      }
      if (refused !== undefined) return refuse(out, VIRTIO_BLK_S_IOERR, refused);
      // write_zeroes_may_unmap is 0: unmap is allowed, never required, and we keep blocks.
      out.verdict = BLK_SUBMIT;
      out.op = discard ? IO_OP_DISCARD : IO_OP_WRITE_ZEROES | (limits.writeThrough ? IO_OP_SYNC : 0);
      out.nseg = count;
      out.bytes = total;
      return;
    }
    default:
      // GET_LIFETIME, SECURE_ERASE, the zoned types (§5.2.6.2: MUST be UNSUPP without
      // VIRTIO_BLK_F_ZONED), legacy SCSI commands, anything else.
      return refuse(out, VIRTIO_BLK_S_UNSUPP, 'UNSUPPORTED');
  }
}

/** Nothing beyond the backend and the queue (which the transport saves). */
export type VirtioBlkState = Record<string, never>;

export interface VirtioBlkMetrics extends DeviceMetrics {
  reads: number;
  writes: number;
  flushes: number;
  discards: number;
  writeZeroes: number;
  getIds: number;
  bytesRead: number;
  bytesWritten: number;
  /** requests with no status byte (used with length 0 and no answer) */
  noStatus: number;
  /** refused as malformed: short header, data the wrong way, bad lengths, too many segments, too large */
  malformed: number;
  /** sectors past the capacity */
  outOfRange: number;
  /** writes, discards and write-zeroes refused on a read-only disk */
  readOnlyRefused: number;
  /** answered VIRTIO_BLK_S_UNSUPP */
  unsupported: number;
  /** requests the backend failed (host I/O errors) */
  ioErrors: number;
  /** times the device left the ring alone because the most requests were in flight */
  throttled: number;
  /** resets that gave up waiting for requests in flight */
  resetDrainTimeouts: number;
}

export interface VirtioBlkOptions {
  /** the disk: a RawDisk the builder opened on guest RAM's mapping */
  disk: DiskBackend;
  /** the GET_ID string: printable ASCII, at most 20 bytes; none gives an empty ID */
  serial?: string;
  state?: VirtioBlkState;
}

export class VirtioBlk implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_BLOCK;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[] = [VIRTIO_BLK_QUEUE_SIZE];
  readonly configSize = VIRTIO_BLK_CONFIG_SIZE;
  readonly metrics: VirtioBlkMetrics = {
    missedReads: 0,
    missedWrites: 0,
    reads: 0,
    writes: 0,
    flushes: 0,
    discards: 0,
    writeZeroes: 0,
    getIds: 0,
    bytesRead: 0,
    bytesWritten: 0,
    noStatus: 0,
    malformed: 0,
    outOfRange: 0,
    readOnlyRefused: 0,
    unsupported: 0,
    ioErrors: 0,
    throttled: 0,
    resetDrainTimeouts: 0,
  };
  /** what was wrong with the last refused request, or the last I/O error */
  lastError: string | undefined;

  readonly #disk: DiskBackend;
  readonly #config = new Uint8Array(VIRTIO_BLK_CONFIG_SIZE);
  readonly #id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  readonly #req = new BlkRequest();
  readonly #limits: BlkLimits;
  readonly #segMax: number;
  // Per tag: what to answer when the backend completes it.
  readonly #heads: Uint16Array;
  readonly #statusAddr: Float64Array;
  readonly #usedLen: Uint32Array;
  readonly #type: Int32Array;
  readonly #bytes: Float64Array;
  readonly #epochOf: Uint32Array;
  readonly #free: Int32Array;
  #freeTop: number;
  #epoch = 0;
  #active: VirtioActivation | undefined;
  #pushed = false;
  #notificationsOff = false;
  #scheduled = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: VirtioBlkOptions) {
    const disk = options.disk;
    const serial = options.serial ?? '';
    if (!/^[\x20-\x7e]{0,20}$/.test(serial)) {
      throw new VmmError('INVALID_CONFIG', `virtio-blk serial ${JSON.stringify(serial)}: at most 20 printable ASCII characters`);
    }
    // §5.2.6: NUL-padded, no terminator when it is 20 bytes long.
    for (let i = 0; i < serial.length; i++) this.#id[i] = serial.charCodeAt(i);
    this.#disk = disk;
    this.#segMax = Math.min(VIRTIO_BLK_QUEUE_SIZE - 2, disk.maxSegments);
    const readOnly = disk.readOnly;
    let features = VIRTIO_RING_FEATURES | VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH;
    features |= readOnly ? VIRTIO_BLK_F_RO : VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES;
    this.deviceFeatures = features;
    this.#limits = {
      capacity: disk.sizeBytes / SECTOR_SIZE,
      readOnly,
      segMax: this.#segMax,
      maxDataBytes: this.#segMax * VIRTIO_BLK_SIZE_MAX,
      discard: false,
      writeZeroes: false,
      writeThrough: true,
      // the segments travel in the tag's segment array
      maxRangeSegments: Math.min(VIRTIO_BLK_MAX_RANGE_SEG, this.#segMax),
    };

    const cfg = new DataView(this.#config.buffer);
    cfg.setBigUint64(VIRTIO_BLK_CFG_CAPACITY, BigInt(disk.sizeBytes / SECTOR_SIZE), true);
    cfg.setUint32(VIRTIO_BLK_CFG_SIZE_MAX, VIRTIO_BLK_SIZE_MAX, true);
    cfg.setUint32(VIRTIO_BLK_CFG_SEG_MAX, this.#segMax, true);
    cfg.setUint32(VIRTIO_BLK_CFG_BLK_SIZE, SECTOR_SIZE, true);
    if (!readOnly) {
      cfg.setUint32(VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, VIRTIO_BLK_MAX_DISCARD_SECTORS, true);
      cfg.setUint32(VIRTIO_BLK_CFG_MAX_DISCARD_SEG, this.#limits.maxRangeSegments, true);
      // The host file system's block: smaller discards only zero partial blocks.
      cfg.setUint32(VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT, Math.max(1, Math.floor(disk.blockSize / SECTOR_SIZE)), true);
      cfg.setUint32(VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS, VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS, true);
      cfg.setUint32(VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG, this.#limits.maxRangeSegments, true);
      // write_zeroes_may_unmap stays 0: write-zeroes never deallocates (§5.2.6.2 SHOULD).
    }
    // §5.2.5.2 (device initialization): unused0 and unused1 MUST be 0 — they are.

    const tags = disk.maxRequests;
    this.#heads = new Uint16Array(tags);
    this.#statusAddr = new Float64Array(tags);
    this.#usedLen = new Uint32Array(tags);
    this.#type = new Int32Array(tags);
    this.#bytes = new Float64Array(tags);
    this.#epochOf = new Uint32Array(tags);
    this.#free = new Int32Array(tags);
    for (let t = 0; t < tags; t++) this.#free[t] = tags - 1 - t;
    this.#freeTop = tags;
    disk.onComplete = (tag, result) => this.#complete(tag, result);
    disk.onBatch = () => this.#batchDone();
  }

  /** requests handed to the disk and not yet answered */
  get inFlight(): number {
    return this.#disk.maxRequests - this.#freeTop;
  }

  readConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      data[i] = at >= 0 && at < VIRTIO_BLK_CONFIG_SIZE ? this.#config[at]! : 0;
    }
    if (offset < 0 || offset + data.length > VIRTIO_BLK_CONFIG_SIZE) this.metrics.missedReads++;
  }

  writeConfig(_offset: number, _data: Uint8Array): void {
    // Only `writeback` is writable, and only with VIRTIO_BLK_F_CONFIG_WCE, which we do not offer.
    this.metrics.missedWrites++;
  }

  activate(activation: VirtioActivation): void {
    const f = activation.features;
    this.#limits.discard = (f & VIRTIO_BLK_F_DISCARD) !== 0n;
    this.#limits.writeZeroes = (f & VIRTIO_BLK_F_WRITE_ZEROES) !== 0n;
    // §5.2.6.2: with FLUSH offered but not negotiated (and no CONFIG_WCE), a completed write
    // is stable: the device MUST commit it before reporting completion.
    this.#limits.writeThrough = (f & VIRTIO_BLK_F_FLUSH) === 0n;
    this.#active = activation;
    this.#notificationsOff = false;
    this.#process();
  }

  queueNotify(index: number): void {
    if (index !== 0) return;
    this.#process();
  }

  /**
   * The driver reset the device. Requests still at the disk finish first (up to
   * VIRTIO_BLK_RESET_DRAIN_MS, blocking this thread): a reset driver may reuse their buffers,
   * so nothing may land in them afterwards. Their answers are dropped.
   */
  reset(): void {
    this.#active = undefined;
    this.#epoch = (this.#epoch + 1) >>> 0;
    this.#notificationsOff = false;
    if (this.#disk.inFlight > 0) {
      if (!this.#disk.drainSync(VIRTIO_BLK_RESET_DRAIN_MS)) this.metrics.resetDrainTimeouts++;
      this.#disk.poll();
    }
  }

  save(): VirtioBlkState {
    // A snapshot is taken with no request in flight (pause, then wait for inFlight === 0):
    // the ring positions the transport saves then say everything.
    return {};
  }

  /**
   * Stops taking requests, lets those in flight finish, flushes the disk and closes it (its
   * I/O thread ends, and with it its views of guest RAM). Call on stop, before guest RAM is
   * unmapped.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#disk.close();
    return this.#closing;
  }

  /**
   * Takes requests from the queue: at most a queue's worth per turn (then it yields to the
   * event loop), and none while disk.maxRequests are in flight.
   *
   * While requests are at the disk the driver is asked not to notify (§2.7.10): each batch of
   * completions looks at the ring again anyway, and a notification is a VM exit per request.
   * Once nothing is in flight notifications come back on, and the ring is read once more for
   * what was added while they were off.
   */
  #process(): void {
    const a = this.#active;
    const q = a?.queues[0];
    if (a === undefined || q === undefined || this.#closed) return;
    for (;;) {
      for (let n = 0; n < q.size; n++) {
        if (this.#freeTop === 0) {
          // Picked up again when a request completes.
          this.metrics.throttled++;
          break;
        }
        const chain = q.pop();
        if (chain === undefined) break;
        if (isQueueError(chain)) {
          a.interrupt.queueError(0, chain);
          return;
        }
        this.#start(a.memory, chain);
        if (n === q.size - 1 && !this.#scheduled) {
          this.#scheduled = true;
          setImmediate(() => {
            this.#scheduled = false;
            if (this.#active === a) this.#process();
          });
        }
      }
      if (this.inFlight > 0) {
        q.setNotification(false);
        break;
      }
      if (this.#notificationsOff) {
        q.setNotification(true);
        this.#notificationsOff = false;
        continue;
      }
      break;
    }
    if (this.inFlight > 0) this.#notificationsOff = true;
    this.#notify();
  }

  #start(memory: GuestMemory, chain: DescriptorChain): void {
    const q = this.#active!.queues[0]!;
    const tag = this.#free[this.#freeTop - 1]!;
    const req = this.#req;
    parseBlkRequest(memory, chain, this.#limits, this.#disk.segments(tag), req);
    if (req.error !== undefined) this.#count(req);
    switch (req.verdict) {
      case BLK_NO_STATUS:
        q.pushUsed(chain.head, 0);
        this.#pushed = true;
        return;
      case BLK_GET_ID:
        writeToChain(memory, chain, this.#id.subarray(0, req.bytes));
        this.metrics.getIds++;
        this.#answer(memory, chain.head, req.statusAddr, req.usedLen, VIRTIO_BLK_S_OK);
        return;
      case BLK_ANSWER:
        if (req.status === VIRTIO_BLK_S_OK) this.#countDone(req.type, req.bytes);
        this.#answer(memory, chain.head, req.statusAddr, req.usedLen, req.status);
        return;
      case BLK_SUBMIT:
        this.#freeTop--;
        this.#heads[tag] = chain.head;
        this.#statusAddr[tag] = req.statusAddr;
        this.#usedLen[tag] = req.usedLen;
        this.#type[tag] = req.type;
        this.#bytes[tag] = req.bytes;
        this.#epochOf[tag] = this.#epoch;
        this.#disk.submit(tag, req.op, req.offset, req.nseg);
        return;
    }
  }

  #answer(memory: GuestMemory, head: number, statusAddr: number, usedLen: number, status: number): void {
    memory.writeU8(statusAddr, status);
    this.#active!.queues[0]!.pushUsed(head, usedLen);
    this.#pushed = true;
  }

  /** The backend finished request `tag`. */
  #complete(tag: number, result: number): void {
    this.#free[this.#freeTop++] = tag;
    const a = this.#active;
    // A request from before a reset: the buffers are no longer ours to answer in.
    if (a === undefined || this.#epochOf[tag] !== this.#epoch) return;
    let status = VIRTIO_BLK_S_OK;
    if (result < 0) {
      status = VIRTIO_BLK_S_IOERR;
      this.metrics.ioErrors++;
      this.lastError = `type ${this.#type[tag]} request failed on the host: errno ${-result}`;
    } else {
      this.#countDone(this.#type[tag]!, this.#bytes[tag]!);
    }
    this.#answer(a.memory, this.#heads[tag]!, this.#statusAddr[tag]!, this.#usedLen[tag]!, status);
  }

  #batchDone(): void {
    this.#notify();
    // With notifications off (or requests held back at maxRequests), the driver counts on
    // us to look at the ring now.
    this.#process();
  }

  /** One interrupt for everything pushed since the last, if the driver wants one. */
  #notify(): void {
    if (!this.#pushed) return;
    this.#pushed = false;
    const a = this.#active;
    const q = a?.queues[0];
    if (a !== undefined && q !== undefined && q.needsNotification()) a.interrupt.notifyQueue(0);
  }

  #countDone(type: number, bytes: number): void {
    const m = this.metrics;
    switch (type) {
      case VIRTIO_BLK_T_IN:
        m.reads++;
        m.bytesRead += bytes;
        break;
      case VIRTIO_BLK_T_OUT:
        m.writes++;
        m.bytesWritten += bytes;
        break;
      case VIRTIO_BLK_T_FLUSH:
        m.flushes++;
        break;
      case VIRTIO_BLK_T_DISCARD:
        m.discards++;
        break;
      case VIRTIO_BLK_T_WRITE_ZEROES:
        m.writeZeroes++;
        break;
    }
  }

  #count(req: BlkRequest): void {
    const m = this.metrics;
    switch (req.error) {
      case 'NO_STATUS':
        m.noStatus++;
        break;
      case 'OUT_OF_RANGE':
        m.outOfRange++;
        break;
      case 'READ_ONLY':
        m.readOnlyRefused++;
        break;
      case 'UNSUPPORTED':
        m.unsupported++;
        break;
      default:
        m.malformed++;
    }
    this.lastError = `type ${req.type}: ${req.error}`;
  }
}
