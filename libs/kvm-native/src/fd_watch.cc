// FdWatch: uv_poll_t on the loop of the environment that created it.
//
// One uv handle per started period: start() makes a uv_poll_t (uv_poll_init + uv_poll_start),
// stop() closes it (uv_close). A stopped watch leaves nothing in libuv, so:
// - after stop() the fd may be closed at once, and its number reused by anything (a Node
//   socket, another watch): libuv's uv_poll_stop/uv_close remove the fd *number* from the
//   loop's epoll set, so a uv handle left behind for a closed fd would, when finally closed
//   (say by GC), silently unregister whichever file has that number by then;
// - "one active handle per fd per loop" (libuv's rule) is enforced by libuv itself:
//   uv_poll_init answers EEXIST while any handle of this loop, ours or Node's, polls the fd.
// Stop/start costs a few syscalls and a small allocation; the data path is the callback.
//
// Lifetime:
// - While active, the JS object is strongly referenced (ObjectWrap::Ref), so a watch nobody
//   holds keeps firing, like any Node handle. Stopped, it is weak again and is collected like
//   any object (its destructor has no uv handle to close then).
// - The callback is a non-writable property of the object (`callback`): the GC sees the edge
//   object → callback, so a callback that captures its own watch is no leak. The native side
//   keeps only a weak reference to it, for the call.
// - The uv_poll_t lives in a PollHandle, freed by uv_close's callback, never before: no
//   use-after-free however the FdWatch goes (stop(), close(), GC, environment teardown).
// - Environment teardown (worker exit, main thread exit): an async cleanup hook per handle
//   closes it and tells Node it is done only from uv_close's callback, so Node keeps turning
//   the loop until the handle is really closed (a worker's uv_loop_close aborts the process
//   if a handle is left open).
#include "fd_watch.h"

#include <errno.h>

#include <string>

#include "common.h"
#include "convert.h"

namespace kvmnative {

struct PollHandle {
  uv_poll_t poll;
  FdWatch* owner;                           // null once the FdWatch let go of it
  napi_async_cleanup_hook_handle teardown;  // removed by OnClosed, never earlier
  bool closing;
};

namespace {

int ParseEvents(Napi::Env env, const Napi::Value& v) {
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s == "r") return UV_READABLE;
    if (s == "w") return UV_WRITABLE;
    if (s == "rw") return UV_READABLE | UV_WRITABLE;
  }
  throw Napi::TypeError::New(env, "events must be 'r', 'w' or 'rw'");
}

const char* EventsName(int events) {
  switch (events) {
    case UV_READABLE: return "r";
    case UV_WRITABLE: return "w";
    default: return "rw";
  }
}

}  // namespace

Napi::Function FdWatch::Define(Napi::Env env) {
  return DefineClass(env, "FdWatch",
                     {
                         InstanceAccessor<&FdWatch::Fd>("fd"),
                         InstanceAccessor<&FdWatch::Events>("events"),
                         InstanceAccessor<&FdWatch::Active>("active"),
                         InstanceMethod<&FdWatch::Start>("start"),
                         InstanceMethod<&FdWatch::Stop>("stop"),
                         InstanceMethod<&FdWatch::Update>("update"),
                         InstanceMethod<&FdWatch::RefHandle>("ref"),
                         InstanceMethod<&FdWatch::UnrefHandle>("unref"),
                         InstanceMethod<&FdWatch::HasRef>("hasRef"),
                         InstanceMethod<&FdWatch::Close>("close"),
                     });
}

FdWatch::FdWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatch>(info) {
  Napi::Env env = info.Env();
  if (!IsInternalToken(info[0])) throw Napi::TypeError::New(env, "an FdWatch comes from watchFd()");
  int fd = info[1].As<Napi::Number>().Int32Value();
  int events = info[2].As<Napi::Number>().Int32Value();
  Napi::Function callback = info[3].As<Napi::Function>();

  Napi::Object self = info.This().As<Napi::Object>();
  self.DefineProperty(Napi::PropertyDescriptor::Value("callback", callback, napi_default));
  callback_ = Napi::Weak(callback);

  if (napi_get_uv_event_loop(env, &loop_) != napi_ok || loop_ == nullptr) {
    throw Napi::Error::New(env, "watchFd: this environment has no libuv loop");
  }
  // The object is the async resource: async_hooks (and AsyncLocalStorage) see the callback
  // as coming from this watch. napi_async_init keeps only a weak reference to it.
  if (napi_async_init(env, self, Napi::String::New(env, "FdWatch"), &async_) != napi_ok) {
    throw Napi::Error::New(env, "watchFd: napi_async_init failed");
  }
  env_ = env;
  fd_ = fd;
  events_ = events;
}

FdWatch::~FdWatch() {
  // Runs from GC (only when stopped: an active watch is strongly referenced, so there is no
  // handle) or at environment teardown (the cleanup hook has closed the handle by then).
  // Never touch the reference count here: the reference is going away with the object.
  CloseHandle();
  if (async_ != nullptr) napi_async_destroy(env_, async_);
}

void FdWatch::OpenHandle(Napi::Env env) {
  auto* h = new PollHandle{};
  // uv_poll_init refuses an fd that this loop already polls (EEXIST) and regular files, which
  // epoll cannot watch (EPERM). It sets O_NONBLOCK on the fd.
  int err = uv_poll_init(loop_, &h->poll, fd_);
  if (err != 0) {
    delete h;  // nothing registered yet
    ThrowKvmError(env, "uv_poll_init", -err);
  }
  h->poll.data = h;
  h->owner = this;
  if (!refed_) uv_unref(reinterpret_cast<uv_handle_t*>(&h->poll));
  if (napi_add_async_cleanup_hook(env, OnEnvTeardown, h, &h->teardown) != napi_ok) {
    // Without the hook the handle could outlive its thread's loop: never poll with it.
    h->teardown = nullptr;
    h->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnClosed);
    throw Napi::Error::New(env, "watchFd: napi_add_async_cleanup_hook failed");
  }
  handle_ = h;
}

