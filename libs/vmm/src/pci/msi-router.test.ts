import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvmMsiRouter, MSI_FIRST_GSI, irqchipRoutes, type KvmGsiRoute } from './msi-router.js';

const IDS = { KVM_IRQCHIP_PIC_MASTER: 0, KVM_IRQCHIP_PIC_SLAVE: 1, KVM_IRQCHIP_IOAPIC: 2 };

function fakes() {
  const calls: string[] = [];
  const tables: KvmGsiRoute[][] = [];
  let nextFd = 100;
  const vm = {
    setGsiRouting: (routes: KvmGsiRoute[]) => void tables.push(routes),
    irqfd: (e: { fd: number; gsi: number; deassign?: boolean }) => void calls.push(`irqfd ${e.fd} gsi ${e.gsi}${e.deassign ? ' deassign' : ''}`),
  };
  const fds = {
    eventfd: () => nextFd++,
    eventfdWrite: (fd: number) => void calls.push(`write ${fd}`),
    closeFd: (fd: number) => void calls.push(`close ${fd}`),
  };
  return { vm, fds, calls, tables };
}

test('irqchipRoutes() repeats KVM\'s default routing: PIC and IOAPIC for GSI 0–15, IOAPIC for 16–23', () => {
  const routes = irqchipRoutes(IDS);

  assert.equal(routes.length, 24 + 16);
  assert.ok(routes.some((r) => r.gsi === 9 && r.type === 'irqchip' && r.irqchip === 1 && r.pin === 1), 'GSI 9 → slave PIC pin 1');
  assert.ok(routes.some((r) => r.gsi === 9 && r.type === 'irqchip' && r.irqchip === 2 && r.pin === 9), 'GSI 9 → IOAPIC pin 9');
  assert.ok(!routes.some((r) => r.gsi === 20 && r.type === 'irqchip' && r.irqchip !== 2), 'GSI 20 is IOAPIC only');
});

test('KvmMsiRouter binds an irqfd to each GSI it hands out, above the irqchip GSIs', () => {
  const { vm, fds, calls } = fakes();
  const router = new KvmMsiRouter({ vm, fds, baseRoutes: irqchipRoutes(IDS) });

  const a = router.allocateGsi();
  const b = router.allocateGsi();

  assert.deepEqual([a, b], [MSI_FIRST_GSI, MSI_FIRST_GSI + 1]);
  assert.deepEqual(calls, [`irqfd 100 gsi ${a}`, `irqfd 101 gsi ${b}`]);
});

test('KvmMsiRouter.commit() installs the irqchip routes with the MSI routes, once per change', () => {
  const { vm, fds, tables } = fakes();
  const base = irqchipRoutes(IDS);
  const router = new KvmMsiRouter({ vm, fds, baseRoutes: base });
  const gsi = router.allocateGsi();

  router.setRoute(gsi, { addressLo: 0xfee00000, addressHi: 0, data: 0x31 });
  router.commit();
  router.setRoute(gsi, { addressLo: 0xfee00000, addressHi: 0, data: 0x31 });
  router.commit();

  assert.equal(tables.length, 1, 'an unchanged route costs no ioctl');
  assert.equal(tables[0]!.length, base.length + 1);
  assert.deepEqual(tables[0]!.at(-1), { gsi, type: 'msi', addressLo: 0xfee00000, addressHi: 0, data: 0x31 });
});

test('KvmMsiRouter removes a route set to undefined', () => {
  const { vm, fds, tables } = fakes();
  const router = new KvmMsiRouter({ vm, fds, baseRoutes: [] });
  const gsi = router.allocateGsi();
  router.setRoute(gsi, { addressLo: 0xfee00000, addressHi: 0, data: 1 });
  router.commit();

  router.setRoute(gsi, undefined);
  router.commit();

  assert.deepEqual(tables.at(-1), []);
});

test('KvmMsiRouter.trigger() writes the GSI\'s irqfd', () => {
  const { vm, fds, calls } = fakes();
  const router = new KvmMsiRouter({ vm, fds, baseRoutes: [] });
  const gsi = router.allocateGsi();

  router.trigger(gsi);
  router.trigger(gsi + 50);

  assert.deepEqual(calls.slice(1), ['write 100']);
});

test('KvmMsiRouter refuses to hand out more GSIs than KVM has routes', () => {
  const { vm, fds } = fakes();
  const router = new KvmMsiRouter({ vm, fds, baseRoutes: irqchipRoutes(IDS), maxRoutes: 42 });

  router.allocateGsi();
  router.allocateGsi();

  assert.throws(() => router.allocateGsi(), { code: 'INVALID_CONFIG' });
});

test('KvmMsiRouter.close() unbinds and closes every irqfd', () => {
  const { vm, fds, calls } = fakes();
  const router = new KvmMsiRouter({ vm, fds, baseRoutes: [] });
  const gsi = router.allocateGsi();

  router.close();

  assert.deepEqual(calls.slice(1), [`irqfd 100 gsi ${gsi} deassign`, 'close 100']);
});

test('KvmMsiRouter leaves a message that is no x86 MSI unrouted', () => {
  const { vm, fds, tables } = fakes();
  const router = new KvmMsiRouter({ vm, fds, baseRoutes: [] });
  const gsi = router.allocateGsi();

  router.setRoute(gsi, { addressLo: 0x1000, addressHi: 0, data: 0x31 });
  router.commit();

  assert.equal(router.invalidMessages, 1);
  assert.deepEqual(tables, [], 'nothing to install');
});

test('KvmMsiRouter.commit() counts a routing table KVM refuses instead of throwing', () => {
  const { fds } = fakes();
  const vm = {
    setGsiRouting: () => {
      throw new Error('EINVAL');
    },
    irqfd: () => {},
  };
  const router = new KvmMsiRouter({ vm, fds, baseRoutes: [] });
  const gsi = router.allocateGsi();
  router.setRoute(gsi, { addressLo: 0xfee00000, addressHi: 0xff, data: 0x31 });

  assert.doesNotThrow(() => router.commit());
  assert.equal(router.failedCommits, 1);
});
