#include "loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "../core/error.h"
#include "plugin_thread.h"

namespace edgeopt {
namespace {

// The version-1 table ends with shutdown: a table must reach at least that far.
constexpr size_t kMinTableSize = offsetof(edgeopt_npu_plugin, shutdown) + sizeof(void (*)(void));
// Room past the host's capabilities struct, for a plugin that writes a larger (newer) one anyway.
constexpr size_t kCapabilitiesSlack = 1024;
constexpr size_t kMaxPluginString = 256;
constexpr size_t kMaxErrorString = 1024;

[[noreturn]] void plugin_error(const std::string& message) { throw Error("E_PLUGIN", message); }

// A string a plugin returned, copied and cut at `max` bytes ("" for NULL).
std::string bounded(const char* s, size_t max) { return s ? std::string(s, strnlen(s, max)) : std::string(); }

// The path checks done before any code of the library can run.
void check_path(const std::string& path) {
  const std::string quoted = "NPU plugin '" + path + "'";
  if (path.find('\0') != std::string::npos) plugin_error("NPU plugin path contains a NUL byte");
  if (path.empty() || path[0] != '/')
    plugin_error(quoted + ": the path must be absolute (a bare name or relative path would be searched for)");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) plugin_error(quoted + " not found: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) plugin_error(quoted + " is not a regular file");
  if (st.st_mode & S_IWOTH)
    plugin_error(quoted + " is writable by every user; refusing to run code anyone could replace");
}

// A node whose arrays the plugin thread owns: a call past its timeout may still read them.
struct OwnedNodes {
  std::vector<edgeopt_npu_node> nodes;
  std::deque<std::string> names;
  std::deque<std::vector<uint8_t>> arrays;

  template <typename T>
  const T* copy(const T* p, size_t count) {
    if (!p) return nullptr;
    const auto* bytes = reinterpret_cast<const uint8_t*>(p);
    arrays.emplace_back(bytes, bytes + count * sizeof(T));
    return reinterpret_cast<const T*>(arrays.back().data());
  }

  explicit OwnedNodes(const std::vector<edgeopt_npu_node>& in) {
    for (edgeopt_npu_node n : in) {
      names.emplace_back(n.name ? n.name : "");
      n.name = names.back().c_str();
      const size_t nk = static_cast<size_t>(std::max(n.in_features, 0)) * std::max(n.out_features, 0);
      if (n.weight_dtype == EDGEOPT_NPU_FLOAT32)
        n.weight = copy(static_cast<const float*>(n.weight), nk);
      else if (n.weight_dtype == EDGEOPT_NPU_INT8)
        n.weight = copy(static_cast<const int8_t*>(n.weight), nk);
      else
        n.weight = nullptr;
      n.weight_scale = copy(n.weight_scale, n.weight_scale_count);
      n.bias = copy(n.bias, static_cast<size_t>(std::max(n.out_features, 0)));
      nodes.push_back(n);
    }
  }
};

}  // namespace

std::shared_ptr<NpuPlugin> NpuPlugin::open(const std::string& path, const Options& options, NpuTimeouts timeouts) {
  check_path(path);
  std::shared_ptr<NpuPlugin> p(new NpuPlugin());
  p->path_ = path;
  p->name_ = path;
  p->timeouts_ = timeouts;
  p->thread_ = std::make_unique<PluginThread>();
  p->load(options);
  return p;
}

// dlopen, the entry point and init run on the plugin thread too: a library's
// constructors and init() are vendor code like any other call.
void NpuPlugin::load(const Options& options) {
  struct Loaded {
    void* handle = nullptr;
    std::string dl_error;
    bool has_entry = false;
    bool has_table = false;
    edgeopt_npu_plugin table{};
    std::string name, vendor, version;
  };
  auto loaded = std::make_shared<Loaded>();
  const std::string path = path_;
  thread_->run(who(), "loading", timeouts_.compile, [loaded, path] {
    loaded->handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!loaded->handle) {
      loaded->dl_error = bounded(::dlerror(), kMaxErrorString);
      return;
    }
    auto entry = reinterpret_cast<edgeopt_npu_entry_fn>(::dlsym(loaded->handle, EDGEOPT_NPU_ENTRY_POINT));
    if (!(loaded->has_entry = entry != nullptr)) return;
    const edgeopt_npu_plugin* t = entry(EDGEOPT_NPU_ABI_VERSION);
    if (!(loaded->has_table = t != nullptr)) return;
    // Copy no more than the plugin's table holds, nor more than the host knows.
    std::memcpy(&loaded->table, t, std::min<size_t>(t->struct_size, sizeof loaded->table));
    loaded->table.struct_size = t->struct_size;
    if (t->struct_size >= kMinTableSize) {
      loaded->name = bounded(t->name, kMaxPluginString);
      loaded->vendor = bounded(t->vendor, kMaxPluginString);
      loaded->version = bounded(t->version, kMaxPluginString);
    }
  });
  handle_ = loaded->handle;
  const std::string quoted = "NPU plugin '" + path_ + "'";
  if (!handle_) plugin_error(quoted + " could not be loaded: " + loaded->dl_error);
  if (!loaded->has_entry)
    plugin_error(quoted + " does not export " + EDGEOPT_NPU_ENTRY_POINT + " (is it an edgeopt NPU plugin?)");
  if (!loaded->has_table) plugin_error(quoted + " refused host ABI version " + std::to_string(EDGEOPT_NPU_ABI_VERSION));
  const edgeopt_npu_plugin& t = loaded->table;
  if (t.abi_version != EDGEOPT_NPU_ABI_VERSION)
    plugin_error(quoted + " was built for ABI version " + std::to_string(t.abi_version) +
                 "; this edgeopt supports version " + std::to_string(EDGEOPT_NPU_ABI_VERSION));
  if (t.struct_size < kMinTableSize)
    plugin_error(quoted + " has a " + std::to_string(t.struct_size) + "-byte function table; ABI version " +
                 std::to_string(EDGEOPT_NPU_ABI_VERSION) + " needs at least " + std::to_string(kMinTableSize));
  if (!t.init || !t.get_capabilities || !t.supports || !t.compile || !t.describe || !t.execute || !t.release ||
      !t.last_error)
    plugin_error(quoted + " leaves a required function of its table empty");
  table_ = t;
  if (!loaded->name.empty()) name_ = loaded->name;
  vendor_ = loaded->vendor;
  version_ = loaded->version;

