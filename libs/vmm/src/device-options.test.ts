import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDiskOption, parseDisplayOption, parseNetOption } from './device-options.js';
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

test('parseDisplayOption reads TCP, loopback shorthands, IPv6, Unix sockets and a password file', () => {
  assert.deepEqual(parseDisplayOption('vnc=127.0.0.1:5900'), { vnc: { kind: 'tcp', host: '127.0.0.1', port: 5900 } });
  assert.deepEqual(parseDisplayOption('vnc=:5901'), { vnc: { kind: 'tcp', host: '127.0.0.1', port: 5901 } });
  assert.deepEqual(parseDisplayOption('vnc=5902'), { vnc: { kind: 'tcp', host: '127.0.0.1', port: 5902 } });
  assert.deepEqual(parseDisplayOption('vnc=[::1]:0'), { vnc: { kind: 'tcp', host: '::1', port: 0 } });
  assert.deepEqual(parseDisplayOption('vnc=unix:/run/vmctl/vms/x/vnc.sock'), { vnc: { kind: 'unix', path: '/run/vmctl/vms/x/vnc.sock' } });
  assert.deepEqual(parseDisplayOption('vnc=0.0.0.0:5900,password-file=/etc/pw'), {
    vnc: { kind: 'tcp', host: '0.0.0.0', port: 5900 },
    passwordFile: '/etc/pw',
  });
});

test('parseDisplayOption refuses other displays, bad addresses, unknown keys and open ports without a password', () => {
  assert.throws(() => parseDisplayOption('sdl'), /expected vnc=/);
  assert.throws(() => parseDisplayOption('vnc=host'), /HOST:PORT/);
  assert.throws(() => parseDisplayOption('vnc=:70000'), /0 to 65535/);
  assert.throws(() => parseDisplayOption('vnc=unix:'), /socket path/);
  assert.throws(() => parseDisplayOption('vnc=:5900,password=x'), /unknown option "password"/);
  assert.throws(() => parseDisplayOption('vnc=0.0.0.0:5900'), /needs password-file/);
  assert.throws(() => parseDisplayOption('vnc=a b:1'), /not a host/);
});
