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
// is not dominated by the JS call. kind is 'int8' (u8 x s8 -> s32) or 'fp32'.
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

// peakProbe(kind: 'int8'|'fp32', iterations, kernel?) -> operations per second
// of the table's register-only throughput loop (see KernelTable::peak_probe).
Napi::Value PeakProbe(const Napi::CallbackInfo& info);

}  // namespace edgeopt::addon
