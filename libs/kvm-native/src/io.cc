#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>

#include "common.h"
#include "convert.h"
#include "uapi.h"

namespace kvmnative {

namespace {

// Points iov[i] at the bytes of buffers[i] (a TypedArray or DataView: its backing store plus
// byteOffset, byteLength bytes). A detached buffer (e.g. guest RAM after munmapGuestRam) is a
// zero-length iovec, never a dangling pointer. Returns the count, at most IOV_MAX.
int FillIovecs(Napi::Env env, const Napi::Value& v, const char* op, iovec* iov) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(op) + ": buffers must be an array");
  Napi::Array buffers = v.As<Napi::Array>();
  uint32_t n = buffers.Length();
  if (n > IOV_MAX) {
    throw Napi::RangeError::New(env, std::string(op) + ": " + std::to_string(n) +
                                         " buffers, more than IOV_MAX (" + std::to_string(IOV_MAX) + ")");
  }
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value b = buffers.Get(i);
    void* data = nullptr;
    size_t bytes = 0;
    if (b.IsTypedArray()) {
      napi_typedarray_type type;
      size_t length;
      if (napi_get_typedarray_info(env, b, &type, &length, &data, nullptr, nullptr) != napi_ok) {
        throw Napi::Error::New(env, std::string(op) + ": cannot read buffers[" + std::to_string(i) + "]");
      }
      bytes = b.As<Napi::TypedArray>().ByteLength();
    } else if (b.IsDataView()) {
      if (napi_get_dataview_info(env, b, &bytes, &data, nullptr, nullptr) != napi_ok) {
        throw Napi::Error::New(env, std::string(op) + ": cannot read buffers[" + std::to_string(i) + "]");
      }
    } else {
      throw Napi::TypeError::New(env, std::string(op) + ": buffers[" + std::to_string(i) +
                                          "] must be a Uint8Array (or another ArrayBufferView)");
    }
    iov[i].iov_base = data;
    iov[i].iov_len = data == nullptr ? 0 : bytes;
  }
  return static_cast<int>(n);
}

off_t OffsetArg(Napi::Env env, const Napi::Value& v, const char* what) {
  uint64_t u = ToU64(env, v, what);
  if (u > static_cast<uint64_t>(INT64_MAX)) {
    throw Napi::RangeError::New(env, std::string(what) + " must be below 2^63");
  }
  return static_cast<off_t>(u);
}

// The result of a read/write-like call: bytes as a Number, -1 for EAGAIN (the fd is
// non-blocking and not ready: wait for an FdWatch), KvmError { ioctl: op } for the rest.
Napi::Value IoResult(Napi::Env env, ssize_t n, int err, const char* op) {
  if (n < 0) {
    if (err == EAGAIN || err == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowKvmError(env, op, err);
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace

Napi::Value Readv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  iovec iov[IOV_MAX];  // 16 KiB of stack: no allocation per call
  int n = FillIovecs(env, info[1], "readv", iov);
  ssize_t r;
  do {
    r = readv(fd, iov, n);
  } while (r < 0 && errno == EINTR);
  return IoResult(env, r, errno, "readv");
}

Napi::Value Writev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  iovec iov[IOV_MAX];
  int n = FillIovecs(env, info[1], "writev", iov);
  ssize_t r;
  do {
    r = writev(fd, iov, n);
  } while (r < 0 && errno == EINTR);
  return IoResult(env, r, errno, "writev");
}

Napi::Value Preadv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  iovec iov[IOV_MAX];
  int n = FillIovecs(env, info[1], "preadv", iov);
  off_t offset = OffsetArg(env, info[2], "offset");
  ssize_t r;
  do {
    r = preadv(fd, iov, n, offset);
  } while (r < 0 && errno == EINTR);
  return IoResult(env, r, errno, "preadv");
}

Napi::Value Pwritev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  iovec iov[IOV_MAX];
  int n = FillIovecs(env, info[1], "pwritev", iov);
  off_t offset = OffsetArg(env, info[2], "offset");
  ssize_t r;
  do {
    r = pwritev(fd, iov, n, offset);
  } while (r < 0 && errno == EINTR);
  return IoResult(env, r, errno, "pwritev");
}

Napi::Value Fdatasync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  int r;
  do {
    r = fdatasync(fd);
  } while (r < 0 && errno == EINTR);
  if (r < 0) ThrowKvmError(env, "fdatasync", errno);
  return env.Undefined();
}

Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  int mode = static_cast<int>(ToU32(env, info[1], "mode"));
  off_t offset = OffsetArg(env, info[2], "offset");
  off_t len = OffsetArg(env, info[3], "len");
  int r;
  do {
    r = fallocate(fd, mode, offset, len);
  } while (r < 0 && errno == EINTR);
  if (r < 0) ThrowKvmError(env, "fallocate", errno);
  return env.Undefined();
}

}  // namespace kvmnative
