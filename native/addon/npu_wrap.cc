#include "npu_wrap.h"

#include <deque>
#include <string>
#include <vector>

#include "args.h"
#include "program_spec.h"
#include "run_worker.h"

namespace edgeopt::addon {
namespace {

// Marks JS objects made by NpuPluginWrap, so From() never unwraps a foreign object.
constexpr napi_type_tag kPluginTag = {0x6564676f70746e70ULL, 0x75706c7567696e31ULL};

// A Program (parsed once by program_spec.cc) as ABI nodes: a chain of dense,
// qdense (one row per image, per-channel or per-tensor scales, float epilogue),
// relu and whole-row softmax ops. Pointers alias the JS typed arrays: valid
// during this call only. Throws E_UNSUPPORTED_OP naming what ABI v1 lacks.
std::vector<edgeopt_npu_node> to_nodes(Napi::Env env, const ProgramSpec& p, std::deque<std::string>& names) {
  std::vector<edgeopt_npu_node> nodes;
  int prev = p.inputs.size() == 1 ? p.inputs[0].tensor : -1;
  auto root = [&](int t) { return p.tensors[t].alias >= 0 ? p.tensors[t].alias : t; };
  auto unsupported = [&](const OpSpec& o, const std::string& why) -> Napi::Error {
    return error(env, "E_UNSUPPORTED_OP", "node '" + o.node + "' (" + op_name(o.op) + "): " + why);
  };
  for (const OpSpec& o : p.ops) {
    edgeopt_npu_node n{};
    n.struct_size = sizeof n;
    names.push_back(o.node);
    n.name = names.back().c_str();
    int x = -1, y = -1;
    if (const auto* d = std::get_if<DenseSpec>(&o.op)) {
      if (d->m != 1) throw unsupported(o, "NPU ABI v1 layers take one row per image");
      if (d->act.kind != ActKind::None && d->act.kind != ActKind::Relu)
        throw unsupported(o, "the NPU ABI has no such activation");
      n.op = EDGEOPT_NPU_OP_DENSE;
      n.in_features = d->k, n.out_features = d->n;
      n.weight_dtype = EDGEOPT_NPU_FLOAT32;
      n.weight = p.tensors[d->weight].data;
      n.bias = d->bias >= 0 ? static_cast<const float*>(p.tensors[d->bias].data) : nullptr;
      n.fused_relu = d->act.kind == ActKind::Relu;
      n.activation_quant = EDGEOPT_NPU_ACT_FLOAT;
      x = d->x, y = d->y;
    } else if (const auto* q = std::get_if<QDenseSpec>(&o.op)) {
      if (q->m != 1) throw unsupported(o, "NPU ABI v1 layers take one row per image");
      if (q->group_size) throw unsupported(o, "group-wise scales are not in NPU ABI v1");
      if (q->has_output)
        throw unsupported(
            o, "integer requantization to an int8 output is not in NPU ABI v1 (its layers end in the float epilogue)");
      n.op = EDGEOPT_NPU_OP_QDENSE;
      n.in_features = q->k, n.out_features = q->n;
      n.weight_dtype = EDGEOPT_NPU_INT8;
      n.weight = p.tensors[q->weight].data;
      n.weight_scale = static_cast<const float*>(p.tensors[q->scales].data);
      n.weight_scale_count = static_cast<uint32_t>(p.tensors[q->scales].elements);
      if (q->zero_point) throw unsupported(o, "asymmetric weights are not in NPU ABI v1");
      n.bias = q->bias >= 0 ? static_cast<const float*>(p.tensors[q->bias].data) : nullptr;
      n.fused_relu = q->act.kind == ActKind::Relu;
      n.activation_quant = q->has_input ? EDGEOPT_NPU_ACT_STATIC : EDGEOPT_NPU_ACT_DYNAMIC;
      n.input_scale = q->input.scale;
      n.input_zero_point = q->input.zero_point;
      x = q->x, y = q->y;
    } else if (const auto* u = std::get_if<UnarySpec>(&o.op)) {
      if (u->act.kind != ActKind::Relu) throw unsupported(o, "the NPU ABI has no such activation");
      n.op = EDGEOPT_NPU_OP_RELU;
      n.in_features = n.out_features = static_cast<int32_t>(p.tensors[u->x].elements);
      x = u->x, y = u->y;
    } else if (const auto* a = std::get_if<AxisSpec>(&o.op)) {
      if (!a->softmax || a->outer != 1 || a->inner != 1)
        throw unsupported(o, "NPU ABI v1 has a whole-row softmax only");
      n.op = EDGEOPT_NPU_OP_SOFTMAX;
      n.in_features = n.out_features = static_cast<int32_t>(a->axis);
      x = a->x, y = a->y;
    } else {
      throw unsupported(o, "NPU ABI v1 has no such op");
    }
    if (prev >= 0 && root(x) != root(prev))
      throw unsupported(o, "NPU graphs are chains: it does not read the previous op's output");
    prev = y;
    nodes.push_back(n);
  }
  if (nodes.empty()) throw error(env, "E_ARGUMENT", "an NPU graph needs at least one op");
  return nodes;
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

}  // namespace

Napi::Function NpuPluginWrap::DefineClass(Napi::Env env) {
  return ObjectWrap::DefineClass(
      env, "NpuPlugin",
      {InstanceMethod("info", &NpuPluginWrap::Info), InstanceMethod("supports", &NpuPluginWrap::Supports)});
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

// supports(program): null when the plugin runs its one op, else the reason (ABI v1's or the plugin's).
Napi::Value NpuPluginWrap::Supports(const Napi::CallbackInfo& info) {
  const ProgramSpec spec = parse_program(info[0]);
  if (spec.ops.size() != 1) throw error(info.Env(), "E_ARGUMENT", "supports expects a one-op program");
  std::deque<std::string> names;
  std::vector<edgeopt_npu_node> nodes;
  try {
    nodes = to_nodes(info.Env(), spec, names);
  } catch (const Napi::Error& e) {
    return Napi::String::New(info.Env(), e.Message().substr(e.Message().find("): ") + 3));
  }
  const std::string why = guarded(info.Env(), [&] { return plugin_->unsupported_reason(nodes[0]); });
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
  const uint32_t batch = info[2].IsUndefined() ? 1 : static_cast<uint32_t>(dim(info[2], "batch"));
  const ProgramSpec spec = parse_program(info[1]);
  std::deque<std::string> names;
  const std::vector<edgeopt_npu_node> nodes = to_nodes(env, spec, names);
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
