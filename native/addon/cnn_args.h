// JS values -> CNN kernel structs (cnn_kernels.h), checked. Field names are
// program.ts's (ConvOp, PoolOp, Activation), so the Program parser and the
// kernel test exports read the same objects the same way.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "../core/cnn_kernels.h"
#include "args.h"

namespace edgeopt::addon {

// An integer field of `o` in [lo, hi] (E_SHAPE otherwise).
inline int int_field(const Napi::Object& o, const char* name, int lo = 0, int hi = 1 << 30) {
  const Napi::Value v = o.Get(name);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= lo && d <= hi) || d != std::floor(d))
    throw error(o.Env(), "E_SHAPE",
                std::string(name) + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int>(d);
}

inline Napi::Object object_arg(const Napi::Value& v, const char* what) {
  if (!v.IsObject()) throw error(v.Env(), "E_ARGUMENT", std::string(what) + " must be an object");
  return v.As<Napi::Object>();
}

// The window fields ConvOp and PoolOp share: kh, kw, strideH, strideW,
// dilationH, dilationW, padTop, padLeft, padBottom, padRight.
template <typename Shape>
void window_fields(const Napi::Object& o, Shape* s) {
  s->kh = int_field(o, "kh", 1);
  s->kw = int_field(o, "kw", 1);
  s->stride_h = int_field(o, "strideH", 1);
  s->stride_w = int_field(o, "strideW", 1);
  s->dilation_h = int_field(o, "dilationH", 1);
  s->dilation_w = int_field(o, "dilationW", 1);
  s->pad_top = int_field(o, "padTop");
  s->pad_left = int_field(o, "padLeft");
  s->pad_bottom = int_field(o, "padBottom");
  s->pad_right = int_field(o, "padRight");
}

// ConvOp's geometry: inH, inW, inC, outH, outW, outC, the window fields, groups.
inline ConvShape conv_shape_arg(const Napi::Value& v) {
  const Napi::Object o = object_arg(v, "conv shape");
  ConvShape s;
  s.in_h = int_field(o, "inH", 1);
  s.in_w = int_field(o, "inW", 1);
  s.in_c = int_field(o, "inC", 1);
  s.out_h = int_field(o, "outH", 1);
  s.out_w = int_field(o, "outW", 1);
  s.out_c = int_field(o, "outC", 1);
  window_fields(o, &s);
  s.groups = int_field(o, "groups", 1);
  return s;
}

// PoolOp's geometry: inH, inW, c, outH, outW, the window fields, countIncludePad.
inline PoolShape pool_shape_arg(const Napi::Value& v) {
  const Napi::Object o = object_arg(v, "pool shape");
  PoolShape s;
  s.in_h = int_field(o, "inH", 1);
  s.in_w = int_field(o, "inW", 1);
  s.c = int_field(o, "c", 1);
  s.out_h = int_field(o, "outH", 1);
  s.out_w = int_field(o, "outW", 1);
  window_fields(o, &s);
  s.count_include_pad = o.Get("countIncludePad").ToBoolean();
  return s;
}

inline float number_field(const Napi::Object& o, const char* name, float fallback) {
  const Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber() || std::isnan(v.As<Napi::Number>().DoubleValue()))
    throw error(o.Env(), "E_ARGUMENT", std::string("activation.") + name + " must be a number");
  return v.As<Napi::Number>().FloatValue();
}

// program.ts Activation: { kind, alpha?, beta?, min?, max? }; undefined = none.
inline Activation activation_arg(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return {};
  const Napi::Object o = object_arg(v, "activation");
  const std::string kind = o.Get("kind").IsString() ? o.Get("kind").As<Napi::String>().Utf8Value() : "";
  const float inf = INFINITY;
  if (kind == "none") return {};
  if (kind == "relu") return {ActKind::Relu};
  if (kind == "leakyrelu") return {ActKind::LeakyRelu, number_field(o, "alpha", 0.01f)};
  if (kind == "clip") return {ActKind::Clip, 0, 0, number_field(o, "min", -inf), number_field(o, "max", inf)};
  if (kind == "hardsigmoid")
    return {ActKind::HardSigmoid, number_field(o, "alpha", 0.2f), number_field(o, "beta", 0.5f)};
  if (kind == "hardswish") return {ActKind::HardSwish};
  if (kind == "sigmoid") return {ActKind::Sigmoid};
  if (kind == "tanh") return {ActKind::Tanh};
  throw error(v.Env(), "E_ARGUMENT", "activation.kind '" + kind + "' is not one of program.ts's Activation kinds");
}

// A JS array of integers (dims, strides, pads, perm), each in [lo, hi].
inline std::vector<int64_t> int_list_arg(const Napi::Value& v, const char* what, int64_t lo, int64_t hi) {
  if (!v.IsArray()) throw error(v.Env(), "E_ARGUMENT", std::string(what) + " must be an array of integers");
  const Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 32) throw error(v.Env(), "E_SHAPE", std::string(what) + " has more than 32 entries");
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const Napi::Value e = a.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d))
      throw error(v.Env(), "E_SHAPE",
                  std::string(what) + "[" + std::to_string(i) + "] must be an integer in " + std::to_string(lo) + ".." +
                      std::to_string(hi));
    out[i] = static_cast<int64_t>(d);
  }
  return out;
}

}  // namespace edgeopt::addon
