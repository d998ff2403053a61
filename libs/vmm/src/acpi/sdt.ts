/**
 * What every ACPI system description table shares: the 36-byte header, the checksum, and the
 * Generic Address Structure the FADT describes registers with.
 *
 * Written from the ACPI specification, "ACPI Software Programming Model": System Description
 * Table Header, Generic Address Structure (GAS).
 */

export const SDT_HEADER_SIZE = 36;
// Header field offsets.
export const SDT_SIGNATURE = 0;
export const SDT_LENGTH = 4;
export const SDT_REVISION = 8;
export const SDT_CHECKSUM = 9;
export const SDT_OEM_ID = 10;
export const SDT_OEM_TABLE_ID = 16;
export const SDT_OEM_REVISION = 24;
export const SDT_CREATOR_ID = 28;
export const SDT_CREATOR_REVISION = 32;

/** Who made the tables. The FADT's OEM Table ID must match the one its RSDT/XSDT entry
 * points at, so every table carries the same one. */
export const ACPI_OEM_ID = 'VMCTL ';
export const ACPI_OEM_TABLE_ID = 'VMCTLVM ';
export const ACPI_OEM_REVISION = 1;
export const ACPI_CREATOR_ID = 'VMCT';
export const ACPI_CREATOR_REVISION = 1;

/** The byte that makes `bytes` sum to zero (mod 256) once stored in a byte that is now 0. */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

/** Writes `text` as ASCII at `offset`, exactly `length` bytes (text must fit it exactly). */
export function putAscii(bytes: Uint8Array, offset: number, text: string, length = text.length): void {
  if (text.length !== length || !/^[\x20-\x7e]*$/.test(text)) {
    throw new RangeError(`"${text}" is not ${length} printable ASCII characters`);
  }
  for (let i = 0; i < length; i++) bytes[offset + i] = text.charCodeAt(i);
}

/**
 * A complete table: the header (signature, length, revision, OEM and creator ids) followed by
 * `body`, with the checksum set so the whole table sums to zero.
 */
export function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const table = new Uint8Array(SDT_HEADER_SIZE + body.length);
  const dv = new DataView(table.buffer);
  putAscii(table, SDT_SIGNATURE, signature, 4);
  dv.setUint32(SDT_LENGTH, table.length, true);
  dv.setUint8(SDT_REVISION, revision);
  putAscii(table, SDT_OEM_ID, ACPI_OEM_ID, 6);
  putAscii(table, SDT_OEM_TABLE_ID, ACPI_OEM_TABLE_ID, 8);
  dv.setUint32(SDT_OEM_REVISION, ACPI_OEM_REVISION, true);
  putAscii(table, SDT_CREATOR_ID, ACPI_CREATOR_ID, 4);
  dv.setUint32(SDT_CREATOR_REVISION, ACPI_CREATOR_REVISION, true);
  table.set(body, SDT_HEADER_SIZE);
  table[SDT_CHECKSUM] = checksum(table);
  return table;
}

// Generic Address Structure.
export const GAS_SIZE = 12;
export const GAS_SYSTEM_MEMORY = 0;
export const GAS_SYSTEM_IO = 1;
export const GAS_ACCESS_UNDEFINED = 0;
export const GAS_ACCESS_BYTE = 1;
export const GAS_ACCESS_WORD = 2;
export const GAS_ACCESS_DWORD = 3;
export const GAS_ACCESS_QWORD = 4;

export interface GenericAddress {
  /** GAS_SYSTEM_IO, GAS_SYSTEM_MEMORY, ... */
  spaceId: number;
  /** the register's size in bits */
  bitWidth: number;
  bitOffset?: number;
  /** GAS_ACCESS_BYTE, ... */
  accessSize: number;
  address: number;
}

/** Writes a Generic Address Structure at `offset`; an all-zero GAS means "not present". */
export function putGas(dv: DataView, offset: number, gas: GenericAddress): void {
  dv.setUint8(offset, gas.spaceId);
  dv.setUint8(offset + 1, gas.bitWidth);
  dv.setUint8(offset + 2, gas.bitOffset ?? 0);
  dv.setUint8(offset + 3, gas.accessSize);
  dv.setBigUint64(offset + 4, BigInt(gas.address), true);
}
