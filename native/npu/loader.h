// The host side of the NPU plugin ABI (edgeopt_npu.h): loads a plugin with
// dlopen, checks its ABI version and table size, and wraps compiled graphs so
// they run any number of rows (chunked to the graph's static batch) from any
// thread. Plain C++ (no Node): errors are edgeopt::Error with code E_PLUGIN.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "edgeopt_npu.h"

namespace edgeopt {

class NpuGraph;

class NpuPlugin : public std::enable_shared_from_this<NpuPlugin> {
 public:
  using Options = std::vector<std::pair<std::string, std::string>>;
  // Throws E_PLUGIN naming the path: missing file, not a shared library,
  // missing entry point, wrong ABI version, table too small, init failure.
  static std::shared_ptr<NpuPlugin> open(const std::string& path, const Options& options = {});
  ~NpuPlugin();
  NpuPlugin(const NpuPlugin&) = delete;
  NpuPlugin& operator=(const NpuPlugin&) = delete;

  const edgeopt_npu_plugin& table() const { return *table_; }
  const edgeopt_npu_capabilities& capabilities() const { return caps_; }
  const std::string& path() const { return path_; }

  // Empty when the node is supported, else the plugin's reason.
  std::string unsupported_reason(const edgeopt_npu_node& node) const;
  std::shared_ptr<NpuGraph> compile(const std::vector<edgeopt_npu_node>& nodes, uint32_t batch);
  std::shared_ptr<NpuGraph> load_blob(const uint8_t* data, size_t size);

  // "<what> failed: <last_error> (code N)" as an E_PLUGIN error.
  [[noreturn]] void raise(const std::string& what, int code) const;

 private:
  NpuPlugin() = default;
  std::shared_ptr<NpuGraph> adopt(edgeopt_npu_graph* g);
  void* handle_ = nullptr;
  const edgeopt_npu_plugin* table_ = nullptr;
  edgeopt_npu_capabilities caps_{};
  std::string path_;
  bool initialized_ = false;
};

// A compiled subgraph. Keeps its plugin (and so the library) alive.
class NpuGraph {
 public:
  NpuGraph(std::shared_ptr<NpuPlugin> plugin, edgeopt_npu_graph* graph);
  ~NpuGraph();
  NpuGraph(const NpuGraph&) = delete;
  NpuGraph& operator=(const NpuGraph&) = delete;

  int input_features() const { return in_; }
  int output_features() const { return out_; }
  uint32_t batch() const { return batch_; }

  // y [m x out] = graph(x [m x in]); throws E_PLUGIN on any plugin failure,
  // including an output of the wrong size.
  void run(const float* x, int m, float* y) const;
  // The plugin's precompiled artifact; empty when the plugin cannot export.
  std::vector<uint8_t> export_blob() const;

 private:
  void run_chunk(const float* x, uint32_t rows, float* y) const;
  std::shared_ptr<NpuPlugin> plugin_;
  edgeopt_npu_graph* graph_;
  uint32_t batch_ = 1;
  int32_t in_ = 0, out_ = 0;
  mutable std::mutex serialize_;  // used when the plugin is not thread safe
};

}  // namespace edgeopt
