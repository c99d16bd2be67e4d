// The reference NPU's precompiled artifact (what .rknn files or QNN context
// binaries are to real devices), so the host's load_blob path is exercised.
#include <cstring>

#include "ref_graph.h"

namespace edgeopt::npu_ref {
namespace {

constexpr char kMagic[8] = {'E', 'O', 'N', 'P', 'U', 'R', 'E', 'F'};
constexpr uint32_t kReluOnly = 1, kRelu = 2, kBias = 4;

template <typename T>
void put(std::vector<uint8_t>& out, const T* v, size_t count) {
  const auto* b = reinterpret_cast<const uint8_t*>(v);
  out.insert(out.end(), b, b + sizeof(T) * count);
}

class Reader {
 public:
  Reader(const uint8_t* p, size_t size) : p_(p), left_(size) {}
  template <typename T>
  bool get(T* v, size_t count) {
    if (count > left_ / sizeof(T)) return false;
    if (count == 0) return true;  // v may be an empty vector's null data()
    std::memcpy(v, p_, sizeof(T) * count);
    p_ += sizeof(T) * count;
    left_ -= sizeof(T) * count;
    return true;
  }
  size_t left() const { return left_; }

 private:
  const uint8_t* p_;
  size_t left_;
};

}  // namespace

std::vector<uint8_t> write_blob(const Graph& g) {
  std::vector<uint8_t> out;
  put(out, kMagic, 8);
  const uint32_t head[3] = {1, g.batch, static_cast<uint32_t>(g.layers.size())};
  put(out, head, 3);
  for (const Layer& l : g.layers) {
    const uint32_t flags = (l.relu_only ? kReluOnly : 0) | (l.relu ? kRelu : 0) | (l.bias.empty() ? 0 : kBias);
    const int32_t dims[2] = {l.k, l.n};
    put(out, &flags, 1);
    put(out, dims, 2);
    put(out, &l.input.scale, 1);
    put(out, &l.input.zero_point, 1);
    put(out, l.weight.data(), l.weight.size());
    put(out, l.weight_scale.data(), l.weight_scale.size());
    put(out, l.bias.data(), l.bias.size());
  }
  return out;
}

bool parse_blob(const uint8_t* p, size_t size, Graph* g, std::string* err) {
  Reader r(p, size);
  char magic[8];
  uint32_t head[3];
  if (!r.get(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return *err = "not a reference NPU blob", false;
  if (!r.get(head, 3) || head[0] != 1) return *err = "unknown blob version", false;
  if (head[1] == 0 || head[1] > 4096 || head[2] == 0 || head[2] > 1024) return *err = "bad batch or layer count", false;
  g->batch = head[1];
  for (uint32_t i = 0; i < head[2]; ++i) {
    Layer l;
    uint32_t flags;
    int32_t dims[2];
    if (!r.get(&flags, 1) || !r.get(dims, 2) || !r.get(&l.input.scale, 1) || !r.get(&l.input.zero_point, 1))
      return *err = "truncated layer header", false;
    if (dims[0] <= 0 || dims[1] <= 0 || dims[0] > 2048 || dims[1] > 2048)
      return *err = "layer width out of range", false;
    l.k = dims[0];
    l.n = dims[1];
    l.relu_only = flags & kReluOnly;
    l.relu = flags & kRelu;
    if (!l.relu_only && (!(l.input.scale > 0) || l.input.zero_point < -128 || l.input.zero_point > 127))
      return *err = "bad activation scale or zero point", false;
    if (!l.relu_only) {
      l.weight.resize(static_cast<size_t>(l.n) * l.k);
      l.weight_scale.resize(l.n);
      if (flags & kBias) l.bias.resize(l.n);
      if (!r.get(l.weight.data(), l.weight.size()) || !r.get(l.weight_scale.data(), l.n) ||
          !r.get(l.bias.data(), l.bias.size()))
        return *err = "truncated layer data", false;
    }
    g->layers.push_back(std::move(l));
  }
  if (r.left() != 0) return *err = "trailing bytes", false;
  if (!chain_ok(*g)) return *err = "layer widths do not chain", false;
  return true;
}

}  // namespace edgeopt::npu_ref