  auto owned = std::make_shared<Options>(options);
  auto init = table_.init;
  const Result r = call("init", timeouts_.compile, [owned, init] {
    std::vector<edgeopt_npu_option> opts;
    for (const auto& [k, v] : *owned) opts.push_back({k.c_str(), v.c_str()});
    return init(opts.data(), opts.size());
  });
  if (r.rc) raise("init", r);
  initialized_ = true;

  auto caps = std::make_shared<std::vector<uint8_t>>(sizeof(edgeopt_npu_capabilities) + kCapabilitiesSlack, 0);
  auto get_capabilities = table_.get_capabilities;
  call("get_capabilities", timeouts_.call, [caps, get_capabilities] {
    auto* c = reinterpret_cast<edgeopt_npu_capabilities*>(caps->data());
    c->struct_size = sizeof(edgeopt_npu_capabilities);
    get_capabilities(c);
    return 0;
  });
  std::memcpy(&caps_, caps->data(), sizeof caps_);
  caps_.struct_size = sizeof caps_;
  // Flags are 0 or 1 to the host, whatever else the plugin wrote.
  for (uint32_t* flag : {&caps_.static_shapes_only, &caps_.partial_graphs, &caps_.thread_safe}) *flag = *flag != 0;
}

NpuPlugin::~NpuPlugin() {
  const bool stuck = thread_ && !thread_->wedged().empty();
  if (initialized_ && !stuck && table_.shutdown) {
    auto shutdown = table_.shutdown;
    try {
      call("shutdown", timeouts_.call, [shutdown] { return shutdown(), 0; });
    } catch (const Error&) {
      // a failed shutdown changes nothing for the host
    }
  }
  const bool wedged = thread_ && !thread_->wedged().empty();
  thread_.reset();
  // A wedged plugin's thread may still run its code: the library stays mapped.
  if (handle_ && !wedged) ::dlclose(handle_);
}

std::string NpuPlugin::who() const { return "NPU plugin '" + name_ + "'"; }

std::string NpuPlugin::broken() const { return thread_ ? thread_->wedged() : std::string(); }

NpuPlugin::Result NpuPlugin::call(const char* what, std::chrono::milliseconds timeout, std::function<int()> fn) const {
  auto result = std::make_shared<Result>();
  auto last_error = table_.last_error;
  thread_->run(who(), what, timeout, [result, last_error, fn = std::move(fn)] {
    result->rc = fn();
    // Thread-local in the plugin: read it on the thread that failed.
    if (result->rc && last_error) result->message = bounded(last_error(), kMaxErrorString);
  });
  return *result;
}

void NpuPlugin::raise(const std::string& what, const Result& r) const {
  plugin_error(who() + ": " + what + " failed: " + (r.message.empty() ? "no message" : r.message) + " (code " +
               std::to_string(r.rc) + ")");
}

