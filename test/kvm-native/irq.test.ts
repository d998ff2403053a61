// Interrupts and notifications: irqchip, PIT, IRQ lines, GSI routing, irqfd, MSI, ioeventfd,
// eventfds. Real /dev/kvm.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  Kvm, KvmError, closeFd, constants as C, eventfd, eventfdRead, eventfdWrite, type Vcpu, type Vm,
} from '@vmctl/kvm-native';

import { ioExit, realModeGuest, skipWithoutKvm } from './helpers.js';

const opts = skipWithoutKvm();

const APIC_SVR = 0xf0;
const APIC_IRR = 0x200;
// MSI address for physical destination APIC ID 0 (Intel SDM vol. 3, "Message Address Register")
const MSI_ADDR_APIC0 = 0xfee0_0000;

function irrBit(vcpu: Vcpu, vector: number): boolean {
  const lapic = vcpu.getLapic();
  const byte = lapic[APIC_IRR + (vector >> 5) * 0x10 + ((vector & 31) >> 3)];
  return ((byte >> (vector & 7)) & 1) === 1;
}

/** A VM with an in-kernel irqchip and vCPU 0's LAPIC software-enabled, so it accepts MSIs. */
function vmWithEnabledApic(): { kvm: Kvm; vm: Vm; vcpu: Vcpu; close(): void } {
  const kvm = new Kvm();
  const vm = kvm.createVm();
  vm.createIrqchip();
  const vcpu = vm.createVcpu(0);
  const lapic = vcpu.getLapic();
  new DataView(lapic.buffer).setUint32(APIC_SVR, 0x1ff, true);
  vcpu.setLapic(lapic);
  return { kvm, vm, vcpu, close() { vcpu.close(); vm.close(); kvm.close(); } };
}

describe('in-kernel irqchip and PIT', opts, () => {
  it('createIrqchip() and createPit2() succeed once and then fail with EEXIST', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    vm.createIrqchip();
    vm.createPit2(C.KVM_PIT_SPEAKER_DUMMY);
    assert.throws(() => vm.createIrqchip(), { ioctl: 'KVM_CREATE_IRQCHIP', code: 'EEXIST' });
    assert.throws(() => vm.createPit2(), { ioctl: 'KVM_CREATE_PIT2', code: 'EEXIST' });
    vm.close();
    kvm.close();
  });

  it('irqLine() raises and lowers a line on the irqchip, and is ENXIO without one', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    assert.throws(() => vm.irqLine(4, true), (e: unknown) =>
      e instanceof KvmError && e.ioctl === 'KVM_IRQ_LINE' && e.code === 'ENXIO');
    vm.createIrqchip();
    vm.irqLine(4, true);
    vm.irqLine(4, false);
    vm.close();
    kvm.close();
  });
});

describe('MSI delivery', opts, () => {
  it('signalMsi() sets the vector in the destination LAPIC\'s IRR and reports delivery', () => {
    const g = vmWithEnabledApic();
    assert.equal(irrBit(g.vcpu, 0x31), false);
    assert.equal(g.vm.signalMsi({ addressLo: MSI_ADDR_APIC0, addressHi: 0, data: 0x31 }), 1);
    assert.equal(irrBit(g.vcpu, 0x31), true);
    g.close();
  });

  it('signalMsi() to a software-disabled LAPIC returns 0 (blocked)', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    vm.createIrqchip();
    const vcpu = vm.createVcpu(0);
    assert.equal(vm.signalMsi({ addressLo: MSI_ADDR_APIC0, addressHi: 0, data: 0x31 }), 0);
    assert.equal(irrBit(vcpu, 0x31), false);
    vcpu.close();
    vm.close();
    kvm.close();
  });

  it('an irqfd on an MSI route injects the vector when its eventfd is written', async () => {
    const g = vmWithEnabledApic();
    g.vm.setGsiRouting([
      { gsi: 4, type: 'irqchip', irqchip: C.KVM_IRQCHIP_IOAPIC, pin: 4 },
      { gsi: 24, type: 'msi', addressLo: MSI_ADDR_APIC0, addressHi: 0, data: 0x40 },
    ]);
    const efd = eventfd();
    g.vm.irqfd({ fd: efd, gsi: 24 });
    assert.throws(() => g.vm.irqfd({ fd: efd, gsi: 24 }), { ioctl: 'KVM_IRQFD', code: 'EBUSY' });
    assert.equal(irrBit(g.vcpu, 0x40), false);

    eventfdWrite(efd);
    // Injection may go through a kernel work item: poll briefly.
    for (let i = 0; i < 100 && !irrBit(g.vcpu, 0x40); i++) await new Promise((r) => setTimeout(r, 2));
    assert.equal(irrBit(g.vcpu, 0x40), true);

    g.vm.irqfd({ fd: efd, gsi: 24, deassign: true });
    g.vm.irqfd({ fd: efd, gsi: 24 }); // free again after deassign
    g.vm.irqfd({ fd: efd, gsi: 24, deassign: true });
    closeFd(efd);
    g.close();
  });

  it('setGsiRouting() rejects an unknown route type before calling the kernel', () => {
    const g = vmWithEnabledApic();
    assert.throws(() => g.vm.setGsiRouting([{ gsi: 1, type: 'bogus' } as never]), TypeError);
    g.close();
  });
});

