// The edgeopt addon: kernel entry points (for tests, the optimizer and the TS
// engine) and the Program class. Context-aware, so it loads in worker_threads.
#include <napi.h>

#include <vector>

#include "../core/kernels.h"
#include "../core/prune.h"
#include "../core/quantize.h"
#include "../core/thread_pool.h"
#include "../core/validate.h"
#include "../kernels/cpu_features.h"
#include "args.h"
#include "bench_wrap.h"
#include "cnn_wrap.h"
#include "npu_wrap.h"
#include "program_wrap.h"

namespace edgeopt::addon {
namespace {

Napi::Array strings(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {InstanceMethod("info", &Addon::Info),
                          InstanceMethod("gemmU8S8", &Addon::GemmU8S8),
                          InstanceMethod("gemmF32", &Addon::GemmF32),
                          InstanceMethod("epilogueS32", &Addon::EpilogueS32),
                          InstanceMethod("quantizeRowsU8", &Addon::QuantizeRowsU8),
                          InstanceMethod("quantizeSymmetric", &Addon::QuantizeSymmetric),
                          InstanceMethod("dequantizeS8", &Addon::DequantizeS8),
                          InstanceMethod("pruneMask", &Addon::PruneMask),
                          InstanceMethod("reluF32", &Addon::ReluF32),
                          InstanceMethod("firstNonFinite", &Addon::FirstNonFinite),
                          InstanceMethod("peakProbe", &Addon::PeakProbe),
                          InstanceMethod("externalMemory", &Addon::ExternalMemory),
                          InstanceMethod("readBandwidth", &Addon::ReadBandwidth),
                          InstanceMethod("teamRoundTrip", &Addon::TeamRoundTrip),
                          InstanceValue("Program", ProgramWrap::DefineClass(env)),
                          InstanceMethod("nativeProgramOps", &Addon::NativeProgramOps),
                          InstanceValue("KernelBench", KernelBench::DefineClass(env)),
                          InstanceValue("ConvBench", ConvBench::DefineClass(env)),
                          InstanceValue("npu", NpuExports(env)),
                          InstanceValue("cnn", CnnExports(env))});
  }

