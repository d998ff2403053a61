// Guest RAM: anonymous mappings owned by a process-global registry, seen from JS as external
// ArrayBuffers.
//
// Why a registry: a vCPU or device thread needs its own views of the same memory, and
// structuredClone/transferList would copy it. Each thread asks viewGuestRam(address) for
// views; only the registry (munmapGuestRam) unmaps, never a view's finalizer.
//
// Why chunks: Node refuses external ArrayBuffers above 4 GiB (node::Buffer's kMaxLength), and
// a failed creation through node-addon-api's finalizer wrapper double-frees. Chunks are at
// most 1 GiB and every size is checked before an ArrayBuffer is made.
//
// Safety on unmap: munmapGuestRam detaches the views the calling thread made (they become
// zero-length instead of pointing at unmapped memory) and refuses (EBUSY) while views made
// in another thread are still alive; a worker's views die with its environment.
#include "guest_ram.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "common.h"
#include "convert.h"

namespace kvmnative {

namespace {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kMaxChunk = 1ull << 30;
constexpr uint64_t kHugePageSize = 2ull << 20;

// One external ArrayBuffer over part of a mapping.
struct View {
  napi_env env;  // the environment (thread) that created it
  napi_ref ref;  // weak; only touched on env's thread
  bool alive;    // false once its finalizer ran; guarded by g_mutex
};

struct Mapping {
  uint8_t* addr;
  uint64_t size;
  uint64_t chunkSize;
  std::vector<std::shared_ptr<View>> views;
};

std::mutex g_mutex;
std::map<uintptr_t, std::unique_ptr<Mapping>> g_mappings;

void FinalizeView(napi_env env, void*, void* hint) {
  // Runs on the view's own thread (Node defers external-buffer finalizers to it). It never
  // unmaps: the registry owns the memory.
  auto* holder = static_cast<std::shared_ptr<View>*>(hint);
  std::shared_ptr<View> view = *holder;
  delete holder;
  napi_ref ref;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    view->alive = false;
    ref = view->ref;
    view->ref = nullptr;
  }
  if (ref != nullptr) napi_delete_reference(env, ref);
}

// Makes the views of `m` for this environment. Called with g_mutex held; the N-API calls
// here never run a finalizer synchronously (Node schedules them), so no lock re-entry.
Napi::Object MakeViews(Napi::Env env, Mapping& m) {
  // Drop records of views that are gone, so repeated viewGuestRam calls do not grow the list.
  std::vector<std::shared_ptr<View>> live;
  for (auto& v : m.views) {
    if (v->alive) live.push_back(v);
  }
  m.views.swap(live);

  uint64_t count = (m.size + m.chunkSize - 1) / m.chunkSize;
  Napi::Array chunks = Napi::Array::New(env, count);
  for (uint64_t i = 0; i < count; i++) {
    uint64_t offset = i * m.chunkSize;
    uint64_t len = std::min(m.chunkSize, m.size - offset);
    if (len > kMaxChunk) throw Napi::RangeError::New(env, "guest RAM chunk above 1 GiB");
    auto view = std::make_shared<View>(View{env, nullptr, true});
    auto* hint = new std::shared_ptr<View>(view);
    napi_value ab;
    napi_status st = napi_create_external_arraybuffer(env, m.addr + offset, len, FinalizeView, hint, &ab);
    if (st != napi_ok) {
      delete hint;
      throw Napi::Error::New(env, "cannot create a guest RAM ArrayBuffer");
    }
    napi_create_reference(env, ab, 0, &view->ref);
    m.views.push_back(view);
    chunks.Set(static_cast<uint32_t>(i), Napi::Value(env, ab));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(m.addr))));
  out.Set("size", Napi::Number::New(env, static_cast<double>(m.size)));
  out.Set("chunks", chunks);
  out.Set("chunkSize", Napi::Number::New(env, static_cast<double>(m.chunkSize)));
  return out;
}

