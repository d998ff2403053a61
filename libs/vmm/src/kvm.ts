/**
 * The one place the VMM imports the native KVM layer. @vmctl/kvm-native is a CommonJS
 * package; its exports are taken from the default import so that ESM code gets them
 * reliably.
 */
import native from '@vmctl/kvm-native';

export type {
  CpuidEntry,
  Regs,
  Sregs,
  Segment,
  Fpu,
  MsrEntry,
  GuestRam,
  Vm,
  Vcpu,
  Kvm,
  IoUring,
} from '@vmctl/kvm-native';

export const { Kvm: KvmClass, Vcpu: VcpuClass, KvmError, kickVcpu, mmapGuestRam, viewGuestRam, munmapGuestRam, constants } = native;
export const { eventfd, eventfdRead, eventfdWrite, closeFd, watchFd } = native;
export const { tapOpen, tapSetOffload, tapSetVnetHdrSize, readv, writev, preadv, pwritev, fdatasync, fallocate } = native;
export const { ioUringSetup, ioUringEnter, ioUringWait, ioUringRegisterEventfd, ioUringRegisterIowqMaxWorkers, ioUringConstants, mmapAnonymous, arrayBufferAddress } = native;
