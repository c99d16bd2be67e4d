// Argument checks for the binding: every typed array is checked for its type
// and exact length before C++ touches it. TypeScript validates first and gives
// friendlier messages; these checks are the last line that keeps memory safe.
#pragma once
#include <napi.h>

#include <string>

#include "../core/error.h"
#include "../core/kernels.h"

namespace edgeopt::addon {

template <typename T>
struct TypedArrayTraits;
template <>
struct TypedArrayTraits<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};
template <>
struct TypedArrayTraits<int8_t> {
  static constexpr napi_typedarray_type type = napi_int8_array;
  static constexpr const char* name = "Int8Array";
};
template <>
struct TypedArrayTraits<uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "Uint8Array";
};
template <>
struct TypedArrayTraits<int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};

inline Napi::Error error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// A view of a JS typed array of exactly `expected` elements (any length when expected < 0).
template <typename T>
T* typed_view(const Napi::Value& v, const char* what, long long expected, size_t* length = nullptr) {
  using Tr = TypedArrayTraits<T>;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Tr::type)
    throw error(v.Env(), "E_DTYPE", std::string(what) + " must be a " + Tr::name);
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  if (expected >= 0 && arr.ElementLength() != static_cast<size_t>(expected))
    throw error(v.Env(), "E_SHAPE",
                std::string(what) + " has " + std::to_string(arr.ElementLength()) + " elements, expected " +
                    std::to_string(expected));
  if (length) *length = arr.ElementLength();
  return arr.Data();
}

// A positive int32 dimension no larger than 2^30 (absurd sizes are input errors).
inline int dim(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw error(v.Env(), "E_SHAPE", std::string(what) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= (1 << 30)) || d != static_cast<double>(static_cast<long long>(d)))
    throw error(v.Env(), "E_SHAPE", std::string(what) + " must be an integer in 1..2^30, got " + std::to_string(d));
  return static_cast<int>(d);
}

inline long long product(Napi::Env env, long long a, long long b, const char* what) {
  if (a * b > (1ll << 31)) throw error(env, "E_SHAPE", std::string(what) + " is too large");
  return a * b;
}

// The table named by an optional argument, else the active one.
inline const KernelTable& kernels_arg(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) {
    try {
      return active_kernels();
    } catch (const Error& e) {
      throw error(v.Env(), e.code(), e.what());
    }
  }
  if (!v.IsString()) throw error(v.Env(), "E_ISA", "kernel must be a string");
  const std::string name = v.As<Napi::String>();
  const KernelTable* k = find_kernels(name);
  if (!k) throw error(v.Env(), "E_ISA", "kernel '" + name + "' is unknown or not supported by this CPU");
  return *k;
}

// Intra-op thread count: undefined/null = 0 (hardware concurrency), else 1..256.
inline int threads_arg(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return 0;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 1 && d <= 256) || d != static_cast<double>(static_cast<int>(d)))
    throw error(v.Env(), "E_ARGUMENT", "threads must be an integer in 1..256");
  return static_cast<int>(d);
}

// Runs `f`, turning core errors into JS errors with the same code.
template <typename F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw error(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw error(env, "E_ALLOC", "out of memory");
  }
}

}  // namespace edgeopt::addon
