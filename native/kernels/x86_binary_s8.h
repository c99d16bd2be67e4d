// Int8 Add and Mul (BinaryS8Args) over V's int32 lanes, exact: the integers
// of binary_s8.h, which the tails run, through x86_requantize.h's rounding
// multiply and shift. Include inside a target region, after binary_s8.h; V is
// x86_ymm.h's Ymm or x86_zmm.h's Zmm.
#pragma once
#include "x86_requantize.h"

namespace edgeopt {
namespace {

// multiply_by_quantized_multiplier(x, {m0, -right}) per lane.
template <class V>
inline typename V::I rescale(typename V::I x, typename V::I m0, typename V::I right) {
  return divide_by_pot<V>(high_mul<V>(x, m0), right);
}

// Elements [i, ...) of BinaryS8Args, V::kLanes at a time; returns where it stopped.
template <class V>
inline size_t binary_s8_lanes(const BinaryS8Args& p, size_t i) {
  using I = typename V::I;
  const I za = V::set1(p.a_zero_point), zb = V::set1(p.b_zero_point), left = V::set1(p.left_shift);
  const I am = V::set1(p.a_m0), ar = V::set1(p.a_right), bm = V::set1(p.b_m0), br = V::set1(p.b_right);
  const RequantColumn<V> out(V::zero(), V::set1(p.m0), V::set1(p.right), p.zero_point, p.lo, p.hi);
  for (; i + V::kLanes <= p.n; i += V::kLanes) {
    const I a = V::sub(V::s8_to_s32(p.a + i), za), b = V::sub(V::s8_to_s32(p.b + i), zb);
    const I sum =
        p.mul ? V::mullo(a, b) : V::add(rescale<V>(V::sllv(a, left), am, ar), rescale<V>(V::sllv(b, left), bm, br));
    V::store_s8(p.y + i, out.template apply<true>(sum));
  }
  return i;
}

// The elements through the vector types from widest to narrowest, then binary_s8_one.
template <class... Vs>
void binary_s8_simd(const BinaryS8Args& p) {
  size_t i = 0;
  ((i = binary_s8_lanes<Vs>(p, i)), ...);
  for (; i < p.n; ++i) p.y[i] = binary_s8_one(p, p.a[i], p.b[i]);
}

}  // namespace
}  // namespace edgeopt
