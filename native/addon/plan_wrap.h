#pragma once
#include <napi.h>

#include <memory>

#include "../core/plan.h"

namespace edgeopt::addon {

// JS class `Plan`: new Plan(layers, kernelName?, threads?) packs the weights
// once; runSync(x, m) runs on the calling thread, run(x, m) on libuv's pool.
// Either splits each dense layer over `threads` intra-op threads (default: the
// core count; results do not depend on it). release() frees the native memory
// now (in-flight runs keep what they use until they finish) instead of at some
// later GC; V8 is told about that memory (AdjustExternalMemory) while it is held.
class PlanWrap : public Napi::ObjectWrap<PlanWrap> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit PlanWrap(const Napi::CallbackInfo& info);
  ~PlanWrap() override;

 private:
  Napi::Value RunSync(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value InputFeatures(const Napi::CallbackInfo& info);
  Napi::Value OutputFeatures(const Napi::CallbackInfo& info);
  Napi::Value Kernel(const Napi::CallbackInfo& info);
  Napi::Value LayerKernels(const Napi::CallbackInfo& info);
  Napi::Value Threads(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  // The plan, or E_STATE once released.
  const Plan& plan(Napi::Env env) const;
  void release_memory();

  // Shared with in-flight async runs, so dropping the JS object never frees a
  // plan that a worker thread is still using.
  std::shared_ptr<const Plan> plan_;
  napi_env env_;
  int64_t external_bytes_ = 0;  // reported to V8 while plan_ is held
};

}  // namespace edgeopt::addon
