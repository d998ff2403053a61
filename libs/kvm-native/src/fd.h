#pragma once

#include <napi.h>

namespace kvmnative {

// eventfd(2) helpers and close(2): the fds that KVM_IOEVENTFD and KVM_IRQFD take.
Napi::Value Eventfd(const Napi::CallbackInfo& info);
Napi::Value EventfdRead(const Napi::CallbackInfo& info);
Napi::Value EventfdWrite(const Napi::CallbackInfo& info);
Napi::Value CloseFd(const Napi::CallbackInfo& info);

}  // namespace kvmnative
