#include <errno.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "classes.h"
#include "common.h"
#include "convert.h"
#include "kick.h"

namespace kvmnative {

namespace {

// One mmap of a vCPU's kvm_run area, owned by the ArrayBuffer that exposes it: the page is
// unmapped only when JS can no longer reach it (the buffer's finalizer), never under a live
// view. Vcpu.close() detaches the buffer so that later reads fail cleanly instead.
struct RunMapping {
  void* addr;
  size_t size;
};

void FinalizeRunMapping(napi_env, void*, void* hint) {
  auto* m = static_cast<RunMapping*>(hint);
  // A kick writes immediate_exit through the recorded mapping: forget it before unmapping.
  ForgetMapping(static_cast<kvm_run*>(m->addr));
  munmap(m->addr, m->size);
  delete m;
}

}  // namespace

Napi::Function Vcpu::Define(Napi::Env env) {
  return DefineClass(env, "Vcpu",
                     {
                         StaticMethod<&Vcpu::FromFd>("fromFd"),
                         InstanceAccessor<&Vcpu::Fd>("fd"),
                         InstanceAccessor<&Vcpu::Id>("id"),
                         InstanceAccessor<&Vcpu::RunBuffer>("runBuffer"),
                         InstanceMethod<&Vcpu::Run>("run"),
                         InstanceMethod<&Vcpu::RunFunction>("runFunction"),
                         InstanceMethod<&Vcpu::GetRegs>("getRegs"),
                         InstanceMethod<&Vcpu::SetRegs>("setRegs"),
                         InstanceMethod<&Vcpu::GetSregs>("getSregs"),
                         InstanceMethod<&Vcpu::SetSregs>("setSregs"),
                         InstanceMethod<&Vcpu::GetFpu>("getFpu"),
                         InstanceMethod<&Vcpu::SetFpu>("setFpu"),
                         InstanceMethod<&Vcpu::GetMsrs>("getMsrs"),
                         InstanceMethod<&Vcpu::SetMsrs>("setMsrs"),
                         InstanceMethod<&Vcpu::GetLapic>("getLapic"),
                         InstanceMethod<&Vcpu::SetLapic>("setLapic"),
                         InstanceMethod<&Vcpu::SetCpuid2>("setCpuid2"),
                         InstanceMethod<&Vcpu::GetMpState>("getMpState"),
                         InstanceMethod<&Vcpu::SetMpState>("setMpState"),
                         InstanceMethod<&Vcpu::Close>("close"),
                     });
}

Vcpu::Vcpu(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Vcpu>(info) {
  Napi::Env env = info.Env();
  if (!IsInternalToken(info[0])) {
    throw Napi::TypeError::New(env, "a Vcpu comes from Vm.createVcpu() or Vcpu.fromFd()");
  }
  int fd = info[1].As<Napi::Number>().Int32Value();
  id_ = info[2].As<Napi::Number>().Uint32Value();
  owned_ = info[3].As<Napi::Boolean>().Value();

  // api.rst: the kvm_run area is mmap(vcpu_fd, offset 0) of KVM_GET_VCPU_MMAP_SIZE bytes; it
  // also holds the PIO data page and the coalesced MMIO ring, so the whole size is exposed.
  size_t size = static_cast<size_t>(VcpuMmapSize(env));
  void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) {
    int err = errno;
    if (owned_) close(fd);  // the caller (createVcpu) can no longer reach the fd
    ThrowKvmError(env, "mmap", err);
  }
  auto* mapping = new RunMapping{addr, size};
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, addr, size, FinalizeRunMapping, mapping, &ab);
  if (st != napi_ok) {
    munmap(addr, size);
    delete mapping;
    if (owned_) close(fd);
    throw Napi::Error::New(env, "cannot create the kvm_run ArrayBuffer");
  }
  fd_ = fd;
  run_ = static_cast<kvm_run*>(addr);
  runBuffer_ = Napi::Persistent(Napi::ArrayBuffer(env, ab));
}

Vcpu::~Vcpu() {
  ForgetOwner(fd_, this);
  if (owned_ && fd_ >= 0) close(fd_);
  // runBuffer_'s reference is released here; the mapping goes with the buffer's finalizer.
}

Napi::Value Vcpu::FromFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t fd = ToU32(env, info[0], "fd");
  uint32_t id = ToU32(env, info[1], "id");
  return Data(env).vcpuCtor.New({InternalToken(env), Napi::Number::New(env, fd),
                                 Napi::Number::New(env, id), Napi::Boolean::New(env, false)});
}

