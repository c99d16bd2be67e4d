// NEON CNN kernels (armv8.0-a; the neon, dotprod and i8mm tables share them):
// the row primitives (cnn_rows.h), activations with a vector exp_f32, and the
// depthwise convolution. Element-wise code repeats activation.h's float
// operations in its order (the build passes -ffp-contract=off; max/min are
// compare-and-select so -0 and NaN come out as the scalar selects give them;
// vrndnq_f32 rounds half to even like std::nearbyint), so it is bit-identical
// to the scalar table; tails run the scalar definitions. The depthwise kernel
// uses FMA. Concat, split, pad, transpose and LRN are the scalar table's.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "../core/activation.h"
#include "../core/cnn_conv.h"
#include "../core/cnn_rows.h"
#include "../core/cnn_table.h"

// The accumulator arrays must become registers: unroll their loops fully.
#define EDGEOPT_NEON_UNROLL _Pragma("GCC unroll 16")

namespace edgeopt {
namespace {

// --- Vectors ---

// clamp_f32: lo > v ? lo : v, then hi < t ? hi : t.
inline float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  const float32x4_t t = vbslq_f32(vcgtq_f32(lo, v), lo, v);
  return vbslq_f32(vcltq_f32(hi, t), hi, t);
}

inline float32x4_t exp4(float32x4_t x) {
  using namespace expf32;
  const uint32x4_t over = vcgtq_f32(x, vdupq_n_f32(kHi));
  const uint32x4_t under = vcltq_f32(x, vdupq_n_f32(kLo));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(kLog2e)));
  float32x4_t r = vsubq_f32(x, vmulq_f32(n, vdupq_n_f32(kLn2Hi)));
  r = vsubq_f32(r, vmulq_f32(n, vdupq_n_f32(kLn2Lo)));
  float32x4_t p = vdupq_n_f32(kP4);
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kP3));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kP2));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kP1));
  p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(kP0));
  p = vaddq_f32(vmulq_f32(vmulq_f32(p, r), r), r);
  p = vaddq_f32(p, vdupq_n_f32(1.0f));
  // Lanes outside [kLo, kHi] convert to garbage here and are replaced below.
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
  y = vbslq_f32(over, vdupq_n_f32(__builtin_inff()), y);
  return vbslq_f32(under, vdupq_n_f32(0.0f), y);
}

inline float32x4_t sigmoid4(float32x4_t x) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  return vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(x))));
}

inline float32x4_t tanh4(float32x4_t x) {
  using namespace tanhf32;
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t a = vabsq_f32(x);
  const float32x4_t z = vmulq_f32(x, x);
  float32x4_t p = vdupq_n_f32(kT4);
  p = vaddq_f32(vmulq_f32(p, z), vdupq_n_f32(kT3));
  p = vaddq_f32(vmulq_f32(p, z), vdupq_n_f32(kT2));
  p = vaddq_f32(vmulq_f32(p, z), vdupq_n_f32(kT1));
  const float32x4_t small = vaddq_f32(x, vmulq_f32(vmulq_f32(x, z), p));
  const float32x4_t e = exp4(vmulq_f32(a, vdupq_n_f32(-2.0f)));
  const float32x4_t t = vdivq_f32(vsubq_f32(one, e), vaddq_f32(one, e));
  const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
  const float32x4_t big = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(t), sign));
  return vbslq_f32(vcltq_f32(a, vdupq_n_f32(kSmall)), small, big);
}

// --- Activations ---

struct ActVec {
  float32x4_t alpha, beta, lo, hi;
};

inline ActVec act_vec(const Activation& a) {
  const ClampBounds c = clamp_bounds(a);
  return {vdupq_n_f32(a.alpha), vdupq_n_f32(a.beta), vdupq_n_f32(c.lo), vdupq_n_f32(c.hi)};
}

template <ActKind K>
inline float32x4_t act4(float32x4_t v, const ActVec& a) {
  const float32x4_t zero = vdupq_n_f32(0.0f), one = vdupq_n_f32(1.0f);
  switch (K) {
    case ActKind::LeakyRelu:
      return vbslq_f32(vcltq_f32(v, zero), vmulq_f32(a.alpha, v), v);
    case ActKind::HardSigmoid:
      return clamp4(vaddq_f32(vmulq_f32(a.alpha, v), a.beta), zero, one);
    case ActKind::HardSwish:
      return vmulq_f32(v, clamp4(vaddq_f32(vmulq_f32(v, vdupq_n_f32(kSixth)), vdupq_n_f32(0.5f)), zero, one));
    case ActKind::Sigmoid:
      return sigmoid4(v);
    case ActKind::Tanh:
      return tanh4(v);
    default:  // None, Relu, Clip
      return clamp4(v, a.lo, a.hi);
  }
}

template <ActKind K>
struct ActivationLoop {
  static void run(const float* x, float* y, size_t n, const Activation& act) {
    const ActVec a = act_vec(act);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, act4<K>(vld1q_f32(x + i), a));
    for (; i < n; ++i) y[i] = activate(x[i], act);
  }
};