std::string NpuPlugin::unsupported_reason(const edgeopt_npu_node& node) {
  auto owned = std::make_shared<OwnedNodes>(std::vector<edgeopt_npu_node>{node});
  auto reason = std::make_shared<std::vector<char>>(256, '\0');
  auto supports = table_.supports;
  const Result r = call("supports", timeouts_.call, [owned, reason, supports] {
    return supports(&owned->nodes[0], reason->data(), reason->size());
  });
  if (r.rc == 1) return "";
  const std::string why = bounded(reason->data(), reason->size() - 1);
  if (r.rc != 0) return "supports() returned " + std::to_string(r.rc) + ", neither 0 nor 1";
  return why.empty() ? "not supported by the plugin" : why;
}

std::shared_ptr<NpuGraph> NpuPlugin::adopt(edgeopt_npu_graph* g, int32_t want_in, int32_t want_out) {
  if (!g) plugin_error(who() + " returned success but no graph");
  return std::make_shared<NpuGraph>(shared_from_this(), g, want_in, want_out);
}

std::shared_ptr<NpuGraph> NpuPlugin::compile(const std::vector<edgeopt_npu_node>& nodes, uint32_t batch) {
  if (nodes.empty()) plugin_error(who() + ": nothing to compile");
  auto owned = std::make_shared<OwnedNodes>(nodes);
  auto out = std::make_shared<edgeopt_npu_graph*>(nullptr);
  auto compile = table_.compile;
  const Result r = call("compile", timeouts_.compile, [owned, out, batch, compile] {
    edgeopt_npu_subgraph sg{sizeof(edgeopt_npu_subgraph), owned->nodes.data(),
                            static_cast<uint32_t>(owned->nodes.size()), batch};
    return compile(&sg, out.get());
  });
  if (r.rc) raise("compile", r);
  return adopt(*out, nodes.front().in_features, nodes.back().out_features);
}

std::shared_ptr<NpuGraph> NpuPlugin::load_blob(const uint8_t* data, size_t size) {
  if (!table_.load_blob) plugin_error(who() + " cannot load precompiled blobs");
  auto blob = std::make_shared<std::vector<uint8_t>>(data, data + size);
  auto out = std::make_shared<edgeopt_npu_graph*>(nullptr);
  auto load_blob = table_.load_blob;
  const Result r = call("load_blob", timeouts_.compile,
                        [blob, out, load_blob] { return load_blob(blob->data(), blob->size(), out.get()); });
  if (r.rc) raise("load_blob", r);
  return adopt(*out, 0, 0);
}

NpuGraph::NpuGraph(std::shared_ptr<NpuPlugin> plugin, edgeopt_npu_graph* graph, int32_t want_in, int32_t want_out)
    : plugin_(std::move(plugin)), graph_(graph) {
  struct Description {
    uint32_t batch = 0;
    int32_t in = 0, out = 0;
  };
  auto d = std::make_shared<Description>();
  auto describe = plugin_->table_.describe;
  NpuPlugin::Result r;
  try {
    r = plugin_->call("describe", plugin_->timeouts_.call,
                      [d, describe, graph] { return describe(graph, &d->batch, &d->in, &d->out); });
  } catch (const Error&) {
    graph_ = nullptr;  // never hand a graph back to a plugin that failed on it this way
    throw;
  }
  std::string bad;
  if (r.rc) {
    bad = "describe failed: " + (r.message.empty() ? std::string("no message") : r.message) + " (code " +
          std::to_string(r.rc) + ")";
  } else if (d->batch == 0 || d->batch > kMaxNpuBatch) {
    bad = "describe reports batch " + std::to_string(d->batch) + ", outside 1.." + std::to_string(kMaxNpuBatch);
  } else if (d->in <= 0 || d->in > kMaxNpuFeatures || d->out <= 0 || d->out > kMaxNpuFeatures) {
    bad = "describe reports widths " + std::to_string(d->in) + " -> " + std::to_string(d->out) + ", outside 1.." +
          std::to_string(kMaxNpuFeatures);
  } else if ((want_in > 0 && d->in != want_in) || (want_out > 0 && d->out != want_out)) {
    bad = "describe reports widths " + std::to_string(d->in) + " -> " + std::to_string(d->out) +
          " for a graph compiled as " + std::to_string(want_in) + " -> " + std::to_string(want_out);
  }
  if (!bad.empty()) {
    try {
      auto release = plugin_->table_.release;
      plugin_->call("release", plugin_->timeouts_.call, [release, graph] { return release(graph), 0; });
    } catch (const Error&) {
      // the graph is refused either way
    }
    graph_ = nullptr;
    plugin_error(plugin_->who() + ": " + bad);
  }
  batch_ = d->batch;
  in_ = d->in;
  out_ = d->out;
}

