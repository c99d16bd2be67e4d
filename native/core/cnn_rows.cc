#include "cnn_rows.h"

#include <algorithm>
#include <limits>

namespace edgeopt {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Taps i in [0, k) with lo <= start + i * dilation < hi, as [first, last].
void taps_within(int64_t start, int k, int dilation, int64_t lo, int64_t hi, int* first, int* last) {
  *first = start >= lo ? 0 : static_cast<int>(std::min<int64_t>(k, (lo - start + dilation - 1) / dilation));
  *last = static_cast<int>(std::min<int64_t>(k - 1, floor_div(hi - 1 - start, dilation)));
}

void fill(float* y, int64_t n, float v) { std::fill(y, y + n, v); }

}  // namespace

TapRange tap_range(int64_t start, int k, int dilation, int64_t in, int64_t pad_begin, int64_t pad_end) {
  TapRange r;
  taps_within(start, k, dilation, 0, in, &r.first, &r.last);
  int pf, pl;
  taps_within(start, k, dilation, -pad_begin, in + pad_end, &pf, &pl);
  r.padded = std::max(0, pl - pf + 1);
  return r;
}

void pool_f32_rows(const CnnRowOps& ops, PoolKind kind, const PoolF32Args& a) {
  const PoolShape& s = *a.shape;
  const int c = s.c;
  const int64_t image_floats = int64_t{s.in_h} * s.in_w * c;
  const float init = kind == PoolKind::Max ? -std::numeric_limits<float>::infinity() : 0.0f;
  for (int64_t row = a.row_begin; row < a.row_end; ++row) {
    const int64_t image = row / s.out_h;
    const int oy = static_cast<int>(row % s.out_h);
    const float* x = a.x + image * image_floats;
    const int64_t sy = int64_t{oy} * s.stride_h - s.pad_top;
    const TapRange ty = tap_range(sy, s.kh, s.dilation_h, s.in_h, s.pad_top, s.pad_bottom);
    for (int ox = 0; ox < s.out_w; ++ox) {
      float* y = a.y + (row * s.out_w + ox) * c;
      const int64_t sx = int64_t{ox} * s.stride_w - s.pad_left;
      const TapRange tx = tap_range(sx, s.kw, s.dilation_w, s.in_w, s.pad_left, s.pad_right);
      fill(y, c, init);
      for (int ky = ty.first; ky <= ty.last; ++ky) {
        const float* xrow = x + (sy + int64_t{ky} * s.dilation_h) * s.in_w * c;
        for (int kx = tx.first; kx <= tx.last; ++kx) {
          const float* xp = xrow + (sx + int64_t{kx} * s.dilation_w) * c;
          if (kind == PoolKind::Max)
            ops.max(y, xp, c);
          else
            ops.add(y, xp, c);
        }
      }
      if (kind == PoolKind::Average) {
        const int count =
            s.count_include_pad ? ty.padded * tx.padded : (ty.last - ty.first + 1) * (tx.last - tx.first + 1);
        ops.div(y, c, static_cast<float>(count));
      }
    }
  }
}

void global_pool_f32_rows(const CnnRowOps& ops, PoolKind kind, const GlobalPoolF32Args& a) {
  const int n = a.c_end - a.c_begin;
  if (n <= 0) return;
  const float init = kind == PoolKind::Max ? -std::numeric_limits<float>::infinity() : 0.0f;
  for (int image = 0; image < a.batch; ++image) {
    float* y = a.y + int64_t{image} * a.c + a.c_begin;
    const float* x = a.x + image * a.pixels * a.c + a.c_begin;
    fill(y, n, init);
    for (int64_t p = 0; p < a.pixels; ++p) {
      if (kind == PoolKind::Max)
        ops.max(y, x + p * a.c, n);
      else
        ops.add(y, x + p * a.c, n);
    }
    if (kind == PoolKind::Average) ops.div(y, n, static_cast<float>(a.pixels));
  }
}

