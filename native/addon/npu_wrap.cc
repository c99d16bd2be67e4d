#include "npu_wrap.h"

#include <deque>
#include <string>
#include <vector>

#include "args.h"
#include "run_worker.h"

namespace edgeopt::addon {
namespace {

// Marks JS objects made by NpuPluginWrap, so From() never unwraps a foreign object.
constexpr napi_type_tag kPluginTag = {0x6564676f70746e70ULL, 0x75706c7567696e31ULL};

uint32_t op_code(Napi::Env env, const std::string& op) {
  if (op == "dense") return EDGEOPT_NPU_OP_DENSE;
  if (op == "qdense") return EDGEOPT_NPU_OP_QDENSE;
  if (op == "relu") return EDGEOPT_NPU_OP_RELU;
  if (op == "softmax") return EDGEOPT_NPU_OP_SOFTMAX;
  throw error(env, "E_UNSUPPORTED_OP", "NPU layers cannot be op '" + op + "'");
}

// A layer spec (as for Plan, plus name/activationQuant/inputScale/inputZeroPoint)
// as an ABI node. Pointers alias the JS typed arrays: valid during this call only.
edgeopt_npu_node to_node(const Napi::Object& l, std::deque<std::string>& names) {
  Napi::Env env = l.Env();
  edgeopt_npu_node n{};
  n.struct_size = sizeof n;
  n.op = op_code(env, l.Get("op").ToString());
  names.push_back(l.Get("name").IsString() ? l.Get("name").ToString().Utf8Value() : std::string("?"));
  n.name = names.back().c_str();
  n.in_features = dim(l.Get("k"), "layer.k");
  n.out_features = dim(l.Get("n"), "layer.n");
  if (n.op == EDGEOPT_NPU_OP_RELU || n.op == EDGEOPT_NPU_OP_SOFTMAX) return n;
  const long long nk = product(env, n.out_features, n.in_features, "layer weight");
  if (n.op == EDGEOPT_NPU_OP_DENSE) {
    n.weight_dtype = EDGEOPT_NPU_FLOAT32;
    n.weight = typed_view<float>(l.Get("weight"), "layer.weight", nk);
    n.activation_quant = EDGEOPT_NPU_ACT_FLOAT;
  } else {
    n.weight_dtype = EDGEOPT_NPU_INT8;
    n.weight = typed_view<int8_t>(l.Get("weight"), "layer.weight", nk);
    size_t count = 0;
    n.weight_scale = typed_view<float>(l.Get("scales"), "layer.scales", -1, &count);
    if (count != 1 && count != static_cast<size_t>(n.out_features))
      throw error(env, "E_SHAPE", "layer.scales must have 1 or n elements");
    n.weight_scale_count = static_cast<uint32_t>(count);
    const bool is_static =
        l.Get("activationQuant").IsString() && l.Get("activationQuant").ToString().Utf8Value() == "static";
    n.activation_quant = is_static ? EDGEOPT_NPU_ACT_STATIC : EDGEOPT_NPU_ACT_DYNAMIC;
    if (is_static) {
      n.input_scale = l.Get("inputScale").ToNumber().FloatValue();
      n.input_zero_point = l.Get("inputZeroPoint").ToNumber().Int32Value();
    }
  }
  const Napi::Value bias = l.Get("bias");
  if (!bias.IsUndefined() && !bias.IsNull()) n.bias = typed_view<float>(bias, "layer.bias", n.out_features);
  n.fused_relu = l.Get("relu").ToBoolean();
  return n;
}

Napi::Object capabilities(Napi::Env env, const edgeopt_npu_capabilities& c) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array dtypes = Napi::Array::New(env);
  const std::pair<uint32_t, const char*> names[] = {{EDGEOPT_NPU_FLOAT32, "float32"},
                                                    {EDGEOPT_NPU_INT8, "int8"},
                                                    {EDGEOPT_NPU_UINT8, "uint8"},
                                                    {EDGEOPT_NPU_INT16, "int16"},
                                                    {EDGEOPT_NPU_FLOAT16, "float16"}};
  for (const auto& [bit, name] : names)
    if (c.dtypes & bit) dtypes.Set(dtypes.Length(), name);
  o.Set("dtypes", dtypes);
  o.Set("perChannelWeights", (c.weight_granularity & EDGEOPT_NPU_PER_CHANNEL) != 0);
  o.Set("perTensorWeights", (c.weight_granularity & EDGEOPT_NPU_PER_TENSOR) != 0);
  o.Set("staticActivations", (c.activation_quant & (1u << EDGEOPT_NPU_ACT_STATIC)) != 0);
  o.Set("dynamicActivations", (c.activation_quant & (1u << EDGEOPT_NPU_ACT_DYNAMIC)) != 0);
  o.Set("maxDims", c.max_dims);
  o.Set("maxChannels", c.max_channels);
  o.Set("staticShapesOnly", c.static_shapes_only != 0);
  o.Set("partialGraphs", c.partial_graphs != 0);
  o.Set("threadSafe", c.thread_safe != 0);
  return o;
}

int rows_arg(const Napi::CallbackInfo& info, const NpuGraph& g, const float** x) {
  const int m = dim(info[1], "rows");
  *x = typed_view<float>(info[0], "input", product(info.Env(), m, g.input_features(), "input"));
  return m;
}

}  // namespace

