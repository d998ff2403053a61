#pragma once

#include <napi.h>

namespace kvmnative {

// Scatter/gather I/O straight into and out of JS memory (guest RAM views or ordinary typed
// arrays): the iovecs point at the views' backing stores, nothing is copied. Synchronous, on
// the calling thread: a disk backend runs them on a worker_thread of its own.
Napi::Value Readv(const Napi::CallbackInfo& info);
Napi::Value Writev(const Napi::CallbackInfo& info);
Napi::Value Preadv(const Napi::CallbackInfo& info);
Napi::Value Pwritev(const Napi::CallbackInfo& info);
Napi::Value Fdatasync(const Napi::CallbackInfo& info);
Napi::Value Fallocate(const Napi::CallbackInfo& info);

}  // namespace kvmnative