// `m` is out of the registry, so no thread can make new views of it; the remaining live
// views belong to this thread, whose refs only this thread touches: no lock needed.
void DetachOwnViewsAndUnmap(Napi::Env env, std::unique_ptr<Mapping> m) {
  for (auto& v : m->views) {
    if (v->env != static_cast<napi_env>(env) || !v->alive || v->ref == nullptr) continue;
    napi_value value = nullptr;
    if (napi_get_reference_value(env, v->ref, &value) == napi_ok && value != nullptr) {
      bool isDetached = false;
      napi_is_detached_arraybuffer(env, value, &isDetached);
      if (!isDetached) napi_detach_arraybuffer(env, value);
    }
  }
  if (munmap(m->addr, m->size) != 0) ThrowKvmError(env, "munmap", errno);
}

uintptr_t AddressArg(Napi::Env env, const Napi::Value& v) {
  return static_cast<uintptr_t>(ToU64(env, v, "address"));
}

}  // namespace

Napi::Value MmapGuestRam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size = ToU64(env, info[0], "size");
  uint64_t chunkSize = info[1].IsUndefined() ? kMaxChunk : ToU64(env, info[1], "chunkSize");
  if (size == 0 || size % kPageSize != 0) {
    throw Napi::RangeError::New(env, "size must be a positive multiple of 4096");
  }
  if (chunkSize == 0 || chunkSize % kPageSize != 0 || chunkSize > kMaxChunk) {
    throw Napi::RangeError::New(env, "chunkSize must be a multiple of 4096 and at most 1 GiB");
  }
  // MAP_NORESERVE: a guest's RAM is mostly untouched; commit pages as the guest uses them.
  // The mapping starts on a 2 MiB boundary: KVM maps guest memory with 2 MiB pages only where
  // the host address and the guest-physical address agree modulo 2 MiB, and guest RAM starts
  // at guest-physical 0. So map 2 MiB more, keep the aligned part, and ask for transparent
  // huge pages (a no-op where THP is "always" or off).
  uint64_t reserve = size + kHugePageSize;
  void* raw = mmap(nullptr, reserve, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) ThrowKvmError(env, "mmap", errno);
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + kHugePageSize - 1) & ~(kHugePageSize - 1);
  if (aligned > start) munmap(raw, aligned - start);
  uintptr_t tail = start + reserve - (aligned + size);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
  void* addr = reinterpret_cast<void*>(aligned);
  madvise(addr, size, MADV_HUGEPAGE);  // advice only: failing (no THP) changes nothing

  std::unique_lock<std::mutex> lock(g_mutex);
  auto m = std::make_unique<Mapping>(Mapping{static_cast<uint8_t*>(addr), size, chunkSize, {}});
  Mapping& mapping = *m;
  g_mappings[reinterpret_cast<uintptr_t>(addr)] = std::move(m);
  try {
    return MakeViews(env, mapping);
  } catch (...) {
    // The caller never learns the address: take the mapping back out and free it.
    auto it = g_mappings.find(reinterpret_cast<uintptr_t>(addr));
    std::unique_ptr<Mapping> failed = std::move(it->second);
    g_mappings.erase(it);
    lock.unlock();
    DetachOwnViewsAndUnmap(env, std::move(failed));
    throw;
  }
}

Napi::Value ViewGuestRam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uintptr_t address = AddressArg(env, info[0]);
  std::unique_lock<std::mutex> lock(g_mutex);
  auto it = g_mappings.find(address);
  if (it == g_mappings.end()) {
    lock.unlock();  // KvmError's constructor is JS: never run it under the registry lock
    ThrowKvmError(env, "viewGuestRam", ENOENT);
  }
  return MakeViews(env, *it->second);
}

Napi::Value MunmapGuestRam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uintptr_t address = AddressArg(env, info[0]);
  std::unique_ptr<Mapping> m;
  int err = 0;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_mappings.find(address);
    if (it == g_mappings.end()) {
      err = ENOENT;
    } else {
      for (auto& v : it->second->views) {
        if (v->env != static_cast<napi_env>(env) && v->alive) err = EBUSY;
      }
      if (err == 0) {
        m = std::move(it->second);
        g_mappings.erase(it);
      }
    }
  }
  if (err != 0) ThrowKvmError(env, "munmapGuestRam", err);
  DetachOwnViewsAndUnmap(env, std::move(m));
  return env.Undefined();
}

}  // namespace kvmnative
