/**
 * A vCPU's architectural state as a person debugging a guest wants it: where it is (rip,
 * mode, privilege), what it runs on (cr3, the stack) and whether it is waiting. Read while
 * the vCPU is parked outside KVM_RUN, the only time KVM hands its registers out.
 */
import { constants as K, type Vcpu } from '../kvm.js';

export type VcpuMpState = 'runnable' | 'uninitialized' | 'init-received' | 'halted' | 'sipi-received' | 'unknown';

export interface VcpuState {
  id: number;
  mpState: VcpuMpState;
  /** 'real', 'protected', 'long' (64-bit code) or 'compat' (32-bit code under long mode) */
  mode: 'real' | 'protected' | 'long' | 'compat';
  cpl: number;
  rip: bigint;
  rsp: bigint;
  rflags: bigint;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
  exits: number;
}

const MP_STATES: Record<number, VcpuMpState> = {
  [K.KVM_MP_STATE_RUNNABLE]: 'runnable',
  [K.KVM_MP_STATE_UNINITIALIZED]: 'uninitialized',
  [K.KVM_MP_STATE_INIT_RECEIVED]: 'init-received',
  [K.KVM_MP_STATE_HALTED]: 'halted',
  [K.KVM_MP_STATE_SIPI_RECEIVED]: 'sipi-received',
};

const CR0_PE = 1n;
const EFER_LMA = 1n << 10n;

export type VcpuRegisterSource = Pick<Vcpu, 'id' | 'getRegs' | 'getSregs' | 'getMpState'>;

/** Reads one parked vCPU. */
export function readVcpuState(vcpu: VcpuRegisterSource, exits: number): VcpuState {
  const r = vcpu.getRegs();
  const s = vcpu.getSregs();
  const mp = vcpu.getMpState();
  const mode = (s.efer & EFER_LMA) !== 0n ? (s.cs.l ? 'long' : 'compat') : (s.cr0 & CR0_PE) !== 0n ? 'protected' : 'real';
  return {
    id: vcpu.id,
    mpState: MP_STATES[mp] ?? 'unknown',
    mode,
    // CPL is CS.RPL outside real mode (SS.DPL would do as well; KVM keeps both in step)
    cpl: mode === 'real' ? 0 : s.cs.selector & 3,
    rip: r.rip,
    rsp: r.rsp,
    rflags: r.rflags,
    cr0: s.cr0,
    cr2: s.cr2,
    cr3: s.cr3,
    cr4: s.cr4,
    efer: s.efer,
    exits,
  };
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** One line per vCPU, for logs and the terminal. */
export function formatVcpuState(s: VcpuState): string {
  return (
    `vcpu${s.id} ${s.mpState} ${s.mode} cpl${s.cpl} rip=${hex(s.rip)} rsp=${hex(s.rsp)} rflags=${hex(s.rflags)} ` +
    `cr0=${hex(s.cr0)} cr2=${hex(s.cr2)} cr3=${hex(s.cr3)} cr4=${hex(s.cr4)} efer=${hex(s.efer)} exits=${s.exits}`
  );
}
