import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkTaps, tapLinkCommands } from './tap-links.js';

const UUID = '0b8f6d6e-7d3e-4c1f-9a55-2f3b8a0c1d2e';

test('tapLinkCommands() brings up taps the daemon named and joins bridge taps to their bridge', () => {
  const cmds = tapLinkCommands(UUID, {
    nics: [
      { type: 'tap', ifname: 'tap7', mac: '02:00:00:00:00:01' },
      { type: 'tap', mac: '02:00:00:00:00:02' },
      { type: 'bridge', bridge: 'br0', mac: '02:00:00:00:00:03' },
    ],
  });
  assert.deepEqual(cmds, [
    ['link', 'set', 'dev', 'vm0b8f6d6e7dn1', 'up'],
    ['link', 'set', 'dev', 'vm0b8f6d6e7dn2', 'master', 'br0', 'up'],
  ]);
});

test('linkTaps() rejects with the command when it fails', async () => {
  await assert.rejects(linkTaps(UUID, { nics: [{ type: 'bridge', bridge: 'br0' }] }, 'false'), /ip link set dev vm0b8f6d6e7dn0 master br0 up/);
  await linkTaps(UUID, { nics: [{ type: 'bridge', bridge: 'br0' }] }, 'true');
});
