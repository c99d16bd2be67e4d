#pragma once
#include <napi.h>

#include <memory>

#include "../core/cnn_kernels.h"
#include "../core/kernels.h"
#include "../core/thread_pool.h"

namespace edgeopt::addon {

// JS class `KernelBench` (for bench/kernels.js): new KernelBench(kind, m, k, n,
// kernel?, threads?) makes random operands and packs the weights once;
// run(repeat) runs the bare GEMM `repeat` times, so a benchmark of small shapes
// is not dominated by the JS call, and returns { wallSeconds, cpuSeconds }
// (the calling thread's CPU time). kind is 'int8' (u8 x s8 -> s32), 'int7' or 'fp32'.
class KernelBench : public Napi::ObjectWrap<KernelBench> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit KernelBench(const Napi::CallbackInfo& info);

 private:
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Kernel(const Napi::CallbackInfo& info);
  Napi::Value Threads(const Napi::CallbackInfo& info);

  const KernelTable* kt_ = nullptr;
  bool int8_ = true;
  int m_ = 0, k_ = 0, n_ = 0;
  std::shared_ptr<ThreadPool> pool_;
  std::vector<uint8_t> a_;
  std::vector<int32_t> zp_, c_;
  PackedS8 w_s8_;
  std::vector<float> x_, y_;
  PackedF32 w_f32_;
};

// JS class `ConvBench` (for bench/kernels.js): new ConvBench(shape, act, kernel?,
// threads?) makes random operands for one convolution (program.ts ConvOp
// geometry), packs the weights once; run(repeat) runs it `repeat` times
// through the thread-pool driver; method is 'pointwise', 'im2col' or 'depthwise'.
class ConvBench : public Napi::ObjectWrap<ConvBench> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit ConvBench(const Napi::CallbackInfo& info);

 private:
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Method(const Napi::CallbackInfo& info);

  const KernelTable* kt_ = nullptr;
  std::shared_ptr<ThreadPool> pool_;
  PackedConvF32 w_;
  std::vector<float> x_, y_, scratch_;
};

// peakProbe(kind: 'int8'|'int7'|'fp32', iterations, kernel?) -> operations per
// second of the calling thread's CPU time in the table's register-only
// throughput loop (see KernelTable::peak_probe), or null when it has none.
Napi::Value PeakProbe(const Napi::CallbackInfo& info);

// readBandwidth(mebibytes, passes) -> bytes per second of CPU time one thread
// reads from a buffer of that size (best of `passes` passes after one to warm it up):
// the memory-bound ceiling of a GEMV whose weights have that size.
Napi::Value ReadBandwidth(const Napi::CallbackInfo& info);

// teamRoundTrip(threads, runs) -> the median seconds of an empty team run
// (ThreadPool::run_team on the shared pool of `threads`: the caller's signal to
// the workers and their answers back), over `runs` runs: the floor under every
// barrier of a team run, which is what limits two threads on a small CNN.
Napi::Value TeamRoundTrip(const Napi::CallbackInfo& info);

}  // namespace edgeopt::addon
