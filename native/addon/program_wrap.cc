#include "program_wrap.h"

#include <string>
#include <vector>

#include "args.h"
#include "program_spec.h"

namespace edgeopt::addon {
namespace {

// Checks (inputs, batch) against the program: one Float32Array of exactly batch x per-image values each.
int input_args(const Napi::CallbackInfo& info, const CompiledProgram& p, std::vector<const float*>* x) {
  const int batch = dim(info[1], "batch");
  if (!info[0].IsArray()) throw error(info.Env(), "E_ARGUMENT", "inputs must be an array of Float32Array");
  const Napi::Array a = info[0].As<Napi::Array>();
  if (a.Length() != p.input_count())
    throw error(info.Env(), "E_SHAPE",
                "the program takes " + std::to_string(p.input_count()) + " inputs, got " + std::to_string(a.Length()));
  for (uint32_t i = 0; i < a.Length(); ++i)
    x->push_back(typed_view<float>(a.Get(i), "input", product(info.Env(), batch, p.input_elements(i), "input")));
  return batch;
}

// The output arrays, batch x per-image values each, made on the JS thread.
// Their memory is off the V8 heap (napi_create_arraybuffer) and does not move.
Napi::Array output_arrays(Napi::Env env, const CompiledProgram& p, int batch, std::vector<float*>* y) {
  Napi::Array a = Napi::Array::New(env, p.output_count());
  for (size_t i = 0; i < p.output_count(); ++i) {
    Napi::Float32Array out =
        Napi::Float32Array::New(env, static_cast<size_t>(product(env, batch, p.output_elements(i), "output")));
    a.Set(static_cast<uint32_t>(i), out);
    y->push_back(out.Data());
  }
  return a;
}

// Runs on libuv's pool straight into the result arrays (made here, held by a
// reference, invisible to JS until the promise settles): no output buffer in
// C++ and no copy of it on the way back.
class ProgramWorker : public Napi::AsyncWorker {
 public:
  ProgramWorker(Napi::Env env, std::shared_ptr<const CompiledProgram> p, const std::vector<const float*>& x, int batch)
      : Napi::AsyncWorker(env, "edgeopt.program"),
        deferred_(Napi::Promise::Deferred::New(env)),
        p_(std::move(p)),
        batch_(batch) {
    for (size_t i = 0; i < x.size(); ++i) inputs_.emplace_back(x[i], x[i] + batch * p_->input_elements(i));
    result_ = Napi::Persistent(output_arrays(env, *p_, batch, &outputs_));
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      std::vector<const float*> in;
      for (auto& v : inputs_) in.push_back(v.data());
      p_->run(in.data(), outputs_.data(), batch_);
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "E_ALLOC";
      SetError("out of memory");
    } catch (const std::exception& e) {  // never let an exception leave a libuv thread
      code_ = "E_NATIVE";
      SetError(e.what());
    } catch (...) {
      code_ = "E_NATIVE";
      SetError("unknown C++ exception");
    }
  }
  void OnOK() override { deferred_.Resolve(result_.Value()); }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(error(Env(), code_.empty() ? "E_NATIVE" : code_, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<const CompiledProgram> p_;
  std::vector<std::vector<float>> inputs_;
  Napi::Reference<Napi::Array> result_;
  std::vector<float*> outputs_;
  int batch_;
  std::string code_;
};

// About the bytes the compiled program keeps in C++: the constants JS handed
// over (weights, scales, biases, operands); packing keeps roughly that much.
int64_t constant_bytes(const ProgramSpec& spec) {
  int64_t bytes = 0;
  for (const TensorSpec& t : spec.tensors)
    if (t.kind == TensorSpec::Kind::Constant) bytes += t.bytes;
  return bytes;
}

}  // namespace

Napi::Function ProgramWrap::DefineClass(Napi::Env env) {
  return ObjectWrap::DefineClass(
      env, "Program",
      {InstanceMethod("runSync", &ProgramWrap::RunSync), InstanceMethod("run", &ProgramWrap::Run),
       InstanceMethod("profile", &ProgramWrap::Profile), InstanceAccessor("kernel", &ProgramWrap::Kernel, nullptr),
       InstanceAccessor("opKernels", &ProgramWrap::OpKernels, nullptr),
       InstanceAccessor("threads", &ProgramWrap::Threads, nullptr),
       InstanceAccessor("teamBarriers", &ProgramWrap::TeamBarriers, nullptr),
       InstanceMethod("release", &ProgramWrap::Release)});
}

ProgramWrap::ProgramWrap(const Napi::CallbackInfo& info) : ObjectWrap(info), env_(info.Env()) {
  const KernelTable& kt = kernels_arg(info[1]);
  const int threads = threads_arg(info[2]);
  const ProgramSpec spec = parse_program(info[0], sparse_policy_arg(info[3]));
  program_ = guarded(info.Env(), [&] { return std::make_shared<const CompiledProgram>(spec, kt, threads); });
  external_bytes_ = constant_bytes(spec);
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), external_bytes_);
}

