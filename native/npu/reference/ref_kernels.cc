// The reference NPU's kernels: int8 x int8 -> int32 dot products on
// (q - zero_point), then the float epilogue of the ABI, in its exact order.
// Deliberately plain: a different route to the same integers as the host's
// uint8 GEMM, so the bit-exact comparison means something.
#include <algorithm>

#include "ref_graph.h"

namespace edgeopt::npu_ref {

bool chain_ok(const Graph& g) {
  if (g.layers.empty()) return false;
  int width = g.layers.front().k;
  for (const Layer& l : g.layers) {
    if (l.k != width || l.k <= 0 || l.n <= 0) return false;
    if (!l.relu_only &&
        (l.weight.size() != static_cast<size_t>(l.n) * l.k || l.weight_scale.size() != static_cast<size_t>(l.n) ||
         (!l.bias.empty() && l.bias.size() != static_cast<size_t>(l.n))))
      return false;
    width = l.n;
  }
  return true;
}

namespace {

void qdense(const Layer& l, const float* x, int m, float* y) {
  std::vector<int32_t> q(l.k);
  for (int r = 0; r < m; ++r) {
    const float* xr = x + static_cast<size_t>(r) * l.k;
    for (int i = 0; i < l.k; ++i) q[i] = quantize_static_s8(xr[i], l.input) - l.input.zero_point;
    for (int j = 0; j < l.n; ++j) {
      const int8_t* w = l.weight.data() + static_cast<size_t>(j) * l.k;
      int32_t acc = 0;
      for (int i = 0; i < l.k; ++i) acc += q[i] * w[i];
      const float s = l.input.scale * l.weight_scale[j];
      float v = static_cast<float>(acc) * s;
      if (!l.bias.empty()) v = v + l.bias[j];
      if (l.relu) v = std::max(v, 0.0f);
      y[static_cast<size_t>(r) * l.n + j] = v;
    }
  }
}

}  // namespace

void run(const Graph& g, const float* x, int m, float* y) {
  std::vector<float> cur(x, x + static_cast<size_t>(m) * g.layers.front().k), next;
  for (const Layer& l : g.layers) {
    if (l.relu_only) {
      for (float& v : cur) v = std::max(v, 0.0f);
      continue;
    }
    next.resize(static_cast<size_t>(m) * l.n);
    qdense(l, cur.data(), m, next.data());
    cur.swap(next);
  }
  std::copy(cur.begin(), cur.end(), y);
}

}  // namespace edgeopt::npu_ref
