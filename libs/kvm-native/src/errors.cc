#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "common.h"
#include "uapi.h"

namespace kvmnative {

int kInternalToken = 0;

AddonData& Data(Napi::Env env) {
  return *env.GetInstanceData<AddonData>();
}

Napi::External<int> InternalToken(Napi::Env env) {
  return Napi::External<int>::New(env, &kInternalToken);
}

bool IsInternalToken(const Napi::Value& v) {
  return v.IsExternal() && v.As<Napi::External<int>>().Data() == &kInternalToken;
}

static std::string ErrnoName(int err) {
  // strerrorname_np (glibc >= 2.32) gives "EEXIST"; the fallback keeps the number visible.
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : "E" + std::to_string(err);
}

void ThrowKvmError(Napi::Env env, const char* op, int err) {
  std::string code = ErrnoName(err);
  char buf[128];
  // GNU strerror_r returns a pointer that may or may not be buf.
  const char* text = strerror_r(err, buf, sizeof buf);
  std::string message = std::string(op) + " failed: " + text + " (" + code + ")";

  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->kvmError.IsEmpty()) {
    Napi::Object e = data->kvmError.New({Napi::String::New(env, op), Napi::Number::New(env, err),
                                         Napi::String::New(env, code),
                                         Napi::String::New(env, message)});
    throw Napi::Error(env, e);
  }
  // Only reachable if the .node file is loaded without index.js: still carry the fields.
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("ioctl", Napi::String::New(env, op));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

int Ioctl(Napi::Env env, int fd, unsigned long request, const char* name, void* arg) {
  int r;
  do {
    r = ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  if (r < 0) ThrowKvmError(env, name, errno);
  return r;
}

int IoctlValue(Napi::Env env, int fd, unsigned long request, const char* name, unsigned long arg) {
  int r;
  do {
    r = ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  if (r < 0) ThrowKvmError(env, name, errno);
  return r;
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "setErrorClass(KvmError) needs a class");
  Data(env).kvmError = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

static std::atomic<long> g_vcpu_mmap_size{0};

void SetVcpuMmapSize(long size) {
  g_vcpu_mmap_size.store(size, std::memory_order_relaxed);
}

long VcpuMmapSize(Napi::Env env) {
  long size = g_vcpu_mmap_size.load(std::memory_order_relaxed);
  if (size > 0) return size;
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowKvmError(env, "open", errno);
  int r = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  int err = errno;
  close(fd);
  if (r < 0) ThrowKvmError(env, "KVM_GET_VCPU_MMAP_SIZE", err);
  SetVcpuMmapSize(r);
  return r;
}

}  // namespace kvmnative
