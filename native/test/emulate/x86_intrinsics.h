// Test-only: the x86 intrinsics of native/kernels in portable code, for the
// emulated build (EDGEOPT_EMULATE_X86; see native/kernels/x86_isa.h), which
// `npm run test:native` links into its own test binaries and never into the
// addon. SIMDe (Debian: libsimde-dev) implements SSE through AVX-512 and
// VNNI under the intrinsics' own names; what its 0.7 release lacks is filled
// in below from Intel's pseudo-code, and the AMX tiles come from amx_tiles.h.
#pragma once
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/fma.h>

#include <cstdint>
#include <cstring>

#include "amx_tiles.h"

// The opmask type under its native name (SIMDe 0.7.4 has no alias; a
// repeated typedef of the same type is harmless where a later one does).
typedef simde__mmask16 __mmask16;

// SIMDe 0.7.4's alias of _mm512_madd_epi16 takes the masked form's 4
// arguments (its function is right), and _MM_FROUND_NO_EXC has no alias.
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif

// AVX-VNNI's spelling of the VEX vpdpbusd: the same operation as AVX512-VNNI's on ymm.
#define _mm256_dpbusd_avx_epi32(src, a, b) _mm256_dpbusd_epi32(src, a, b)

namespace edgeopt::emulate {

template <typename Out, typename In, int N, typename Vec, typename F>
inline Vec lanes(const In (&in)[N], F f) {
  Out out[N];
  for (int i = 0; i < N; ++i) out[i] = f(in[i]);
  Vec v;
  std::memcpy(&v, out, sizeof v);
  return v;
}

// A lane-wise conversion of one vector's N lanes (the VPMOVSX/VPMOVZX family).
template <typename Out, typename In, int N, typename VecOut, typename VecIn>
inline VecOut widen(VecIn a) {
  In in[N];
  std::memcpy(in, &a, sizeof in);
  return lanes<Out, In, N, VecOut>(in, [](In v) { return static_cast<Out>(v); });
}

// f over the 16 lanes of type T of two zmm registers, lane by lane.
template <typename T, typename F>
inline simde__m512i zip16(simde__m512i a, simde__m512i b, F f) {
  T x[16], y[16];
  std::memcpy(x, &a, sizeof x);
  std::memcpy(y, &b, sizeof y);
  for (int i = 0; i < 16; i++) x[i] = f(x[i], y[i]);
  simde__m512i r;
  std::memcpy(&r, x, sizeof r);
  return r;
}

}  // namespace edgeopt::emulate

// Masked loads and stores touch only the lanes the mask selects (the x86
// kernels rely on it for a partial tile at the end of a buffer); SIMDe 0.7's
// AVX maskload reads all 8 lanes, and it lacks the AVX-512 forms.
inline simde__m256 edgeopt_mm256_maskload_ps(const float* p, simde__m256i mask) {
  int32_t m[8];
  float out[8];
  std::memcpy(m, &mask, sizeof m);
  for (int i = 0; i < 8; ++i) out[i] = m[i] < 0 ? p[i] : 0.0f;
  return simde_mm256_loadu_ps(out);
}
inline void edgeopt_mm256_maskstore_ps(float* p, simde__m256i mask, simde__m256 v) {
  int32_t m[8];
  float in[8];
  std::memcpy(m, &mask, sizeof m);
  std::memcpy(in, &v, sizeof in);
  for (int i = 0; i < 8; ++i)
    if (m[i] < 0) p[i] = in[i];
}
inline simde__m512 edgeopt_mm512_maskz_loadu_ps(simde__mmask16 k, const float* p) {
  float out[16];
  for (int i = 0; i < 16; ++i) out[i] = (k >> i) & 1 ? p[i] : 0.0f;
  return simde_mm512_loadu_ps(out);
}
inline void edgeopt_mm512_mask_storeu_ps(float* p, simde__mmask16 k, simde__m512 v) {
  float in[16];
  std::memcpy(in, &v, sizeof in);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) p[i] = in[i];
}
#undef _mm256_maskload_ps
#undef _mm256_maskstore_ps
#undef _mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#define _mm256_maskload_ps(p, mask) edgeopt_mm256_maskload_ps(p, mask)
#define _mm256_maskstore_ps(p, mask, v) edgeopt_mm256_maskstore_ps(p, mask, v)
#define _mm512_maskz_loadu_ps(k, p) edgeopt_mm512_maskz_loadu_ps(k, p)
#define _mm512_mask_storeu_ps(p, k, v) edgeopt_mm512_mask_storeu_ps(p, k, v)

