import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDiskOption, parseNetOption } from './device-options.js';
import { parseMac } from './devices/virtio/net/mac.js';
import { VmmError } from './errors.js';

test('parseDiskOption reads a path with ro and serial', () => {
  assert.deepEqual(parseDiskOption('/var/lib/disk.img'), { path: '/var/lib/disk.img', readOnly: false });
  assert.deepEqual(parseDiskOption('/d.img,ro,serial=vmctl-0'), { path: '/d.img', readOnly: true, serial: 'vmctl-0' });
});

test('parseDiskOption refuses unknown options, long serials and a missing path', () => {
  assert.throws(() => parseDiskOption(',ro'), VmmError);
  assert.throws(() => parseDiskOption('/d.img,rw'), /unknown option "rw"/);
  assert.throws(() => parseDiskOption('/d.img,serial=' + 'x'.repeat(21)), /20 printable/);
  assert.throws(() => parseDiskOption('/d.img,ro=1'), /unknown option "ro"/);
});

test('parseNetOption reads tap and mac', () => {
  const n = parseNetOption('tap=vmtap0,mac=52:54:00:12:34:56');
  assert.equal(n.tap, 'vmtap0');
  assert.deepEqual([...n.mac!], [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
  assert.equal(parseNetOption('tap=t1').mac, undefined);
});

test('parseNetOption refuses bad names, multicast MACs and unknown keys', () => {
  assert.throws(() => parseNetOption('mac=52:54:00:12:34:56'), /tap=NAME is required/);
  assert.throws(() => parseNetOption('tap=a/b'), /interface name/);
  assert.throws(() => parseNetOption('tap=' + 'x'.repeat(16)), /interface name/);
  assert.throws(() => parseNetOption('tap=t,mac=01:00:5e:00:00:01'), /not multicast/);
  assert.throws(() => parseNetOption('tap=t,mtu=9000'), /unknown option "mtu"/);
  assert.throws(() => parseNetOption('vmtap0'), /expected tap=NAME/);
  assert.throws(() => parseMac('52:54:00:12:34'), VmmError);
});
