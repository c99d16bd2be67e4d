#include "plan_wrap.h"

#include <cmath>
#include <string>
#include <vector>

#include "args.h"
#include "run_worker.h"

namespace edgeopt::addon {
namespace {

bool flag(const Napi::Object& o, const char* key) {
  const Napi::Value v = o.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

const float* optional_floats(const Napi::Object& o, const char* key, long long expected) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  return typed_view<float>(v, key, expected);
}

// An optional integer field in [lo, hi], 0 when absent.
int optional_int(const Napi::Object& o, const char* key, int lo, int hi) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return 0;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int>(d)))
    throw error(
        o.Env(), "E_ARGUMENT",
        std::string("layer.") + key + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int>(d);
}

// layer.sparse: 'auto' (default), 'always' or 'never' (core/sparse.h).
SparsePolicy sparse_policy(const Napi::Object& o) {
  const Napi::Value v = o.Get("sparse");
  if (v.IsUndefined() || v.IsNull()) return SparsePolicy::Auto;
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "auto") return SparsePolicy::Auto;
  if (s == "always") return SparsePolicy::Always;
  if (s == "never") return SparsePolicy::Never;
  throw error(o.Env(), "E_ARGUMENT", "layer.sparse must be 'auto', 'always' or 'never'");
}

// About the bytes a layer's packed weights take in C++: what JS handed over
// (weights, scales, bias); packing keeps roughly that much.
int64_t layer_bytes(const Napi::Object& l) {
  int64_t bytes = 0;
  for (const char* key : {"weight", "scales", "bias"}) {
    const Napi::Value v = l.Get(key);
    if (v.IsTypedArray()) bytes += static_cast<int64_t>(v.As<Napi::TypedArray>().ByteLength());
  }
  return bytes;
}

void add_layer(Plan& plan, const Napi::Object& l) {
  const std::string op = l.Get("op").ToString();
  if (op == "relu") return plan.add_relu();
  if (op == "softmax") return plan.add_softmax();
  const int n = dim(l.Get("n"), "layer.n"), k = dim(l.Get("k"), "layer.k");
  const long long nk = product(l.Env(), n, k, "layer weight");
  const float* bias = optional_floats(l, "bias", n);
  if (op == "dense") {
    const float* w = typed_view<float>(l.Get("weight"), "layer.weight", nk);
    return guarded(l.Env(), [&] { plan.add_dense_f32(w, n, k, bias, flag(l, "relu")); });
  }
  if (op == "qdense") {
    const int8_t* w = typed_view<int8_t>(l.Get("weight"), "layer.weight", nk);
    size_t scales_len = 0;
    const float* scales = typed_view<float>(l.Get("scales"), "layer.scales", -1, &scales_len);
    const int group_size = optional_int(l, "groupSize", 0, k);
    const int zero_point = optional_int(l, "zeroPoint", -255, 255);
    // { activationQuant: 'static', inputScale, inputZeroPoint }: calibrated int8 input (static_quant.h).
    const Napi::Value aq = l.Get("activationQuant");
    const bool is_static = aq.IsString() && aq.As<Napi::String>().Utf8Value() == "static";
    const StaticActivation act{l.Get("inputScale").ToNumber().FloatValue(),
                               l.Get("inputZeroPoint").ToNumber().Int32Value()};
    const SparsePolicy sparse = sparse_policy(l);
    // { outputScale, outputZeroPoint }: integer requantization to a static int8 output (requantize.h).
    const bool has_output = l.Get("outputScale").IsNumber();
    const StaticActivation out{l.Get("outputScale").ToNumber().FloatValue(),
                               l.Get("outputZeroPoint").ToNumber().Int32Value()};
    // Plan::add_dense_s8 checks that the scale count fits the channels or groups.
    return guarded(l.Env(), [&] {
      plan.add_dense_s8({w, n, k, scales, scales_len, group_size, zero_point, bias, flag(l, "relu"),
                         is_static ? &act : nullptr, sparse, has_output ? &out : nullptr});
    });
  }
  throw error(l.Env(), "E_UNSUPPORTED_OP", "native plans do not run op '" + op + "'");
}

