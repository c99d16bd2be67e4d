// AVX2 + FMA CNN kernels: the row primitives (cnn_rows.h), activations with a
// vector exp_f32, and the depthwise convolution. Element-wise code repeats
// activation.h's float operations in its order (no FMA there), so it is
// bit-identical to the scalar table; the depthwise kernel uses FMA. Concat,
// split, pad, transpose and LRN are the scalar table's. See avx2.h for the
// rules on target attributes.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "../core/activation.h"
#include "../core/cnn_conv.h"
#include "../core/cnn_rows.h"
#include "avx2.h"

namespace edgeopt {
namespace {

// --- Vectors ---

// Loads/stores of the first n (< 8) lanes; the rest read as 0.
alignas(32) const int32_t kMaskSource[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
EDGEOPT_AVX2 inline __m256i tail_mask(int64_t n) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskSource + 8 - n));
}

// clamp_f32: lo > v ? lo : v, then hi < t ? hi : t.
EDGEOPT_AVX2 inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }

EDGEOPT_AVX2 inline __m256 exp8(__m256 x) {
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

EDGEOPT_AVX2 inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 neg = _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(neg)));
}

EDGEOPT_AVX2 inline __m256 tanh8(__m256 x) {
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

EDGEOPT_AVX2 inline ActVec act_vec(const Activation& a) {
  const ClampBounds c = clamp_bounds(a);
  return {a.kind, _mm256_set1_ps(a.alpha), _mm256_set1_ps(a.beta), _mm256_set1_ps(c.lo), _mm256_set1_ps(c.hi)};
}

EDGEOPT_AVX2 inline __m256 act8(__m256 v, const ActVec& a) {
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
EDGEOPT_AVX2 void activation_loop(const float* x, float* y, size_t n, const ActVec& a) {
  ActVec av = a;
  av.kind = K;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, act8(_mm256_loadu_ps(x + i), av));
  if (i < n) {
    const __m256i m = tail_mask(static_cast<int64_t>(n - i));
    _mm256_maskstore_ps(y + i, m, act8(_mm256_maskload_ps(x + i, m), av));
  }
}

EDGEOPT_AVX2 void activation_f32(const float* x, float* y, size_t n, const Activation& act) {
  const ActVec a = act_vec(act);
  switch (act.kind) {
    case ActKind::None:
    case ActKind::Relu:
    case ActKind::Clip:
      return activation_loop<ActKind::Clip>(x, y, n, a);
    case ActKind::LeakyRelu:
      return activation_loop<ActKind::LeakyRelu>(x, y, n, a);
    case ActKind::HardSigmoid:
      return activation_loop<ActKind::HardSigmoid>(x, y, n, a);
    case ActKind::HardSwish:
      return activation_loop<ActKind::HardSwish>(x, y, n, a);
    case ActKind::Sigmoid:
      return activation_loop<ActKind::Sigmoid>(x, y, n, a);
    case ActKind::Tanh:
      return activation_loop<ActKind::Tanh>(x, y, n, a);
  }
}

// --- Row primitives ---

// y[i] = op(y[i], x[i]) for a commutative-free op given as a lambda on vectors.
template <typename Op>
EDGEOPT_AVX2 inline void row_op(float* y, const float* x, int64_t n, Op op) {
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
  EDGEOPT_AVX2 __m256 operator()(__m256 y, __m256 x) const { return _mm256_max_ps(x, y); }
};
struct AddOp {
  EDGEOPT_AVX2 __m256 operator()(__m256 y, __m256 x) const { return _mm256_add_ps(y, x); }
};
struct DivOp {
  __m256 d;
  EDGEOPT_AVX2 __m256 operator()(__m256 y, __m256) const { return _mm256_div_ps(y, d); }
};
struct ExpSubOp {
  __m256 m;
  EDGEOPT_AVX2 __m256 operator()(__m256, __m256 x) const { return exp8(_mm256_sub_ps(x, m)); }
};

EDGEOPT_AVX2 void max_row(float* y, const float* x, int64_t n) { row_op(y, x, n, MaxOp{}); }
EDGEOPT_AVX2 void add_row(float* y, const float* x, int64_t n) { row_op(y, x, n, AddOp{}); }
EDGEOPT_AVX2 void div_row(float* y, int64_t n, float d) { row_op(y, y, n, DivOp{_mm256_set1_ps(d)}); }
EDGEOPT_AVX2 void exp_sub_row(const float* x, float* y, int64_t n, float m) {
  row_op(y, x, n, ExpSubOp{_mm256_set1_ps(m)});
}

template <BinaryFn F>
EDGEOPT_AVX2 inline __m256 apply8(__m256 a, __m256 b) {
  if (F == BinaryFn::Add) return _mm256_add_ps(a, b);
  if (F == BinaryFn::Sub) return _mm256_sub_ps(a, b);
  if (F == BinaryFn::Mul) return _mm256_mul_ps(a, b);
  return _mm256_div_ps(a, b);
}

// Strides 1 or 0 per operand (0: a broadcast scalar).
template <BinaryFn F>
EDGEOPT_AVX2 void binary_unit(const float* a, bool a_vec, const float* b, bool b_vec, float* y, int64_t n,
                              ClampBounds c) {
  const __m256 lo = _mm256_set1_ps(c.lo), hi = _mm256_set1_ps(c.hi);
  const __m256 as = _mm256_set1_ps(a[0]), bs = _mm256_set1_ps(b[0]);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 av = a_vec ? _mm256_loadu_ps(a + i) : as, bv = b_vec ? _mm256_loadu_ps(b + i) : bs;
    _mm256_storeu_ps(y + i, clamp8(apply8<F>(av, bv), lo, hi));
  }
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    const __m256 av = a_vec ? _mm256_maskload_ps(a + i, m) : as, bv = b_vec ? _mm256_maskload_ps(b + i, m) : bs;
    _mm256_maskstore_ps(y + i, m, clamp8(apply8<F>(av, bv), lo, hi));
  }
}