void FdWatch::CloseHandle() {
  PollHandle* h = handle_;
  if (h == nullptr) return;
  handle_ = nullptr;
  h->owner = nullptr;
  h->closing = true;
  // Stops polling at once (epoll_ctl DEL of the fd); the memory goes in OnClosed.
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnClosed);
}

void FdWatch::OnClosed(uv_handle_t* handle) {
  auto* h = static_cast<PollHandle*>(handle->data);
  // Unregisters the teardown hook or, if it already ran, tells Node it has finished.
  if (h->teardown != nullptr) napi_remove_async_cleanup_hook(h->teardown);
  delete h;
}

void FdWatch::OnEnvTeardown(napi_async_cleanup_hook_handle, void* arg) {
  auto* h = static_cast<PollHandle*>(arg);
  if (h->closing) return;  // already closing: OnClosed finishes this hook
  if (h->owner != nullptr) h->owner->handle_ = nullptr;
  h->owner = nullptr;
  h->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnClosed);
}

// The hot path: a handle scope, a small integer (a Smi: no heap allocation) and
// napi_make_callback, which also runs process.nextTick callbacks and microtasks after the
// callback, like Node's own handles. No C++ exceptions: this runs from libuv, not from JS.
void FdWatch::OnPoll(uv_poll_t* poll, int status, int events) {
  auto* h = static_cast<PollHandle*>(poll->data);
  FdWatch* self = h->owner;
  if (self == nullptr) return;
  napi_env env = self->env_;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value recv = nullptr;
  napi_value fn = nullptr;
  napi_value arg = nullptr;
  napi_ref selfRef = *self;  // ObjectWrap's own reference to the JS object
  napi_get_reference_value(env, selfRef, &recv);
  napi_get_reference_value(env, self->callback_, &fn);
  // status < 0: libuv saw EPOLLERR, stopped the handle and reports UV_EBADF. The watch stops
  // (as by stop(): start() may try again); the callback gets the negative errno.
  napi_create_int32(env, status < 0 ? status : events, &arg);
  if (status < 0) {
    self->CloseHandle();
    if (self->active_) {
      self->active_ = false;
      uint32_t count;
      napi_reference_unref(env, selfRef, &count);  // `recv` keeps the object alive for the call
    }
  }
  if (recv != nullptr && fn != nullptr) {
    napi_value result;
    // `self` must not be touched after this call: the callback may close the watch.
    if (napi_make_callback(env, self->async_, recv, fn, 1, &arg, &result) != napi_ok) {
      // A throwing callback becomes an uncaught exception ('uncaughtException' on the main
      // thread, the Worker's 'error' event in a worker), as with Node's own callbacks. When
      // the environment can no longer run JS (teardown), nothing is pending: ignore.
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value error;
        napi_get_and_clear_last_exception(env, &error);
        napi_fatal_exception(env, error);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

void FdWatch::StartPolling(Napi::Env env) {
  if (closed_) ThrowKvmError(env, "uv_poll_start", EBADF);
  bool opened = false;
  if (handle_ == nullptr) {
    OpenHandle(env);
    opened = true;
  }
  // On an active handle this only changes the events (update()).
  int err = uv_poll_start(&handle_->poll, events_, OnPoll);
  if (err != 0) {
    if (opened) CloseHandle();
    ThrowKvmError(env, "uv_poll_start", -err);
  }
  if (!active_) {
    active_ = true;
    Ref();
  }
}

void FdWatch::StopPolling() {
  CloseHandle();
  if (active_) {
    active_ = false;
    Unref();
  }
}

Napi::Value FdWatch::WatchFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  int events = ParseEvents(env, info[1]);
  if (!info[2].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
  if (fd < 0) ThrowKvmError(env, "uv_poll_init", EBADF);  // libuv asserts on fds below -1
  Napi::Object watch = Data(env).fdWatchCtor.New(
      {InternalToken(env), Napi::Number::New(env, fd), Napi::Number::New(env, events), info[2]});
  FdWatch::Unwrap(watch)->StartPolling(env);  // if refused, the unstarted object is left to GC
  return watch;
}

Napi::Value FdWatch::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_);
}

Napi::Value FdWatch::Events(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), EventsName(events_));
}

Napi::Value FdWatch::Active(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), active_);
}

Napi::Value FdWatch::Start(const Napi::CallbackInfo& info) {
  StartPolling(info.Env());
  return info.Env().Undefined();
}

Napi::Value FdWatch::Stop(const Napi::CallbackInfo& info) {
  StopPolling();
  return info.Env().Undefined();
}

Napi::Value FdWatch::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  events_ = ParseEvents(env, info[0]);
  if (active_) StartPolling(env);  // uv_poll_start on an active handle changes its events
  return env.Undefined();
}

Napi::Value FdWatch::RefHandle(const Napi::CallbackInfo& info) {
  refed_ = true;
  if (handle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&handle_->poll));
  return info.This();
}

Napi::Value FdWatch::UnrefHandle(const Napi::CallbackInfo& info) {
  refed_ = false;
  if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&handle_->poll));
  return info.This();
}

Napi::Value FdWatch::HasRef(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), refed_);
}

Napi::Value FdWatch::Close(const Napi::CallbackInfo& info) {
  StopPolling();
  closed_ = true;
  return info.Env().Undefined();
}

}  // namespace kvmnative
