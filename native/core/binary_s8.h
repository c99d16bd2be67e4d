// One element of an int8 Add or Mul (BinaryS8Args): the definition the SIMD
// kernels' tails and the portable loop share, and the tests check against.
// Add is TFLite's: each input, less its zero point and shifted left, is
// rescaled to the common scale, the two are added and requantized.
#pragma once
#include <algorithm>

#include "kernels.h"
#include "requantize.h"

namespace edgeopt {

inline int32_t binary_s8_sum(const BinaryS8Args& p, int8_t a, int8_t b) {
  if (p.mul) return (a - p.a_zero_point) * (b - p.b_zero_point);
  const int32_t sa = (a - p.a_zero_point) * (1 << p.left_shift), sb = (b - p.b_zero_point) * (1 << p.left_shift);
  return multiply_by_quantized_multiplier(sa, {p.a_m0, -p.a_right}) +
         multiply_by_quantized_multiplier(sb, {p.b_m0, -p.b_right});
}

inline int8_t binary_s8_one(const BinaryS8Args& p, int8_t a, int8_t b) {
  const int32_t v = multiply_by_quantized_multiplier(binary_s8_sum(p, a, b), {p.m0, -p.right}) + p.zero_point;
  return static_cast<int8_t>(std::min(std::max(v, p.lo), p.hi));
}

}  // namespace edgeopt
