// AVX2 + FMA CNN kernels: the row primitives (cnn_rows.h), activations with a
// vector exp_f32, and the depthwise convolution. Element-wise code repeats
// activation.h's float operations in its order (no FMA there), so it is
// bit-identical to the scalar table; the depthwise and direct kernels use
// FMA. Concat, split, pad, transpose and LRN are the scalar table's.
//
// Compiled for the baseline x86-64: only functions marked EDGEOPT_CNN_AVX2
// use AVX2/FMA (function attributes, no file-wide target pragma, so no inline
// function from a header gets an AVX2 copy a baseline caller could link to),
// and dispatch calls this table only on a CPU with AVX2 and FMA. The newer x86
// tables reuse its row primitives (cnn_avx512.cc), avxvnni the whole table.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>

#include "../core/activation.h"
#include "../core/cnn_conv.h"
#include "../core/cnn_rows.h"
#include "../core/cnn_table.h"

#define EDGEOPT_CNN_AVX2 __attribute__((target("avx2,fma")))
// Accumulator arrays must become registers: unroll their loops fully, and
// compile each microkernel on its own (inlined into a loop nest, GCC spills).
#define EDGEOPT_CNN_UNROLL _Pragma("GCC unroll 16")
#define EDGEOPT_CNN_MICROKERNEL __attribute__((target("avx2,fma"), noinline))

namespace edgeopt {
namespace {

// --- Vectors ---

// Loads/stores of the first n (< 8) lanes; the rest read as 0.
alignas(32) const int32_t kMaskSource[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
EDGEOPT_CNN_AVX2 inline __m256i tail_mask(int64_t n) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskSource + 8 - n));
}

// clamp_f32: lo > v ? lo : v, then hi < t ? hi : t.
EDGEOPT_CNN_AVX2 inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) {
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

EDGEOPT_CNN_AVX2 inline __m256 exp8(__m256 x) {
  using namespace expf32;
  const __m256 over = _mm256_cmp_ps(x, _mm256_set1_ps(kHi), _CMP_GT_OQ);
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(kLo), _CMP_LT_OQ);
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(kLn2Hi)));
  r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(kLn2Lo)));
  __m256 p = _mm256_set1_ps(kP4);
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP3));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP2));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP1));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP0));
  p = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  // Lanes outside [kLo, kHi] convert to garbage here and are replaced below.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), over);
  return _mm256_blendv_ps(y, _mm256_setzero_ps(), under);
}

EDGEOPT_CNN_AVX2 inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 neg = _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(neg)));
}

EDGEOPT_CNN_AVX2 inline __m256 tanh8(__m256 x) {
  using namespace tanhf32;
  const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
  const __m256 a = _mm256_andnot_ps(sign, x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(kT4);
  p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(kT3));
  p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(kT2));
  p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(kT1));
  const __m256 small = _mm256_add_ps(x, _mm256_mul_ps(_mm256_mul_ps(x, z), p));
  const __m256 e = exp8(_mm256_mul_ps(a, _mm256_set1_ps(-2.0f)));
  const __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  const __m256 big = _mm256_or_ps(t, _mm256_and_ps(x, sign));
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(kSmall), _CMP_LT_OQ));
}

// --- Activations ---

struct ActVec {
  ActKind kind;
  __m256 alpha, beta, lo, hi;
};

EDGEOPT_CNN_AVX2 inline ActVec act_vec(const Activation& a) {
  const ClampBounds c = clamp_bounds(a);
  return {a.kind, _mm256_set1_ps(a.alpha), _mm256_set1_ps(a.beta), _mm256_set1_ps(c.lo), _mm256_set1_ps(c.hi)};
}

EDGEOPT_CNN_AVX2 inline __m256 act8(__m256 v, const ActVec& a) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  switch (a.kind) {
    case ActKind::None:
    case ActKind::Relu:
    case ActKind::Clip:
      return clamp8(v, a.lo, a.hi);
    case ActKind::LeakyRelu:
      return _mm256_blendv_ps(v, _mm256_mul_ps(a.alpha, v), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    case ActKind::HardSigmoid:
      return clamp8(_mm256_add_ps(_mm256_mul_ps(a.alpha, v), a.beta), zero, one);
    case ActKind::HardSwish: {
      const __m256 t = _mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps(kSixth)), _mm256_set1_ps(0.5f));
      return _mm256_mul_ps(v, clamp8(t, zero, one));
    }
    case ActKind::Sigmoid:
      return sigmoid8(v);
    case ActKind::Tanh:
      return tanh8(v);
  }
  return v;
}

