#include "convert.h"

#include <cmath>
#include <cstring>
#include <string>

namespace kvmnative {

static constexpr double kMaxSafeInteger = 9007199254740991.0;

Napi::Value Field(const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) {
    throw Napi::TypeError::New(obj.Env(), std::string("missing property '") + key + "'");
  }
  return v;
}

uint64_t ToU64(Napi::Env env, const Napi::Value& v, const char* what) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t u = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (lossless) return u;
    int64_t s = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (lossless) return static_cast<uint64_t>(s);
    throw Napi::RangeError::New(env, std::string(what) + " does not fit in 64 bits");
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d >= 0 && d <= kMaxSafeInteger && std::floor(d) == d) return static_cast<uint64_t>(d);
    throw Napi::RangeError::New(env, std::string(what) + " must be a non-negative safe integer");
  }
  throw Napi::TypeError::New(env, std::string(what) + " must be a bigint or a number");
}

uint32_t ToUnsigned(Napi::Env env, const Napi::Value& v, unsigned bits, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  double hi = std::ldexp(1.0, bits);
  double lo = -std::ldexp(1.0, bits - 1);
  if (std::floor(d) != d || d < lo || d >= hi) {
    throw Napi::RangeError::New(env, std::string(what) + " must be an integer that fits in " +
                                         std::to_string(bits) + " bits");
  }
  int64_t i = static_cast<int64_t>(d);
  uint64_t mask = bits >= 32 ? 0xffffffffull : ((1ull << bits) - 1);
  return static_cast<uint32_t>(static_cast<uint64_t>(i) & mask);
}

uint32_t OptU32(Napi::Env env, const Napi::Value& v, uint32_t fallback, const char* what) {
  return v.IsUndefined() ? fallback : ToU32(env, v, what);
}

bool OptBool(const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  return !v.IsUndefined() && v.ToBoolean().Value();
}

static Napi::BigInt Big(Napi::Env env, uint64_t v) {
  return Napi::BigInt::New(env, v);
}

// --- kvm_regs ---------------------------------------------------------------------------

#define KVM_NATIVE_REGS(X)                                                                  \
  X(rax) X(rbx) X(rcx) X(rdx) X(rsi) X(rdi) X(rsp) X(rbp) X(r8) X(r9) X(r10) X(r11) X(r12) \
  X(r13) X(r14) X(r15) X(rip) X(rflags)

Napi::Object RegsToJs(Napi::Env env, const kvm_regs& r) {
  Napi::Object o = Napi::Object::New(env);
#define X(name) o.Set(#name, Big(env, r.name));
  KVM_NATIVE_REGS(X)
#undef X
  return o;
}

void RegsFromJs(Napi::Env env, const Napi::Object& o, kvm_regs& r) {
#define X(name) r.name = ToU64(env, Field(o, #name), #name);
  KVM_NATIVE_REGS(X)
#undef X
}

// --- kvm_sregs --------------------------------------------------------------------------

static Napi::Object SegmentToJs(Napi::Env env, const kvm_segment& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Big(env, s.base));
  o.Set("limit", Napi::Number::New(env, s.limit));
  o.Set("selector", Napi::Number::New(env, s.selector));
  o.Set("type", Napi::Number::New(env, s.type));
  o.Set("present", Napi::Number::New(env, s.present));
  o.Set("dpl", Napi::Number::New(env, s.dpl));
  o.Set("db", Napi::Number::New(env, s.db));
  o.Set("s", Napi::Number::New(env, s.s));
  o.Set("l", Napi::Number::New(env, s.l));
  o.Set("g", Napi::Number::New(env, s.g));
  o.Set("avl", Napi::Number::New(env, s.avl));
  o.Set("unusable", Napi::Number::New(env, s.unusable));
  return o;
}