Napi::Value Vcpu::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_);
}

Napi::Value Vcpu::Id(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), id_);
}

Napi::Value Vcpu::RunBuffer(const Napi::CallbackInfo& info) {
  return runBuffer_.Value();
}

// The hot path: no JS allocation (the result is a small integer), no exception machinery
// unless the ioctl fails for a reason other than a signal. Returns the exit reason, or
// UINT32_MAX after throwing.
uint32_t Vcpu::RunOnce(napi_env env) {
  if (fd_ < 0) {
    ThrowKvmError(Napi::Env(env), "KVM_RUN", EBADF);
    return UINT32_MAX;
  }
  pthread_t self = pthread_self();
  if (!recorded_ || !pthread_equal(self, recordedThread_)) {
    UnblockKickSignalInThisThread();
    RecordRunner(fd_, run_, this);
    recordedThread_ = self;
    recorded_ = true;
  }
  if (ioctl(fd_, KVM_RUN, 0) < 0) {
    int err = errno;
    if (err != EINTR) {
      ThrowKvmError(Napi::Env(env), "KVM_RUN", err);
      return UINT32_MAX;
    }
    // With immediate_exit set the kernel returns before touching exit_reason; store it so
    // that the run page agrees with our return value.
    run_->exit_reason = KVM_EXIT_INTR;
    return KVM_EXIT_INTR;
  }
  return run_->exit_reason;
}

Napi::Value Vcpu::Run(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  uint32_t reason = RunOnce(env);
  napi_value result;
  napi_create_uint32(env, reason, &result);
  return Napi::Value(env, result);
}

// run() as a plain function bound to this vCPU. A method call must find the C++ object
// behind `this` (napi_unwrap, a hidden-property lookup) on every call; the bound function
// carries the pointer as its callback data instead. It keeps the Vcpu object alive through
// a property, so the pointer cannot outlive it.
napi_value Vcpu::RunBound(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  uint32_t reason;
  // A raw N-API callback has no node-addon-api wrapper to turn C++ exceptions into JS ones.
  try {
    reason = static_cast<Vcpu*>(data)->RunOnce(env);
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
  napi_value result;
  napi_create_uint32(env, reason, &result);
  return result;
}

Napi::Value Vcpu::RunFunction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_value fn;
  napi_status st = napi_create_function(env, "run", NAPI_AUTO_LENGTH, &Vcpu::RunBound, this, &fn);
  if (st != napi_ok) {
    Napi::Error::New(env, "cannot create the bound run function").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object f(env, fn);
  f.Set("vcpu", info.This());
  return f;
}

Napi::Value Vcpu::GetRegs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_regs regs{};
  IOCTL(env, fd_, KVM_GET_REGS, &regs);
  return RegsToJs(env, regs);
}

Napi::Value Vcpu::SetRegs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "regs must be an object");
  kvm_regs regs{};
  RegsFromJs(env, info[0].As<Napi::Object>(), regs);
  IOCTL(env, fd_, KVM_SET_REGS, &regs);
  return env.Undefined();
}

Napi::Value Vcpu::GetSregs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_sregs sregs{};
  IOCTL(env, fd_, KVM_GET_SREGS, &sregs);
  return SregsToJs(env, sregs);
}

Napi::Value Vcpu::SetSregs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "sregs must be an object");
  kvm_sregs sregs{};
  SregsFromJs(env, info[0].As<Napi::Object>(), sregs);
  IOCTL(env, fd_, KVM_SET_SREGS, &sregs);
  return env.Undefined();
}

Napi::Value Vcpu::GetFpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_fpu fpu{};
  IOCTL(env, fd_, KVM_GET_FPU, &fpu);
  return FpuToJs(env, fpu);
}

Napi::Value Vcpu::SetFpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "fpu must be an object");
  kvm_fpu fpu{};
  FpuFromJs(env, info[0].As<Napi::Object>(), fpu);
  IOCTL(env, fd_, KVM_SET_FPU, &fpu);
  return env.Undefined();
}

// kvm_msrs is an 8-byte header followed by 16-byte entries: a vector of entries with one
// spare slot in front holds it with the right alignment.
static_assert(sizeof(kvm_msrs) <= sizeof(kvm_msr_entry), "kvm_msrs header");

