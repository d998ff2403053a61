// Conversions between the kernel's structs (uapi.h) and the JS objects of index.d.ts.
// 64-bit fields are BigInt; narrower fields are Numbers.
#pragma once

#include <napi.h>

#include <cstdint>

#include "uapi.h"

namespace kvmnative {

// Reads obj[key]; a missing property is a TypeError naming it.
Napi::Value Field(const Napi::Object& obj, const char* key);

// BigInt in [-2^63, 2^64) (negative values wrap to two's complement) or a safe non-negative
// integer Number.
uint64_t ToU64(Napi::Env env, const Napi::Value& v, const char* what);
// Integer Number in [-2^(bits-1), 2^bits) (so `x | 0x80000000` still works); wraps to bits.
uint32_t ToUnsigned(Napi::Env env, const Napi::Value& v, unsigned bits, const char* what);
inline uint32_t ToU32(Napi::Env env, const Napi::Value& v, const char* what) {
  return ToUnsigned(env, v, 32, what);
}
// An optional argument: `fallback` when undefined.
uint32_t OptU32(Napi::Env env, const Napi::Value& v, uint32_t fallback, const char* what);
// An optional boolean property: false when missing, otherwise its truthiness.
bool OptBool(const Napi::Object& obj, const char* key);

Napi::Object RegsToJs(Napi::Env env, const kvm_regs& r);
void RegsFromJs(Napi::Env env, const Napi::Object& o, kvm_regs& r);

Napi::Object SregsToJs(Napi::Env env, const kvm_sregs& s);
void SregsFromJs(Napi::Env env, const Napi::Object& o, kvm_sregs& s);

Napi::Object FpuToJs(Napi::Env env, const kvm_fpu& f);
void FpuFromJs(Napi::Env env, const Napi::Object& o, kvm_fpu& f);

Napi::Object CpuidEntryToJs(Napi::Env env, const kvm_cpuid_entry2& e);
void CpuidEntryFromJs(Napi::Env env, const Napi::Object& o, kvm_cpuid_entry2& e);

// A Uint8Array of exactly `size` bytes (or a TypeError naming `what`).
Napi::Uint8Array BytesArg(Napi::Env env, const Napi::Value& v, size_t size, const char* what);

}  // namespace kvmnative
