'use strict';
// @vmctl/kvm-native: loads the addon for this JS environment (main thread or worker_thread)
// and gives native code the KvmError class to throw, so that `err instanceof KvmError` holds
// for every failed ioctl. See index.d.ts for the API and README.md for the design.

const path = require('node:path');

const binding = require(path.join(__dirname, 'build', 'Release', 'kvm_native.node'));

class KvmError extends Error {
  /**
   * @param {string} ioctl the ioctl or syscall that failed, e.g. "KVM_CREATE_VCPU"
   * @param {number} errno positive errno
   * @param {string} code errno's name, e.g. "EEXIST"
   * @param {string} [message]
   */
  constructor(ioctl, errno, code, message) {
    super(message ?? `${ioctl} failed (${code})`);
    for (const [key, value] of [['ioctl', ioctl], ['errno', errno], ['code', code]]) {
      Object.defineProperty(this, key, { value, enumerable: true, writable: false, configurable: false });
    }
  }
}
Object.defineProperty(KvmError.prototype, 'name', { value: 'KvmError', configurable: true, writable: true });

binding.setErrorClass(KvmError);

// Plain `exports.name =` assignments: Node's CJS-to-ESM bridge (cjs-module-lexer) detects
// these, so `import { Kvm } from '@vmctl/kvm-native'` works from ESM and TypeScript.
exports.KvmError = KvmError;
exports.Kvm = binding.Kvm;
exports.Vm = binding.Vm;
exports.Vcpu = binding.Vcpu;
exports.FdWatch = binding.FdWatch;
exports.kickVcpu = binding.kickVcpu;
exports.mmapGuestRam = binding.mmapGuestRam;
exports.viewGuestRam = binding.viewGuestRam;
exports.munmapGuestRam = binding.munmapGuestRam;
exports.eventfd = binding.eventfd;
exports.eventfdRead = binding.eventfdRead;
exports.eventfdWrite = binding.eventfdWrite;
exports.closeFd = binding.closeFd;
exports.watchFd = binding.watchFd;
exports.tapOpen = binding.tapOpen;
exports.tapSetOffload = binding.tapSetOffload;
exports.tapSetVnetHdrSize = binding.tapSetVnetHdrSize;
exports.tapGetVnetHdrSize = binding.tapGetVnetHdrSize;
exports.tapSetQueue = binding.tapSetQueue;
exports.tapGetFeatures = binding.tapGetFeatures;
exports.readv = binding.readv;
exports.writev = binding.writev;
exports.preadv = binding.preadv;
exports.pwritev = binding.pwritev;
exports.fdatasync = binding.fdatasync;
exports.fallocate = binding.fallocate;
exports.ioUringSetup = binding.ioUringSetup;
exports.ioUringEnter = binding.ioUringEnter;
exports.ioUringWait = binding.ioUringWait;
exports.ioUringRegisterEventfd = binding.ioUringRegisterEventfd;
exports.ioUringRegisterIowqMaxWorkers = binding.ioUringRegisterIowqMaxWorkers;
exports.ioUringConstants = binding.ioUringConstants;
exports.mmapAnonymous = binding.mmapAnonymous;
exports.arrayBufferAddress = binding.arrayBufferAddress;
exports.constants = binding.constants;
exports.kickSignal = binding.kickSignal;
