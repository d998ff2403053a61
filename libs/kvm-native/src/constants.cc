#include "constants.h"

#include "fd_watch.h"
#include "uapi.h"

namespace kvmnative {

Napi::Object MakeConstants(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
#define X(name, value) o.Set(#name, Napi::Number::New(env, static_cast<double>(value)));
  KVM_NATIVE_CONSTANTS(X)
  KVM_NATIVE_UV_CONSTANTS(X)
#undef X
  // Frozen: an accidental assignment in JS must not silently move a kvm_run offset.
  o.Freeze();
  return o;
}

}  // namespace kvmnative