EDGEOPT_AVX2 void binary_row(BinaryFn fn, const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n,
                             ClampBounds c) {
  if ((as != 0 && as != 1) || (bs != 0 && bs != 1))
    return scalar_cnn_row_ops().binary(fn, a, as, b, bs, y, n, c);  // rare: strided rows
  switch (fn) {
    case BinaryFn::Add:
      return binary_unit<BinaryFn::Add>(a, as, b, bs, y, n, c);
    case BinaryFn::Sub:
      return binary_unit<BinaryFn::Sub>(a, as, b, bs, y, n, c);
    case BinaryFn::Mul:
      return binary_unit<BinaryFn::Mul>(a, as, b, bs, y, n, c);
    case BinaryFn::Div:
      return binary_unit<BinaryFn::Div>(a, as, b, bs, y, n, c);
  }
}

const CnnRowOps kRows = {max_row, add_row, div_row, exp_sub_row, binary_row, activation_f32};

// --- Depthwise convolution ---

// Padding taps point into zeros; channels run in strips of at most this many,
// each strip's tap pointers rebased to the strip.
constexpr int kStrip = 1024;
alignas(64) const float kZeros[kStrip] = {};

// One output pixel, channels [0, n) of a strip: the taps' input pointers,
// weights (row stride ws, zero-padded to a multiple of 16), bias.
template <int T>
EDGEOPT_MICROKERNEL void depthwise_pixel(const float* const* in, int taps, const float* w, int ws, const float* bias,
                                         float* y, int n, __m256 lo, __m256 hi) {
  const int t_count = T > 0 ? T : taps;
  int c = 0;
  for (; c + 16 <= n; c += 16) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    EDGEOPT_UNROLL
    for (int t = 0; t < t_count; ++t) {
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(in[t] + c), _mm256_loadu_ps(w + t * ws + c), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(in[t] + c + 8), _mm256_loadu_ps(w + t * ws + c + 8), acc1);
    }
    _mm256_storeu_ps(y + c, clamp8(_mm256_add_ps(acc0, _mm256_loadu_ps(bias + c)), lo, hi));
    _mm256_storeu_ps(y + c + 8, clamp8(_mm256_add_ps(acc1, _mm256_loadu_ps(bias + c + 8)), lo, hi));
  }
  for (; c < n; c += 8) {
    const __m256i m = tail_mask(std::min(8, n - c));
    __m256 acc = _mm256_setzero_ps();
    for (int t = 0; t < t_count; ++t)
      acc = _mm256_fmadd_ps(_mm256_maskload_ps(in[t] + c, m), _mm256_maskload_ps(w + t * ws + c, m), acc);
    _mm256_maskstore_ps(y + c, m, clamp8(_mm256_add_ps(acc, _mm256_maskload_ps(bias + c, m)), lo, hi));
  }
}

