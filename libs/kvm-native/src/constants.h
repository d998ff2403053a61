#pragma once

#include <napi.h>

namespace kvmnative {

// `constants` of index.d.ts: the KVM_NATIVE_CONSTANTS list of uapi.h and the UV_* poll
// events of fd_watch.h.
Napi::Object MakeConstants(Napi::Env env);

}  // namespace kvmnative
