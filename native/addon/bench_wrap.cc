#include "bench_wrap.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "../core/parallel_cnn.h"
#include "../core/parallel_gemm.h"
#include "args.h"
#include "cnn_args.h"

namespace edgeopt::addon {
namespace {

// 'int8': uniform 8-bit weights; 'int7': the int8 kernel on weights of the
// 7-bit grid [-63, 63], as 7-bit quantization stores them (tables may pack
// those faster, e.g. AVX2's vpmaddubsw layout); 'fp32'.
std::string kind_arg(const Napi::Value& v) {
  const std::string kind = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (kind != "int8" && kind != "int7" && kind != "fp32")
    throw error(v.Env(), "E_ARGUMENT", "kind must be 'int8', 'int7' or 'fp32'");
  return kind;
}

// Deterministic operands; the values do not change the kernels' speed.
uint32_t next(uint32_t* s) { return *s = *s * 1664525u + 1013904223u; }

// Seconds of CPU time the calling thread has used: on a shared machine the
// time other processes hold the core does not count against the kernel (a
// long run is preempted many times; wall time would count that).
double thread_seconds() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
#else
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
#endif
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Napi::Function KernelBench::DefineClass(Napi::Env env) {
  return ObjectWrap::DefineClass(
      env, "KernelBench",
      {InstanceMethod("run", &KernelBench::Run), InstanceAccessor("kernel", &KernelBench::Kernel, nullptr),
       InstanceAccessor("threads", &KernelBench::Threads, nullptr)});
}

KernelBench::KernelBench(const Napi::CallbackInfo& info) : ObjectWrap(info) {
  Napi::Env env = info.Env();
  const std::string kind = kind_arg(info[0]);
  int8_ = kind != "fp32";
  m_ = dim(info[1], "m");
  k_ = dim(info[2], "k");
  n_ = dim(info[3], "n");
  kt_ = &kernels_arg(info[4]);
  int threads = threads_arg(info[5]);
  if (threads == 0) threads = ThreadPool::default_threads();
  if (threads > 1) pool_ = ThreadPool::shared(threads);
  const size_t mk = product(env, m_, k_, "a"), nk = product(env, n_, k_, "w"), mn = product(env, m_, n_, "c");
  uint32_t s = 12345;
  guarded(env, [&] {
    if (int8_) {
      std::vector<int8_t> w(nk);
      for (int8_t& v : w) v = static_cast<int8_t>(next(&s) >> 24);
      if (kind == "int7")
        for (int8_t& v : w) v = static_cast<int8_t>(std::max(-63, std::min(63, v / 2)));
      a_.resize(mk);
      for (uint8_t& v : a_) v = static_cast<uint8_t>(next(&s) >> 24);
      zp_.assign(m_, 128);
      c_.resize(mn);
      kt_->pack_s8(w.data(), n_, k_, &w_s8_);
    } else {
      std::vector<float> w(nk);
      for (float& v : w) v = static_cast<float>(next(&s) >> 8) / 16777216.0f - 0.5f;
      x_.resize(mk);
      for (float& v : x_) v = static_cast<float>(next(&s) >> 8) / 16777216.0f - 0.5f;
      y_.resize(mn);
      kt_->pack_f32(w.data(), n_, k_, &w_f32_);
    }
  });
}

Napi::Value KernelBench::Run(const Napi::CallbackInfo& info) {
  const int repeat = info[0].IsUndefined() ? 1 : dim(info[0], "repeat");
  const double wall0 = wall_seconds(), cpu0 = thread_seconds();
  for (int i = 0; i < repeat; ++i) {
    if (int8_)
      gemm_u8s8_parallel(
          *kt_, pool_.get(),
          {a_.data(), static_cast<size_t>(k_), zp_.data(), m_, &w_s8_, c_.data(), static_cast<size_t>(n_), 0, n_});
    else
      gemm_f32_parallel(*kt_, pool_.get(),
                        {x_.data(), static_cast<size_t>(k_), m_, &w_f32_, y_.data(), static_cast<size_t>(n_), 0, n_});
  }
  Napi::Object t = Napi::Object::New(info.Env());
  t.Set("wallSeconds", wall_seconds() - wall0);
  t.Set("cpuSeconds", thread_seconds() - cpu0);
  return t;
}

Napi::Value KernelBench::Kernel(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kt_->name); }
Napi::Value KernelBench::Threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), pool_ ? pool_->threads() : 1);
}

Napi::Function ConvBench::DefineClass(Napi::Env env) {
  return ObjectWrap::DefineClass(
      env, "ConvBench",
      {InstanceMethod("run", &ConvBench::Run), InstanceAccessor("method", &ConvBench::Method, nullptr)});
}

