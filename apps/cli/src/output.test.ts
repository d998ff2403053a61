import { test } from 'node:test';
import assert from 'node:assert/strict';
import { domainsTable, formatDuration, formatEvent, formatMiB, formatNic, formatState, keyValues, table, type Domain } from './output.js';

const domain: Domain = {
  name: 'web',
  uuid: '0b8f6d6e-7d3e-4c1f-9a55-2f3b8a0c1d2e',
  vcpus: 2,
  memory_mib: 2048,
  boot: { kernel: '/k' },
  disks: [{ path: '/d.raw', format: 'raw', readonly: false }],
  nics: [],
  serial: { log: false },
  display: null,
  autostart: true,
  on_poweroff: 'destroy',
  on_reboot: 'restart',
  on_crash: 'preserve',
  state: 'running',
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
  etag: '"x.1"',
};

test('table() pads every column but the last to its widest cell', () => {
  assert.equal(table(['A', 'BB'], [['long', 'x'], ['s', 'yy']]), 'A      BB\nlong   x\ns      yy\n');
});

test('keyValues() aligns the values', () => {
  assert.equal(keyValues([['a', '1'], ['long', '2']]), 'a:     1\nlong:  2\n');
});

test('domainsTable() shows name, state, vCPUs, memory, device counts and autostart', () => {
  assert.equal(domainsTable([domain]), 'NAME   STATE     VCPUS   MEMORY   DISKS   NICS   AUTOSTART\nweb    running   2       2 GiB    1       0      yes\n');
});

test('formatMiB() uses GiB for whole gibibytes only', () => {
  assert.equal(formatMiB(64), '64 MiB');
  assert.equal(formatMiB(1024), '1 GiB');
  assert.equal(formatMiB(1536), '1536 MiB');
});

test('formatDuration() gives the two largest units', () => {
  assert.equal(formatDuration(800), '800 ms');
  assert.equal(formatDuration(65_000), '1m 5s');
  assert.equal(formatDuration(3 * 86400_000 + 4 * 3600_000 + 5000), '3d 4h');
});

test('formatState() gives the pid while running and the reason otherwise', () => {
  assert.equal(formatState({ state: 'running', reason: 'user', pid: 42 }), 'running (pid 42)');
  assert.equal(formatState({ state: 'shutoff', reason: 'poweroff', pid: null }), 'shutoff (poweroff)');
  assert.equal(formatState({ state: 'shutoff', reason: null, pid: null }), 'shutoff');
});

test('formatNic() names the tap or the bridge', () => {
  assert.equal(formatNic({ type: 'bridge', bridge: 'br0', mac: '02:00:00:00:00:01' }), 'bridge br0 mac 02:00:00:00:00:01');
  assert.equal(formatNic({ type: 'tap' }), 'tap (created at start)');
});

test('formatEvent() shows a state change as previous → state with its reason', () => {
  const line = formatEvent({ id: 7, at: '2026-01-01T00:00:00.000Z', type: 'state-changed', domain: 'web', uuid: domain.uuid, previous: 'running', state: 'shutoff', reason: 'poweroff' });
  assert.equal(line, '2026-01-01T00:00:00.000Z  #7  web  running → shutoff (poweroff)\n');
});