static void SegmentFromJs(Napi::Env env, const Napi::Value& v, const char* what, kvm_segment& s) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(what) + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  std::memset(&s, 0, sizeof s);
  s.base = ToU64(env, Field(o, "base"), "base");
  s.limit = ToU32(env, Field(o, "limit"), "limit");
  s.selector = static_cast<uint16_t>(ToUnsigned(env, Field(o, "selector"), 16, "selector"));
  s.type = static_cast<uint8_t>(ToUnsigned(env, Field(o, "type"), 8, "type"));
  s.present = static_cast<uint8_t>(ToUnsigned(env, Field(o, "present"), 8, "present"));
  s.dpl = static_cast<uint8_t>(ToUnsigned(env, Field(o, "dpl"), 8, "dpl"));
  s.db = static_cast<uint8_t>(ToUnsigned(env, Field(o, "db"), 8, "db"));
  s.s = static_cast<uint8_t>(ToUnsigned(env, Field(o, "s"), 8, "s"));
  s.l = static_cast<uint8_t>(ToUnsigned(env, Field(o, "l"), 8, "l"));
  s.g = static_cast<uint8_t>(ToUnsigned(env, Field(o, "g"), 8, "g"));
  s.avl = static_cast<uint8_t>(ToUnsigned(env, Field(o, "avl"), 8, "avl"));
  s.unusable = static_cast<uint8_t>(ToUnsigned(env, Field(o, "unusable"), 8, "unusable"));
}

static Napi::Object DtableToJs(Napi::Env env, const kvm_dtable& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Big(env, d.base));
  o.Set("limit", Napi::Number::New(env, d.limit));
  return o;
}

static void DtableFromJs(Napi::Env env, const Napi::Value& v, const char* what, kvm_dtable& d) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(what) + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  std::memset(&d, 0, sizeof d);
  d.base = ToU64(env, Field(o, "base"), "base");
  d.limit = static_cast<uint16_t>(ToUnsigned(env, Field(o, "limit"), 16, "limit"));
}

#define KVM_NATIVE_SEGMENTS(X) X(cs) X(ds) X(es) X(fs) X(gs) X(ss) X(tr) X(ldt)
#define KVM_NATIVE_CRS(X) \
  X(cr0, cr0) X(cr2, cr2) X(cr3, cr3) X(cr4, cr4) X(cr8, cr8) X(efer, efer) X(apic_base, apicBase)

static constexpr size_t kBitmapWords = sizeof(kvm_sregs::interrupt_bitmap) / sizeof(uint64_t);

Napi::Object SregsToJs(Napi::Env env, const kvm_sregs& s) {
  Napi::Object o = Napi::Object::New(env);
#define X(name) o.Set(#name, SegmentToJs(env, s.name));
  KVM_NATIVE_SEGMENTS(X)
#undef X
  o.Set("gdt", DtableToJs(env, s.gdt));
  o.Set("idt", DtableToJs(env, s.idt));
#define X(field, js) o.Set(#js, Big(env, s.field));
  KVM_NATIVE_CRS(X)
#undef X
  Napi::Array bitmap = Napi::Array::New(env, kBitmapWords);
  for (size_t i = 0; i < kBitmapWords; i++) bitmap.Set(i, Big(env, s.interrupt_bitmap[i]));
  o.Set("interruptBitmap", bitmap);
  return o;
}

void SregsFromJs(Napi::Env env, const Napi::Object& o, kvm_sregs& s) {
  std::memset(&s, 0, sizeof s);
#define X(name) SegmentFromJs(env, Field(o, #name), #name, s.name);
  KVM_NATIVE_SEGMENTS(X)
#undef X
  DtableFromJs(env, Field(o, "gdt"), "gdt", s.gdt);
  DtableFromJs(env, Field(o, "idt"), "idt", s.idt);
#define X(field, js) s.field = ToU64(env, Field(o, #js), #js);
  KVM_NATIVE_CRS(X)
#undef X
  Napi::Value bv = Field(o, "interruptBitmap");
  if (!bv.IsArray() || bv.As<Napi::Array>().Length() != kBitmapWords) {
    throw Napi::TypeError::New(env, "interruptBitmap must be an array of 4 bigints");
  }
  Napi::Array bitmap = bv.As<Napi::Array>();
  for (uint32_t i = 0; i < kBitmapWords; i++) {
    s.interrupt_bitmap[i] = ToU64(env, bitmap.Get(i), "interruptBitmap[i]");
  }
}