EDGEOPT_AVX2 void depthwise_f32(const ConvF32Args& a) {
  const PackedConvF32& w = *a.w;
  const ConvShape& s = w.shape;
  const int c_count = s.in_c, taps = s.kh * s.kw;
  const ClampBounds cb = clamp_bounds(w.act);
  const __m256 lo = _mm256_set1_ps(cb.lo), hi = _mm256_set1_ps(cb.hi);
  std::vector<int64_t> offset(taps);  // input offset of each tap, -1 in the padding
  std::vector<const float*> in(taps);
  for (int64_t p = a.pixel_begin; p < a.pixel_end; ++p) {
    const PixelPos pos = pixel_pos(p, s.out_h, s.out_w);
    const float* x = a.x + pos.image * s.in_h * s.in_w * c_count;
    for (int ky = 0, t = 0; ky < s.kh; ++ky) {
      const int iy = pos.oy * s.stride_h - s.pad_top + ky * s.dilation_h;
      for (int kx = 0; kx < s.kw; ++kx, ++t) {
        const int ix = pos.ox * s.stride_w - s.pad_left + kx * s.dilation_w;
        offset[t] = iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w ? -1 : (int64_t{iy} * s.in_w + ix) * c_count;
      }
    }
    float* y = a.y + p * c_count;
    for (int c0 = a.oc_begin; c0 < a.oc_end; c0 += kStrip) {
      const int n = std::min(kStrip, a.oc_end - c0);
      for (int t = 0; t < taps; ++t) in[t] = offset[t] < 0 ? kZeros : x + offset[t] + c0;
      const float* wp = w.depthwise_weights.data() + c0;
      if (taps == 9)
        depthwise_pixel<9>(in.data(), taps, wp, w.channel_stride, w.bias.data() + c0, y + c0, n, lo, hi);
      else if (taps == 25)
        depthwise_pixel<25>(in.data(), taps, wp, w.channel_stride, w.bias.data() + c0, y + c0, n, lo, hi);
      else
        depthwise_pixel<0>(in.data(), taps, wp, w.channel_stride, w.bias.data() + c0, y + c0, n, lo, hi);
    }
    if (!is_clamp(w.act)) activation_f32(y + a.oc_begin, y + a.oc_begin, a.oc_end - a.oc_begin, w.act);
  }
}

// --- The table (loop nests are cnn_rows.cc's, baseline code calling the primitives above) ---

void conv_f32(const ConvF32Args& a) { conv_gemm_f32(avx2_cnn_kernels(), a); }
void maxpool_f32(const PoolF32Args& a) { pool_f32_rows(kRows, PoolKind::Max, a); }
void avgpool_f32(const PoolF32Args& a) { pool_f32_rows(kRows, PoolKind::Average, a); }
void global_avgpool_f32(const GlobalPoolF32Args& a) { global_pool_f32_rows(kRows, PoolKind::Average, a); }
void global_maxpool_f32(const GlobalPoolF32Args& a) { global_pool_f32_rows(kRows, PoolKind::Max, a); }
void binary_f32(const BinaryF32Args& a) { binary_f32_rows(kRows, a); }
void bias_act_f32(float* y, size_t ldy, int64_t rows, int n, const float* bias, const Activation& act) {
  bias_act_f32_rows(kRows, y, ldy, rows, n, bias, act);
}
void softmax_f32(const AxisF32Args& a) { softmax_f32_rows(kRows, a); }
void reduce_mean_f32(const AxisF32Args& a) { reduce_mean_f32_rows(kRows, a); }

CnnKernels make_table() {
  CnnKernels t = scalar_cnn_kernels();  // data movers and LRN
  t.name = "avx2";
  t.conv_f32 = conv_f32;
  t.depthwise_f32 = depthwise_f32;
  t.maxpool_f32 = maxpool_f32;
  t.avgpool_f32 = avgpool_f32;
  t.global_avgpool_f32 = global_avgpool_f32;
  t.global_maxpool_f32 = global_maxpool_f32;
  t.binary_f32 = binary_f32;
  t.activation_f32 = activation_f32;
  t.bias_act_f32 = bias_act_f32;
  t.softmax_f32 = softmax_f32;
  t.reduce_mean_f32 = reduce_mean_f32;
  return t;
}

}  // namespace

const CnnKernels& avx2_cnn_kernels() {
  static const CnnKernels table = make_table();
  return table;
}

}  // namespace edgeopt
#endif
