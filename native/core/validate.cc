#include "validate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace edgeopt {

long long first_non_finite(const float* x, size_t n) {
  // A float is NaN or infinite when its exponent bits are all ones; adding one
  // to the exponent then carries into the sign bit. That test is plain integer
  // arithmetic, which the compiler vectorizes on the baseline ISA; only a
  // block where it fires is searched for the index.
  constexpr size_t kBlock = 1024;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t e = std::min(n, b + kBlock);
    uint32_t bad = 0;
    for (size_t i = b; i < e; ++i) {
      uint32_t bits;
      std::memcpy(&bits, x + i, sizeof bits);
      bad |= (bits & 0x7f800000u) + 0x00800000u;
    }
    if (bad & 0x80000000u)
      for (size_t i = b; i < e; ++i)
        if (!std::isfinite(x[i])) return static_cast<long long>(i);
  }
  return -1;
}

}  // namespace edgeopt
