import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MmioBus, PioBus } from './io-bus.js';
import type { BusDevice } from './device.js';
import { VmmError } from '../errors.js';

class Recorder implements BusDevice {
  log: string[] = [];
  read(offset: number, data: Uint8Array): void {
    this.log.push(`r${offset}/${data.length}`);
    data.fill(0x5a);
  }
  write(offset: number, data: Uint8Array): void {
    this.log.push(`w${offset}=${[...data].join(',')}`);
  }
}

test('PioBus dispatches with the offset into the device window', () => {
  const bus = new PioBus();
  const dev = new Recorder();
  bus.insert('uart', 0x3f8, 8, dev);
  const d = new Uint8Array(1);
  assert.equal(bus.read(0x3fd, d), true);
  assert.equal(d[0], 0x5a);
  assert.equal(bus.write(0x3f8, Uint8Array.of(65)), true);
  assert.deepEqual(dev.log, ['r5/1', 'w0=65']);
});

test('PioBus answers all-ones and counts accesses no device claims', () => {
  const bus = new PioBus();
  bus.insert('dev', 0x60, 5, new Recorder());
  const d = new Uint8Array(2);
  assert.equal(bus.read(0x1234, d), false);
  assert.deepEqual([...d], [0xff, 0xff]);
  assert.equal(bus.write(0x1234, d), false);
  assert.equal(bus.read(0x64, new Uint8Array(4)), false, 'an access running past the window end');
  assert.equal(bus.unhandledReads, 2);
  assert.equal(bus.unhandledWrites, 1);
});

test('PioBus rejects overlapping and empty ranges', () => {
  const bus = new PioBus();
  bus.insert('a', 0x70, 2, new Recorder());
  assert.throws(() => bus.insert('b', 0x71, 4, new Recorder()), (e: unknown) => e instanceof VmmError && e.code === 'BUS_RANGE_OVERLAP');
  assert.throws(() => bus.insert('c', 0x80, 0, new Recorder()), (e: unknown) => e instanceof VmmError && e.code === 'BUS_RANGE_EMPTY');
  assert.throws(() => bus.insert('d', 0xffff, 2, new Recorder()), VmmError);
});

test('MmioBus finds devices among many ranges and frees removed ones', () => {
  const bus = new MmioBus();
  const devs = Array.from({ length: 10 }, () => new Recorder());
  devs.forEach((d, i) => bus.insert(`d${i}`, 0xd0000000 + i * 0x1000, 0x100, d));
  assert.equal(bus.write(0xd0005010, Uint8Array.of(1, 2, 3, 4)), true);
  assert.deepEqual(devs[5]!.log, ['w16=1,2,3,4']);
  assert.equal(bus.write(0xd0005100, Uint8Array.of(1)), false);
  bus.remove('d5');
  assert.equal(bus.write(0xd0005010, Uint8Array.of(1)), false);
  assert.deepEqual(bus.ranges().length, 9);
});
