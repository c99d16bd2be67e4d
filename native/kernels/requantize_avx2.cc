// AVX2 int8 requantization of int32 accumulators (RequantizeS8Args), exact:
// the same integers as requantize.h's scalar formula.
//
// rounding_doubling_high_mul(a, m) truncates (a * m + nudge) / 2^31 toward zero,
// nudge = +2^30 or 1 - 2^30 by the product's sign. For a negative product,
// truncation is floor((a * m + 1 - 2^30 + 2^31 - 1) / 2^31), so both signs are
// floor((a * m + 2^30) / 2^31): one 64-bit add and shift, no sign test. The result
// fits in int32, so a logical 64-bit shift gives the right low 32 bits. m is never
// INT32_MIN (the saturating case), as quantize_multiplier returns m0 < 2^31.
#include "requantize_avx2.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define EDGEOPT_AVX2 __attribute__((target("avx2")))

#include <algorithm>

#include "../core/requantize.h"

namespace edgeopt {
namespace avx2 {
namespace {

inline int8_t requantize_one(int32_t acc, int32_t m0, int32_t right, const RequantizeS8Args& p) {
  const int32_t v = multiply_by_quantized_multiplier(acc, {m0, -right}) + p.zero_point;
  return static_cast<int8_t>(std::min(std::max(v, p.lo), p.hi));
}

// floor((a * m + 2^30) / 2^31) per lane.
EDGEOPT_AVX2 inline __m256i high_mul(__m256i a, __m256i m) {
  const __m256i half = _mm256_set1_epi64x(int64_t{1} << 30);
  const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(a, m), half), 31);
  const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(m, 32)), half);
  // odd >> 31 into the high halves: (odd << 1) keeps bits 31..62 at 32..63.
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 1), 0xAA);
}

// rounding_divide_by_pot: (x >> right) + (remainder > (mask >> 1) + (x < 0)).
EDGEOPT_AVX2 inline __m256i divide_by_pot(__m256i x, __m256i right) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
  const __m256i remainder = _mm256_and_si256(x, mask);
  const __m256i negative = _mm256_srli_epi32(x, 31);
  const __m256i threshold = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), negative);
  const __m256i up = _mm256_cmpgt_epi32(remainder, threshold);  // -1 where rounding up
  return _mm256_sub_epi32(_mm256_srav_epi32(x, right), up);
}

EDGEOPT_AVX2 inline __m256i load8(const int32_t* v) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v)); }

}  // namespace

EDGEOPT_AVX2 void requantize_s8(const RequantizeS8Args& p) {
  const __m256i zero_point = _mm256_set1_epi32(p.zero_point);
  const __m256i lo = _mm256_set1_epi32(p.lo), hi = _mm256_set1_epi32(p.hi);
  for (int r = 0; r < p.m; ++r) {
    const int32_t* c = p.c + r * p.ldc;
    int8_t* y = p.y + r * p.ldy;
    int j = 0;
    for (; j + 8 <= p.n; j += 8) {
      const __m256i acc = _mm256_add_epi32(load8(c + j), load8(p.bias + j));
      __m256i v = divide_by_pot(high_mul(acc, load8(p.m0 + j)), load8(p.right + j));
      v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, zero_point), lo), hi);
      // 8 int32 in [-128, 127] to 8 bytes.
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y + j), _mm_packs_epi16(w, w));
    }
    for (; j < p.n; ++j) y[j] = requantize_one(c[j] + p.bias[j], p.m0[j], p.right[j], p);
  }
}

}  // namespace avx2
}  // namespace edgeopt
#endif
