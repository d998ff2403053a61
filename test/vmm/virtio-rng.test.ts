/** virtio-rng end to end: the test guest finds the device on PCI and reads entropy from it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { haveKvm } from '../lib/kvm.js';
import { guest, runVmm } from '../lib/vmm-process.js';

const opts = { skip: !haveKvm(), timeout: 60000 };

test('the virtio-rng guest reads random bytes from vmm run --rng', opts, async () => {
  const r = await runVmm(['run', '--kernel', guest('virtio-rng'), '--memory', '64M', '--rng']);
  assert.match(r.stdout, /pci: 00:01\.0 1af4:1044/, 'a modern virtio entropy device at slot 1');
  assert.match(r.stdout, /rng: got 256 bytes/);
  assert.match(r.stdout, /rng: ok/);
  assert.equal(r.code, 0, r.stderr);
});

test('without --rng the guest finds no entropy device and says so', opts, async () => {
  const r = await runVmm(['run', '--kernel', guest('virtio-rng'), '--memory', '64M']);
  assert.doesNotMatch(r.stdout, /pci: 00:01\.0 1af4:1044/);
  assert.match(r.stdout, /no rng device/);
});