void activation_f32(const float* x, float* y, size_t n, const Activation& act) {
  activation_by_kind<ActivationLoop>(x, y, n, act);
}

// --- Row primitives (vector body, the scalar definition on the tail) ---

void max_row(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t xv = vld1q_f32(x + i), yv = vld1q_f32(y + i);
    vst1q_f32(y + i, vbslq_f32(vcgtq_f32(xv, yv), xv, yv));
  }
  scalar_cnn_row_ops().max(y + i, x + i, n - i);
}

void add_row(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
  scalar_cnn_row_ops().add(y + i, x + i, n - i);
}

void div_row(float* y, int64_t n, float d) {
  const float32x4_t dv = vdupq_n_f32(d);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vdivq_f32(vld1q_f32(y + i), dv));
  scalar_cnn_row_ops().div(y + i, n - i, d);
}

void exp_sub_row(const float* x, float* y, int64_t n, float m) {
  const float32x4_t mv = vdupq_n_f32(m);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, exp4(vsubq_f32(vld1q_f32(x + i), mv)));
  scalar_cnn_row_ops().exp_sub(x + i, y + i, n - i, m);
}

template <BinaryFn F>
inline float32x4_t apply4(float32x4_t a, float32x4_t b) {
  if (F == BinaryFn::Add) return vaddq_f32(a, b);
  if (F == BinaryFn::Sub) return vsubq_f32(a, b);
  if (F == BinaryFn::Mul) return vmulq_f32(a, b);
  return vdivq_f32(a, b);
}

// Strides 1 or 0 per operand (0: a broadcast scalar).
template <BinaryFn F>
struct BinaryUnit {
  static void run(const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n, ClampBounds c) {
    const float32x4_t lo = vdupq_n_f32(c.lo), hi = vdupq_n_f32(c.hi);
    const float32x4_t a0 = vdupq_n_f32(a[0]), b0 = vdupq_n_f32(b[0]);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const float32x4_t av = as ? vld1q_f32(a + i) : a0, bv = bs ? vld1q_f32(b + i) : b0;
      vst1q_f32(y + i, clamp4(apply4<F>(av, bv), lo, hi));
    }
    scalar_cnn_row_ops().binary(F, a + i * as, as, b + i * bs, bs, y + i, n - i, c);
  }
};

const CnnRowOps kRows = {max_row, add_row, div_row, exp_sub_row, binary_by_fn<BinaryUnit>, activation_f32};

// --- Depthwise convolution (the driver is cnn_depthwise.cc) ---

// A border pixel: channels in blocks of 16, then 4, then one at a time; every
// channel's taps go through one fused multiply-add chain in tap order
// (std::fma on the tail), whatever its block.
template <int T>
__attribute__((noinline)) void depthwise_pixel_taps(const DepthwisePixel& p) {
  const int taps = T > 0 ? T : p.taps, ws = p.w_stride;
  const float32x4_t lo = vdupq_n_f32(p.clamp.lo), hi = vdupq_n_f32(p.clamp.hi);
  int c = 0;
  for (; c + 16 <= p.channels; c += 16) {
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    EDGEOPT_NEON_UNROLL
    for (int t = 0; t < taps; ++t) {
      EDGEOPT_NEON_UNROLL
      for (int q = 0; q < 4; ++q)
        acc[q] = vfmaq_f32(acc[q], vld1q_f32(p.in[t] + c + 4 * q), vld1q_f32(p.w + t * ws + c + 4 * q));
    }
    EDGEOPT_NEON_UNROLL
    for (int q = 0; q < 4; ++q)
      vst1q_f32(p.y + c + 4 * q, clamp4(vaddq_f32(acc[q], vld1q_f32(p.bias + c + 4 * q)), lo, hi));
  }
  for (; c + 4 <= p.channels; c += 4) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int t = 0; t < taps; ++t) acc = vfmaq_f32(acc, vld1q_f32(p.in[t] + c), vld1q_f32(p.w + t * ws + c));
    vst1q_f32(p.y + c, clamp4(vaddq_f32(acc, vld1q_f32(p.bias + c)), lo, hi));
  }
  for (; c < p.channels; ++c) {
    float acc = 0.0f;
    for (int t = 0; t < taps; ++t) acc = std::fma(p.in[t][c], p.w[t * ws + c], acc);
    p.y[c] = clamp_f32(acc + p.bias[c], p.clamp.lo, p.clamp.hi);
  }
}

void depthwise_pixel(const DepthwisePixel& p) {
  if (p.taps == 9) return depthwise_pixel_taps<9>(p);
  if (p.taps == 25) return depthwise_pixel_taps<25>(p);
  depthwise_pixel_taps<0>(p);
}