// --- kvm_fpu ----------------------------------------------------------------------------

Napi::Uint8Array BytesArg(Napi::Env env, const Napi::Value& v, size_t size, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, std::string(what) + " must be a Uint8Array");
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  if (a.ByteLength() != size) {
    throw Napi::RangeError::New(env, std::string(what) + " must be " + std::to_string(size) +
                                         " bytes, not " + std::to_string(a.ByteLength()));
  }
  return a;
}

static Napi::Uint8Array CopyBytes(Napi::Env env, const void* src, size_t size) {
  Napi::Uint8Array a = Napi::Uint8Array::New(env, size);
  std::memcpy(a.Data(), src, size);
  return a;
}

Napi::Object FpuToJs(Napi::Env env, const kvm_fpu& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fcw", Napi::Number::New(env, f.fcw));
  o.Set("fsw", Napi::Number::New(env, f.fsw));
  o.Set("ftwx", Napi::Number::New(env, f.ftwx));
  o.Set("lastOpcode", Napi::Number::New(env, f.last_opcode));
  o.Set("lastIp", Big(env, f.last_ip));
  o.Set("lastDp", Big(env, f.last_dp));
  o.Set("mxcsr", Napi::Number::New(env, f.mxcsr));
  o.Set("fpr", CopyBytes(env, f.fpr, sizeof f.fpr));
  o.Set("xmm", CopyBytes(env, f.xmm, sizeof f.xmm));
  return o;
}

void FpuFromJs(Napi::Env env, const Napi::Object& o, kvm_fpu& f) {
  std::memset(&f, 0, sizeof f);
  f.fcw = static_cast<uint16_t>(ToUnsigned(env, Field(o, "fcw"), 16, "fcw"));
  f.fsw = static_cast<uint16_t>(ToUnsigned(env, Field(o, "fsw"), 16, "fsw"));
  f.ftwx = static_cast<uint8_t>(ToUnsigned(env, Field(o, "ftwx"), 8, "ftwx"));
  f.last_opcode = static_cast<uint16_t>(ToUnsigned(env, Field(o, "lastOpcode"), 16, "lastOpcode"));
  f.last_ip = ToU64(env, Field(o, "lastIp"), "lastIp");
  f.last_dp = ToU64(env, Field(o, "lastDp"), "lastDp");
  f.mxcsr = ToU32(env, Field(o, "mxcsr"), "mxcsr");
  Napi::Uint8Array fpr = BytesArg(env, Field(o, "fpr"), sizeof f.fpr, "fpr");
  std::memcpy(f.fpr, fpr.Data(), sizeof f.fpr);
  Napi::Uint8Array xmm = BytesArg(env, Field(o, "xmm"), sizeof f.xmm, "xmm");
  std::memcpy(f.xmm, xmm.Data(), sizeof f.xmm);
}

// --- kvm_cpuid_entry2 -------------------------------------------------------------------

#define KVM_NATIVE_CPUID(X) X(function) X(index) X(flags) X(eax) X(ebx) X(ecx) X(edx)

Napi::Object CpuidEntryToJs(Napi::Env env, const kvm_cpuid_entry2& e) {
  Napi::Object o = Napi::Object::New(env);
#define X(name) o.Set(#name, Napi::Number::New(env, e.name));
  KVM_NATIVE_CPUID(X)
#undef X
  return o;
}

void CpuidEntryFromJs(Napi::Env env, const Napi::Object& o, kvm_cpuid_entry2& e) {
  std::memset(&e, 0, sizeof e);
#define X(name) e.name = ToU32(env, Field(o, #name), #name);
  KVM_NATIVE_CPUID(X)
#undef X
}

}  // namespace kvmnative