// One loop per kind, so the switch is outside the loop.
template <ActKind K>
struct ActivationLoop {
  static EDGEOPT_CNN_AVX2 void run(const float* x, float* y, size_t n, const Activation& act) {
    ActVec av = act_vec(act);
    av.kind = K;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, act8(_mm256_loadu_ps(x + i), av));
    if (i < n) {
      const __m256i m = tail_mask(static_cast<int64_t>(n - i));
      _mm256_maskstore_ps(y + i, m, act8(_mm256_maskload_ps(x + i, m), av));
    }
  }
};

void activation_f32(const float* x, float* y, size_t n, const Activation& act) {
  activation_by_kind<ActivationLoop>(x, y, n, act);
}

// --- Row primitives ---

// y[i] = op(y[i], x[i]) for a commutative-free op given as a lambda on vectors.
template <typename Op>
EDGEOPT_CNN_AVX2 inline void row_op(float* y, const float* x, int64_t n, Op op) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, op(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, op(_mm256_maskload_ps(y + i, m), _mm256_maskload_ps(x + i, m)));
  }
}

// Functors rather than lambdas: a lambda cannot carry the target attribute.
// _mm256_max_ps(x, y) is x > y ? x : y, the scalar max_row exactly.
struct MaxOp {
  EDGEOPT_CNN_AVX2 __m256 operator()(__m256 y, __m256 x) const { return _mm256_max_ps(x, y); }
};
struct AddOp {
  EDGEOPT_CNN_AVX2 __m256 operator()(__m256 y, __m256 x) const { return _mm256_add_ps(y, x); }
};
struct DivOp {
  __m256 d;
  EDGEOPT_CNN_AVX2 __m256 operator()(__m256 y, __m256) const { return _mm256_div_ps(y, d); }
};
struct ExpSubOp {
  __m256 m;
  EDGEOPT_CNN_AVX2 __m256 operator()(__m256, __m256 x) const { return exp8(_mm256_sub_ps(x, m)); }
};

EDGEOPT_CNN_AVX2 void max_row(float* y, const float* x, int64_t n) { row_op(y, x, n, MaxOp{}); }
EDGEOPT_CNN_AVX2 void add_row(float* y, const float* x, int64_t n) { row_op(y, x, n, AddOp{}); }
EDGEOPT_CNN_AVX2 void div_row(float* y, int64_t n, float d) { row_op(y, y, n, DivOp{_mm256_set1_ps(d)}); }
EDGEOPT_CNN_AVX2 void exp_sub_row(const float* x, float* y, int64_t n, float m) {
  row_op(y, x, n, ExpSubOp{_mm256_set1_ps(m)});
}

template <BinaryFn F>
EDGEOPT_CNN_AVX2 inline __m256 apply8(__m256 a, __m256 b) {
  if (F == BinaryFn::Add) return _mm256_add_ps(a, b);
  if (F == BinaryFn::Sub) return _mm256_sub_ps(a, b);
  if (F == BinaryFn::Mul) return _mm256_mul_ps(a, b);
  return _mm256_div_ps(a, b);
}

// Strides 1 or 0 per operand (0: a broadcast scalar).
template <BinaryFn F>
struct BinaryUnit {
  static EDGEOPT_CNN_AVX2 void run(const float* a, int64_t a_step, const float* b, int64_t b_step, float* y, int64_t n,
                                   ClampBounds c) {
    const __m256 lo = _mm256_set1_ps(c.lo), hi = _mm256_set1_ps(c.hi);
    const __m256 as = _mm256_set1_ps(a[0]), bs = _mm256_set1_ps(b[0]);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 av = a_step ? _mm256_loadu_ps(a + i) : as, bv = b_step ? _mm256_loadu_ps(b + i) : bs;
      _mm256_storeu_ps(y + i, clamp8(apply8<F>(av, bv), lo, hi));
    }
    if (i < n) {
      const __m256i m = tail_mask(n - i);
      const __m256 av = a_step ? _mm256_maskload_ps(a + i, m) : as, bv = b_step ? _mm256_maskload_ps(b + i, m) : bs;
      _mm256_maskstore_ps(y + i, m, clamp8(apply8<F>(av, bv), lo, hi));
    }
  }
};

}  // namespace

const CnnRowOps kAvx2CnnRowOps = {max_row, add_row, div_row, exp_sub_row, binary_by_fn<BinaryUnit>, activation_f32};

