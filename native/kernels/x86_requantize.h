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

// floor((a * m + 2^30) / 2^31) per int32 lane; m_odd: m's odd lanes in the even ones.
template <class V>
inline typename V::I high_mul(typename V::I a, typename V::I m, typename V::I m_odd) {
  const typename V::I half = V::set1_64(int64_t{1} << 30);
  const typename V::I even = V::srl64(V::add64(V::mul_even(a, m), half), 31);
  const typename V::I odd = V::add64(V::mul_even(V::srl64(a, 32), m_odd), half);
  // odd >> 31 into the high halves: (odd << 1) keeps bits 31..62 at 32..63.
  return V::odd_lanes_of(even, V::sll64(odd, 1));
}
template <class V>
inline typename V::I high_mul(typename V::I a, typename V::I m) {
  return high_mul<V>(a, m, V::srl64(m, 32));
}

// rounding_divide_by_pot: (x >> right) + (remainder > (mask >> 1) + (x < 0)),
// mask = 2^right - 1 and half_mask = mask >> 1 given.
template <class V>
inline typename V::I divide_by_pot(typename V::I x, typename V::I right, typename V::I mask, typename V::I half_mask) {
  const typename V::I threshold = V::add(half_mask, V::srl(x, 31));
  return V::plus_one_where_greater(V::srav(x, right), V::and_(x, mask), threshold);
}
template <class V>
inline typename V::I divide_by_pot(typename V::I x, typename V::I right) {
  const typename V::I one = V::set1(1);
  const typename V::I mask = V::sub(V::sllv(one, right), one);
  return divide_by_pot<V>(x, right, mask, V::srl(mask, 1));
}

// The requantization of one column of V::kLanes channels: the bias, Q31
// multiplier and right shift loaded once, with what follows from them (the
// multiplier's odd lanes, the shift's mask), then applied to any number of
// rows of sums.
template <class V>
struct RequantColumn {
  using I = typename V::I;
  I bias, m0, m_odd, right, mask, half_mask, zero_point, lo, hi;
  RequantColumn(I bias_, I m0_, I right_, int32_t zero_point_, int32_t lo_, int32_t hi_)
      : bias(bias_),
        m0(m0_),
        m_odd(V::srl64(m0_, 32)),
        right(right_),
        zero_point(V::set1(zero_point_)),
        lo(V::set1(lo_)),
        hi(V::set1(hi_)) {
    const I one = V::set1(1);
    mask = V::sub(V::sllv(one, right), one);
    half_mask = V::srl(mask, 1);
  }
  template <bool kClamp>
  I apply(I acc) const {
    const I x = high_mul<V>(V::add(acc, bias), m0, m_odd);
    const I v = V::add(divide_by_pot<V>(x, right, mask, half_mask), zero_point);
    return kClamp ? V::min(V::max(v, lo), hi) : v;
  }
};

// Whether requantized values need clamping beyond int8's own range (which
// store_s8 saturates to).
inline bool requant_clamps(int32_t lo, int32_t hi) { return lo > -128 || hi < 127; }

// f(std::true_type{}) when requant_clamps(lo, hi), else f(std::false_type{}):
// RequantColumn::apply's kClamp as a constant for the loop inside f.
template <class F>
inline void with_clamp(int32_t lo, int32_t hi, F&& f) {
  if (requant_clamps(lo, hi))
    f(std::true_type{});
  else
    f(std::false_type{});
}

// Rows [0, m) of the column at j through col.
template <class V, bool kClamp>
inline void requantize_rows(const RequantizeS8Args& p, const RequantColumn<V>& col, int j) {
  for (int r = 0; r < p.m; ++r)
    V::store_s8(p.y + r * p.ldy + j, col.template apply<kClamp>(V::load(p.c + r * p.ldc + j)));
}

// Columns [j, ...) of every row, V::kLanes channels at a time; returns where it stopped.
template <class V>
inline int requantize_columns(const RequantizeS8Args& p, int j) {
  for (; j + V::kLanes <= p.n; j += V::kLanes) {
    const RequantColumn<V> col(V::load(p.bias + j), V::load(p.m0 + j), V::load(p.right + j), p.zero_point, p.lo, p.hi);
    with_clamp(p.lo, p.hi, [&](auto clamps) { requantize_rows<V, decltype(clamps)::value>(p, col, j); });
  }
  return j;
}

// The columns through the vector types from widest to narrowest (Zmm, Ymm: a
// channel count of 8 modulo 16 still runs in SIMD), then the scalar formula.
template <class... Vs>
void requantize_s8_simd(const RequantizeS8Args& p) {
  int j = 0;
  ((j = requantize_columns<Vs>(p, j)), ...);
  for (; j < p.n; ++j)
    for (int r = 0; r < p.m; ++r) {
      const int32_t v =
          multiply_by_quantized_multiplier(p.c[r * p.ldc + j] + p.bias[j], {p.m0[j], -p.right[j]}) + p.zero_point;
      p.y[r * p.ldy + j] = static_cast<int8_t>(std::min(std::max(v, p.lo), p.hi));
    }
}

}  // namespace
}  // namespace edgeopt