ConvBench::ConvBench(const Napi::CallbackInfo& info) : ObjectWrap(info) {
  Napi::Env env = info.Env();
  const ConvShape s = conv_shape_arg(info[0]);
  const Activation act = activation_arg(info[1]);
  kt_ = &kernels_arg(info[2]);
  int threads = threads_arg(info[3]);
  if (threads == 0) threads = ThreadPool::default_threads();
  if (threads > 1) pool_ = ThreadPool::shared(threads);
  uint32_t seed = 12345;
  auto uniform = [&] { return static_cast<float>(next(&seed) >> 8) / 16777216.0f - 0.5f; };
  guarded(env, [&] {
    if (s.groups < 1 || s.in_c % s.groups) throw Error("E_SHAPE", "conv: groups must divide inC");
    std::vector<float> w(static_cast<size_t>(s.out_c) * s.kh * s.kw * (s.in_c / s.groups)), bias(s.out_c);
    for (float& v : w) v = uniform();
    for (float& v : bias) v = uniform();
    pack_conv_f32(*kt_, s, w.data(), bias.data(), act, &w_);
    x_.resize(static_cast<size_t>(s.in_h) * s.in_w * s.in_c);
    for (float& v : x_) v = uniform();
    y_.resize(static_cast<size_t>(s.out_h) * s.out_w * s.out_c);
    scratch_.resize(conv_parallel_scratch_floats(w_, pool_.get()));
  });
}

Napi::Value ConvBench::Run(const Napi::CallbackInfo& info) {
  const int repeat = info[0].IsUndefined() ? 1 : dim(info[0], "repeat");
  for (int i = 0; i < repeat; ++i)
    conv_f32_parallel(*kt_->cnn, pool_.get(), w_, x_.data(), y_.data(), 1, scratch_.data());
  return info.Env().Undefined();
}

Napi::Value ConvBench::Method(const Napi::CallbackInfo& info) {
  const char* names[] = {"pointwise", "im2col", "depthwise", "direct"};
  return Napi::String::New(info.Env(), names[static_cast<int>(w_.method)]);
}

Napi::Value PeakProbe(const Napi::CallbackInfo& info) {
  const std::string kind = kind_arg(info[0]);
  const PeakKind peak = kind == "fp32" ? PeakKind::Fp32 : kind == "int7" ? PeakKind::Int8Narrow : PeakKind::Int8;
  const int iterations = dim(info[1], "iterations");
  const KernelTable& kt = kernels_arg(info[2]);
  if (!kt.peak_probe) return info.Env().Null();
  const double t0 = thread_seconds();
  const uint64_t ops = kt.peak_probe(peak, static_cast<uint64_t>(iterations));
  const double s = thread_seconds() - t0;
  return Napi::Number::New(info.Env(), s > 0 ? static_cast<double>(ops) / s : 0.0);
}

Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int mib = dim(info[0], "mebibytes"), passes = dim(info[1], "passes");
  if (mib > 4096) throw error(env, "E_ARGUMENT", "mebibytes must be at most 4096");
  const size_t bytes = static_cast<size_t>(mib) << 20;
  double best = 0;
  guarded(env, [&] {
    // Zeros, searched for a byte they do not hold: memchr is the C library's
    // widest streaming read on this CPU (AVX2 or EVEX code chosen at run time),
    // so the loop is never the limit, only the memory.
    std::vector<uint8_t> buf(bytes, 0);
    for (int p = 0; p <= passes; ++p) {
      const double t0 = thread_seconds();
      const void* hit = std::memchr(buf.data(), 1, bytes);
      const double s = thread_seconds() - t0;
      if (hit) throw Error("E_NATIVE", "read probe found data it did not write");
      if (p > 0 && s > 0) best = std::max(best, static_cast<double>(bytes) / s);
    }
  });
  return Napi::Number::New(env, best);
}

Napi::Value TeamRoundTrip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int threads = dim(info[0], "threads"), runs = dim(info[1], "runs");
  if (threads < 2 || threads > 256) throw error(env, "E_ARGUMENT", "threads must be 2..256");
  if (runs > 10000000) throw error(env, "E_ARGUMENT", "runs must be at most 10000000");
  std::vector<double> seconds(static_cast<size_t>(runs));
  guarded(env, [&] {
    const std::shared_ptr<ThreadPool> pool = ThreadPool::shared(threads);
    for (double& s : seconds) {
      const double t0 = wall_seconds();
      if (!pool->run_team([](void*, int) {}, nullptr)) throw Error("E_STATE", "the thread pool is busy");
      s = wall_seconds() - t0;
    }
  });
  std::nth_element(seconds.begin(), seconds.begin() + runs / 2, seconds.end());
  return Napi::Number::New(env, seconds[static_cast<size_t>(runs / 2)]);
}

}  // namespace edgeopt::addon