Napi::Function NpuPluginWrap::DefineClass(Napi::Env env) {
  return ObjectWrap::DefineClass(
      env, "NpuPlugin",
      {InstanceMethod("info", &NpuPluginWrap::Info), InstanceMethod("supports", &NpuPluginWrap::Supports)});
}

// A timeout in ms from an optional field: 1..2^31-1, else `fallback` when absent.
std::chrono::milliseconds timeout_field(const Napi::Value& v, const char* key, std::chrono::milliseconds fallback) {
  if (!v.IsObject()) return fallback;
  const Napi::Value t = v.As<Napi::Object>().Get(key);
  if (t.IsUndefined()) return fallback;
  const double d = t.IsNumber() ? t.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 1 && d <= 2147483647.0))
    throw error(v.Env(), "E_ARGUMENT", std::string(key) + " must be a number of milliseconds in 1..2^31-1");
  return std::chrono::milliseconds(static_cast<int64_t>(d));
}

NpuPluginWrap::NpuPluginWrap(const Napi::CallbackInfo& info) : ObjectWrap(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw error(env, "E_ARGUMENT", "NpuPlugin expects a path string");
  NpuPlugin::Options options;
  if (info[1].IsObject()) {
    const Napi::Object o = info[1].As<Napi::Object>();
    const Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i)
      options.emplace_back(keys.Get(i).ToString(), o.Get(keys.Get(i)).ToString());
  }
  NpuTimeouts timeouts;
  timeouts.call = timeout_field(info[2], "timeoutMs", timeouts.call);
  timeouts.compile = timeout_field(info[2], "compileTimeoutMs", timeouts.compile);
  // Utf8Value keeps an embedded NUL, which NpuPlugin::open refuses (c_str() would cut the path there).
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  plugin_ = guarded(env, [&] { return NpuPlugin::open(path, options, timeouts); });
  info.This().As<Napi::Object>().TypeTag(&kPluginTag);
}

std::shared_ptr<NpuPlugin> NpuPluginWrap::From(const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kPluginTag))
    throw error(v.Env(), "E_ARGUMENT", "expected an NpuPlugin object");
  return Unwrap(v.As<Napi::Object>())->plugin_;
}

// { name, vendor, version, abiVersion, path, capabilities, broken: null | reason }
Napi::Value NpuPluginWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", plugin_->name());
  o.Set("vendor", plugin_->vendor());
  o.Set("version", plugin_->version());
  o.Set("abiVersion", plugin_->abi_version());
  o.Set("path", plugin_->path());
  o.Set("capabilities", capabilities(env, plugin_->capabilities()));
  const std::string broken = plugin_->broken();
  o.Set("broken", broken.empty() ? env.Null() : Napi::String::New(env, broken));
  return o;
}