namespace {

// --- Depthwise convolution (the driver is cnn_depthwise.cc) ---

// A border pixel: channels in blocks of 16, then 8, then a masked tail; every
// channel's taps go through one FMA chain in tap order, whatever its block.
template <int T>
EDGEOPT_CNN_MICROKERNEL void depthwise_pixel_taps(const DepthwisePixel& p) {
  const int taps = T > 0 ? T : p.taps, ws = p.w_stride;
  const __m256 lo = _mm256_set1_ps(p.clamp.lo), hi = _mm256_set1_ps(p.clamp.hi);
  int c = 0;
  for (; c + 16 <= p.channels; c += 16) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    EDGEOPT_CNN_UNROLL
    for (int t = 0; t < taps; ++t) {
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p.in[t] + c), _mm256_loadu_ps(p.w + t * ws + c), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(p.in[t] + c + 8), _mm256_loadu_ps(p.w + t * ws + c + 8), acc1);
    }
    _mm256_storeu_ps(p.y + c, clamp8(_mm256_add_ps(acc0, _mm256_loadu_ps(p.bias + c)), lo, hi));
    _mm256_storeu_ps(p.y + c + 8, clamp8(_mm256_add_ps(acc1, _mm256_loadu_ps(p.bias + c + 8)), lo, hi));
  }
  for (; c < p.channels; c += 8) {
    const __m256i m = tail_mask(std::min(8, p.channels - c));
    __m256 acc = _mm256_setzero_ps();
    for (int t = 0; t < taps; ++t)
      acc = _mm256_fmadd_ps(_mm256_maskload_ps(p.in[t] + c, m), _mm256_maskload_ps(p.w + t * ws + c, m), acc);
    _mm256_maskstore_ps(p.y + c, m, clamp8(_mm256_add_ps(acc, _mm256_maskload_ps(p.bias + c, m)), lo, hi));
  }
}

void depthwise_pixel(const DepthwisePixel& p) {
  if (p.taps == 9) return depthwise_pixel_taps<9>(p);
  if (p.taps == 25) return depthwise_pixel_taps<25>(p);
  depthwise_pixel_taps<0>(p);
}

template <int KH, int KW, bool kMasked>
struct DepthwiseRowBlock {
  static constexpr int kTaps = KH > 0 ? KH* KW : 1;
  const DepthwiseRow& r;
  int kh, kw, c;
  __m256i mask;
  __m256 wv[kTaps];
  __m256 bias, lo, hi;

  EDGEOPT_CNN_AVX2 __m256 load(const float* q) const {
    return kMasked ? _mm256_maskload_ps(q, mask) : _mm256_loadu_ps(q);
  }

  // P pixels from x, y: independent FMA chains (each pixel's taps in order,
  // so a pixel's result does not depend on how many go together).
  template <int P>
  EDGEOPT_CNN_AVX2 void pixels(const float* x, float* y) const {
    __m256 acc[P];
    EDGEOPT_CNN_UNROLL
    for (int q = 0; q < P; ++q) acc[q] = _mm256_setzero_ps();
    EDGEOPT_CNN_UNROLL
    for (int ky = 0; ky < (KH > 0 ? KH : kh); ++ky) {
      const float* row = x + r.row_offsets[ky];
      EDGEOPT_CNN_UNROLL
      for (int kx = 0; kx < (KW > 0 ? KW : kw); ++kx) {
        const __m256 wt = KH > 0 ? wv[ky * KW + kx] : load(r.w + (ky * kw + kx) * r.w_stride + c);
        EDGEOPT_CNN_UNROLL
        for (int q = 0; q < P; ++q)
          acc[q] = _mm256_fmadd_ps(load(row + q * r.pixel_step + kx * r.col_step), wt, acc[q]);
      }
    }
    EDGEOPT_CNN_UNROLL
    for (int q = 0; q < P; ++q) {
      const __m256 v = clamp8(_mm256_add_ps(acc[q], bias), lo, hi);
      if (kMasked)
        _mm256_maskstore_ps(y + q * r.y_step, mask, v);
      else
        _mm256_storeu_ps(y + q * r.y_step, v);
    }
  }
};

// A row segment: 8 channels at a time, their kh*kw weights held in registers
// while the pixels stream by, kPixels at a time (KH = KW = 0: any kernel
// size, weights from memory).
constexpr int kDepthwisePixels = 4;

