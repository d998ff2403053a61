import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootFromFlags, fieldsFromFlags, parseDefinitionText, parseDiskSpec, parseMemory, parseNicSpec } from './definition.js';
import { UsageError } from './errors.js';

test('parseMemory() reads MiB and sizes with M, G, T units', () => {
  assert.equal(parseMemory('256'), 256);
  assert.equal(parseMemory('512M'), 512);
  assert.equal(parseMemory('512MiB'), 512);
  assert.equal(parseMemory('2G'), 2048);
  assert.equal(parseMemory('1gib'), 1024);
  assert.equal(parseMemory('1T'), 1024 * 1024);
  for (const bad of ['', 'lots', '1.5G', '-1', '1K']) assert.throws(() => parseMemory(bad), UsageError, bad);
});

test('parseDiskSpec() reads the path, ro, serial and format, and makes a relative path absolute', () => {
  assert.deepEqual(parseDiskSpec('/img/a.raw'), { path: '/img/a.raw' });
  assert.deepEqual(parseDiskSpec('/img/a.raw,ro,serial=root,format=raw'), { path: '/img/a.raw', readonly: true, serial: 'root', format: 'raw' });
  assert.deepEqual(parseDiskSpec('a.raw', '/base'), { path: '/base/a.raw' });
  assert.throws(() => parseDiskSpec(',ro'), /path comes first/);
  assert.throws(() => parseDiskSpec('/a,cache=none'), /unknown option "cache"/);
  assert.throws(() => parseDiskSpec('/a,format=vmdk'), UsageError);
});

test('parseNicSpec() reads tap, tap=IFNAME, bridge=BRIDGE and a MAC', () => {
  assert.deepEqual(parseNicSpec('tap'), { type: 'tap' });
  assert.deepEqual(parseNicSpec('tap=tap0,mac=02:AA:00:00:00:01'), { type: 'tap', ifname: 'tap0', mac: '02:aa:00:00:00:01' });
  assert.deepEqual(parseNicSpec('bridge=br0'), { type: 'bridge', bridge: 'br0' });
  assert.throws(() => parseNicSpec('bridge'), /names the bridge/);
  assert.throws(() => parseNicSpec('user'), /tap\[=IFNAME\] or bridge=BRIDGE/);
  assert.throws(() => parseNicSpec('tap,model=e1000'), /unknown option "model"/);
});

test('fieldsFromFlags() sets only the fields whose flags were given', () => {
  assert.deepEqual(fieldsFromFlags({}), {});
  assert.deepEqual(fieldsFromFlags({ vcpus: '2', memory: '1G', autostart: false, serialLog: true, onCrash: 'restart' }), {
    vcpus: 2,
    memory_mib: 1024,
    autostart: false,
    serial: { log: true },
    on_crash: 'restart',
  });
  assert.throws(() => fieldsFromFlags({ vcpus: 'two' }), /--vcpus/);
});

test('bootFromFlags() lays the flags over the base boot, and needs a kernel from one of them', () => {
  const base = { kernel: '/k', initrd: '/i', cmdline: 'quiet' };
  assert.equal(bootFromFlags({}, base), base);
  assert.deepEqual(bootFromFlags({ cmdline: 'loud' }, base), { kernel: '/k', initrd: '/i', cmdline: 'loud' });
  assert.deepEqual(bootFromFlags({ kernel: '/k2' }), { kernel: '/k2' });
  assert.throws(() => bootFromFlags({ cmdline: 'x' }), /--kernel is required/);
});

test('parseDefinitionText() reads YAML and JSON and resolves relative host paths from the file\'s directory', async () => {
  const yaml = await parseDefinitionText('name: web\nboot:\n  kernel: vmlinux\ndisks:\n  - path: /abs.raw\n  - path: rel.raw\n', 'web.yaml', '/images');
  assert.deepEqual(yaml, { name: 'web', boot: { kernel: '/images/vmlinux' }, disks: [{ path: '/abs.raw' }, { path: '/images/rel.raw' }] });
  const json = await parseDefinitionText('{"name":"web","vcpus":2,"boot":{"kernel":"/k"}}', 'web.json', '/x');
  assert.deepEqual(json, { name: 'web', vcpus: 2, boot: { kernel: '/k' } });
});

test('parseDefinitionText() refuses text that is not a definition object, and duplicate keys', async () => {
  await assert.rejects(parseDefinitionText('[1, 2]', 'f', '/'), /expected an object/);
  await assert.rejects(parseDefinitionText('name: [', 'f', '/'), /not valid JSON or YAML/);
  await assert.rejects(parseDefinitionText('name: a\nname: b\n', 'f', '/'), /not valid JSON or YAML/);
});

test('fieldsFromFlags() turns --display vnc into a display and --display none into null', () => {
  assert.deepEqual(fieldsFromFlags({ display: 'vnc' }), { display: { type: 'vnc' } });
  assert.deepEqual(fieldsFromFlags({ display: 'none' }), { display: null });
  assert.deepEqual(fieldsFromFlags({}), {});
});
