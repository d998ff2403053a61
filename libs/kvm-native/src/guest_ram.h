#pragma once

#include <napi.h>

namespace kvmnative {

Napi::Value MmapGuestRam(const Napi::CallbackInfo& info);
Napi::Value ViewGuestRam(const Napi::CallbackInfo& info);
Napi::Value MunmapGuestRam(const Napi::CallbackInfo& info);

}  // namespace kvmnative
