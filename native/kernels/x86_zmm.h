// The 512-bit vector operations of the shared x86 kernels (the Ymm interface
// of x86_ymm.h, on zmm registers), for AVX-512 F + BW + VL. Include after
// x86_ymm.h, inside a target region with at least EDGEOPT_ISA_AVX512.
#pragma once

namespace edgeopt {
namespace {

struct Zmm {
  static constexpr int kLanes = 16;
  using I = __m512i;
  using F = __m512;

  // --- int32 lanes
  static I zero() { return _mm512_setzero_si512(); }
  static I set1(int32_t v) { return _mm512_set1_epi32(v); }
  static I add(I a, I b) { return _mm512_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I mullo(I a, I b) { return _mm512_mullo_epi32(a, b); }
  static I load(const void* p) { return _mm512_loadu_si512(p); }
  static void store(void* p, I v) { _mm512_storeu_si512(p, v); }
  static I s8_to_s16(const int8_t* p) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static I u8_to_u16(const uint8_t* p) {
    return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static I s8_to_s32(const int8_t* p) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I s16_to_s32(const int16_t* p) {
    return _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static I mul_even(I a, I b) { return _mm512_mul_epi32(a, b); }
  static I add64(I a, I b) { return _mm512_add_epi64(a, b); }
  static I set1_64(int64_t v) { return _mm512_set1_epi64(v); }
  static I srl64(I a, int n) { return _mm512_srli_epi64(a, static_cast<unsigned>(n)); }
  static I sll64(I a, int n) { return _mm512_slli_epi64(a, static_cast<unsigned>(n)); }
  static I odd_lanes_of(I a, I b) { return _mm512_mask_blend_epi32(0xAAAA, a, b); }
  static I sllv(I a, I n) { return _mm512_sllv_epi32(a, n); }
  static I srav(I a, I n) { return _mm512_srav_epi32(a, n); }
  static I srl(I a, int n) { return _mm512_srli_epi32(a, static_cast<unsigned>(n)); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I plus_one_where_greater(I v, I a, I b) {
    return _mm512_mask_add_epi32(v, _mm512_cmpgt_epi32_mask(a, b), v, _mm512_set1_epi32(1));
  }
  static I min(I a, I b) { return _mm512_min_epi32(a, b); }
  static I max(I a, I b) { return _mm512_max_epi32(a, b); }
  static void store_s8(int8_t* p, I v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtsepi32_epi8(v)); }
  static I madd16(I a, I b) { return _mm512_madd_epi16(a, b); }
  static I unpacklo16(I a, I b) { return _mm512_unpacklo_epi16(a, b); }
  static I unpackhi16(I a, I b) { return _mm512_unpackhi_epi16(a, b); }
  // Whole 128-bit lanes alternately from a and b: a0 b0 a1 b1 (lanes_lo), a2 b2 a3 b3 (lanes_hi).
  static I lanes_lo(I a, I b) {
    return _mm512_permutex2var_epi32(a, _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23), b);
  }
  static I lanes_hi(I a, I b) {
    return _mm512_permutex2var_epi32(a, _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31),
                                     b);
  }
  static I maddubs(I u8, I s8) { return _mm512_maddubs_epi16(u8, s8); }
  static I ones16() { return _mm512_set1_epi16(1); }

  // --- float lanes
  static F zero_f() { return _mm512_setzero_ps(); }
  static F set1_f(float v) { return _mm512_set1_ps(v); }
  static F load_f(const float* p) { return _mm512_loadu_ps(p); }
  static void store_f(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F add_f(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul_f(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div_f(F a, F b) { return _mm512_div_ps(a, b); }
  static F min_f(F a, F b) { return _mm512_min_ps(a, b); }
  static F max_f(F a, F b) { return _mm512_max_ps(a, b); }
  static __mmask16 lane_mask(int lo, int hi) {
    return static_cast<__mmask16>((0xffffu >> (16 - hi)) & (0xffffu << lo));
  }
  static F load_f_lanes(const float* p, int lo, int hi) { return _mm512_maskz_loadu_ps(lane_mask(lo, hi), p); }
  static void store_f_lanes(float* p, F v, int lo, int hi) { _mm512_mask_storeu_ps(p, lane_mask(lo, hi), v); }
  // The same for int32 lanes, through the float forms (bit moves only).
  static I load_lanes(const int32_t* p, int lo, int hi) {
    return _mm512_castps_si512(load_f_lanes(reinterpret_cast<const float*>(p), lo, hi));
  }
  static void store_lanes(int32_t* p, I v, int lo, int hi) {
    store_f_lanes(reinterpret_cast<float*>(p), _mm512_castsi512_ps(v), lo, hi);
  }
  static F round_even(F v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F to_float(I v) { return _mm512_cvtepi32_ps(v); }
  static I truncate(F v) { return _mm512_cvttps_epi32(v); }
  static __m256 high_half(F v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
  // Lanes never hold NaN or -0 where these are used (x86_elementwise.h), so
  // the order of the reduction does not matter.
  static float hmin(F v) { return Ymm::hmin(_mm256_min_ps(_mm512_castps512_ps256(v), high_half(v))); }
  static float hmax(F v) { return Ymm::hmax(_mm256_max_ps(_mm512_castps512_ps256(v), high_half(v))); }

  // One vector of int32 lanes in 0..255 narrowed to 16 bytes (vpmovdb).
  static constexpr int kBytesPerStore = 16;
  template <class Quant>
  static void store_u8(uint8_t* q, Quant quant) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(quant(0)));
  }
};

}  // namespace
}  // namespace edgeopt
