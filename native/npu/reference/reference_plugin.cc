// The reference NPU plugin: a simulated int8 accelerator with the limits real
// NPUs have (int8 only, static per-tensor activation scales from calibration,
// per-channel or per-tensor weights, at most 2048 channels, QDense and Relu
// only, graphs compiled for a fixed batch, one command queue), its own plain
// kernels, and fault injection so every host fallback path can be tested
// without hardware.
//
// EDGEOPT_REFNPU_FAULT selects one fault:
//   load          init() fails               compile      compile() fails
//   execute:N     the Nth execute() of each compiled graph fails (N >= 1)
//   wrong-size    execute() reports one row fewer than asked
//   abi-version   the table claims ABI version 999
//   table-size    the table claims to be 8 bytes long
// and the misbehaviours a host must survive:
//   throw:<fn>    <fn> throws a C++ exception (init, compile, execute, describe, supports, export_blob, load_blob)
//   hang:<fn>     <fn> never returns (init, compile, execute, supports)
//   batch:<N>     describe() reports a static batch of N (e.g. 2147483648, 4294967295)
//   widths        describe() reports an output one wider than the graph's
//   export-size   export_blob() asks for 2^62 bytes
//   supports-rc   supports() returns 7
//   caps-overflow get_capabilities() writes 512 bytes past the host's struct
//   long-error    execute() fails with a 1 MB last_error() message
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../../core/static_quant.h"
#include "../edgeopt_npu.h"
#include "ref_graph.h"

