#pragma once

#include <napi.h>

namespace kvmnative {

// io_uring(7), as the kernel offers it (include/uapi/linux/io_uring.h): the three syscalls
// plus the ring mappings as ArrayBuffers, so that JS fills submission queue entries and reads
// completions in place (no N-API call per request) and makes one io_uring_enter per batch.
// No policy: which operations to queue, and when to enter, is the caller's business.
Napi::Value IoUringSetup(const Napi::CallbackInfo& info);
Napi::Value IoUringEnter(const Napi::CallbackInfo& info);
Napi::Value IoUringWait(const Napi::CallbackInfo& info);
Napi::Value IoUringRegisterEventfd(const Napi::CallbackInfo& info);
Napi::Value IoUringRegisterIowqMaxWorkers(const Napi::CallbackInfo& info);
Napi::Value MmapAnonymous(const Napi::CallbackInfo& info);
Napi::Value ArrayBufferAddress(const Napi::CallbackInfo& info);
Napi::Object MakeIoUringConstants(Napi::Env env);

}  // namespace kvmnative
