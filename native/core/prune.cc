#include "prune.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace edgeopt {

float magnitude_prune_mask(const float* w, size_t count, size_t prune_count, uint8_t* keep) {
  std::fill(keep, keep + count, uint8_t{1});
  if (prune_count == 0 || count == 0) return 0.0f;
  prune_count = std::min(prune_count, count);
  std::vector<uint32_t> order(count);
  for (size_t i = 0; i < count; ++i) order[i] = static_cast<uint32_t>(i);
  // (|w|, index) is a strict total order, so nth_element's partition is unique.
  auto smaller = [w](uint32_t a, uint32_t b) {
    const float ma = std::fabs(w[a]), mb = std::fabs(w[b]);
    return ma < mb || (ma == mb && a < b);
  };
  std::nth_element(order.begin(), order.begin() + (prune_count - 1), order.end(), smaller);
  float threshold = 0.0f;
  for (size_t i = 0; i < prune_count; ++i) {
    keep[order[i]] = 0;
    threshold = std::max(threshold, std::fabs(w[order[i]]));
  }
  return threshold;
}

}  // namespace edgeopt
