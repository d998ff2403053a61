#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

#include "common.h"
#include "convert.h"
#include "uapi.h"

namespace kvmnative {

namespace {

constexpr const char* kTunPath = "/dev/net/tun";

}  // namespace

Napi::Value TapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  // The kernel takes at most IFNAMSIZ-1 bytes; "" or a "%d" pattern lets it choose.
  if (name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    throw Napi::RangeError::New(env, "tap name must be at most " + std::to_string(IFNAMSIZ - 1) +
                                         " bytes, without NUL");
  }
  bool vnetHdr = false;
  bool multiQueue = false;
  if (!info[1].IsUndefined()) {
    if (!info[1].IsObject()) throw Napi::TypeError::New(env, "opts must be an object");
    Napi::Object opts = info[1].As<Napi::Object>();
    vnetHdr = OptBool(opts, "vnetHdr");
    multiQueue = OptBool(opts, "multiQueue");
  }
  // Non-blocking: the device thread reads it when an FdWatch says it is readable, and a
  // read that would block returns -1 instead of stalling the loop.
  int fd = open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) ThrowKvmError(env, "open", errno);
  ifreq ifr{};
  memcpy(ifr.ifr_name, name.data(), name.size());
  // IFF_NO_PI: frames come without the 4-byte tun_pi prefix. IFF_VNET_HDR: each frame is
  // prefixed by a virtio_net_hdr (10 bytes until TUNSETVNETHDRSZ says otherwise).
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (vnetHdr) ifr.ifr_flags |= IFF_VNET_HDR;
  if (multiQueue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  try {
    IOCTL(env, fd, TUNSETIFF, &ifr);
  } catch (...) {
    close(fd);
    throw;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("name", Napi::String::New(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
  return out;
}

Napi::Value TapSetOffload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  uint32_t flags = ToU32(env, info[1], "flags");
  // The argument is the flag word itself. The kernel refuses (EINVAL) flags it does not
  // know, and TSO/UFO without TUN_F_CSUM.
  IOCTL_VALUE(env, fd, TUNSETOFFLOAD, flags);
  return env.Undefined();
}

Napi::Value TapSetVnetHdrSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  int size = static_cast<int>(ToU32(env, info[1], "size"));
  IOCTL(env, fd, TUNSETVNETHDRSZ, &size);  // a pointer to an int
  return env.Undefined();
}

Napi::Value TapGetVnetHdrSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  int size = 0;
  IOCTL(env, fd, TUNGETVNETHDRSZ, &size);
  return Napi::Number::New(env, size);
}

Napi::Value TapSetQueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd"));
  ifreq ifr{};
  ifr.ifr_flags = info[1].ToBoolean().Value() ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
  IOCTL(env, fd, TUNSETQUEUE, &ifr);
  return env.Undefined();
}

Napi::Value TapGetFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // TUNGETFEATURES works on an fd not yet attached to a device.
  int fd = open(kTunPath, O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowKvmError(env, "open", errno);
  unsigned int features = 0;
  int r = ioctl(fd, TUNGETFEATURES, &features);
  int err = errno;
  close(fd);
  if (r < 0) ThrowKvmError(env, "TUNGETFEATURES", err);
  return Napi::Number::New(env, features);
}

}  // namespace kvmnative