Napi::Value Vcpu::GetMsrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "indices must be an array");
  Napi::Array indices = info[0].As<Napi::Array>();
  uint32_t n = indices.Length();
  std::vector<kvm_msr_entry> buf(1 + n);
  std::memset(buf.data(), 0, buf.size() * sizeof(kvm_msr_entry));
  auto* msrs = reinterpret_cast<kvm_msrs*>(buf.data());
  msrs->nmsrs = n;
  for (uint32_t i = 0; i < n; i++) msrs->entries[i].index = ToU32(env, indices.Get(i), "index");
  // api.rst: returns the number of MSRs read; it stops at the first one it cannot read.
  int read = IOCTL(env, fd_, KVM_GET_MSRS, msrs);
  Napi::Array out = Napi::Array::New(env, read);
  for (int i = 0; i < read; i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("index", Napi::Number::New(env, msrs->entries[i].index));
    e.Set("data", Napi::BigInt::New(env, static_cast<uint64_t>(msrs->entries[i].data)));
    out.Set(i, e);
  }
  return out;
}

Napi::Value Vcpu::SetMsrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "entries must be an array");
  Napi::Array entries = info[0].As<Napi::Array>();
  uint32_t n = entries.Length();
  std::vector<kvm_msr_entry> buf(1 + n);
  std::memset(buf.data(), 0, buf.size() * sizeof(kvm_msr_entry));
  auto* msrs = reinterpret_cast<kvm_msrs*>(buf.data());
  msrs->nmsrs = n;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = entries.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "an MSR entry must be an object");
    Napi::Object o = v.As<Napi::Object>();
    msrs->entries[i].index = ToU32(env, Field(o, "index"), "index");
    msrs->entries[i].data = ToU64(env, Field(o, "data"), "data");
  }
  return Napi::Number::New(env, IOCTL(env, fd_, KVM_SET_MSRS, msrs));
}

Napi::Value Vcpu::GetLapic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, sizeof(kvm_lapic_state));
  kvm_lapic_state lapic{};
  IOCTL(env, fd_, KVM_GET_LAPIC, &lapic);
  std::memcpy(out.Data(), lapic.regs, sizeof lapic.regs);
  return out;
}

Napi::Value Vcpu::SetLapic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array regs = BytesArg(env, info[0], sizeof(kvm_lapic_state), "regs");
  kvm_lapic_state lapic{};
  std::memcpy(lapic.regs, regs.Data(), sizeof lapic.regs);
  IOCTL(env, fd_, KVM_SET_LAPIC, &lapic);
  return env.Undefined();
}

Napi::Value Vcpu::SetCpuid2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "entries must be an array");
  Napi::Array entries = info[0].As<Napi::Array>();
  uint32_t n = entries.Length();
  static_assert(sizeof(kvm_cpuid2) <= sizeof(kvm_cpuid_entry2), "kvm_cpuid2 header");
  std::vector<kvm_cpuid_entry2> buf(1 + n);
  std::memset(buf.data(), 0, buf.size() * sizeof(kvm_cpuid_entry2));
  auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.data());
  cpuid->nent = n;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = entries.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "a CPUID entry must be an object");
    CpuidEntryFromJs(env, v.As<Napi::Object>(), cpuid->entries[i]);
  }
  IOCTL(env, fd_, KVM_SET_CPUID2, cpuid);
  return env.Undefined();
}

Napi::Value Vcpu::GetMpState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_mp_state mp{};
  IOCTL(env, fd_, KVM_GET_MP_STATE, &mp);
  return Napi::Number::New(env, mp.mp_state);
}

Napi::Value Vcpu::SetMpState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_mp_state mp{};
  mp.mp_state = ToU32(env, info[0], "state");
  IOCTL(env, fd_, KVM_SET_MP_STATE, &mp);
  return env.Undefined();
}

Napi::Value Vcpu::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) return env.Undefined();
  ForgetOwner(fd_, this);
  if (owned_) close(fd_);
  fd_ = -1;
  run_ = nullptr;
  // Detaching turns every view of the run page in this thread into a zero-length buffer, so
  // a stale read fails instead of touching an unmapped page once the finalizer has run.
  if (!runBuffer_.IsEmpty()) {
    Napi::ArrayBuffer ab = runBuffer_.Value();
    if (!ab.IsDetached()) ab.Detach();
  }
  return env.Undefined();
}

}  // namespace kvmnative