NpuGraph::~NpuGraph() {
  if (!graph_ || !plugin_->broken().empty()) return;  // a broken plugin is never called again
  auto release = plugin_->table_.release;
  edgeopt_npu_graph* graph = graph_;
  try {
    plugin_->call("release", plugin_->timeouts_.call, [release, graph] { return release(graph), 0; });
  } catch (const Error&) {
    // nothing more the host can do; the plugin is marked broken if it timed out
  }
}

void NpuGraph::run_chunk(const float* x, uint32_t rows, float* y) const {
  struct Buffers {
    std::vector<float> in, out;
    edgeopt_npu_tensor out_tensor{};
  };
  const size_t in_count = static_cast<size_t>(rows) * static_cast<size_t>(in_);
  const size_t out_count = static_cast<size_t>(rows) * static_cast<size_t>(out_);
  const size_t want = sizeof(float) * out_count;
  auto b = std::make_shared<Buffers>();
  b->in.assign(x, x + in_count);
  b->out.resize(out_count);
  auto execute = plugin_->table_.execute;
  edgeopt_npu_graph* graph = graph_;
  const uint32_t in_features = static_cast<uint32_t>(in_), out_features = static_cast<uint32_t>(out_);
  const NpuPlugin::Result r =
      plugin_->call("execute", plugin_->timeouts_.call, [b, execute, graph, rows, in_features, out_features, want] {
        edgeopt_npu_tensor in{sizeof(edgeopt_npu_tensor),  EDGEOPT_NPU_FLOAT32, rows, in_features, b->in.data(),
                              sizeof(float) * b->in.size()};
        b->out_tensor = {sizeof(edgeopt_npu_tensor), EDGEOPT_NPU_FLOAT32, rows, out_features, b->out.data(), want};
        return execute(graph, &in, &b->out_tensor);
      });
  if (r.rc) plugin_->raise("execute", r);
  const edgeopt_npu_tensor& out = b->out_tensor;
  if (out.size_bytes != want || out.rows != rows || out.features != out_features || out.dtype != EDGEOPT_NPU_FLOAT32)
    plugin_error(plugin_->who() + ": execute returned " + std::to_string(out.size_bytes) + " output bytes as [" +
                 std::to_string(out.rows) + ", " + std::to_string(out.features) + "], expected " +
                 std::to_string(want) + " as [" + std::to_string(rows) + ", " + std::to_string(out_features) + "]");
  std::copy(b->out.begin(), b->out.end(), y);
}

void NpuGraph::run(const float* x, int m, float* y) const {
  // Static-shape devices get whole batches; rows are independent, so any chunking gives the same result.
  const size_t rows = m > 0 ? static_cast<size_t>(m) : 0;
  for (size_t r = 0; r < rows; r += batch_) {
    const uint32_t chunk = static_cast<uint32_t>(std::min<size_t>(batch_, rows - r));
    run_chunk(x + r * in_, chunk, y + r * out_);
  }
}

std::vector<uint8_t> NpuGraph::export_blob() const {
  auto export_blob = plugin_->table_.export_blob;
  if (!export_blob) return {};
  edgeopt_npu_graph* graph = graph_;
  auto size = std::make_shared<size_t>(0);
  NpuPlugin::Result r = plugin_->call("export_blob", plugin_->timeouts_.call, [export_blob, graph, size] {
    return export_blob(graph, nullptr, 0, size.get());
  });
  if (r.rc) plugin_->raise("export_blob", r);
  if (*size > kMaxNpuBlobBytes)
    plugin_error(plugin_->who() + ": export_blob asks for " + std::to_string(*size) + " bytes, more than the " +
                 std::to_string(kMaxNpuBlobBytes) + "-byte limit");
  auto bytes = std::make_shared<std::vector<uint8_t>>(*size);
  const size_t capacity = bytes->size();
  r = plugin_->call("export_blob", plugin_->timeouts_.call, [export_blob, graph, bytes, size] {
    return export_blob(graph, bytes->data(), bytes->size(), size.get());
  });
  if (r.rc) plugin_->raise("export_blob", r);
  if (*size > capacity)
    plugin_error(plugin_->who() + ": export_blob wrote " + std::to_string(*size) + " bytes into a " +
                 std::to_string(capacity) + "-byte buffer");
  bytes->resize(*size);
  return *bytes;
}

}  // namespace edgeopt
