#include "loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "../core/error.h"

namespace edgeopt {
namespace {

// The version-1 table ends with shutdown: a table must reach at least that far.
constexpr size_t kMinTableSize = offsetof(edgeopt_npu_plugin, shutdown) + sizeof(void (*)(void));

[[noreturn]] void plugin_error(const std::string& message) { throw Error("E_PLUGIN", message); }

}  // namespace

std::shared_ptr<NpuPlugin> NpuPlugin::open(const std::string& path, const Options& options) {
  struct stat st;
  if (path.empty() || ::stat(path.c_str(), &st) != 0)
    plugin_error("NPU plugin '" + path + "' not found: " + (path.empty() ? "empty path" : std::strerror(errno)));
  std::shared_ptr<NpuPlugin> p(new NpuPlugin());
  p->path_ = path;
  p->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p->handle_) plugin_error("NPU plugin '" + path + "' could not be loaded: " + ::dlerror());
  auto entry = reinterpret_cast<edgeopt_npu_entry_fn>(::dlsym(p->handle_, EDGEOPT_NPU_ENTRY_POINT));
  if (!entry)
    plugin_error("NPU plugin '" + path + "' does not export " + EDGEOPT_NPU_ENTRY_POINT +
                 " (is it an edgeopt NPU plugin?)");
  p->table_ = entry(EDGEOPT_NPU_ABI_VERSION);
  if (!p->table_)
    plugin_error("NPU plugin '" + path + "' refused host ABI version " + std::to_string(EDGEOPT_NPU_ABI_VERSION));
  const edgeopt_npu_plugin& t = *p->table_;
  if (t.abi_version != EDGEOPT_NPU_ABI_VERSION)
    plugin_error("NPU plugin '" + path + "' was built for ABI version " + std::to_string(t.abi_version) +
                 "; this edgeopt supports version " + std::to_string(EDGEOPT_NPU_ABI_VERSION));
  if (t.struct_size < kMinTableSize)
    plugin_error("NPU plugin '" + path + "' has a " + std::to_string(t.struct_size) +
                 "-byte function table; ABI version " + std::to_string(EDGEOPT_NPU_ABI_VERSION) + " needs at least " +
                 std::to_string(kMinTableSize));
  if (!t.init || !t.get_capabilities || !t.supports || !t.compile || !t.describe || !t.execute || !t.release ||
      !t.last_error)
    plugin_error("NPU plugin '" + path + "' leaves a required function of its table empty");
  std::vector<edgeopt_npu_option> opts;
  for (const auto& [k, v] : options) opts.push_back({k.c_str(), v.c_str()});
  if (const int rc = t.init(opts.data(), opts.size())) p->raise("init", rc);
  p->initialized_ = true;
  p->caps_.struct_size = sizeof p->caps_;
  t.get_capabilities(&p->caps_);
  return p;
}

NpuPlugin::~NpuPlugin() {
  if (initialized_ && table_->shutdown) table_->shutdown();
  if (handle_) ::dlclose(handle_);
}

void NpuPlugin::raise(const std::string& what, int code) const {
  const char* msg = table_->last_error();
  plugin_error("NPU plugin '" + std::string(table_->name ? table_->name : path_) + "': " + what +
               " failed: " + (msg && *msg ? msg : "no message") + " (code " + std::to_string(code) + ")");
}

std::string NpuPlugin::unsupported_reason(const edgeopt_npu_node& node) const {
  char reason[256] = "";
  if (table_->supports(&node, reason, sizeof reason)) return "";
  reason[sizeof reason - 1] = '\0';
  return *reason ? reason : "not supported by the plugin";
}

std::shared_ptr<NpuGraph> NpuPlugin::adopt(edgeopt_npu_graph* g) {
  if (!g) plugin_error("NPU plugin '" + path_ + "' returned success but no graph");
  return std::make_shared<NpuGraph>(shared_from_this(), g);
}

