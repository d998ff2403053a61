import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_GUEST_CMDLINE, defaultGuestBoot } from './default-guest.js';
import { harness, type Harness } from './testing/harness.js';

describe('a definition without boot', () => {
  let withGuest: Harness;
  let without: Harness;
  let guestDir: string;

  before(async () => {
    guestDir = mkdtempSync(join(tmpdir(), 'vmctl-guest-'));
    withGuest = await harness({ defaultGuestDir: guestDir });
    without = await harness();
  });
  after(async () => {
    await withGuest.close();
    await without.close();
    rmSync(guestDir, { recursive: true, force: true });
  });

  test('is refused with 422 NO_DEFAULT_GUEST while the host has no default guest, and nothing is stored', async () => {
    const r = await withGuest.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'early' } });
    assert.equal(r.statusCode, 422, r.body);
    assert.equal(r.json().code, 'NO_DEFAULT_GUEST');
    assert.match(r.headers['content-type'] as string, /application\/problem\+json/);
    assert.equal(withGuest.daemon.store.domains.list().length, 0);
    assert.equal((await withGuest.app.inject({ url: '/v1/host' })).json().default_guest, null);
  });

  test('gets the default guest, found at create time, written into the stored definition', async () => {
    writeFileSync(join(guestDir, 'vmlinuz'), 'kernel');
    writeFileSync(join(guestDir, 'initramfs.cpio'), 'initrd');
    const expected = { kernel: join(guestDir, 'vmlinuz'), initrd: join(guestDir, 'initramfs.cpio'), cmdline: DEFAULT_GUEST_CMDLINE };
    const r = await withGuest.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'linux', vcpus: 2 } });
    assert.equal(r.statusCode, 201, r.body);
    assert.deepEqual(r.json().boot, expected);
    assert.deepEqual(withGuest.daemon.store.domains.getByName('linux')!.definition.boot, expected);
    assert.deepEqual((await withGuest.app.inject({ url: '/v1/host' })).json().default_guest, expected);
    // an explicit boot is kept as given
    const own = await withGuest.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'own', boot: { kernel: withGuest.kernel } } });
    assert.deepEqual(own.json().boot, { kernel: withGuest.kernel });
  });

  test('is refused by a daemon started without a default guest', async () => {
    const r = await without.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'x' } });
    assert.equal(r.json().code, 'NO_DEFAULT_GUEST');
  });
});

test('defaultGuestBoot wants both files, and regular files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-guest-'));
  try {
    assert.equal(defaultGuestBoot(dir), null);
    writeFileSync(join(dir, 'vmlinuz'), 'k');
    assert.equal(defaultGuestBoot(dir), null);
    mkdirSync(join(dir, 'initramfs.cpio'));
    assert.equal(defaultGuestBoot(dir), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