template <int KH, int KW, bool kMasked>
EDGEOPT_CNN_MICROKERNEL void depthwise_row_block(const DepthwiseRow& r, int c, __m256i mask) {
  DepthwiseRowBlock<KH, KW, kMasked> b{r, r.kh, r.kw, c, mask, {}, {}, {}, {}};
  if (KH > 0) {
    EDGEOPT_CNN_UNROLL
    for (int t = 0; t < b.kTaps; ++t) b.wv[t] = b.load(r.w + t * r.w_stride + c);
  }
  b.bias = b.load(r.bias + c);
  b.lo = _mm256_set1_ps(r.clamp.lo);
  b.hi = _mm256_set1_ps(r.clamp.hi);
  const float* x = r.x + c;
  float* y = r.y + c;
  int p = 0;
  for (; p + kDepthwisePixels <= r.pixels; p += kDepthwisePixels)
    b.template pixels<kDepthwisePixels>(x + p * r.pixel_step, y + p * r.y_step);
  for (; p < r.pixels; ++p) b.template pixels<1>(x + p * r.pixel_step, y + p * r.y_step);
}

template <int KH, int KW>
EDGEOPT_CNN_AVX2 void depthwise_row_sized(const DepthwiseRow& r) {
  int c = 0;
  for (; c + 8 <= r.channels; c += 8) depthwise_row_block<KH, KW, false>(r, c, _mm256_setzero_si256());
  if (c < r.channels) depthwise_row_block<KH, KW, true>(r, c, tail_mask(r.channels - c));
}

void depthwise_row(const DepthwiseRow& r) {
  if (r.kh == 3 && r.kw == 3) return depthwise_row_sized<3, 3>(r);
  if (r.kh == 5 && r.kw == 5) return depthwise_row_sized<5, 5>(r);
  depthwise_row_sized<0, 0>(r);
}

// --- Direct convolution (the driver is cnn_direct.cc) ---

// Six pixels x one tile of 16 channels: 12 accumulators, one FMA chain per
// output in K order; the pixels' inputs are broadcast, the weights loaded.
constexpr int kDirectRows = 6;

EDGEOPT_CNN_MICROKERNEL void direct_tile(const DirectTile& d) {
  __m256 acc[kDirectRows][2];
  EDGEOPT_CNN_UNROLL
  for (int r = 0; r < kDirectRows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const float* w = d.w;
  for (int t = 0; t < d.taps; ++t) {
    const float* px[kDirectRows];
    EDGEOPT_CNN_UNROLL
    for (int r = 0; r < kDirectRows; ++r) px[r] = d.in[r * d.taps + t];
    for (int ci = 0; ci < d.in_c; ++ci, w += kDirectTile) {
      const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
      EDGEOPT_CNN_UNROLL
      for (int r = 0; r < kDirectRows; ++r) {
        const __m256 xv = _mm256_broadcast_ss(px[r] + ci);
        acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
      }
    }
  }
  const __m256 lo = _mm256_set1_ps(d.clamp.lo), hi = _mm256_set1_ps(d.clamp.hi);
  const __m256 b0 = _mm256_loadu_ps(d.bias), b1 = _mm256_loadu_ps(d.bias + 8);
  const bool whole = d.store_begin == 0 && d.store_end == kDirectTile;
  EDGEOPT_CNN_UNROLL
  for (int r = 0; r < kDirectRows; ++r) {
    if (r >= d.rows) break;
    const __m256 v0 = clamp8(_mm256_add_ps(acc[r][0], b0), lo, hi), v1 = clamp8(_mm256_add_ps(acc[r][1], b1), lo, hi);
    float* y = d.y + r * d.y_step;
    if (whole) {
      _mm256_storeu_ps(y, v0);
      _mm256_storeu_ps(y + 8, v1);
    } else {
      alignas(32) float tmp[kDirectTile];
      _mm256_store_ps(tmp, v0);
      _mm256_store_ps(tmp + 8, v1);
      for (int c = d.store_begin; c < d.store_end; ++c) y[c] = tmp[c];
    }
  }
}

// --- The table ---

const DepthwiseMicrokernels kDepthwise = {depthwise_row, depthwise_pixel, activation_f32};
const DirectMicrokernel kDirect = {kDirectRows, direct_tile, activation_f32};

}  // namespace

const CnnKernels& avx2_cnn_kernels() {
  static const CnnKernels table = simd_cnn_table<kAvx2CnnRowOps, kDepthwise, kDirect>("avx2", /*direct_max_k=*/32);
  return table;
}

}  // namespace edgeopt
#endif