ProgramWrap::~ProgramWrap() { release_memory(); }

void ProgramWrap::release_memory() {
  if (!program_) return;
  program_.reset();
  Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -external_bytes_);
}

const CompiledProgram& ProgramWrap::program(Napi::Env env) const {
  if (!program_) throw error(env, "E_STATE", "the native program was released (its model was unloaded)");
  return *program_;
}

Napi::Value ProgramWrap::Release(const Napi::CallbackInfo& info) {
  release_memory();
  return info.Env().Undefined();
}

Napi::Value ProgramWrap::RunSync(const Napi::CallbackInfo& info) {
  const CompiledProgram& p = program(info.Env());
  std::vector<const float*> x;
  const int batch = input_args(info, p, &x);
  std::vector<float*> y;
  Napi::Array a = output_arrays(info.Env(), p, batch, &y);
  guarded(info.Env(), [&] { p.run(x.data(), y.data(), batch); });
  return a;
}

Napi::Value ProgramWrap::Run(const Napi::CallbackInfo& info) {
  std::vector<const float*> x;
  const int batch = input_args(info, program(info.Env()), &x);
  auto* w = new ProgramWorker(info.Env(), program_, x, batch);  // copies x: the caller may reuse its buffers
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// profile(inputs, batch, repeats): seconds per op summed over `repeats` runs (a Float64Array), for the bench.
Napi::Value ProgramWrap::Profile(const Napi::CallbackInfo& info) {
  const CompiledProgram& p = program(info.Env());
  std::vector<const float*> x;
  const int batch = input_args(info, p, &x);
  const int repeats = dim(info[2], "repeats");
  std::vector<std::vector<float>> out(p.output_count());
  std::vector<float*> y;
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].resize(static_cast<size_t>(product(info.Env(), batch, p.output_elements(i), "output")));
    y.push_back(out[i].data());
  }
  std::vector<double> seconds;
  guarded(info.Env(), [&] {
    for (int r = 0; r < repeats; ++r) p.run(x.data(), y.data(), batch, &seconds);
  });
  Napi::Float64Array a = Napi::Float64Array::New(info.Env(), seconds.size());
  std::copy(seconds.begin(), seconds.end(), a.Data());
  return a;
}

Napi::Value ProgramWrap::Kernel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), program(info.Env()).kernels().name);
}

Napi::Value ProgramWrap::Threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), program(info.Env()).threads());
}

// Barriers of a team run (core/program_team.h), or -1 when the program runs op by op.
Napi::Value ProgramWrap::TeamBarriers(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), program(info.Env()).team_barriers());
}

Napi::Value ProgramWrap::OpKernels(const Napi::CallbackInfo& info) {
  const auto& names = program(info.Env()).op_kernels();
  Napi::Array a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
}

Napi::Value NativeProgramOps(const Napi::CallbackInfo& info) {
  const KernelTable& kt = kernels_arg(info[0]);
  std::vector<std::string> ops = native_program_ops();
  if (!kt.cnn) ops = {"dense", "qdense"};  // a table without CNN kernels runs the dense ops only
  Napi::Array a = Napi::Array::New(info.Env(), ops.size());
  for (size_t i = 0; i < ops.size(); ++i) a.Set(static_cast<uint32_t>(i), ops[i]);
  return a;
}

}  // namespace edgeopt::addon
