#include "prune.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace edgeopt {

// Radix selection on the bits of |w|: for non-negative floats the IEEE bit
// pattern, read as an unsigned integer, orders exactly like the value (and
// -0 becomes +0). Three histogram passes (11 + 11 + 10 bits, high to low)
// find the key T of the prune_count-th smallest weight, and how many of the
// weights equal to T must go; a last pass in index order marks them. Worst
// case O(n), no data-dependent recursion, and every pass is a plain loop over
// a contiguous array the compiler vectorizes.
float magnitude_prune_mask(const float* w, size_t count, size_t prune_count, uint8_t* keep) {
  std::fill(keep, keep + count, uint8_t{1});
  if (prune_count == 0 || count == 0) return 0.0f;
  prune_count = std::min(prune_count, count);
  std::vector<uint32_t> key(count);
  for (size_t i = 0; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, w + i, sizeof bits);
    key[i] = bits & 0x7fffffffu;
  }
  uint32_t prefix = 0, fixed = 0;  // the high bits of T found so far, and which bits those are
  size_t rank = prune_count;       // T's 1-based rank among keys matching `prefix`
  const int shifts[] = {21, 10, 0}, widths[] = {11, 11, 10};
  std::vector<size_t> hist(size_t{1} << 11);
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = shifts[pass];
    const uint32_t digit_mask = (1u << widths[pass]) - 1;
    std::fill(hist.begin(), hist.end(), size_t{0});
    for (size_t i = 0; i < count; ++i)
      if ((key[i] & fixed) == prefix) ++hist[(key[i] >> shift) & digit_mask];
    uint32_t d = 0;
    while (hist[d] < rank) rank -= hist[d++];
    prefix |= d << shift;
    fixed |= digit_mask << shift;
  }
  // Every key below T goes; of those equal to T, the `rank` with the lowest
  // indices go (ties broken by index, as documented in prune.h).
  const uint32_t t = prefix;
  size_t ties = rank;
  for (size_t i = 0; i < count; ++i) {
    if (key[i] < t) {
      keep[i] = 0;
    } else if (key[i] == t && ties > 0) {
      keep[i] = 0;
      --ties;
    }
  }
  float threshold;
  std::memcpy(&threshold, &t, sizeof threshold);
  return threshold;
}

}  // namespace edgeopt
