#pragma once
#include <napi.h>

#include <memory>

#include "../core/plan.h"

namespace edgeopt::addon {

// JS class `Plan`: new Plan(layers, kernelName?, threads?) packs the weights
// once; runSync(x, m) runs on the calling thread, run(x, m) on libuv's pool.
// Either splits each dense layer over `threads` intra-op threads (default: the
// core count; results do not depend on it).
class PlanWrap : public Napi::ObjectWrap<PlanWrap> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit PlanWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value RunSync(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value InputFeatures(const Napi::CallbackInfo& info);
  Napi::Value OutputFeatures(const Napi::CallbackInfo& info);
  Napi::Value Kernel(const Napi::CallbackInfo& info);
  Napi::Value LayerKernels(const Napi::CallbackInfo& info);
  Napi::Value Threads(const Napi::CallbackInfo& info);

  // Shared with in-flight async runs, so dropping the JS object never frees a
  // plan that a worker thread is still using.
  std::shared_ptr<const Plan> plan_;
};

}  // namespace edgeopt::addon
