#pragma once
#include <napi.h>

#include <memory>

#include "../npu/loader.h"

namespace edgeopt::addon {

// JS class `NpuPlugin`: new NpuPlugin(path, options?, { timeoutMs, compileTimeoutMs }?)
// loads a plugin (E_PLUGIN on any failure); supports(oneOpProgram) -> null or the
// reason it is not; info() includes `broken` once a call timed out.
class NpuPluginWrap : public Napi::ObjectWrap<NpuPluginWrap> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit NpuPluginWrap(const Napi::CallbackInfo& info);
  // The plugin held by a JS NpuPlugin object; throws E_ARGUMENT for anything else.
  static std::shared_ptr<NpuPlugin> From(const Napi::Value& v);

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Supports(const Napi::CallbackInfo& info);
  std::shared_ptr<NpuPlugin> plugin_;
};

// JS class `NpuGraph`: new NpuGraph(plugin, program | blob: Uint8Array, batch?)
// compiles a Program's chain of ops (or loads a precompiled blob); run(x, rows) on
// libuv's pool, runSync(x, rows), exportBlob(); release() gives the graph back
// to the plugin now (in-flight runs finish first) instead of at some later GC.
class NpuGraphWrap : public Napi::ObjectWrap<NpuGraphWrap> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit NpuGraphWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value RunSync(const Napi::CallbackInfo& info);
  Napi::Value ExportBlob(const Napi::CallbackInfo& info);
  Napi::Value Describe(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  // The graph, or E_STATE once released.
  const std::shared_ptr<const NpuGraph>& graph(Napi::Env env) const;
  std::shared_ptr<const NpuGraph> graph_;
};

// { NpuPlugin, NpuGraph } for the addon's exports.
Napi::Object NpuExports(Napi::Env env);

}  // namespace edgeopt::addon
