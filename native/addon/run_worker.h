// Runs `model->run(x, m, y)` on libuv's pool and settles a promise with the
// Float32Array result. Works for anything with run/input_features/
// output_features (an NPU graph). The worker copies the input (the
// caller may reuse its buffer) and holds a shared_ptr, so dropping the JS
// object or unloading the model never frees memory an in-flight run uses.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "args.h"

namespace edgeopt::addon {

template <typename Model>
class RowsWorker : public Napi::AsyncWorker {
 public:
  RowsWorker(Napi::Env env, std::shared_ptr<const Model> model, const float* x, int m)
      : Napi::AsyncWorker(env, "edgeopt.run"),
        deferred_(Napi::Promise::Deferred::New(env)),
        model_(std::move(model)),
        input_(x, x + static_cast<size_t>(m) * model_->input_features()),
        m_(m) {}

  // Queues a worker and returns its promise (the worker deletes itself when done).
  static Napi::Promise Start(Napi::Env env, std::shared_ptr<const Model> model, const float* x, int m) {
    auto* w = new RowsWorker(env, std::move(model), x, m);
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

  void Execute() override {
    try {
      output_.resize(static_cast<size_t>(m_) * model_->output_features());
      model_->run(input_.data(), m_, output_.data());
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

  void OnOK() override {
    Napi::Float32Array out = Napi::Float32Array::New(Env(), output_.size());
    std::copy(output_.begin(), output_.end(), out.Data());
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    deferred_.Reject(error(Env(), code_.empty() ? "E_NATIVE" : code_, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<const Model> model_;
  std::vector<float> input_, output_;
  int m_;
  std::string code_;
};

}  // namespace edgeopt::addon
