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
// release() frees the native memory now (in-flight runs keep what they use
// until they finish) instead of at some later GC; V8 is told about that memory
// (AdjustExternalMemory) while it is held.
class ProgramWrap : public Napi::ObjectWrap<ProgramWrap> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit ProgramWrap(const Napi::CallbackInfo& info);
  ~ProgramWrap() override;

 private:
  Napi::Value RunSync(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Profile(const Napi::CallbackInfo& info);
  Napi::Value Kernel(const Napi::CallbackInfo& info);
  Napi::Value OpKernels(const Napi::CallbackInfo& info);
  Napi::Value Threads(const Napi::CallbackInfo& info);
  Napi::Value TeamBarriers(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  // The program, or E_STATE once released.
  const CompiledProgram& program(Napi::Env env) const;
  void release_memory();

  // Shared with in-flight async runs, so dropping the JS object never frees a
  // program that a worker thread is still using.
  std::shared_ptr<const CompiledProgram> program_;
  napi_env env_;
  int64_t external_bytes_ = 0;  // reported to V8 while program_ is held
};

// The ops the native executor runs: ['conv', 'dense', ...].
Napi::Value NativeProgramOps(const Napi::CallbackInfo& info);

}  // namespace edgeopt::addon
