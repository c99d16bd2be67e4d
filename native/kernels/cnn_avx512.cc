// AVX-512 CNN kernels (F + BW + VL), the `cnn` of the avx512, avx512vnni and
// amx tables: the depthwise and direct convolutions on zmm, 16 channels per
// vector and a masked tail instead of 8-channel steps; Pointwise and Im2col
// convolutions already run the zmm fp32 GEMM of the table that packed their
// weights (x86_gemm_f32.h). Element-wise work (activations, pooling, binary
// ops, softmax, the GEMM epilogue) is the AVX2 table's row primitives: it is
// bit-identical on every table, and memory-bound, so wider vectors buy little.
//
// Numerics as on the AVX2 table: one FMA chain per output in tap (depthwise)
// or K (direct) order, then + bias, then the clamp; within cnn_kernels.h's
// bound of the scalar result.
#if defined(__x86_64__) || defined(_M_X64)
#include <algorithm>

#include "../core/activation.h"
#include "../core/cnn_conv.h"
#include "../core/cnn_rows.h"
#include "../core/cnn_table.h"
#include "x86_isa.h"

EDGEOPT_TARGET_BEGIN(EDGEOPT_ISA_AVX512)
#include "x86_ymm.h"
#include "x86_zmm.h"

namespace edgeopt {
namespace {

using F = __m512;

// clamp_f32 as the other tables compute it: lo > v ? lo : v, then hi < t ? hi : t.
inline F clamp16(F v, F lo, F hi) { return _mm512_min_ps(hi, _mm512_max_ps(lo, v)); }

// The first n (<= 16) lanes.
inline __mmask16 first_lanes(int n) { return Zmm::lane_mask(0, n); }

// Loads and stores of 16 lanes, or of the lanes of `mask` (the rest read as 0).
template <bool kMasked>
inline F load16(const float* p, __mmask16 mask) {
  return kMasked ? _mm512_maskz_loadu_ps(mask, p) : _mm512_loadu_ps(p);
}
template <bool kMasked>
inline void store16(float* p, __mmask16 mask, F v) {
  if (kMasked)
    _mm512_mask_storeu_ps(p, mask, v);
  else
    _mm512_storeu_ps(p, v);
}

// --- Depthwise convolution (the driver is cnn_depthwise.cc) ---

// A border pixel: 16 channels at a time, every channel's taps in one FMA
// chain in tap order; the tail masked (a channel range may start anywhere,
// so weights and bias past it are not padding this call may read).
template <int T, bool kMasked>
inline void depthwise_pixel_block(const DepthwisePixel& p, int c, __mmask16 mask, F lo, F hi) {
  const int taps = T > 0 ? T : p.taps;
  F acc = _mm512_setzero_ps();
  EDGEOPT_UNROLL
  for (int t = 0; t < taps; ++t)
    acc = _mm512_fmadd_ps(load16<kMasked>(p.in[t] + c, mask), load16<kMasked>(p.w + t * p.w_stride + c, mask), acc);
  store16<kMasked>(p.y + c, mask, clamp16(_mm512_add_ps(acc, load16<kMasked>(p.bias + c, mask)), lo, hi));
}

template <int T>
EDGEOPT_MICROKERNEL void depthwise_pixel_taps(const DepthwisePixel& p) {
  const F lo = _mm512_set1_ps(p.clamp.lo), hi = _mm512_set1_ps(p.clamp.hi);
  int c = 0;
  for (; c + 16 <= p.channels; c += 16) depthwise_pixel_block<T, false>(p, c, 0, lo, hi);
  if (c < p.channels) depthwise_pixel_block<T, true>(p, c, first_lanes(p.channels - c), lo, hi);
}

void depthwise_pixel(const DepthwisePixel& p) {
  if (p.taps == 9) return depthwise_pixel_taps<9>(p);
  if (p.taps == 25) return depthwise_pixel_taps<25>(p);
  depthwise_pixel_taps<0>(p);
}

// A row segment: 16 channels at a time, their kh*kw weights held in
// registers while the pixels stream by, kDepthwisePixels at a time: that
// many independent FMA chains keep both FMA pipes busy (KH = KW = 0: any
// kernel size, weights from memory).
constexpr int kDepthwisePixels = 8;

template <int KH, int KW, bool kMasked>
struct DepthwiseRowBlock {
  static constexpr int kTaps = KH > 0 ? KH* KW : 1;
  const DepthwiseRow& r;
  int c;
  __mmask16 mask;
  F wv[kTaps];
  F bias, lo, hi;

