// The host side of the NPU plugin ABI (edgeopt_npu.h): loads a plugin with
// dlopen, checks its ABI version and table size, and wraps compiled graphs so
// they run any number of rows (chunked to the graph's static batch) from any
// thread. Plain C++ (no Node): errors are edgeopt::Error with code E_PLUGIN.
//
// A plugin is vendor code, so the host contains what it can detect:
// - every call runs on the plugin's own thread under a timeout (plugin_thread.h);
//   a call that never returns marks the plugin broken instead of holding the caller;
// - a C++ exception thrown by any plugin function becomes an E_PLUGIN error;
// - every value a plugin returns is checked before use: its function table and
//   strings (copied, bounded), capabilities (read into a padded buffer), support
//   answers, graph descriptions (batch, widths: ranges, and the widths the host
//   compiled), output sizes, blob sizes;
// - host memory a plugin may still read after a timeout (nodes, inputs, outputs)
//   is owned by the call, never the caller's.
// What it cannot contain (a crash, exit(), memory corruption in-process) is in
// docs/npu-plugins.md, with the out-of-process host as the answer.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "edgeopt_npu.h"

namespace edgeopt {

class NpuGraph;
class PluginThread;

struct NpuTimeouts {
  std::chrono::milliseconds call{5000};      // execute, supports, describe, release, ...
  std::chrono::milliseconds compile{60000};  // dlopen + entry + init, compile, load_blob
};

// Bounds on what a plugin may report.
constexpr uint32_t kMaxNpuBatch = 65536;
constexpr int32_t kMaxNpuFeatures = 1 << 24;
constexpr size_t kMaxNpuBlobBytes = size_t{1} << 30;

class NpuPlugin : public std::enable_shared_from_this<NpuPlugin> {
 public:
  using Options = std::vector<std::pair<std::string, std::string>>;
  // Throws E_PLUGIN naming the path: not absolute, a NUL byte, missing, not a
  // regular file, writable by everyone, not a shared library, missing entry
  // point, wrong ABI version, table too small, init failure or timeout.
  static std::shared_ptr<NpuPlugin> open(const std::string& path, const Options& options = {},
                                         NpuTimeouts timeouts = {});
  ~NpuPlugin();
  NpuPlugin(const NpuPlugin&) = delete;
  NpuPlugin& operator=(const NpuPlugin&) = delete;

  // Copied from the plugin's table at load.
  const std::string& name() const { return name_; }
  const std::string& vendor() const { return vendor_; }
  const std::string& version() const { return version_; }
  uint32_t abi_version() const { return table_.abi_version; }
  const edgeopt_npu_capabilities& capabilities() const { return caps_; }
  const std::string& path() const { return path_; }
  // Empty while the plugin is usable; else why it is not (a call timed out).
  std::string broken() const;

  // Empty when the node is supported, else the plugin's reason.
  std::string unsupported_reason(const edgeopt_npu_node& node);
  std::shared_ptr<NpuGraph> compile(const std::vector<edgeopt_npu_node>& nodes, uint32_t batch);
  std::shared_ptr<NpuGraph> load_blob(const uint8_t* data, size_t size);

 private:
  friend class NpuGraph;
  struct Result {
    int rc = 0;
    std::string message;  // last_error() when rc != 0
  };
  NpuPlugin() = default;
  // Runs fn on the plugin thread (fn must own what it touches); reads last_error() there on failure.
  Result call(const char* what, std::chrono::milliseconds timeout, std::function<int()> fn) const;
  // "<what> failed: <last_error> (code N)" as an E_PLUGIN error.
  [[noreturn]] void raise(const std::string& what, const Result& r) const;
  // "NPU plugin '<name>'", for messages.
  std::string who() const;
  std::shared_ptr<NpuGraph> adopt(edgeopt_npu_graph* g, int32_t want_in, int32_t want_out);
  void load(const Options& options);

  std::unique_ptr<PluginThread> thread_;
  NpuTimeouts timeouts_;
  void* handle_ = nullptr;
  edgeopt_npu_plugin table_{};  // the host's copy: a plugin cannot change it later
  edgeopt_npu_capabilities caps_{};
  std::string path_, name_, vendor_, version_;
  bool initialized_ = false;
};

// A compiled subgraph. Keeps its plugin (and so the library) alive.
class NpuGraph {
 public:
  // Checks the plugin's description; want_in/want_out > 0: the widths the host compiled.
  NpuGraph(std::shared_ptr<NpuPlugin> plugin, edgeopt_npu_graph* graph, int32_t want_in, int32_t want_out);
  ~NpuGraph();
  NpuGraph(const NpuGraph&) = delete;
  NpuGraph& operator=(const NpuGraph&) = delete;

  int input_features() const { return in_; }
  int output_features() const { return out_; }
  uint32_t batch() const { return batch_; }

  // y [m x out] = graph(x [m x in]); throws E_PLUGIN on any plugin failure,
  // including an output of the wrong size or a call past the timeout.
  void run(const float* x, int m, float* y) const;
  // The plugin's precompiled artifact; empty when the plugin cannot export.
  std::vector<uint8_t> export_blob() const;

 private:
  void run_chunk(const float* x, uint32_t rows, float* y) const;
  std::shared_ptr<NpuPlugin> plugin_;
  edgeopt_npu_graph* graph_;
  uint32_t batch_ = 1;
  int32_t in_ = 0, out_ = 0;
};

}  // namespace edgeopt
