#pragma once

#include <napi.h>

namespace kvmnative {

// `constants` of index.d.ts: the KVM_NATIVE_CONSTANTS list of uapi.h.
Napi::Object MakeConstants(Napi::Env env);

}  // namespace kvmnative