std::shared_ptr<NpuGraph> NpuPlugin::compile(const std::vector<edgeopt_npu_node>& nodes, uint32_t batch) {
  edgeopt_npu_subgraph sg{sizeof(edgeopt_npu_subgraph), nodes.data(), static_cast<uint32_t>(nodes.size()), batch};
  edgeopt_npu_graph* g = nullptr;
  if (const int rc = table_->compile(&sg, &g)) raise("compile", rc);
  return adopt(g);
}

std::shared_ptr<NpuGraph> NpuPlugin::load_blob(const uint8_t* data, size_t size) {
  if (!table_->load_blob) plugin_error("NPU plugin '" + path_ + "' cannot load precompiled blobs");
  edgeopt_npu_graph* g = nullptr;
  if (const int rc = table_->load_blob(data, size, &g)) raise("load_blob", rc);
  return adopt(g);
}

NpuGraph::NpuGraph(std::shared_ptr<NpuPlugin> plugin, edgeopt_npu_graph* graph)
    : plugin_(std::move(plugin)), graph_(graph) {
  if (const int rc = plugin_->table().describe(graph_, &batch_, &in_, &out_)) {
    plugin_->table().release(graph_);
    plugin_->raise("describe", rc);
  }
  if (batch_ == 0 || in_ <= 0 || out_ <= 0) {
    plugin_->table().release(graph_);
    plugin_error("NPU plugin '" + plugin_->path() + "' describes a graph with a zero batch or width");
  }
}

NpuGraph::~NpuGraph() { plugin_->table().release(graph_); }

void NpuGraph::run_chunk(const float* x, uint32_t rows, float* y) const {
  const size_t want = sizeof(float) * rows * static_cast<size_t>(out_);
  edgeopt_npu_tensor in{
      sizeof(edgeopt_npu_tensor), EDGEOPT_NPU_FLOAT32,   rows,
      static_cast<uint32_t>(in_), const_cast<float*>(x), sizeof(float) * rows * static_cast<size_t>(in_)};
  edgeopt_npu_tensor out{sizeof(edgeopt_npu_tensor), EDGEOPT_NPU_FLOAT32, rows, static_cast<uint32_t>(out_), y, want};
  int rc;
  if (plugin_->capabilities().thread_safe) {
    rc = plugin_->table().execute(graph_, &in, &out);
  } else {
    std::lock_guard<std::mutex> lock(serialize_);
    rc = plugin_->table().execute(graph_, &in, &out);
  }
  if (rc) plugin_->raise("execute", rc);
  if (out.size_bytes != want || out.rows != rows || out.features != static_cast<uint32_t>(out_))
    plugin_error("NPU plugin '" + plugin_->path() + "': execute returned " + std::to_string(out.size_bytes) +
                 " output bytes, expected " + std::to_string(want));
}

void NpuGraph::run(const float* x, int m, float* y) const {
  // Static-shape devices get whole batches; rows are independent, so any chunking gives the same result.
  for (int r = 0; r < m; r += static_cast<int>(batch_)) {
    const uint32_t rows = static_cast<uint32_t>(std::min<int>(static_cast<int>(batch_), m - r));
    run_chunk(x + static_cast<size_t>(r) * in_, rows, y + static_cast<size_t>(r) * out_);
  }
}

std::vector<uint8_t> NpuGraph::export_blob() const {
  std::vector<uint8_t> bytes;
  if (!plugin_->table().export_blob) return bytes;
  size_t size = 0;
  if (const int rc = plugin_->table().export_blob(graph_, nullptr, 0, &size)) plugin_->raise("export_blob", rc);
  bytes.resize(size);
  if (const int rc = plugin_->table().export_blob(graph_, bytes.data(), bytes.size(), &size))
    plugin_->raise("export_blob", rc);
  bytes.resize(size);
  return bytes;
}

}  // namespace edgeopt