namespace {

using edgeopt::npu_ref::Graph;
using edgeopt::npu_ref::Layer;

constexpr int kMaxChannels = 2048;
constexpr uint32_t kMaxBatch = 64;

thread_local std::string g_last_error;

int fail(int code, const std::string& message) {
  g_last_error = message;
  return code;
}

std::string fault() {
  const char* f = std::getenv("EDGEOPT_REFNPU_FAULT");
  return f ? f : "";
}

// The injected misbehaviour of plugin function `fn`, if the fault names it: throw or never return.
void misbehave(const char* fn) {
  const std::string f = fault();
  if (f == std::string("throw:") + fn) throw std::runtime_error(std::string("injected exception in ") + fn);
  if (f == std::string("hang:") + fn)
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

// The call number at which execute() fails ("execute:N"), 0 for none.
long execute_fault_at() {
  const std::string f = fault();
  if (f.rfind("execute:", 0) != 0) return 0;
  return std::strtol(f.c_str() + 8, nullptr, 10);
}

int ref_init(const edgeopt_npu_option*, size_t) {
  misbehave("init");
  if (fault() == "load")
    return fail(EDGEOPT_NPU_DEVICE_ERROR, "injected fault: device failed to open (EDGEOPT_REFNPU_FAULT=load)");
  return EDGEOPT_NPU_OK;
}

void ref_capabilities(edgeopt_npu_capabilities* c) {
  edgeopt_npu_capabilities caps{};
  caps.struct_size = sizeof caps;
  caps.dtypes = EDGEOPT_NPU_INT8;
  caps.weight_granularity = EDGEOPT_NPU_PER_CHANNEL | EDGEOPT_NPU_PER_TENSOR;
  caps.activation_quant = 1u << EDGEOPT_NPU_ACT_STATIC;
  caps.max_dims = 2;
  caps.max_channels = kMaxChannels;
  caps.static_shapes_only = 1;
  caps.partial_graphs = 1;
  caps.thread_safe = 0;
  // Copy no more than the host's struct holds (an older host has a smaller one).
  const size_t host_size = c->struct_size;
  std::memcpy(c, &caps, std::min<size_t>(host_size, sizeof caps));
  c->struct_size = static_cast<uint32_t>(std::min<size_t>(host_size, sizeof caps));
  if (fault() == "caps-overflow") std::memset(reinterpret_cast<char*>(c) + host_size, 0xff, 512);
}

// Empty when supported, else why not.
std::string why_unsupported(const edgeopt_npu_node& n) {
  const std::string op = n.op == EDGEOPT_NPU_OP_DENSE     ? "Dense"
                         : n.op == EDGEOPT_NPU_OP_SOFTMAX ? "Softmax"
                                                          : "this op";
  if (n.op != EDGEOPT_NPU_OP_QDENSE && n.op != EDGEOPT_NPU_OP_RELU)
    return op + " is not supported: this NPU runs int8 QDense and Relu only";
  if (n.in_features > kMaxChannels || n.out_features > kMaxChannels)
    return std::to_string(n.in_features) + "x" + std::to_string(n.out_features) + " exceeds the NPU limit of " +
           std::to_string(kMaxChannels) + " channels";
  if (n.op == EDGEOPT_NPU_OP_RELU) return "";
  if (n.weight_dtype != EDGEOPT_NPU_INT8 || !n.weight || !n.weight_scale) return "weights must be int8 with scales";
  if (n.activation_quant != EDGEOPT_NPU_ACT_STATIC)
    return "dynamically quantized activations: this NPU needs static per-tensor scales from calibration";
  if (!(n.input_scale > 0) || n.input_zero_point < -128 || n.input_zero_point > 127)
    return "invalid static activation scale or zero point";
  if (n.weight_scale_count != 1 && n.weight_scale_count != static_cast<uint32_t>(n.out_features))
    return "weight scales must be per channel or per tensor";
  return "";
}

int ref_supports(const edgeopt_npu_node* node, char* reason, size_t reason_size) {
  misbehave("supports");
  if (fault() == "supports-rc") return 7;
  const std::string why = why_unsupported(*node);
  if (reason && reason_size) std::snprintf(reason, reason_size, "%s", why.c_str());
  return why.empty() ? 1 : 0;
}

Layer copy_layer(const edgeopt_npu_node& n) {
  Layer l;
  l.relu_only = n.op == EDGEOPT_NPU_OP_RELU;
  l.k = n.in_features;
  l.n = n.out_features;
  if (l.relu_only) return l;
  const auto* w = static_cast<const int8_t*>(n.weight);
  l.weight.assign(w, w + static_cast<size_t>(l.n) * l.k);
  for (int j = 0; j < l.n; ++j) l.weight_scale.push_back(n.weight_scale[n.weight_scale_count == 1 ? 0 : j]);
  if (n.bias) l.bias.assign(n.bias, n.bias + l.n);
  l.relu = n.fused_relu != 0;
  l.input = {n.input_scale, n.input_zero_point};
  return l;
}

int finish(Graph* g, edgeopt_npu_graph** out) {
  g->fail_execute_at = execute_fault_at();
  g->wrong_size = fault() == "wrong-size";
  *out = reinterpret_cast<edgeopt_npu_graph*>(g);
  return EDGEOPT_NPU_OK;
}

int ref_compile(const edgeopt_npu_subgraph* sg, edgeopt_npu_graph** out) {
  misbehave("compile");
  if (fault() == "compile")
    return fail(EDGEOPT_NPU_DEVICE_ERROR, "injected fault: compilation failed (EDGEOPT_REFNPU_FAULT=compile)");
  if (!sg || !out || sg->node_count == 0) return fail(EDGEOPT_NPU_INVALID_ARGUMENT, "empty subgraph");
  auto* g = new (std::nothrow) Graph();
  if (!g) return fail(EDGEOPT_NPU_OUT_OF_MEMORY, "out of memory");
  g->batch = sg->batch == 0 || sg->batch > kMaxBatch ? kMaxBatch : sg->batch;
  for (uint32_t i = 0; i < sg->node_count; ++i) {
    const std::string why = why_unsupported(sg->nodes[i]);
    if (!why.empty()) {
      delete g;
      return fail(EDGEOPT_NPU_UNSUPPORTED, std::string("node '") + sg->nodes[i].name + "': " + why);
    }
    g->layers.push_back(copy_layer(sg->nodes[i]));
  }
  if (!edgeopt::npu_ref::chain_ok(*g)) {
    delete g;
    return fail(EDGEOPT_NPU_INVALID_ARGUMENT, "node widths do not chain");
  }
  return finish(g, out);
}

int ref_load_blob(const void* blob, size_t size, edgeopt_npu_graph** out) {
  misbehave("load_blob");
  auto* g = new (std::nothrow) Graph();
  if (!g) return fail(EDGEOPT_NPU_OUT_OF_MEMORY, "out of memory");
  std::string err;
  if (!edgeopt::npu_ref::parse_blob(static_cast<const uint8_t*>(blob), size, g, &err)) {
    delete g;
    return fail(EDGEOPT_NPU_INVALID_ARGUMENT, "bad blob: " + err);
  }
  return finish(g, out);
}

int ref_export_blob(const edgeopt_npu_graph* graph, void* buffer, size_t capacity, size_t* size) {
  misbehave("export_blob");
  const std::vector<uint8_t> bytes = edgeopt::npu_ref::write_blob(*reinterpret_cast<const Graph*>(graph));
  *size = fault() == "export-size" ? size_t{1} << 62 : bytes.size();
  if (buffer && capacity >= bytes.size()) std::memcpy(buffer, bytes.data(), bytes.size());
  return EDGEOPT_NPU_OK;
}

int ref_describe(const edgeopt_npu_graph* graph, uint32_t* batch, int32_t* in, int32_t* out) {
  misbehave("describe");
  const auto* g = reinterpret_cast<const Graph*>(graph);
  const std::string f = fault();
  *batch = f.rfind("batch:", 0) == 0 ? static_cast<uint32_t>(std::strtoull(f.c_str() + 6, nullptr, 10)) : g->batch;
  *in = g->layers.front().k;
  *out = g->layers.back().n + (f == "widths" ? 1 : 0);
  return EDGEOPT_NPU_OK;
}

int ref_execute(edgeopt_npu_graph* graph, const edgeopt_npu_tensor* in, edgeopt_npu_tensor* out) {
  misbehave("execute");
  if (fault() == "long-error") return fail(EDGEOPT_NPU_DEVICE_ERROR, std::string(1 << 20, 'e'));
  auto* g = reinterpret_cast<Graph*>(graph);
  const long call = ++g->executions;  // the host serializes calls (thread_safe = 0)
  if (g->fail_execute_at && call == g->fail_execute_at)
    return fail(EDGEOPT_NPU_DEVICE_ERROR,
                "injected fault: execute call " + std::to_string(call) + " failed (EDGEOPT_REFNPU_FAULT=execute:N)");
  const int k = g->layers.front().k, n = g->layers.back().n;
  if (in->dtype != EDGEOPT_NPU_FLOAT32 || in->rows == 0 || in->rows > g->batch || static_cast<int>(in->features) != k ||
      in->size_bytes != sizeof(float) * in->rows * k)
    return fail(EDGEOPT_NPU_INVALID_ARGUMENT,
                "input must be float32 [1.." + std::to_string(g->batch) + ", " + std::to_string(k) + "]");
  const size_t need = sizeof(float) * in->rows * n;
  if (out->size_bytes < need) return fail(EDGEOPT_NPU_INVALID_ARGUMENT, "output buffer too small");
  edgeopt::npu_ref::run(*g, static_cast<const float*>(in->data), static_cast<int>(in->rows),
                        static_cast<float*>(out->data));
  out->rows = in->rows;
  out->features = static_cast<uint32_t>(n);
  out->size_bytes = g->wrong_size ? need - sizeof(float) * n : need;
  return EDGEOPT_NPU_OK;
}

void ref_release(edgeopt_npu_graph* graph) { delete reinterpret_cast<Graph*>(graph); }

const char* ref_last_error() { return g_last_error.c_str(); }

void ref_shutdown() {}

edgeopt_npu_plugin make_table() {
  edgeopt_npu_plugin t{};
  t.abi_version = EDGEOPT_NPU_ABI_VERSION;
  t.struct_size = sizeof t;
  t.name = "edgeopt-reference-npu";
  t.vendor = "edgeopt";
  t.version = "1.0.0";
  t.init = ref_init;
  t.get_capabilities = ref_capabilities;
  t.supports = ref_supports;
  t.compile = ref_compile;
  t.load_blob = ref_load_blob;
  t.export_blob = ref_export_blob;
  t.describe = ref_describe;
  t.execute = ref_execute;
  t.release = ref_release;
  t.last_error = ref_last_error;
  t.shutdown = ref_shutdown;
  return t;
}

}  // namespace

extern "C" EDGEOPT_NPU_EXPORT const edgeopt_npu_plugin* edgeopt_npu_plugin_v1(uint32_t /*host_abi_version*/) {
  static const edgeopt_npu_plugin table = make_table();
  static edgeopt_npu_plugin faulty = table;
  const std::string f = fault();
  if (f == "abi-version" || f == "table-size") {
    faulty = table;
    if (f == "abi-version")
      faulty.abi_version = 999;
    else
      faulty.struct_size = 8;
    return &faulty;
  }
  return &table;
}