// Validates (x, m) against the plan; returns the row count.
int rows_arg(const Napi::CallbackInfo& info, const Plan& plan, const float** x) {
  const int m = dim(info[1], "rows");
  *x = typed_view<float>(info[0], "input", product(info.Env(), m, plan.input_features(), "input"));
  return m;
}

}  // namespace

Napi::Function PlanWrap::DefineClass(Napi::Env env) {
  return ObjectWrap::DefineClass(
      env, "Plan",
      {InstanceMethod("runSync", &PlanWrap::RunSync), InstanceMethod("run", &PlanWrap::Run),
       InstanceAccessor("inputFeatures", &PlanWrap::InputFeatures, nullptr),
       InstanceAccessor("outputFeatures", &PlanWrap::OutputFeatures, nullptr),
       InstanceAccessor("kernel", &PlanWrap::Kernel, nullptr),
       InstanceAccessor("layerKernels", &PlanWrap::LayerKernels, nullptr),
       InstanceAccessor("threads", &PlanWrap::Threads, nullptr), InstanceMethod("release", &PlanWrap::Release)});
}

PlanWrap::PlanWrap(const Napi::CallbackInfo& info) : ObjectWrap(info), env_(info.Env()) {
  if (!info[0].IsArray()) throw error(info.Env(), "E_ARGUMENT", "Plan expects an array of layers");
  const int threads = threads_arg(info[2]);
  auto plan = guarded(info.Env(), [&] { return std::make_shared<Plan>(kernels_arg(info[1]), threads); });
  const Napi::Array layers = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    const Napi::Value l = layers.Get(i);
    if (!l.IsObject()) throw error(info.Env(), "E_ARGUMENT", "layer " + std::to_string(i) + " is not an object");
    add_layer(*plan, l.As<Napi::Object>());
    external_bytes_ += layer_bytes(l.As<Napi::Object>());
  }
  if (plan->input_features() < 0) throw error(info.Env(), "E_SHAPE", "a plan needs at least one dense layer");
  plan_ = std::move(plan);
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), external_bytes_);
}

PlanWrap::~PlanWrap() { release_memory(); }

void PlanWrap::release_memory() {
  if (!plan_) return;
  plan_.reset();
  Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -external_bytes_);
}

const Plan& PlanWrap::plan(Napi::Env env) const {
  if (!plan_) throw error(env, "E_STATE", "the native plan was released (its model was unloaded)");
  return *plan_;
}

Napi::Value PlanWrap::Release(const Napi::CallbackInfo& info) {
  release_memory();
  return info.Env().Undefined();
}

Napi::Value PlanWrap::RunSync(const Napi::CallbackInfo& info) {
  const Plan& p = plan(info.Env());
  const float* x;
  const int m = rows_arg(info, p, &x);
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(m) * p.output_features());
  guarded(info.Env(), [&] { p.run(x, m, out.Data()); });
  return out;
}

Napi::Value PlanWrap::Run(const Napi::CallbackInfo& info) {
  const float* x;
  const int m = rows_arg(info, plan(info.Env()), &x);
  return RowsWorker<Plan>::Start(info.Env(), plan_, x, m);  // copies x: the caller may reuse its buffer
}

Napi::Value PlanWrap::InputFeatures(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), plan(info.Env()).input_features());
}
Napi::Value PlanWrap::OutputFeatures(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), plan(info.Env()).output_features());
}
Napi::Value PlanWrap::Threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), plan(info.Env()).threads());
}
Napi::Value PlanWrap::Kernel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), plan(info.Env()).kernels().name);
}

Napi::Value PlanWrap::LayerKernels(const Napi::CallbackInfo& info) {
  const std::vector<std::string> names = plan(info.Env()).layer_kernels();
  Napi::Array a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
}

}  // namespace edgeopt::addon