void binary_f32_rows(const CnnRowOps& ops, const BinaryF32Args& a) {
  const BroadcastShape& s = *a.shape;
  const int last = s.rank - 1;
  const ClampBounds clamp = clamp_bounds(a.act);
  const bool more = !is_clamp(a.act);
  // Multi-index of element `begin`, and the operands' offsets there.
  int64_t idx[kMaxDims], rest = a.begin, a_off = 0, b_off = 0;
  for (int d = last; d >= 0; --d) {
    idx[d] = rest % s.dims[d];
    rest /= s.dims[d];
    a_off += idx[d] * s.a_strides[d];
    b_off += idx[d] * s.b_strides[d];
  }
  for (int64_t i = a.begin; i < a.end;) {
    const int64_t n = std::min(s.dims[last] - idx[last], a.end - i);
    ops.binary(a.fn, a.a + a_off, s.a_strides[last], a.b + b_off, s.b_strides[last], a.y + i, n, clamp);
    if (more) ops.activation(a.y + i, a.y + i, static_cast<size_t>(n), a.act);
    i += n;
    idx[last] += n;
    a_off += n * s.a_strides[last];
    b_off += n * s.b_strides[last];
    for (int d = last; d > 0 && idx[d] == s.dims[d]; --d) {
      idx[d] = 0;
      a_off += s.a_strides[d - 1] - s.dims[d] * s.a_strides[d];
      b_off += s.b_strides[d - 1] - s.dims[d] * s.b_strides[d];
      ++idx[d - 1];
    }
  }
}

void bias_act_f32_rows(const CnnRowOps& ops, float* y, size_t ldy, int64_t rows, int n, const float* bias,
                       const Activation& act) {
  const ClampBounds clamp = clamp_bounds(act);
  const bool clamps = is_clamp(act);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * ldy;
    if (bias)
      ops.binary(BinaryFn::Add, row, 1, bias, 1, row, n, clamp);
    else if (clamps && act.kind != ActKind::None)
      ops.activation(row, row, n, act);
    if (!clamps) ops.activation(row, row, n, act);
  }
}

void softmax_f32_rows(const CnnRowOps& ops, const AxisF32Args& a) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (a.inner == 1) {
    for (int64_t o = a.begin; o < a.end; ++o) {
      const float* x = a.x + o * a.axis;
      float* y = a.y + o * a.axis;
      float m = neg_inf;
      for (int64_t k = 0; k < a.axis; ++k) m = x[k] > m ? x[k] : m;
      ops.exp_sub(x, y, a.axis, m);
      float sum = 0.0f;
      for (int64_t k = 0; k < a.axis; ++k) sum = sum + y[k];
      ops.div(y, a.axis, sum);
    }
    return;
  }
  // A strided axis (rare in NHWC): one column at a time, the same operations.
  for (int64_t col = a.begin; col < a.end; ++col) {
    const int64_t base = (col / a.inner) * a.axis * a.inner + col % a.inner;
    float m = neg_inf;
    for (int64_t k = 0; k < a.axis; ++k) m = a.x[base + k * a.inner] > m ? a.x[base + k * a.inner] : m;
    float sum = 0.0f;
    for (int64_t k = 0; k < a.axis; ++k) {
      const float e = exp_f32(a.x[base + k * a.inner] - m);
      a.y[base + k * a.inner] = e;
      sum = sum + e;
    }
    for (int64_t k = 0; k < a.axis; ++k) a.y[base + k * a.inner] = a.y[base + k * a.inner] / sum;
  }
}

void reduce_mean_f32_rows(const CnnRowOps& ops, const AxisF32Args& a) {
  const float count = static_cast<float>(a.axis);
  if (a.inner == 1) {
    for (int64_t o = a.begin; o < a.end; ++o) {
      float sum = 0.0f;
      for (int64_t k = 0; k < a.axis; ++k) sum = sum + a.x[o * a.axis + k];
      a.y[o] = sum / count;
    }
    return;
  }
  // Columns [begin, end) cut into runs within one outer index; each run is a
  // row segment the row primitives vectorize.
  for (int64_t col = a.begin; col < a.end;) {
    const int64_t o = col / a.inner, i0 = col % a.inner;
    const int64_t n = std::min(a.inner - i0, a.end - col);
    float* y = a.y + o * a.inner + i0;
    fill(y, n, 0.0f);
    for (int64_t k = 0; k < a.axis; ++k) ops.add(y, a.x + (o * a.axis + k) * a.inner + i0, n);
    ops.div(y, n, count);
    col += n;
  }
}

}  // namespace edgeopt