describe('ioeventfd', opts, () => {
  it('a guest write to a registered port signals the eventfd without a userspace exit', () => {
    const any = eventfd();
    const match7 = eventfd();
    const g = realModeGuest([
      0xba, 0x00, 0x05, //  mov dx, 0x500
      0xb0, 0x01, //        mov al, 1
      0xee, //              out dx, al     ; ioeventfd `any`: no exit
      0xba, 0x01, 0x05, //  mov dx, 0x501
      0xb0, 0x06, //        mov al, 6
      0xee, //              out dx, al     ; datamatch 7 does not match: a normal PIO exit
      0xb0, 0x07, //        mov al, 7
      0xee, //              out dx, al     ; matches: no exit
      0xf4, //              hlt
    ], {
      beforeVcpu: (vm) => {
        vm.ioeventfd({ addr: 0x500, len: 1, fd: any, pio: true });
        vm.ioeventfd({ addr: 0x501, len: 1, fd: match7, pio: true, datamatch: 7n });
      },
    });

    assert.equal(g.vcpu.run(), C.KVM_EXIT_IO);
    assert.deepEqual(ioExit(g.vcpu), { direction: C.KVM_EXIT_IO_OUT, size: 1, port: 0x501, count: 1, data: 6 });
    assert.equal(eventfdRead(any), 1n, 'the write to 0x500 signalled without exiting');
    assert.equal(eventfdRead(match7), 0n);

    assert.equal(g.vcpu.run(), C.KVM_EXIT_HLT);
    assert.equal(eventfdRead(match7), 1n, 'the matching write signalled without exiting');

    g.vm.ioeventfd({ addr: 0x500, len: 1, fd: any, pio: true, deassign: true });
    assert.throws(() => g.vm.ioeventfd({ addr: 0x500, len: 1, fd: any, pio: true, deassign: true }),
      { ioctl: 'KVM_IOEVENTFD', code: 'ENOENT' });
    closeFd(any);
    closeFd(match7);
    g.close();
  });
});

describe('eventfd helpers', opts, () => {
  it('eventfdWrite() adds to the counter and eventfdRead() takes it, 0n when empty', () => {
    const fd = eventfd();
    assert.equal(eventfdRead(fd), 0n);
    eventfdWrite(fd, 5n);
    eventfdWrite(fd);
    eventfdWrite(fd, 2);
    assert.equal(eventfdRead(fd), 8n);
    assert.equal(eventfdRead(fd), 0n);
    closeFd(fd);
  });

  it('eventfd() takes an initial value and flags (EFD_SEMAPHORE)', () => {
    const EFD_SEMAPHORE = 1;
    const fd = eventfd(2, EFD_SEMAPHORE);
    assert.equal(eventfdRead(fd), 1n);
    assert.equal(eventfdRead(fd), 1n);
    assert.equal(eventfdRead(fd), 0n);
    closeFd(fd);
  });

  it('a closed fd is KvmError EBADF from read, write and close', () => {
    const fd = eventfd();
    closeFd(fd);
    assert.throws(() => eventfdRead(fd), { name: 'KvmError', ioctl: 'read', code: 'EBADF' });
    assert.throws(() => eventfdWrite(fd), { ioctl: 'write', code: 'EBADF' });
    assert.throws(() => closeFd(fd), { ioctl: 'close', code: 'EBADF' });
  });
});
