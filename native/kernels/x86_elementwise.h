// The float element-wise kernels of every x86 table (epilogue, dynamic
// quantization, bias + ReLU, ReLU) for any vector width: the same operations
// in the same order as scalar.cc, without FMA, so results are equal bit for
// bit. V::max_f(zero, v) is `0 > v ? 0 : v`, which is std::max(v, 0.0f)
// exactly, including for -0 and NaN. Include inside a target region, after
// x86_ymm.h (and x86_zmm.h).
#pragma once

namespace edgeopt {
namespace {

template <class V>
void epilogue_s32_simd(const EpilogueArgs& p) {
  using F = typename V::F;
  const F zero = V::zero_f();
  for (int r = 0; r < p.m; ++r) {
    const int32_t* c = p.c + r * p.ldc;
    float* y = p.y + r * p.ldy;
    const F as = V::set1_f(p.a_scale[r]);
    int j = 0;
    for (; j + V::kLanes <= p.n; j += V::kLanes) {
      const F ws = p.w_scale_stride ? V::load_f(p.w_scale + j) : V::set1_f(p.w_scale[0]);
      F v = V::mul_f(V::to_float(V::load(c + j)), V::mul_f(as, ws));
      if (p.bias) v = V::add_f(v, V::load_f(p.bias + j));
      if (p.relu) v = V::max_f(zero, v);
      V::store_f(y + j, v);
    }
    for (; j < p.n; ++j) {
      const float s = p.a_scale[r] * p.w_scale[j * p.w_scale_stride];
      float v = static_cast<float>(c[j]) * s;
      if (p.bias) v = v + p.bias[j];
      if (p.relu) v = std::max(v, 0.0f);
      y[j] = v;
    }
  }
}

// quantize_row_u8 (quantize.h) vectorized. min/max ignore NaN the way
// std::min/std::max do (the running value is the second operand); lanes start
// at +0 and never take NaN or -0, so the result equals the scalar fold. q uses
// true division and round-half-even, like round_even(x / s); NaN goes to 0, as
// the scalar float -> uint8 cast does on x86.
template <class V>
void quantize_row_simd(const float* x, int k, uint8_t* q, float* scale, int32_t* zero_point) {
  using F = typename V::F;
  F lo = V::zero_f(), hi = V::zero_f();
  int i = 0;
  for (; i + V::kLanes <= k; i += V::kLanes) {
    const F v = V::load_f(x + i);
    lo = V::min_f(v, lo);
    hi = V::max_f(v, hi);
  }
  float l = V::hmin(lo), h = V::hmax(hi);
  for (; i < k; ++i) {
    l = std::min(l, x[i]);
    h = std::max(h, x[i]);
  }
  const RowGrid g = row_grid(l, h);
  const F sv = V::set1_f(g.scale), zv = V::set1_f(g.zero_point);
  i = 0;
  for (; i + V::kBytesPerStore <= k; i += V::kBytesPerStore)
    V::store_u8(q + i, [&](int at) {  // clamp(round_even(x / s) + zp, 0, 255) as std::clamp does
      F v = V::round_even(V::div_f(V::load_f(x + i + at), sv));
      v = V::min_f(V::max_f(V::add_f(v, zv), V::zero_f()), V::set1_f(255.0f));
      return V::truncate(v);
    });
  for (; i < k; ++i) q[i] = quantize_u8(x[i], g);
  *scale = g.scale;
  *zero_point = static_cast<int32_t>(g.zero_point);
}

template <class V>
void quantize_rows_u8_simd(const float* x, int m, int k, uint8_t* q, float* scale, int32_t* zp) {
  for (int r = 0; r < m; ++r)
    quantize_row_simd<V>(x + static_cast<size_t>(r) * k, k, q + static_cast<size_t>(r) * k, scale + r, zp + r);
}

// quantize_static_s8 (static_quant.h) vectorized: the same float operations
// in the same order. max_f(lo, v) and min_f(hi, v) are std::max(v, lo) and
// std::min(v, hi), NaN kept; the low byte of the truncation (NaN: 0x80000000)
// is the int8, so NaN gives 0 as the scalar definition does.
template <class V>
void quantize_static_s8_simd(const float* x, size_t n, float scale, int32_t zero_point, int8_t* y) {
  using F = typename V::F;
  const F s = V::set1_f(scale), zp = V::set1_f(static_cast<float>(zero_point));
  const F lo = V::set1_f(-128.0f), hi = V::set1_f(127.0f);
  const typename V::I low_byte = V::set1(0xff);
  size_t i = 0;
  for (; i + V::kBytesPerStore <= n; i += V::kBytesPerStore)
    V::store_u8(reinterpret_cast<uint8_t*>(y + i), [&](int at) {
      const F v = V::add_f(V::round_even(V::div_f(V::load_f(x + i + at), s)), zp);
      return V::and_(V::truncate(V::min_f(hi, V::max_f(lo, v))), low_byte);
    });
  for (; i < n; ++i) y[i] = quantize_static_s8(x[i], {scale, zero_point});
}

template <class V>
void bias_act_f32_simd(float* y, int m, int n, const float* bias, bool relu) {
  using F = typename V::F;
  const F zero = V::zero_f();
  for (int r = 0; r < m; ++r) {
    float* row = y + static_cast<size_t>(r) * n;
    int j = 0;
    for (; j + V::kLanes <= n; j += V::kLanes) {
      F v = V::load_f(row + j);
      if (bias) v = V::add_f(v, V::load_f(bias + j));
      if (relu) v = V::max_f(zero, v);
      V::store_f(row + j, v);
    }
    for (; j < n; ++j) {
      const float v = bias ? row[j] + bias[j] : row[j];
      row[j] = relu ? std::max(v, 0.0f) : v;
    }
  }
}

template <class V>
void relu_f32_simd(float* x, size_t count) {
  const typename V::F zero = V::zero_f();
  size_t i = 0;
  for (; i + V::kLanes <= count; i += V::kLanes) V::store_f(x + i, V::max_f(zero, V::load_f(x + i)));
  for (; i < count; ++i) x[i] = std::max(x[i], 0.0f);
}

}  // namespace
}  // namespace edgeopt
