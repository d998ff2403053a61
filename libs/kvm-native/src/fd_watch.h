// FdWatch: a uv_poll_t on the calling environment's libuv loop, so that a device thread (the
// main thread or any worker_thread) is called back when an eventfd (KVM_IOEVENTFD) or a tap fd
// becomes readable or writable. net.Socket and fs streams cannot read an eventfd.
#pragma once

#include <napi.h>
#include <uv.h>

namespace kvmnative {

// The uv handle, allocated apart from the FdWatch: uv_close completes on a later loop turn,
// and the handle must outlive it even when the FdWatch object is collected first.
struct PollHandle;

class FdWatch : public Napi::ObjectWrap<FdWatch> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Called with (InternalToken, fd, events, callback) by watchFd only.
  explicit FdWatch(const Napi::CallbackInfo& info);
  ~FdWatch() override;

  // watchFd(fd, 'r' | 'w' | 'rw', callback): a started FdWatch.
  static Napi::Value WatchFd(const Napi::CallbackInfo& info);

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Events(const Napi::CallbackInfo& info);
  Napi::Value Active(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value RefHandle(const Napi::CallbackInfo& info);
  Napi::Value UnrefHandle(const Napi::CallbackInfo& info);
  Napi::Value HasRef(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void StartPolling(Napi::Env env);
  void StopPolling();
  void OpenHandle(Napi::Env env);
  void CloseHandle();

  static void OnPoll(uv_poll_t* poll, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  static void OnEnvTeardown(napi_async_cleanup_hook_handle hook, void* arg);

  napi_env env_ = nullptr;
  uv_loop_t* loop_ = nullptr;
  int fd_ = -1;
  int events_ = 0;          // UV_READABLE | UV_WRITABLE
  bool active_ = false;     // polling; the JS object is strongly referenced meanwhile
  bool refed_ = true;       // keeps the loop alive (uv_ref) while active
  bool closed_ = false;     // close() was called: start() refuses
  PollHandle* handle_ = nullptr;  // the uv handle, only while active
  napi_async_context async_ = nullptr;
  Napi::FunctionReference callback_;  // weak: the object's `callback` property holds it
};

// UV_* poll event bits handed to the callback, exported in `constants`.
#define KVM_NATIVE_UV_CONSTANTS(X) \
  X(UV_READABLE, UV_READABLE)      \
  X(UV_WRITABLE, UV_WRITABLE)

}  // namespace kvmnative
