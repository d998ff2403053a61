// Shared plumbing: per-environment state, KvmError, and ioctl helpers.
#pragma once

#include <napi.h>

#include <cstdint>

namespace kvmnative {

// State that belongs to one JS environment (the main thread or one worker_thread). The addon
// keeps no static JS references: each environment that loads it gets its own AddonData
// through napi_set_instance_data, so the addon can be loaded in any number of workers.
struct AddonData {
  Napi::FunctionReference kvmError;  // index.js's KvmError, registered by setErrorClass()
  Napi::FunctionReference kvmCtor;
  Napi::FunctionReference vmCtor;
  Napi::FunctionReference vcpuCtor;
  Napi::FunctionReference fdWatchCtor;
};

AddonData& Data(Napi::Env env);

// Throws KvmError { ioctl: op, errno: err, code: "E..." } as a C++ exception that
// node-addon-api turns into a JS exception when the native call returns.
[[noreturn]] void ThrowKvmError(Napi::Env env, const char* op, int err);

// ioctl(2) that throws KvmError on failure and returns the (non-negative) result. EINTR is
// retried: only KVM_RUN (which does not use these helpers) reports an interruption to JS.
int Ioctl(Napi::Env env, int fd, unsigned long request, const char* name, void* arg);
int IoctlValue(Napi::Env env, int fd, unsigned long request, const char* name, unsigned long arg);

// `IOCTL(env, fd, KVM_FOO, arg)` passes the request's name along for the error.
#define IOCTL(env, fd, request, arg) ::kvmnative::Ioctl((env), (fd), (request), #request, (arg))
#define IOCTL_VALUE(env, fd, request, arg) \
  ::kvmnative::IoctlValue((env), (fd), (request), #request, (arg))

// Passed as the first constructor argument when native code creates Vm and Vcpu objects, so
// that `new Vm()` from JS is refused: those objects only come from createVm/createVcpu/fromFd.
extern int kInternalToken;
Napi::External<int> InternalToken(Napi::Env env);
bool IsInternalToken(const Napi::Value& v);

// Registers index.js's KvmError for this environment.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

// The size of a vCPU's kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE). Cached process-wide; when
// no Kvm object has asked yet (a worker using Vcpu.fromFd), /dev/kvm is opened to ask.
long VcpuMmapSize(Napi::Env env);
void SetVcpuMmapSize(long size);

}  // namespace kvmnative