  // P pixels from x, y: each pixel's taps in order, so a pixel's result does
  // not depend on how many go together.
  template <int P>
  void pixels(const float* x, float* y) const {
    F acc[P];
    EDGEOPT_UNROLL
    for (int q = 0; q < P; ++q) acc[q] = _mm512_setzero_ps();
    EDGEOPT_UNROLL
    for (int ky = 0; ky < (KH > 0 ? KH : r.kh); ++ky) {
      const float* row = x + r.row_offsets[ky];
      EDGEOPT_UNROLL
      for (int kx = 0; kx < (KW > 0 ? KW : r.kw); ++kx) {
        const F wt = KH > 0 ? wv[ky * KW + kx] : load16<kMasked>(r.w + (ky * r.kw + kx) * r.w_stride + c, mask);
        EDGEOPT_UNROLL
        for (int q = 0; q < P; ++q)
          acc[q] = _mm512_fmadd_ps(load16<kMasked>(row + q * r.pixel_step + kx * r.col_step, mask), wt, acc[q]);
      }
    }
    EDGEOPT_UNROLL
    for (int q = 0; q < P; ++q) store16<kMasked>(y + q * r.y_step, mask, clamp16(_mm512_add_ps(acc[q], bias), lo, hi));
  }
};

template <int KH, int KW, bool kMasked>
EDGEOPT_MICROKERNEL void depthwise_row_block(const DepthwiseRow& r, int c, __mmask16 mask) {
  DepthwiseRowBlock<KH, KW, kMasked> b{r, c, mask, {}, {}, {}, {}};
  if (KH > 0) {
    EDGEOPT_UNROLL
    for (int t = 0; t < b.kTaps; ++t) b.wv[t] = load16<kMasked>(r.w + t * r.w_stride + c, mask);
  }
  b.bias = load16<kMasked>(r.bias + c, mask);
  b.lo = _mm512_set1_ps(r.clamp.lo);
  b.hi = _mm512_set1_ps(r.clamp.hi);
  const float* x = r.x + c;
  float* y = r.y + c;
  int p = 0;
  for (; p + kDepthwisePixels <= r.pixels; p += kDepthwisePixels)
    b.template pixels<kDepthwisePixels>(x + p * r.pixel_step, y + p * r.y_step);
  for (; p < r.pixels; ++p) b.template pixels<1>(x + p * r.pixel_step, y + p * r.y_step);
}

template <int KH, int KW>
void depthwise_row_sized(const DepthwiseRow& r) {
  int c = 0;
  for (; c + 16 <= r.channels; c += 16) depthwise_row_block<KH, KW, false>(r, c, 0);
  if (c < r.channels) depthwise_row_block<KH, KW, true>(r, c, first_lanes(r.channels - c));
}

void depthwise_row(const DepthwiseRow& r) {
  if (r.kh == 3 && r.kw == 3) return depthwise_row_sized<3, 3>(r);
  if (r.kh == 5 && r.kw == 5) return depthwise_row_sized<5, 5>(r);
  depthwise_row_sized<0, 0>(r);
}

// --- Direct convolution (the driver is cnn_direct.cc) ---

// kDirectMaxRows pixels x one tile of 16 channels, one zmm accumulator each:
// one FMA chain per output in K order; the pixels' inputs are broadcast, the
// tile's weights loaded once per K step for all of them.
constexpr int kDirectRows = kDirectMaxRows;

EDGEOPT_MICROKERNEL void direct_tile(const DirectTile& d) {
  F acc[kDirectRows];
  EDGEOPT_UNROLL
  for (int r = 0; r < kDirectRows; ++r) acc[r] = _mm512_setzero_ps();
  const float* w = d.w;
  for (int t = 0; t < d.taps; ++t) {
    const float* px[kDirectRows];
    EDGEOPT_UNROLL
    for (int r = 0; r < kDirectRows; ++r) px[r] = d.in[r * d.taps + t];
    for (int ci = 0; ci < d.in_c; ++ci, w += kDirectTile) {
      const F wv = _mm512_loadu_ps(w);
      EDGEOPT_UNROLL
      for (int r = 0; r < kDirectRows; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(px[r][ci]), wv, acc[r]);
    }
  }
  const F lo = _mm512_set1_ps(d.clamp.lo), hi = _mm512_set1_ps(d.clamp.hi), bias = _mm512_loadu_ps(d.bias);
  // Whole tiles by plain stores: a masked store that misses the cache costs
  // far more than a plain one on some CPUs (Zen).
  const bool whole = d.store_begin == 0 && d.store_end == kDirectTile;
  const __mmask16 mask = Zmm::lane_mask(d.store_begin, d.store_end);
  EDGEOPT_UNROLL
  for (int r = 0; r < kDirectRows; ++r) {
    if (r >= d.rows) break;
    const F v = clamp16(_mm512_add_ps(acc[r], bias), lo, hi);
    if (whole)
      _mm512_storeu_ps(d.y + r * d.y_step, v);
    else
      _mm512_mask_storeu_ps(d.y + r * d.y_step, mask, v);
  }
}

}  // namespace
}  // namespace edgeopt
EDGEOPT_TARGET_END

namespace edgeopt {
namespace {

// Activations other than a clamp, after a convolution: the AVX2 table's.
void activation_f32(const float* x, float* y, size_t n, const Activation& act) {
  kAvx2CnnRowOps.activation(x, y, n, act);
}

const DepthwiseMicrokernels kDepthwise = {depthwise_row, depthwise_pixel, activation_f32};
const DirectMicrokernel kDirect = {kDirectRows, direct_tile, activation_f32};

}  // namespace

const CnnKernels& avx512_cnn_kernels() {
  static const CnnKernels table = simd_cnn_table<kAvx2CnnRowOps, kDepthwise, kDirect>("avx512", /*direct_max_k=*/32);
  return table;
}

}  // namespace edgeopt
#endif