 private:
  // { kernel, kernels, isa, threads, tables, notes }: the active table, every
  // table this CPU runs, CPU features, the default intra-op thread count,
  // every table of the binary with the features this CPU lacks for it, and
  // what the OS refused (kernel_notes()).
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("kernel", kernels_arg(env.Undefined()).name);
    o.Set("kernels", strings(env, runnable_kernel_names()));
    o.Set("isa", strings(env, cpu_feature_names()));
    o.Set("threads", ThreadPool::default_threads());  // a Program's default intra-op thread count
    const std::vector<KernelTableInfo> all = kernel_tables();
    Napi::Array tables = Napi::Array::New(env, all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("name", all[i].name);
      t.Set("missing", strings(env, all[i].missing));
      tables.Set(static_cast<uint32_t>(i), t);
    }
    o.Set("tables", tables);
    o.Set("notes", strings(env, kernel_notes()));
    return o;
  }

  // gemmU8S8(a: Uint8Array m*k, aZeroPoint: Int32Array m, m, k, w: Int8Array n*k, n, kernel?) -> Int32Array m*n
  Napi::Value GemmU8S8(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int m = dim(info[2], "m"), k = dim(info[3], "k"), n = dim(info[5], "n");
    const uint8_t* a = typed_view<uint8_t>(info[0], "a", product(env, m, k, "a"));
    const int32_t* zp = typed_view<int32_t>(info[1], "aZeroPoint", m);
    const int8_t* w = typed_view<int8_t>(info[4], "w", product(env, n, k, "w"));
    const KernelTable& kt = kernels_arg(info[6]);
    PackedS8 packed;
    kt.pack_s8(w, n, k, &packed);
    Napi::Int32Array c = Napi::Int32Array::New(env, product(env, m, n, "c"));
    kt.gemm_u8s8({a, static_cast<size_t>(k), zp, m, &packed, c.Data(), static_cast<size_t>(n), 0, n});
    return c;
  }

  // gemmF32(x: Float32Array m*k, m, k, w: Float32Array n*k, n, kernel?) -> Float32Array m*n
  Napi::Value GemmF32(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int m = dim(info[1], "m"), k = dim(info[2], "k"), n = dim(info[4], "n");
    const float* x = typed_view<float>(info[0], "x", product(env, m, k, "x"));
    const float* w = typed_view<float>(info[3], "w", product(env, n, k, "w"));
    const KernelTable& kt = kernels_arg(info[5]);
    PackedF32 packed;
    kt.pack_f32(w, n, k, &packed);
    Napi::Float32Array y = Napi::Float32Array::New(env, product(env, m, n, "y"));
    kt.gemm_f32({x, static_cast<size_t>(k), m, &packed, y.Data(), static_cast<size_t>(n), 0, n});
    return y;
  }

  // epilogueS32(c: Int32Array m*n, m, n, aScale: Float32Array m, wScale: Float32Array n|1, bias|null, relu, kernel?)
  Napi::Value EpilogueS32(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int m = dim(info[1], "m"), n = dim(info[2], "n");
    const int32_t* c = typed_view<int32_t>(info[0], "c", product(env, m, n, "c"));
    const float* a_scale = typed_view<float>(info[3], "aScale", m);
    size_t ws_len = 0;
    const float* w_scale = typed_view<float>(info[4], "wScale", -1, &ws_len);
    if (ws_len != 1 && ws_len != static_cast<size_t>(n))
      throw error(env, "E_SHAPE", "wScale must have 1 or n elements");
    const float* bias = info[5].IsNull() || info[5].IsUndefined() ? nullptr : typed_view<float>(info[5], "bias", n);
    const bool relu = info[6].ToBoolean();
    const KernelTable& kt = kernels_arg(info[7]);
    Napi::Float32Array y = Napi::Float32Array::New(env, product(env, m, n, "y"));
    kt.epilogue_s32({c, static_cast<size_t>(n), m, n, a_scale, w_scale, ws_len == 1 ? 0 : 1, bias, relu, y.Data(),
                     static_cast<size_t>(n)});
    return y;
  }

  // quantizeRowsU8(x: Float32Array m*k, m, k, kernel?) -> { q, scale, zeroPoint }
  Napi::Value QuantizeRowsU8(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int m = dim(info[1], "m"), k = dim(info[2], "k");
    const float* x = typed_view<float>(info[0], "x", product(env, m, k, "x"));
    const KernelTable& kt = kernels_arg(info[3]);
    Napi::Uint8Array q = Napi::Uint8Array::New(env, static_cast<size_t>(m) * k);
    Napi::Float32Array scale = Napi::Float32Array::New(env, m);
    Napi::Int32Array zp = Napi::Int32Array::New(env, m);
    kt.quantize_rows_u8(x, m, k, q.Data(), scale.Data(), zp.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("q", q);
    o.Set("scale", scale);
    o.Set("zeroPoint", zp);
    return o;
  }

  // quantizeSymmetric(w: Float32Array n*k, n, k, bits, perChannel) -> { q: Int8Array, scales: Float32Array }
  Napi::Value QuantizeSymmetric(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int n = dim(info[1], "n"), k = dim(info[2], "k"), bits = dim(info[3], "bits");
    if (bits < 2 || bits > 8) throw error(env, "E_ARGUMENT", "bits must be in 2..8");
    const float* w = typed_view<float>(info[0], "w", product(env, n, k, "w"));
    const bool per_channel = info[4].ToBoolean();
    Napi::Int8Array q = Napi::Int8Array::New(env, static_cast<size_t>(n) * k);
    Napi::Float32Array scales = Napi::Float32Array::New(env, per_channel ? n : 1);
    quantize_symmetric_s8(w, n, k, bits, per_channel, q.Data(), scales.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("q", q);
    o.Set("scales", scales);
    return o;
  }

  // dequantizeS8(q: Int8Array n*k, n, k, scales: Float32Array n|1) -> Float32Array
  Napi::Value DequantizeS8(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int n = dim(info[1], "n"), k = dim(info[2], "k");
    const int8_t* q = typed_view<int8_t>(info[0], "q", product(env, n, k, "q"));
    size_t s_len = 0;
    const float* scales = typed_view<float>(info[3], "scales", -1, &s_len);
    if (s_len != 1 && s_len != static_cast<size_t>(n)) throw error(env, "E_SHAPE", "scales must have 1 or n elements");
    Napi::Float32Array w = Napi::Float32Array::New(env, static_cast<size_t>(n) * k);
    dequantize_s8(q, n, k, scales, s_len == static_cast<size_t>(n) && n > 1, w.Data());
    return w;
  }

  // pruneMask(w: Float32Array, pruneCount) -> { keep: Uint8Array, threshold }
  Napi::Value PruneMask(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t count = 0;
    const float* w = typed_view<float>(info[0], "w", -1, &count);
    if (!info[1].IsNumber()) throw error(env, "E_ARGUMENT", "pruneCount must be a number");
    const double want = info[1].As<Napi::Number>().DoubleValue();
    if (!(want >= 0 && want <= static_cast<double>(count)) || want != static_cast<double>(static_cast<size_t>(want)))
      throw error(env, "E_ARGUMENT", "pruneCount must be an integer in 0..w.length");
    Napi::Uint8Array keep = Napi::Uint8Array::New(env, count);
    const float t = magnitude_prune_mask(w, count, static_cast<size_t>(want), keep.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("keep", keep);
    o.Set("threshold", t);
    return o;
  }

  Napi::Value PeakProbe(const Napi::CallbackInfo& info) { return addon::PeakProbe(info); }
  Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) { return addon::ReadBandwidth(info); }
  Napi::Value TeamRoundTrip(const Napi::CallbackInfo& info) { return addon::TeamRoundTrip(info); }
  Napi::Value NativeProgramOps(const Napi::CallbackInfo& info) { return addon::NativeProgramOps(info); }

  // externalMemory() -> the native bytes V8 has been told about in this isolate (programs report theirs),
  // which it weighs when it schedules garbage collection.
  Napi::Value ExternalMemory(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(),
                             static_cast<double>(Napi::MemoryManagement::AdjustExternalMemory(info.Env(), 0)));
  }

  // firstNonFinite(x: Float32Array) -> index of the first NaN/Infinity, or -1
  Napi::Value FirstNonFinite(const Napi::CallbackInfo& info) {
    size_t count = 0;
    const float* x = typed_view<float>(info[0], "x", -1, &count);
    return Napi::Number::New(info.Env(), static_cast<double>(first_non_finite(x, count)));
  }

  // reluF32(x: Float32Array, kernel?) -> x, in place
  Napi::Value ReluF32(const Napi::CallbackInfo& info) {
    size_t count = 0;
    float* x = typed_view<float>(info[0], "x", -1, &count);
    kernels_arg(info[1]).relu_f32(x, count);
    return info[0];
  }
};

}  // namespace
}  // namespace edgeopt::addon

using EdgeOptAddon = edgeopt::addon::Addon;
NODE_API_ADDON(EdgeOptAddon)
