/**
 * The host bridge at 00:00.0: a header that tells the OS this bus has a host (class 06/00),
 * with no BARs, no interrupt and no chipset registers.
 *
 * Its identity, 1b36:0008, is the ID that QEMU's documentation (docs/specs/pci-ids.rst)
 * lists as "PCIe host bridge" under Red Hat's vendor ID: the generic, register-less host
 * bridge of QEMU's `gpex`, which is what this is. We do not claim an Intel chipset (the
 * 82441FX's 8086:1237, say) because we implement none of a chipset's registers — PAM,
 * SMRAM, PCIEXBAR — and software keyed on those IDs (SeaBIOS's shadow-RAM code, Linux's
 * quirks) would program registers that are not there. We do not invent an ID under someone
 * else's vendor either. Nothing binds a driver to this ID; lspci shows its name. If a
 * firmware path needs a chipset identity later, pass another one in `options`.
 */
import { PciFunction, type PciFunctionState } from './function.js';
import { PCI_CLASS_BRIDGE_HOST } from './registers.js';

export const PCI_VENDOR_ID_REDHAT = 0x1b36;
export const PCI_DEVICE_ID_REDHAT_PCIE_HOST = 0x0008;

export interface PciHostBridgeOptions {
  vendorId?: number;
  deviceId?: number;
  state?: PciFunctionState;
}

export class PciHostBridge extends PciFunction {
  constructor(options: PciHostBridgeOptions = {}) {
    super({
      vendorId: options.vendorId ?? PCI_VENDOR_ID_REDHAT,
      deviceId: options.deviceId ?? PCI_DEVICE_ID_REDHAT_PCIE_HOST,
      // Bridges (base class 06h) need no subsystem IDs (PCI 3.0 §6.2.4): they stay 0.
      classCode: PCI_CLASS_BRIDGE_HOST,
    });
    if (options.state) this.restorePci(options.state);
  }

  save(): PciFunctionState {
    return this.savePci();
  }
}
