/**
 * Errors the VMM raises for host-side faults (bad configuration, a kernel image that cannot
 * be loaded, KVM refusing something). Guest behaviour never raises one of these: devices
 * count and ignore what the guest gets wrong.
 */
export type VmmErrorCode =
  | 'GUEST_ADDRESS_OUT_OF_RANGE'
  | 'BUS_RANGE_OVERLAP'
  | 'BUS_RANGE_EMPTY'
  | 'INVALID_CONFIG'
  | 'KERNEL_LOAD_FAILED'
  | 'VCPU_FAILED';

export class VmmError extends Error {
  readonly code: VmmErrorCode;
  constructor(code: VmmErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VmmError';
    this.code = code;
  }
}
