/** @vmctl/vmm: vmctl's virtual machine monitor. */
export { Machine, type MachineConfig, type MachineExit } from './builder.js';
export { GuestMemory, GuestAddress } from './memory/guest-memory.js';
export * as layout from './memory/layout.js';
export { PioBus, MmioBus, type BusRange } from './bus/io-bus.js';
export type { BusDevice, PioDevice, MmioDevice, IrqLine, DeviceMetrics } from './bus/device.js';
export { VmmError, type VmmErrorCode } from './errors.js';
export { loadPvhElf, isElf } from './loader/elf.js';
export { writePvhStartInfo, HVM_START_MAGIC } from './loader/pvh.js';
export * from './control/protocol.js';
export { GuestRunner, type RunnerOptions } from './runner.js';
export * from './exit-codes.js';
