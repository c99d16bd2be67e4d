// Integer requantization of int32 accumulators to int8 (TFLite's scheme), so
// a chain of statically quantized layers passes int8 values from one layer to
// the next exactly as an integer-only device would:
//   real = s_in * s_w[c] / s_out  ->  Q31 multiplier m0 and a power-of-two shift
//   q = clamp(zp_out + round(m0 * 2^shift * (acc + bias_q[c]) / 2^31), lo, 127)
// bias_q[c] = round(bias[c] / (s_in * s_w[c])). The TS twin is
// lib/backends/ts/requantize.ts; both use the same double and int64 arithmetic.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace edgeopt {

struct QuantizedMultiplier {
  int32_t m0;  // in [2^30, 2^31), or 0
  int shift;   // > 0: left shift, < 0: right shift
};

inline QuantizedMultiplier quantize_multiplier(double real) {
  if (!(real > 0)) return {0, 0};
  int shift = 0;
  const double q = std::frexp(real, &shift);  // q in [0.5, 1)
  int64_t m = static_cast<int64_t>(std::round(q * 2147483648.0));
  if (m == (int64_t{1} << 31)) {
    m /= 2;
    ++shift;
  }
  if (shift < -31) return {0, 0};
  return {static_cast<int32_t>(m), shift};
}

inline int32_t saturate_int32(int64_t v) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(v, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
}

// gemmlowp's SaturatingRoundingDoublingHighMul.
inline int32_t rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::max();
  const int64_t ab = static_cast<int64_t>(a) * b;
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : 1 - (int64_t{1} << 30);
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));  // truncates toward zero, as C++ does
}

// gemmlowp's RoundingDivideByPOT: round half away from zero.
inline int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

inline int32_t multiply_by_quantized_multiplier(int32_t x, QuantizedMultiplier qm) {
  const int left = qm.shift > 0 ? qm.shift : 0, right = qm.shift > 0 ? 0 : -qm.shift;
  const int32_t shifted = saturate_int32(static_cast<int64_t>(x) * (int64_t{1} << left));
  return rounding_divide_by_pot(rounding_doubling_high_mul(shifted, qm.m0), right);
}

inline int32_t quantize_bias(float bias, float input_scale, float weight_scale) {
  const double v = std::round(static_cast<double>(bias) / (static_cast<double>(input_scale) * weight_scale));
  return saturate_int32(static_cast<int64_t>(std::clamp(v, -2147483648.0, 2147483647.0)));
}

}  // namespace edgeopt
