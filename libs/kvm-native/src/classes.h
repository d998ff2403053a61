// Kvm → Vm → Vcpu: one JS class per KVM file descriptor, one method per ioctl.
#pragma once

#include <napi.h>
#include <pthread.h>

#include <cstdint>
#include <unordered_map>

#include "uapi.h"

namespace kvmnative {

// The /dev/kvm system fd.
class Kvm : public Napi::ObjectWrap<Kvm> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Kvm(const Napi::CallbackInfo& info);
  ~Kvm() override;

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value GetApiVersion(const Napi::CallbackInfo& info);
  Napi::Value CheckExtension(const Napi::CallbackInfo& info);
  Napi::Value GetVcpuMmapSize(const Napi::CallbackInfo& info);
  Napi::Value GetSupportedCpuid(const Napi::CallbackInfo& info);
  Napi::Value GetMsrIndexList(const Napi::CallbackInfo& info);
  Napi::Value CreateVm(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  int fd_ = -1;
};

// A VM fd (KVM_CREATE_VM).
class Vm : public Napi::ObjectWrap<Vm> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Called with (InternalToken, fd) by Kvm.createVm only.
  explicit Vm(const Napi::CallbackInfo& info);
  ~Vm() override;

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value CheckExtension(const Napi::CallbackInfo& info);
  Napi::Value CreateVcpu(const Napi::CallbackInfo& info);
  Napi::Value SetUserMemoryRegion(const Napi::CallbackInfo& info);
  Napi::Value SetTssAddr(const Napi::CallbackInfo& info);
  Napi::Value SetIdentityMapAddr(const Napi::CallbackInfo& info);
  Napi::Value CreateIrqchip(const Napi::CallbackInfo& info);
  Napi::Value CreatePit2(const Napi::CallbackInfo& info);
  Napi::Value IrqLine(const Napi::CallbackInfo& info);
  Napi::Value Ioeventfd(const Napi::CallbackInfo& info);
  Napi::Value Irqfd(const Napi::CallbackInfo& info);
  Napi::Value SetGsiRouting(const Napi::CallbackInfo& info);
  Napi::Value SignalMsi(const Napi::CallbackInfo& info);
  Napi::Value GetDirtyLog(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  int fd_ = -1;
  // Bytes of each memory slot set through this object: KVM_GET_DIRTY_LOG writes a bitmap
  // sized by the slot, so the caller's buffer is checked against it first.
  std::unordered_map<uint32_t, uint64_t> slotSizes_;
};

// A vCPU fd (KVM_CREATE_VCPU, or an fd handed to another thread: Vcpu.fromFd) together with
// this object's own mapping of its kvm_run page.
class Vcpu : public Napi::ObjectWrap<Vcpu> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Called with (InternalToken, fd, id, owned) by Vm.createVcpu and Vcpu.fromFd only.
  explicit Vcpu(const Napi::CallbackInfo& info);
  ~Vcpu() override;

 private:
  static Napi::Value FromFd(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value RunBuffer(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value RunFunction(const Napi::CallbackInfo& info);
  static napi_value RunBound(napi_env env, napi_callback_info info);
  uint32_t RunOnce(napi_env env);
  Napi::Value GetRegs(const Napi::CallbackInfo& info);
  Napi::Value SetRegs(const Napi::CallbackInfo& info);
  Napi::Value GetSregs(const Napi::CallbackInfo& info);
  Napi::Value SetSregs(const Napi::CallbackInfo& info);
  Napi::Value GetFpu(const Napi::CallbackInfo& info);
  Napi::Value SetFpu(const Napi::CallbackInfo& info);
  Napi::Value GetMsrs(const Napi::CallbackInfo& info);
  Napi::Value SetMsrs(const Napi::CallbackInfo& info);
  Napi::Value GetLapic(const Napi::CallbackInfo& info);
  Napi::Value SetLapic(const Napi::CallbackInfo& info);
  Napi::Value SetCpuid2(const Napi::CallbackInfo& info);
  Napi::Value GetMpState(const Napi::CallbackInfo& info);
  Napi::Value SetMpState(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  int fd_ = -1;
  uint32_t id_ = 0;
  bool owned_ = false;  // close the fd on close()/GC (false for fromFd views)
  kvm_run* run_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> runBuffer_;
  // The thread that last ran this vCPU, as recorded for kicks: recording is a locked map
  // update, so it is done when the thread changes, not on every KVM_RUN.
  pthread_t recordedThread_{};
  bool recorded_ = false;
};

}  // namespace kvmnative
