/**
 * Ethernet MAC addresses, as `--net mac=` and virtio-net's config take them. Kept apart from
 * the device so that the command line can check them without loading the device.
 */
import { VmmError } from '../../../errors.js';

/** Parses "52:54:00:12:34:56" (or with dashes). A NIC's address must be unicast. */
export function parseMac(text: string): Uint8Array {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  if (m === null) throw new VmmError('INVALID_CONFIG', `Invalid MAC address "${text}": expected six hex bytes like 52:54:00:12:34:56`);
  const mac = Uint8Array.from(m.slice(1), (h) => parseInt(h, 16));
  checkMac(mac, text);
  return mac;
}

export function formatMac(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function checkMac(mac: Uint8Array, text: string): void {
  if (mac.length !== 6) throw new VmmError('INVALID_CONFIG', `Invalid MAC address "${text}": 6 bytes expected`);
  if ((mac[0]! & 1) !== 0) throw new VmmError('INVALID_CONFIG', `Invalid MAC address "${text}": a multicast address`);
  if (mac.every((b) => b === 0)) throw new VmmError('INVALID_CONFIG', `Invalid MAC address "${text}": all zeros`);
}

