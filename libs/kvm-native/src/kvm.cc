#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "classes.h"
#include "common.h"
#include "convert.h"

namespace kvmnative {

Napi::Function Kvm::Define(Napi::Env env) {
  return DefineClass(env, "Kvm",
                     {
                         InstanceAccessor<&Kvm::Fd>("fd"),
                         InstanceMethod<&Kvm::GetApiVersion>("getApiVersion"),
                         InstanceMethod<&Kvm::CheckExtension>("checkExtension"),
                         InstanceMethod<&Kvm::GetVcpuMmapSize>("getVcpuMmapSize"),
                         InstanceMethod<&Kvm::GetSupportedCpuid>("getSupportedCpuid"),
                         InstanceMethod<&Kvm::GetMsrIndexList>("getMsrIndexList"),
                         InstanceMethod<&Kvm::CreateVm>("createVm"),
                         InstanceMethod<&Kvm::Close>("close"),
                     });
}

Kvm::Kvm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Kvm>(info) {
  Napi::Env env = info.Env();
  std::string path = "/dev/kvm";
  if (!info[0].IsUndefined()) {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
    path = info[0].As<Napi::String>().Utf8Value();
  }
  fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) ThrowKvmError(env, "open", errno);
}

Kvm::~Kvm() {
  if (fd_ >= 0) close(fd_);
}

Napi::Value Kvm::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_);
}

Napi::Value Kvm::GetApiVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IOCTL_VALUE(info.Env(), fd_, KVM_GET_API_VERSION, 0));
}

Napi::Value Kvm::CheckExtension(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t cap = ToU32(env, info[0], "cap");
  return Napi::Number::New(env, IOCTL_VALUE(env, fd_, KVM_CHECK_EXTENSION, cap));
}

Napi::Value Kvm::GetVcpuMmapSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int size = IOCTL_VALUE(env, fd_, KVM_GET_VCPU_MMAP_SIZE, 0);
  SetVcpuMmapSize(size);
  return Napi::Number::New(env, size);
}

Napi::Value Kvm::GetSupportedCpuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // api.rst: the kernel fails with E2BIG when nent is too small, so grow until it fits.
  uint32_t nent = 128;
  for (;;) {
    size_t bytes = sizeof(kvm_cpuid2) + nent * sizeof(kvm_cpuid_entry2);
    std::unique_ptr<uint8_t[]> buf(new uint8_t[bytes]());
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.get());
    cpuid->nent = nent;
    if (ioctl(fd_, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
      if (errno == EINTR) continue;
      if (errno == E2BIG && nent < 65536) {
        nent *= 2;
        continue;
      }
      ThrowKvmError(env, "KVM_GET_SUPPORTED_CPUID", errno);
    }
    Napi::Array out = Napi::Array::New(env, cpuid->nent);
    for (uint32_t i = 0; i < cpuid->nent; i++) out.Set(i, CpuidEntryToJs(env, cpuid->entries[i]));
    return out;
  }
}

Napi::Value Kvm::GetMsrIndexList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // api.rst: on E2BIG the kernel writes the needed count to nmsrs; ask with 0 first.
  kvm_msr_list probe{};
  int r;
  do {
    r = ioctl(fd_, KVM_GET_MSR_INDEX_LIST, &probe);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != E2BIG) ThrowKvmError(env, "KVM_GET_MSR_INDEX_LIST", errno);
  uint32_t n = probe.nmsrs;
  std::vector<uint32_t> buf(1 + n);
  auto* list = reinterpret_cast<kvm_msr_list*>(buf.data());
  list->nmsrs = n;
  IOCTL(env, fd_, KVM_GET_MSR_INDEX_LIST, list);
  Napi::Array out = Napi::Array::New(env, list->nmsrs);
  for (uint32_t i = 0; i < list->nmsrs; i++) out.Set(i, Napi::Number::New(env, list->indices[i]));
  return out;
}

Napi::Value Kvm::CreateVm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = OptU32(env, info[0], 0, "type");
  // The vCPU mapping size is a system-fd question; ask while we have one, so that Vm and
  // Vcpu.fromFd never need /dev/kvm again.
  SetVcpuMmapSize(IOCTL_VALUE(env, fd_, KVM_GET_VCPU_MMAP_SIZE, 0));
  int vmfd = IOCTL_VALUE(env, fd_, KVM_CREATE_VM, type);
  // KVM creates the fd with O_CLOEXEC (anon_inode_getfd(..., O_RDWR | O_CLOEXEC)).
  try {
    return Data(env).vmCtor.New({InternalToken(env), Napi::Number::New(env, vmfd)});
  } catch (...) {
    close(vmfd);
    throw;
  }
}

Napi::Value Kvm::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return info.Env().Undefined();
}

}  // namespace kvmnative
