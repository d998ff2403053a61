// Module entry: one Init per JS environment (main thread and every worker_thread that loads
// the addon). Everything JS-visible is created here, per environment.
#include <napi.h>

#include <stdexcept>

#include "classes.h"
#include "common.h"
#include "constants.h"
#include "fd.h"
#include "fd_watch.h"
#include "guest_ram.h"
#include "io.h"
#include "io_uring.h"
#include "kick.h"
#include "tap.h"

namespace kvmnative {

namespace {

Napi::Value KickVcpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "fd must be a number");
  int err = 0;
  bool found = Kick(info[0].As<Napi::Number>().Int32Value(), &err);
  if (found && err != 0) ThrowKvmError(env, "pthread_kill", err);
  return Napi::Boolean::New(env, found);
}

void OnEnvCleanup(void*) {
  // This environment's thread is about to end: a kick must not signal a dead pthread_t.
  ForgetThisThread();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  try {
    InstallKickHandler();
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, e.what());
  }
  auto* data = new AddonData();
  env.SetInstanceData(data);  // deleted by node-addon-api when the environment ends
  // The hook key (function, arg) must be unique per environment, hence `data` as the arg.
  napi_add_env_cleanup_hook(env, OnEnvCleanup, data);

  Napi::Function kvm = Kvm::Define(env);
  Napi::Function vm = Vm::Define(env);
  Napi::Function vcpu = Vcpu::Define(env);
  Napi::Function fdWatch = FdWatch::Define(env);
  data->kvmCtor = Napi::Persistent(kvm);
  data->vmCtor = Napi::Persistent(vm);
  data->vcpuCtor = Napi::Persistent(vcpu);
  data->fdWatchCtor = Napi::Persistent(fdWatch);

  exports.Set("Kvm", kvm);
  exports.Set("Vm", vm);
  exports.Set("Vcpu", vcpu);
  exports.Set("FdWatch", fdWatch);
  exports.Set("kickVcpu", Napi::Function::New<KickVcpu>(env, "kickVcpu"));
  exports.Set("mmapGuestRam", Napi::Function::New<MmapGuestRam>(env, "mmapGuestRam"));
  exports.Set("viewGuestRam", Napi::Function::New<ViewGuestRam>(env, "viewGuestRam"));
  exports.Set("munmapGuestRam", Napi::Function::New<MunmapGuestRam>(env, "munmapGuestRam"));
  exports.Set("eventfd", Napi::Function::New<Eventfd>(env, "eventfd"));
  exports.Set("eventfdRead", Napi::Function::New<EventfdRead>(env, "eventfdRead"));
  exports.Set("eventfdWrite", Napi::Function::New<EventfdWrite>(env, "eventfdWrite"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("watchFd", Napi::Function::New<FdWatch::WatchFd>(env, "watchFd"));
  exports.Set("tapOpen", Napi::Function::New<TapOpen>(env, "tapOpen"));
  exports.Set("tapSetOffload", Napi::Function::New<TapSetOffload>(env, "tapSetOffload"));
  exports.Set("tapSetVnetHdrSize", Napi::Function::New<TapSetVnetHdrSize>(env, "tapSetVnetHdrSize"));
  exports.Set("tapGetVnetHdrSize", Napi::Function::New<TapGetVnetHdrSize>(env, "tapGetVnetHdrSize"));
  exports.Set("tapSetQueue", Napi::Function::New<TapSetQueue>(env, "tapSetQueue"));
  exports.Set("tapGetFeatures", Napi::Function::New<TapGetFeatures>(env, "tapGetFeatures"));
  exports.Set("readv", Napi::Function::New<Readv>(env, "readv"));
  exports.Set("writev", Napi::Function::New<Writev>(env, "writev"));
  exports.Set("preadv", Napi::Function::New<Preadv>(env, "preadv"));
  exports.Set("pwritev", Napi::Function::New<Pwritev>(env, "pwritev"));
  exports.Set("fdatasync", Napi::Function::New<Fdatasync>(env, "fdatasync"));
  exports.Set("fallocate", Napi::Function::New<Fallocate>(env, "fallocate"));
  exports.Set("ioUringSetup", Napi::Function::New<IoUringSetup>(env, "ioUringSetup"));
  exports.Set("ioUringEnter", Napi::Function::New<IoUringEnter>(env, "ioUringEnter"));
  exports.Set("ioUringWait", Napi::Function::New<IoUringWait>(env, "ioUringWait"));
  exports.Set("ioUringRegisterEventfd", Napi::Function::New<IoUringRegisterEventfd>(env, "ioUringRegisterEventfd"));
  exports.Set("ioUringRegisterIowqMaxWorkers", Napi::Function::New<IoUringRegisterIowqMaxWorkers>(env, "ioUringRegisterIowqMaxWorkers"));
  exports.Set("ioUringConstants", MakeIoUringConstants(env));
  exports.Set("mmapAnonymous", Napi::Function::New<MmapAnonymous>(env, "mmapAnonymous"));
  exports.Set("arrayBufferAddress", Napi::Function::New<ArrayBufferAddress>(env, "arrayBufferAddress"));
  exports.Set("setErrorClass", Napi::Function::New<SetErrorClass>(env, "setErrorClass"));
  exports.Set("constants", MakeConstants(env));
  exports.Set("kickSignal", Napi::Number::New(env, KickSignal()));
  return exports;
}

}  // namespace

}  // namespace kvmnative

// NODE_API_MODULE pastes the name into an identifier, so it cannot be qualified.
static Napi::Object InitKvmNative(Napi::Env env, Napi::Object exports) {
  return kvmnative::Init(env, exports);
}

NODE_API_MODULE(kvm_native, InitKvmNative)