#ifndef _mm512_cvtepi32_ps  // VCVTDQ2PS: int32 -> float, rounding to nearest
inline simde__m512 edgeopt_mm512_cvtepi32_ps(simde__m512i a) {
  int32_t in[16];
  std::memcpy(in, &a, sizeof in);
  return edgeopt::emulate::lanes<float, int32_t, 16, simde__m512>(in, [](int32_t v) { return static_cast<float>(v); });
}
#define _mm512_cvtepi32_ps(a) edgeopt_mm512_cvtepi32_ps(a)
#endif

#ifndef _mm512_cvttps_epi32  // VCVTTPS2DQ: truncation; NaN and out of range give 0x80000000
inline simde__m512i edgeopt_mm512_cvttps_epi32(simde__m512 a) {
  float in[16];
  std::memcpy(in, &a, sizeof in);
  return edgeopt::emulate::lanes<int32_t, float, 16, simde__m512i>(
      in, [](float v) { return v >= -2147483648.0f && v < 2147483648.0f ? static_cast<int32_t>(v) : INT32_MIN; });
}
#define _mm512_cvttps_epi32(a) edgeopt_mm512_cvttps_epi32(a)
#endif

#ifndef _mm512_cvtepi32_epi8  // VPMOVDB: the low byte of each int32
inline simde__m128i edgeopt_mm512_cvtepi32_epi8(simde__m512i a) {
  int32_t in[16];
  std::memcpy(in, &a, sizeof in);
  return edgeopt::emulate::lanes<uint8_t, int32_t, 16, simde__m128i>(
      in, [](int32_t v) { return static_cast<uint8_t>(static_cast<uint32_t>(v)); });
}
#define _mm512_cvtepi32_epi8(a) edgeopt_mm512_cvtepi32_epi8(a)
#endif

#ifndef _mm512_cvtepu8_epi16  // VPMOVZXBW: 32 bytes zero-extended to int16
inline simde__m512i edgeopt_mm512_cvtepu8_epi16(simde__m256i a) {
  return edgeopt::emulate::widen<uint16_t, uint8_t, 32, simde__m512i>(a);
}
#define _mm512_cvtepu8_epi16(a) edgeopt_mm512_cvtepu8_epi16(a)
#endif

#ifndef _mm512_cvtepi8_epi32  // VPMOVSXBD: 16 bytes sign-extended to int32
inline simde__m512i edgeopt_mm512_cvtepi8_epi32(simde__m128i a) {
  return edgeopt::emulate::widen<int32_t, int8_t, 16, simde__m512i>(a);
}
#define _mm512_cvtepi8_epi32(a) edgeopt_mm512_cvtepi8_epi32(a)
#endif

#ifndef _mm512_cvtepi16_epi32  // VPMOVSXWD: 16 int16 sign-extended to int32
inline simde__m512i edgeopt_mm512_cvtepi16_epi32(simde__m256i a) {
  return edgeopt::emulate::widen<int32_t, int16_t, 16, simde__m512i>(a);
}
#define _mm512_cvtepi16_epi32(a) edgeopt_mm512_cvtepi16_epi32(a)
#endif

#ifndef _mm512_srav_epi32  // VPSRAVD: arithmetic shift per lane; counts above 31 fill with the sign
inline simde__m512i edgeopt_mm512_srav_epi32(simde__m512i a, simde__m512i count) {
  return edgeopt::emulate::zip16<int32_t>(
      a, count, [](int32_t v, int32_t c) { return v >> (static_cast<uint32_t>(c) > 31 ? 31 : c); });
}
#define _mm512_srav_epi32(a, count) edgeopt_mm512_srav_epi32(a, count)
#endif

// VPADDD/VPSUBD wrap modulo 2^32; SIMDe's portable path adds int32 lanes in
// C, which is undefined on overflow (UBSan stops the requantize test at
// INT32_MIN - 1), so these two go through uint32.
#undef _mm512_add_epi32
#undef _mm512_sub_epi32
#define _mm512_add_epi32(a, b) edgeopt::emulate::zip16<uint32_t>(a, b, [](uint32_t x, uint32_t y) { return x + y; })
#define _mm512_sub_epi32(a, b) edgeopt::emulate::zip16<uint32_t>(a, b, [](uint32_t x, uint32_t y) { return x - y; })
