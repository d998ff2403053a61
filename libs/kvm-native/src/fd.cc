#include "fd.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "common.h"
#include "convert.h"

namespace kvmnative {

Napi::Value Eventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t initval = OptU32(env, info[0], 0, "initval");
  uint32_t flags = OptU32(env, info[1], 0, "flags");
  // Non-blocking: the JS thread that reads it must never sleep in read(2).
  int fd = eventfd(initval, static_cast<int>(flags) | EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) ThrowKvmError(env, "eventfd", errno);
  return Napi::Number::New(env, fd);
}

Napi::Value EventfdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  uint64_t value = 0;
  ssize_t n;
  do {
    n = read(fd, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN) ThrowKvmError(env, "read", errno);
    value = 0;  // counter is zero
  }
  return Napi::BigInt::New(env, value);
}

Napi::Value EventfdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  uint64_t value = info[1].IsUndefined() ? 1 : ToU64(env, info[1], "value");
  ssize_t n;
  do {
    n = write(fd, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowKvmError(env, "write", errno);
  return env.Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  // No retry on EINTR: on Linux the fd is released even when close(2) reports EINTR.
  if (close(fd) != 0 && errno != EINTR) ThrowKvmError(env, "close", errno);
  return env.Undefined();
}

}  // namespace kvmnative
