// The 256-bit vector operations the shared x86 kernels (x86_gemm_u8s8.h,
// x86_gemm_f32.h, x86_elementwise.h) are written in, for AVX2 + FMA.
// Include inside a target region with at least EDGEOPT_ISA_AVX2 (x86_isa.h).
#pragma once

namespace edgeopt {
namespace {

struct Ymm {
  static constexpr int kLanes = 8;  // int32 or float lanes
  using I = __m256i;
  using F = __m256;

  // --- int32 lanes
  static I zero() { return _mm256_setzero_si256(); }
  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I mullo(I a, I b) { return _mm256_mullo_epi32(a, b); }
  static I load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static void store(void* p, I v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
  // 2 * kLanes int8 (uint8) bytes sign- (zero-) extended to int16.
  static I s8_to_s16(const int8_t* p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I u8_to_u16(const uint8_t* p) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // kLanes int8 (int16) values sign-extended to int32.
  static I s8_to_s32(const int8_t* p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I s16_to_s32(const int16_t* p) {
    return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // int32 requantization (x86_requantize.h): 64-bit products of the even
  // int32 lanes, 64-bit lane adds and shifts, the odd lanes of b into a,
  // per-lane shifts, and int32 lanes in -128..127 stored as kLanes bytes.
  static I mul_even(I a, I b) { return _mm256_mul_epi32(a, b); }
  static I add64(I a, I b) { return _mm256_add_epi64(a, b); }
  static I set1_64(int64_t v) { return _mm256_set1_epi64x(v); }
  static I srl64(I a, int n) { return _mm256_srli_epi64(a, n); }
  static I sll64(I a, int n) { return _mm256_slli_epi64(a, n); }
  static I odd_lanes_of(I a, I b) { return _mm256_blend_epi32(a, b, 0xAA); }
  static I sllv(I a, I n) { return _mm256_sllv_epi32(a, n); }
  static I srav(I a, I n) { return _mm256_srav_epi32(a, n); }
  static I srl(I a, int n) { return _mm256_srli_epi32(a, n); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I plus_one_where_greater(I v, I a, I b) { return _mm256_sub_epi32(v, _mm256_cmpgt_epi32(a, b)); }
  static I min(I a, I b) { return _mm256_min_epi32(a, b); }
  static I max(I a, I b) { return _mm256_max_epi32(a, b); }
  static void store_s8(int8_t* p, I v) {
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi16(w, w));
  }
  static I madd16(I a, I b) { return _mm256_madd_epi16(a, b); }
  static I unpacklo16(I a, I b) { return _mm256_unpacklo_epi16(a, b); }
  static I unpackhi16(I a, I b) { return _mm256_unpackhi_epi16(a, b); }
  // The low 128-bit lanes of a and b (lanes_lo), the high ones (lanes_hi).
  static I lanes_lo(I a, I b) { return _mm256_permute2x128_si256(a, b, 0x20); }
  static I lanes_hi(I a, I b) { return _mm256_permute2x128_si256(a, b, 0x31); }
  static I maddubs(I u8, I s8) { return _mm256_maddubs_epi16(u8, s8); }
  static I ones16() { return _mm256_set1_epi16(1); }

  // --- float lanes
  static F zero_f() { return _mm256_setzero_ps(); }
  static F set1_f(float v) { return _mm256_set1_ps(v); }
  static F load_f(const float* p) { return _mm256_loadu_ps(p); }
  static void store_f(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F add_f(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul_f(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div_f(F a, F b) { return _mm256_div_ps(a, b); }
  // `a < b ? a : b` and `a > b ? a : b` per lane (b when either is NaN).
  static F min_f(F a, F b) { return _mm256_min_ps(a, b); }
  static F max_f(F a, F b) { return _mm256_max_ps(a, b); }
  // Lanes [lo, hi) of p[0..kLanes) (others 0), and their store: masked, so
  // no other lane is touched (the column range of a partial tile).
  static __m256i lane_mask(int lo, int hi) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), lane),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane));
  }
  static F load_f_lanes(const float* p, int lo, int hi) { return _mm256_maskload_ps(p, lane_mask(lo, hi)); }
  static void store_f_lanes(float* p, F v, int lo, int hi) { _mm256_maskstore_ps(p, lane_mask(lo, hi), v); }
  // The same for int32 lanes, through the float forms (bit moves only).
  static I load_lanes(const int32_t* p, int lo, int hi) {
    return _mm256_castps_si256(load_f_lanes(reinterpret_cast<const float*>(p), lo, hi));
  }
  static void store_lanes(int32_t* p, I v, int lo, int hi) {
    store_f_lanes(reinterpret_cast<float*>(p), _mm256_castsi256_ps(v), lo, hi);
  }
  static F round_even(F v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F to_float(I v) { return _mm256_cvtepi32_ps(v); }
  static I truncate(F v) { return _mm256_cvttps_epi32(v); }
  static float hmin(F v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  }
  static float hmax(F v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  }

  // Bytes per store_u8: 4 vectors of int32 lanes in 0..255, from quant(0),
  // quant(8), quant(16), quant(24), packed to 32 bytes in order.
  static constexpr int kBytesPerStore = 32;
  template <class Quant>
  static void store_u8(uint8_t* q, Quant quant) {
    const __m256i a = _mm256_packus_epi32(quant(0), quant(8)), b = _mm256_packus_epi32(quant(16), quant(24));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), order));
  }
};

}  // namespace
}  // namespace edgeopt
