#include <errno.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "classes.h"
#include "common.h"
#include "convert.h"

namespace kvmnative {

Napi::Function Vm::Define(Napi::Env env) {
  return DefineClass(env, "Vm",
                     {
                         InstanceAccessor<&Vm::Fd>("fd"),
                         InstanceMethod<&Vm::CheckExtension>("checkExtension"),
                         InstanceMethod<&Vm::CreateVcpu>("createVcpu"),
                         InstanceMethod<&Vm::SetUserMemoryRegion>("setUserMemoryRegion"),
                         InstanceMethod<&Vm::SetTssAddr>("setTssAddr"),
                         InstanceMethod<&Vm::SetIdentityMapAddr>("setIdentityMapAddr"),
                         InstanceMethod<&Vm::CreateIrqchip>("createIrqchip"),
                         InstanceMethod<&Vm::CreatePit2>("createPit2"),
                         InstanceMethod<&Vm::IrqLine>("irqLine"),
                         InstanceMethod<&Vm::Ioeventfd>("ioeventfd"),
                         InstanceMethod<&Vm::Irqfd>("irqfd"),
                         InstanceMethod<&Vm::SetGsiRouting>("setGsiRouting"),
                         InstanceMethod<&Vm::SignalMsi>("signalMsi"),
                         InstanceMethod<&Vm::GetDirtyLog>("getDirtyLog"),
                         InstanceMethod<&Vm::Close>("close"),
                     });
}

Vm::Vm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Vm>(info) {
  if (!IsInternalToken(info[0])) {
    throw Napi::TypeError::New(info.Env(), "a Vm comes from Kvm.createVm()");
  }
  fd_ = info[1].As<Napi::Number>().Int32Value();
}

Vm::~Vm() {
  if (fd_ >= 0) close(fd_);
}

static Napi::Object ObjectArg(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(what) + " must be an object");
  return v.As<Napi::Object>();
}

Napi::Value Vm::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_);
}

Napi::Value Vm::CheckExtension(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t cap = ToU32(env, info[0], "cap");
  return Napi::Number::New(env, IOCTL_VALUE(env, fd_, KVM_CHECK_EXTENSION, cap));
}

Napi::Value Vm::CreateVcpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = ToU32(env, info[0], "id");
  int vcpufd = IOCTL_VALUE(env, fd_, KVM_CREATE_VCPU, id);  // O_CLOEXEC set by KVM
  try {
    return Data(env).vcpuCtor.New({InternalToken(env), Napi::Number::New(env, vcpufd),
                                   Napi::Number::New(env, id), Napi::Boolean::New(env, true)});
  } catch (...) {
    close(vcpufd);
    throw;
  }
}

Napi::Value Vm::SetUserMemoryRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ObjectArg(env, info[0], "region");
  kvm_userspace_memory_region r{};
  r.slot = ToU32(env, Field(o, "slot"), "slot");
  r.flags = ToU32(env, Field(o, "flags"), "flags");
  r.guest_phys_addr = ToU64(env, Field(o, "guestPhysAddr"), "guestPhysAddr");
  r.memory_size = ToU64(env, Field(o, "memorySize"), "memorySize");
  r.userspace_addr = ToU64(env, Field(o, "userspaceAddr"), "userspaceAddr");
  IOCTL(env, fd_, KVM_SET_USER_MEMORY_REGION, &r);
  if (r.memory_size == 0) {
    slotSizes_.erase(r.slot);
  } else {
    slotSizes_[r.slot] = r.memory_size;
  }
  return env.Undefined();
}

Napi::Value Vm::SetTssAddr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // api.rst: the argument is the address itself, not a pointer to it.
  uint64_t addr = ToU64(env, info[0], "addr");
  IOCTL_VALUE(env, fd_, KVM_SET_TSS_ADDR, addr);
  return env.Undefined();
}

Napi::Value Vm::SetIdentityMapAddr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // api.rst: here the argument is a pointer to a u64.
  uint64_t addr = ToU64(env, info[0], "addr");
  IOCTL(env, fd_, KVM_SET_IDENTITY_MAP_ADDR, &addr);
  return env.Undefined();
}

Napi::Value Vm::CreateIrqchip(const Napi::CallbackInfo& info) {
  IOCTL_VALUE(info.Env(), fd_, KVM_CREATE_IRQCHIP, 0);
  return info.Env().Undefined();
}

Napi::Value Vm::CreatePit2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_pit_config config{};
  config.flags = OptU32(env, info[0], 0, "flags");
  IOCTL(env, fd_, KVM_CREATE_PIT2, &config);
  return env.Undefined();
}

Napi::Value Vm::IrqLine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_irq_level level{};
  level.irq = ToU32(env, info[0], "irq");
  level.level = info[1].ToBoolean().Value() ? 1 : 0;
  IOCTL(env, fd_, KVM_IRQ_LINE, &level);
  return env.Undefined();
}