Napi::Value NpuPluginWrap::Supports(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throw error(info.Env(), "E_ARGUMENT", "supports expects a layer object");
  std::deque<std::string> names;
  const edgeopt_npu_node node = to_node(info[0].As<Napi::Object>(), names);
  const std::string why = guarded(info.Env(), [&] { return plugin_->unsupported_reason(node); });
  return why.empty() ? info.Env().Null() : Napi::String::New(info.Env(), why);
}

Napi::Function NpuGraphWrap::DefineClass(Napi::Env env) {
  return ObjectWrap::DefineClass(
      env, "NpuGraph",
      {InstanceMethod("run", &NpuGraphWrap::Run), InstanceMethod("runSync", &NpuGraphWrap::RunSync),
       InstanceMethod("exportBlob", &NpuGraphWrap::ExportBlob), InstanceMethod("describe", &NpuGraphWrap::Describe),
       InstanceMethod("release", &NpuGraphWrap::Release)});
}

NpuGraphWrap::NpuGraphWrap(const Napi::CallbackInfo& info) : ObjectWrap(info) {
  Napi::Env env = info.Env();
  std::shared_ptr<NpuPlugin> plugin = NpuPluginWrap::From(info[0]);
  if (info[1].IsTypedArray()) {
    size_t size = 0;
    const uint8_t* blob = typed_view<uint8_t>(info[1], "blob", -1, &size);
    graph_ = guarded(env, [&] { return plugin->load_blob(blob, size); });
    return;
  }
  if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() == 0)
    throw error(env, "E_ARGUMENT", "NpuGraph expects a non-empty array of layers or a Uint8Array blob");
  const uint32_t batch = info[2].IsUndefined() ? 1 : static_cast<uint32_t>(dim(info[2], "batch"));
  const Napi::Array layers = info[1].As<Napi::Array>();
  std::deque<std::string> names;
  std::vector<edgeopt_npu_node> nodes;
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    if (!layers.Get(i).IsObject()) throw error(env, "E_ARGUMENT", "layer " + std::to_string(i) + " is not an object");
    nodes.push_back(to_node(layers.Get(i).As<Napi::Object>(), names));
  }
  graph_ = guarded(env, [&] { return plugin->compile(nodes, batch); });
}

const std::shared_ptr<const NpuGraph>& NpuGraphWrap::graph(Napi::Env env) const {
  if (!graph_) throw error(env, "E_STATE", "the NPU graph was released (its model was unloaded)");
  return graph_;
}

Napi::Value NpuGraphWrap::Release(const Napi::CallbackInfo& info) {
  graph_.reset();
  return info.Env().Undefined();
}

Napi::Value NpuGraphWrap::Run(const Napi::CallbackInfo& info) {
  const std::shared_ptr<const NpuGraph>& g = graph(info.Env());
  const float* x;
  const int m = rows_arg(info, *g, &x);
  return RowsWorker<NpuGraph>::Start(info.Env(), g, x, m);
}

Napi::Value NpuGraphWrap::RunSync(const Napi::CallbackInfo& info) {
  const NpuGraph& g = *graph(info.Env());
  const float* x;
  const int m = rows_arg(info, g, &x);
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(m) * g.output_features());
  guarded(info.Env(), [&] { g.run(x, m, out.Data()); });
  return out;
}

Napi::Value NpuGraphWrap::ExportBlob(const Napi::CallbackInfo& info) {
  const NpuGraph& g = *graph(info.Env());
  const std::vector<uint8_t> bytes = guarded(info.Env(), [&] { return g.export_blob(); });
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), bytes.size());
  std::copy(bytes.begin(), bytes.end(), out.Data());
  return out;
}

// { inputFeatures, outputFeatures, batch }
Napi::Value NpuGraphWrap::Describe(const Napi::CallbackInfo& info) {
  const NpuGraph& g = *graph(info.Env());
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("inputFeatures", g.input_features());
  o.Set("outputFeatures", g.output_features());
  o.Set("batch", g.batch());
  return o;
}

Napi::Object NpuExports(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("NpuPlugin", NpuPluginWrap::DefineClass(env));
  o.Set("NpuGraph", NpuGraphWrap::DefineClass(env));
  return o;
}

}  // namespace edgeopt::addon
