// The NPU plugin host (npu/loader.h) against the reference plugin's injected
// misbehaviours, run under ASan/UBSan by `npm run test:native`: whatever a
// plugin reports (a batch of 2^32-1, widths it was not compiled for, a 2^62-byte
// blob, a 1 MB error message, capabilities written past the struct, a C++
// exception) ends in an E_PLUGIN error without one invalid memory access, and
// a well-behaved plugin still computes. Hangs are covered by the JS tests.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../npu/loader.h"
#include "check.h"

using namespace edgeopt;

using edgeopt::test::failures;

namespace {

const int8_t kWeight[12] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12};
const float kScales[3] = {0.1f, 0.2f, 0.3f};

std::vector<edgeopt_npu_node> one_layer() {
  edgeopt_npu_node n{};
  n.struct_size = sizeof n;
  n.op = EDGEOPT_NPU_OP_QDENSE;
  n.name = "fc";
  n.in_features = 4;
  n.out_features = 3;
  n.weight_dtype = EDGEOPT_NPU_INT8;
  n.weight = kWeight;
  n.weight_scale = kScales;
  n.weight_scale_count = 3;
  n.activation_quant = EDGEOPT_NPU_ACT_STATIC;
  n.input_scale = 0.02f;
  n.input_zero_point = -5;
  return {n};
}

// Runs fn with EDGEOPT_REFNPU_FAULT=fault; checks that it throws E_PLUGIN whose message contains `want`.
template <typename F>
void expect_plugin_error(const char* fault, const std::string& want, F&& fn) {
  setenv("EDGEOPT_REFNPU_FAULT", fault, 1);
  try {
    fn();
    CHECK(false, "%s: no error", fault);
  } catch (const Error& e) {
    CHECK(e.code() == "E_PLUGIN" && std::string(e.what()).find(want) != std::string::npos, "%s: %s %s", fault,
          e.code().c_str(), e.what());
    CHECK(std::string(e.what()).size() < 1400, "%s: message of %zu bytes", fault, std::string(e.what()).size());
  }
  unsetenv("EDGEOPT_REFNPU_FAULT");
}

}  // namespace

int main() {
  const std::string path = EDGEOPT_NPU_REF_PATH;
  std::shared_ptr<NpuPlugin> plugin = NpuPlugin::open(path);
  std::shared_ptr<NpuGraph> graph = plugin->compile(one_layer(), 4);
  std::vector<float> x(4 * 9, 0.25f), y(3 * 9, -1.0f);
  graph->run(x.data(), 9, y.data());
  CHECK(y[0] != -1.0f && y[26] != -1.0f, "a well-behaved plugin computes every row");

  for (const char* fault : {"batch:2147483648", "batch:4294967295", "batch:0"})
    expect_plugin_error(fault, "describe reports batch", [&] { plugin->compile(one_layer(), 4); });
  expect_plugin_error("widths", "for a graph compiled as 4 -> 3", [&] { plugin->compile(one_layer(), 4); });
  expect_plugin_error("export-size", "export_blob asks for", [&] { graph->export_blob(); });
  expect_plugin_error("long-error", "execute failed", [&] { graph->run(x.data(), 9, y.data()); });
  expect_plugin_error("wrong-size", "output bytes",
                      [&] { plugin->compile(one_layer(), 4)->run(x.data(), 9, y.data()); });
  expect_plugin_error("throw:execute", "execute threw a C++ exception", [&] { graph->run(x.data(), 9, y.data()); });
  expect_plugin_error("throw:compile", "compile threw a C++ exception", [&] { plugin->compile(one_layer(), 4); });
  expect_plugin_error("throw:init", "init threw a C++ exception", [&] { NpuPlugin::open(path); });
  expect_plugin_error("table-size", "8-byte function table", [&] { NpuPlugin::open(path); });
  expect_plugin_error("relative", "must be absolute", [&] { NpuPlugin::open("edgeopt_npu_ref.so"); });
  expect_plugin_error("nul", "NUL byte", [&] { NpuPlugin::open(path + std::string(1, '\0') + "x"); });
  setenv("EDGEOPT_REFNPU_FAULT", "supports-rc", 1);
  CHECK(plugin->unsupported_reason(one_layer()[0]).find("returned 7") != std::string::npos, "supports() = 7");
  setenv("EDGEOPT_REFNPU_FAULT", "caps-overflow", 1);
  CHECK(NpuPlugin::open(path)->capabilities().max_channels == 2048, "capabilities written past the struct");
  unsetenv("EDGEOPT_REFNPU_FAULT");

  const std::vector<uint8_t> blob = graph->export_blob();
  std::vector<float> y2(y.size());
  plugin->load_blob(blob.data(), blob.size())->run(x.data(), 9, y2.data());
  graph->run(x.data(), 9, y.data());
  CHECK(y == y2, "the plugin still works after every fault");
  CHECK(plugin->broken().empty(), "no fault above marks the plugin broken");
  if (failures) std::fprintf(stderr, "%d npu loader checks failed\n", failures);
  return failures ? 1 : 0;
}
