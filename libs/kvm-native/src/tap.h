#pragma once

#include <napi.h>

namespace kvmnative {

// TUN/TAP (Documentation/networking/tuntap.rst): a tap fd is the host side of a virtio-net
// device. Frames are read and written with readv/writev (io.h), one frame per call.
Napi::Value TapOpen(const Napi::CallbackInfo& info);
Napi::Value TapSetOffload(const Napi::CallbackInfo& info);
Napi::Value TapSetVnetHdrSize(const Napi::CallbackInfo& info);
Napi::Value TapGetVnetHdrSize(const Napi::CallbackInfo& info);
Napi::Value TapSetQueue(const Napi::CallbackInfo& info);
Napi::Value TapGetFeatures(const Napi::CallbackInfo& info);

}  // namespace kvmnative