// A row segment: 4 channels at a time, their kh*kw weights held in registers
// while the pixels stream by (KH = KW = 0: any kernel size, weights from
// memory); the last channels one at a time with std::fma.
template <int KH, int KW>
__attribute__((noinline)) void depthwise_row_block(const DepthwiseRow& r, int c) {
  const int kh = KH > 0 ? KH : r.kh, kw = KW > 0 ? KW : r.kw;
  constexpr int kTaps = KH > 0 ? KH * KW : 1;
  const float32x4_t lo = vdupq_n_f32(r.clamp.lo), hi = vdupq_n_f32(r.clamp.hi);
  float32x4_t wv[kTaps];
  if (KH > 0) {
    EDGEOPT_NEON_UNROLL
    for (int t = 0; t < kTaps; ++t) wv[t] = vld1q_f32(r.w + t * r.w_stride + c);
  }
  const float32x4_t bias = vld1q_f32(r.bias + c);
  const float* x = r.x + c;
  float* y = r.y + c;
  for (int p = 0; p < r.pixels; ++p, x += r.pixel_step, y += r.y_step) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    EDGEOPT_NEON_UNROLL
    for (int ky = 0; ky < kh; ++ky) {
      const float* row = x + r.row_offsets[ky];
      EDGEOPT_NEON_UNROLL
      for (int kx = 0; kx < kw; ++kx) {
        const float32x4_t wt = KH > 0 ? wv[ky * KW + kx] : vld1q_f32(r.w + (ky * kw + kx) * r.w_stride + c);
        acc = vfmaq_f32(acc, vld1q_f32(row + kx * r.col_step), wt);
      }
    }
    vst1q_f32(y, clamp4(vaddq_f32(acc, bias), lo, hi));
  }
}

void depthwise_row_tail(const DepthwiseRow& r, int c) {
  const float* x = r.x + c;
  float* y = r.y + c;
  for (int p = 0; p < r.pixels; ++p, x += r.pixel_step, y += r.y_step) {
    float acc = 0.0f;
    for (int ky = 0; ky < r.kh; ++ky)
      for (int kx = 0; kx < r.kw; ++kx)
        acc = std::fma(x[r.row_offsets[ky] + kx * r.col_step], r.w[(ky * r.kw + kx) * r.w_stride + c], acc);
    *y = clamp_f32(acc + r.bias[c], r.clamp.lo, r.clamp.hi);
  }
}

void depthwise_row(const DepthwiseRow& r) {
  int c = 0;
  for (; c + 4 <= r.channels; c += 4) {
    if (r.kh == 3 && r.kw == 3)
      depthwise_row_block<3, 3>(r, c);
    else if (r.kh == 5 && r.kw == 5)
      depthwise_row_block<5, 5>(r, c);
    else
      depthwise_row_block<0, 0>(r, c);
  }
  for (; c < r.channels; ++c) depthwise_row_tail(r, c);
}

// --- Direct convolution (the driver is cnn_direct.cc) ---

// Four pixels x one tile of 16 channels: 16 accumulators, one FMA chain per
// output in K order; the pixels' inputs are broadcast, the weights loaded.
constexpr int kDirectRows = 4;

__attribute__((noinline)) void direct_tile(const DirectTile& d) {
  float32x4_t acc[kDirectRows][4];
  EDGEOPT_NEON_UNROLL
  for (int r = 0; r < kDirectRows; ++r) EDGEOPT_NEON_UNROLL
  for (int q = 0; q < 4; ++q) acc[r][q] = vdupq_n_f32(0.0f);
  const float* w = d.w;
  for (int t = 0; t < d.taps; ++t) {
    const float* px[kDirectRows];
    EDGEOPT_NEON_UNROLL
    for (int r = 0; r < kDirectRows; ++r) px[r] = d.in[r * d.taps + t];
    for (int ci = 0; ci < d.in_c; ++ci, w += kDirectTile) {
      float32x4_t wv[4];
      EDGEOPT_NEON_UNROLL
      for (int q = 0; q < 4; ++q) wv[q] = vld1q_f32(w + 4 * q);
      EDGEOPT_NEON_UNROLL
      for (int r = 0; r < kDirectRows; ++r) {
        const float32x4_t xv = vld1q_dup_f32(px[r] + ci);
        EDGEOPT_NEON_UNROLL
        for (int q = 0; q < 4; ++q) acc[r][q] = vfmaq_f32(acc[r][q], xv, wv[q]);
      }
    }
  }
  const float32x4_t lo = vdupq_n_f32(d.clamp.lo), hi = vdupq_n_f32(d.clamp.hi);
  for (int r = 0; r < d.rows; ++r) {
    float tmp[kDirectTile];
    EDGEOPT_NEON_UNROLL
    for (int q = 0; q < 4; ++q) vst1q_f32(tmp + 4 * q, clamp4(vaddq_f32(acc[r][q], vld1q_f32(d.bias + 4 * q)), lo, hi));
    float* y = d.y + r * d.y_step;
    for (int c = d.store_begin; c < d.store_end; ++c) y[c] = tmp[c];
  }
}

// --- The table ---

const DepthwiseMicrokernels kDepthwise = {depthwise_row, depthwise_pixel, activation_f32};
const DirectMicrokernel kDirect = {kDirectRows, direct_tile, activation_f32};

}  // namespace

const CnnKernels& neon_cnn_kernels() {
  static const CnnKernels table = simd_cnn_table<kRows, kDepthwise, kDirect>("neon", /*direct_max_k=*/32);
  return table;
}

}  // namespace edgeopt
#endif
