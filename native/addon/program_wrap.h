#pragma once
#include <napi.h>

#include <memory>

#include "../core/program.h"

namespace edgeopt::addon {

// JS class `Program`: new Program(program, kernelName?, threads?, sparse?)
// parses the Program object once (program_spec.cc), packs the weights and
// keeps the compiled program; runSync(inputs, batch) runs on the calling
// thread, run(inputs, batch) on libuv's pool. inputs: one Float32Array per
// program input (batch x its per-image size); returns one per output.
class ProgramWrap : public Napi::ObjectWrap<ProgramWrap> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit ProgramWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value RunSync(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Profile(const Napi::CallbackInfo& info);
  Napi::Value Kernel(const Napi::CallbackInfo& info);
  Napi::Value OpKernels(const Napi::CallbackInfo& info);
  Napi::Value Threads(const Napi::CallbackInfo& info);

  // Shared with in-flight async runs, so dropping the JS object never frees a
  // program that a worker thread is still using.
  std::shared_ptr<const CompiledProgram> program_;
};

// The ops the native executor runs: ['conv', 'dense', ...].
Napi::Value NativeProgramOps(const Napi::CallbackInfo& info);

}  // namespace edgeopt::addon
