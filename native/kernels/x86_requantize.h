// Int8 requantization of int32 accumulators (RequantizeS8Args) over V's int32
// lanes, exact: the same integers as requantize.h's scalar formula, which the
// tails run. Include inside a target region, requantize.h before it; V is
// x86_ymm.h's Ymm or x86_zmm.h's Zmm.
//
// rounding_doubling_high_mul(a, m) truncates (a * m + nudge) / 2^31 toward zero,
// nudge = +2^30 or 1 - 2^30 by the product's sign. For a negative product,
// truncation is floor((a * m + 1 - 2^30 + 2^31 - 1) / 2^31), so both signs are
// floor((a * m + 2^30) / 2^31): one 64-bit add and shift, no sign test. The result
// fits in int32, so a logical 64-bit shift gives the right low 32 bits. m is never
// INT32_MIN (the saturating case), as quantize_multiplier returns m0 < 2^31.
#pragma once

namespace edgeopt {
namespace {

// floor((a * m + 2^30) / 2^31) per int32 lane.
template <class V>
inline typename V::I high_mul(typename V::I a, typename V::I m) {
  const typename V::I half = V::set1_64(int64_t{1} << 30);
  const typename V::I even = V::srl64(V::add64(V::mul_even(a, m), half), 31);
  const typename V::I odd = V::add64(V::mul_even(V::srl64(a, 32), V::srl64(m, 32)), half);
  // odd >> 31 into the high halves: (odd << 1) keeps bits 31..62 at 32..63.
  return V::odd_lanes_of(even, V::sll64(odd, 1));
}

// rounding_divide_by_pot: (x >> right) + (remainder > (mask >> 1) + (x < 0)).
template <class V>
inline typename V::I divide_by_pot(typename V::I x, typename V::I right) {
  const typename V::I one = V::set1(1);
  const typename V::I mask = V::sub(V::sllv(one, right), one);
  const typename V::I threshold = V::add(V::srl(mask, 1), V::srl(x, 31));
  return V::plus_one_where_greater(V::srav(x, right), V::and_(x, mask), threshold);
}

// One vector of outputs: clamp(zero_point + requantize(acc + bias), lo, hi).
template <class V>
inline typename V::I requantize_vector(typename V::I acc, typename V::I bias, typename V::I m0, typename V::I right,
                                       typename V::I zero_point, typename V::I lo, typename V::I hi) {
  const typename V::I v = divide_by_pot<V>(high_mul<V>(V::add(acc, bias), m0), right);
  return V::min(V::max(V::add(v, zero_point), lo), hi);
}

// Channels [j, ...) of one row, V::kLanes at a time; returns where it stopped.
template <class V>
inline int requantize_lanes(const RequantizeS8Args& p, const int32_t* c, int8_t* y, int j) {
  const typename V::I zero_point = V::set1(p.zero_point), lo = V::set1(p.lo), hi = V::set1(p.hi);
  for (; j + V::kLanes <= p.n; j += V::kLanes)
    V::store_s8(y + j, requantize_vector<V>(V::load(c + j), V::load(p.bias + j), V::load(p.m0 + j),
                                            V::load(p.right + j), zero_point, lo, hi));
  return j;
}

// Each row through the vector types from widest to narrowest (Zmm, Ymm: a
// channel count of 8 modulo 16 still runs in SIMD), then the scalar formula.
template <class... Vs>
void requantize_s8_simd(const RequantizeS8Args& p) {
  for (int r = 0; r < p.m; ++r) {
    const int32_t* c = p.c + r * p.ldc;
    int8_t* y = p.y + r * p.ldy;
    int j = 0;
    ((j = requantize_lanes<Vs>(p, c, y, j)), ...);
    for (; j < p.n; ++j) {
      const int32_t v = multiply_by_quantized_multiplier(c[j] + p.bias[j], {p.m0[j], -p.right[j]}) + p.zero_point;
      y[j] = static_cast<int8_t>(std::min(std::max(v, p.lo), p.hi));
    }
  }
}

}  // namespace
}  // namespace edgeopt