Napi::Value Vm::Ioeventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ObjectArg(env, info[0], "ioeventfd");
  kvm_ioeventfd e{};
  e.addr = ToU64(env, Field(o, "addr"), "addr");
  e.len = ToU32(env, Field(o, "len"), "len");
  e.fd = static_cast<int32_t>(ToU32(env, Field(o, "fd"), "fd"));
  if (OptBool(o, "pio")) e.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (OptBool(o, "deassign")) e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  Napi::Value datamatch = o.Get("datamatch");
  if (!datamatch.IsUndefined()) {
    e.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    e.datamatch = ToU64(env, datamatch, "datamatch");
  }
  IOCTL(env, fd_, KVM_IOEVENTFD, &e);
  return env.Undefined();
}

Napi::Value Vm::Irqfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ObjectArg(env, info[0], "irqfd");
  kvm_irqfd e{};
  e.fd = ToU32(env, Field(o, "fd"), "fd");
  e.gsi = ToU32(env, Field(o, "gsi"), "gsi");
  Napi::Value resample = o.Get("resampleFd");
  if (!resample.IsUndefined()) {
    e.flags |= KVM_IRQFD_FLAG_RESAMPLE;
    e.resamplefd = ToU32(env, resample, "resampleFd");
  }
  if (OptBool(o, "deassign")) e.flags |= KVM_IRQFD_FLAG_DEASSIGN;
  IOCTL(env, fd_, KVM_IRQFD, &e);
  return env.Undefined();
}

Napi::Value Vm::SetGsiRouting(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "routes must be an array");
  Napi::Array routes = info[0].As<Napi::Array>();
  uint32_t n = routes.Length();
  // kvm_irq_routing is a header followed by n entries; entries are 8-byte aligned and the
  // header is 8 bytes, so a vector of entries with one spare slot in front holds it exactly.
  static_assert(sizeof(kvm_irq_routing) <= sizeof(kvm_irq_routing_entry), "routing header");
  std::vector<kvm_irq_routing_entry> buf(1 + n);
  std::memset(buf.data(), 0, buf.size() * sizeof(kvm_irq_routing_entry));
  auto* table = reinterpret_cast<kvm_irq_routing*>(buf.data());
  table->nr = n;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Object r = ObjectArg(env, routes.Get(i), "route");
    kvm_irq_routing_entry& e = table->entries[i];
    e.gsi = ToU32(env, Field(r, "gsi"), "gsi");
    std::string type = Field(r, "type").ToString().Utf8Value();
    if (type == "irqchip") {
      e.type = KVM_IRQ_ROUTING_IRQCHIP;
      e.u.irqchip.irqchip = ToU32(env, Field(r, "irqchip"), "irqchip");
      e.u.irqchip.pin = ToU32(env, Field(r, "pin"), "pin");
    } else if (type == "msi") {
      e.type = KVM_IRQ_ROUTING_MSI;
      e.u.msi.address_lo = ToU32(env, Field(r, "addressLo"), "addressLo");
      e.u.msi.address_hi = ToU32(env, Field(r, "addressHi"), "addressHi");
      e.u.msi.data = ToU32(env, Field(r, "data"), "data");
    } else {
      throw Napi::TypeError::New(env, "route type must be 'irqchip' or 'msi', not '" + type + "'");
    }
  }
  IOCTL(env, fd_, KVM_SET_GSI_ROUTING, table);
  return env.Undefined();
}

Napi::Value Vm::SignalMsi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ObjectArg(env, info[0], "msi");
  kvm_msi msi{};
  msi.address_lo = ToU32(env, Field(o, "addressLo"), "addressLo");
  msi.address_hi = ToU32(env, Field(o, "addressHi"), "addressHi");
  msi.data = ToU32(env, Field(o, "data"), "data");
  return Napi::Number::New(env, IOCTL(env, fd_, KVM_SIGNAL_MSI, &msi));
}

Napi::Value Vm::GetDirtyLog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t slot = ToU32(env, info[0], "slot");
  if (!info[1].IsTypedArray()) throw Napi::TypeError::New(env, "bitmap must be a TypedArray");
  Napi::TypedArray bitmap = info[1].As<Napi::TypedArray>();
  auto it = slotSizes_.find(slot);
  if (it == slotSizes_.end()) {
    throw Napi::RangeError::New(env, "memory slot " + std::to_string(slot) + " was not set through this Vm");
  }
  // api.rst: one bit per page of the slot, in 64-bit longs.
  uint64_t pages = (it->second + 4095) / 4096;
  uint64_t need = (pages + 63) / 64 * 8;
  if (bitmap.ByteLength() < need) {
    throw Napi::RangeError::New(env, "bitmap must hold at least " + std::to_string(need) + " bytes for slot " +
                                         std::to_string(slot));
  }
  kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = static_cast<uint8_t*>(bitmap.ArrayBuffer().Data()) + bitmap.ByteOffset();
  IOCTL(env, fd_, KVM_GET_DIRTY_LOG, &log);
  return env.Undefined();
}

Napi::Value Vm::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return info.Env().Undefined();
}

}  // namespace kvmnative
