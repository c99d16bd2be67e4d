// Scalar CNN kernels: the definitions every SIMD table is tested against, and
// the data movers (concat, split, pad, transpose) and LRN that every table
// shares. Plain C++ for the baseline ISA; obvious rather than fast.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/activation.h"
#include "../core/cnn_conv.h"
#include "../core/cnn_kernels.h"
#include "../core/cnn_rows.h"

namespace edgeopt {
namespace {

// --- Row primitives (cnn_rows.h) ---

void max_row(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > y[i] ? x[i] : y[i];
}

void add_row(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] + x[i];
}

void div_row(float* y, int64_t n, float d) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] / d;
}

void exp_sub_row(const float* x, float* y, int64_t n, float m) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_f32(x[i] - m);
}

inline float apply(BinaryFn fn, float a, float b) {
  switch (fn) {
    case BinaryFn::Add:
      return a + b;
    case BinaryFn::Sub:
      return a - b;
    case BinaryFn::Mul:
      return a * b;
    case BinaryFn::Div:
      return a / b;
  }
  return a;
}

void binary_row(BinaryFn fn, const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n,
                ClampBounds c) {
  for (int64_t i = 0; i < n; ++i) y[i] = clamp_f32(apply(fn, a[i * as], b[i * bs]), c.lo, c.hi);
}

void activation_f32(const float* x, float* y, size_t n, const Activation& act) {
  for (size_t i = 0; i < n; ++i) y[i] = activate(x[i], act);
}

const CnnRowOps kRows = {max_row, add_row, div_row, exp_sub_row, binary_row, activation_f32};

}  // namespace

const CnnRowOps& scalar_cnn_row_ops() { return kRows; }

namespace {

// --- Depthwise convolution ---

// Per output pixel and channel: taps in (ky, kx) order from +0, padding taps
// adding 0 * w like the im2col path, then + bias, then the activation. The
// output row is the accumulator, so each tap is one pass over the channels.
void depthwise_f32(const ConvF32Args& a) {
  const PackedConvF32& w = *a.w;
  const ConvShape& s = w.shape;
  const int c_count = s.in_c, n = a.oc_end - a.oc_begin;
  for (int64_t p = a.pixel_begin; p < a.pixel_end; ++p) {
    const PixelPos pos = pixel_pos(p, s.out_h, s.out_w);
    const float* x = a.x + pos.image * s.in_h * s.in_w * c_count + a.oc_begin;
    float* y = a.y + p * c_count + a.oc_begin;
    for (int c = 0; c < n; ++c) y[c] = 0.0f;
    for (int ky = 0; ky < s.kh; ++ky) {
      const int iy = pos.oy * s.stride_h - s.pad_top + ky * s.dilation_h;
      for (int kx = 0; kx < s.kw; ++kx) {
        const int ix = pos.ox * s.stride_w - s.pad_left + kx * s.dilation_w;
        const float* wt =
            w.depthwise_weights.data() + static_cast<size_t>(ky * s.kw + kx) * w.channel_stride + a.oc_begin;
        if (iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w) {
          const float* xt = x + (int64_t{iy} * s.in_w + ix) * c_count;
          for (int c = 0; c < n; ++c) y[c] = y[c] + xt[c] * wt[c];
        } else {
          for (int c = 0; c < n; ++c) y[c] = y[c] + 0.0f * wt[c];
        }
      }
    }
    for (int c = 0; c < n; ++c) y[c] = activate(y[c] + w.bias[a.oc_begin + c], w.act);
  }
}

// --- LRN (every table: pow dominates and has no vector form here) ---

void lrn_f32(const LrnF32Args& a) {
  const float scale = a.alpha / static_cast<float>(a.size);
  const int before = (a.size - 1) / 2, after = a.size / 2;
  for (int64_t p = a.pixel_begin; p < a.pixel_end; ++p) {
    const float* x = a.x + p * a.c;
    float* y = a.y + p * a.c;
    for (int c = 0; c < a.c; ++c) {
      float sum = 0.0f;
      for (int i = std::max(0, c - before); i <= std::min(a.c - 1, c + after); ++i) sum = sum + x[i] * x[i];
      const float d = a.bias + scale * sum;
      y[c] = x[c] / static_cast<float>(std::pow(static_cast<double>(d), static_cast<double>(a.beta)));
    }
  }
}

// --- Data movers: bytes, any element size ---

void concat(const ConcatArgs& a) {
  int64_t total = 0;
  for (int i = 0; i < a.count; ++i) total += a.sizes[i];
  const size_t eb = static_cast<size_t>(a.elem_bytes);
  for (int64_t o = a.outer_begin; o < a.outer_end; ++o) {
    char* dst = static_cast<char*>(a.y) + o * total * eb;
    for (int i = 0; i < a.count; ++i) {
      const size_t bytes = static_cast<size_t>(a.sizes[i]) * eb;
      std::memcpy(dst, static_cast<const char*>(a.inputs[i]) + o * bytes, bytes);
      dst += bytes;
    }
  }
}

void split(const SplitArgs& a) {
  int64_t total = 0;
  for (int i = 0; i < a.count; ++i) total += a.sizes[i];
  const size_t eb = static_cast<size_t>(a.elem_bytes);
  for (int64_t o = a.outer_begin; o < a.outer_end; ++o) {
    const char* src = static_cast<const char*>(a.x) + o * total * eb;
    for (int i = 0; i < a.count; ++i) {
      const size_t bytes = static_cast<size_t>(a.sizes[i]) * eb;
      std::memcpy(static_cast<char*>(a.outputs[i]) + o * bytes, src, bytes);
      src += bytes;
    }
  }
}

// n elements of elem_bytes bytes, each equal to `value`.
void fill_value(char* y, int64_t n, const void* value, size_t eb) {
  if (n <= 0) return;
  std::memcpy(y, value, eb);
  // Doubling copies: log2(n) memcpy calls.
  for (int64_t done = 1; done < n;) {
    const int64_t step = std::min(done, n - done);
    std::memcpy(y + done * eb, y, step * eb);
    done += step;
  }
}

struct PadWalk {
  const PadShape& s;
  size_t eb;
  const void* value;
  int64_t out_inner[kMaxDims], in_inner[kMaxDims];  // elements per index of each dim

  PadWalk(const PadShape& shape, size_t elem_bytes, const void* v) : s(shape), eb(elem_bytes), value(v) {
    out_inner[s.rank - 1] = in_inner[s.rank - 1] = 1;
    for (int d = s.rank - 2; d >= 0; --d) {
      out_inner[d] = out_inner[d + 1] * pad_out_dim(s, d + 1);
      in_inner[d] = in_inner[d + 1] * s.in_shape[d + 1];
    }
  }

  // Output indices [o_begin, o_end) of dim d; x is the input slab of the
  // enclosing index (never null: out-of-range slabs are filled whole).
  void run(int d, int64_t o_begin, int64_t o_end, const char* x, char* y) const {
    const int64_t lo = std::clamp<int64_t>(s.begin[d], o_begin, o_end);
    const int64_t hi = std::clamp<int64_t>(s.begin[d] + s.in_shape[d], lo, o_end);
    fill_value(y + o_begin * out_inner[d] * eb, (lo - o_begin) * out_inner[d], value, eb);
    if (d == s.rank - 1) {
      std::memcpy(y + lo * eb, x + (lo - s.begin[d]) * eb, (hi - lo) * eb);
    } else {
      for (int64_t o = lo; o < hi; ++o)
        run(d + 1, 0, pad_out_dim(s, d + 1), x + (o - s.begin[d]) * in_inner[d] * eb, y + o * out_inner[d] * eb);
    }
    fill_value(y + hi * out_inner[d] * eb, (o_end - hi) * out_inner[d], value, eb);
  }
};

void pad(const PadArgs& a) {
  PadWalk(*a.shape, static_cast<size_t>(a.elem_bytes), a.value)
      .run(0, a.row_begin, a.row_end, static_cast<const char*>(a.x), static_cast<char*>(a.y));
}

// Transpose: the last two output dims are done as a 2-D transpose in
// kTile x kTile blocks (both sides touch few cache lines per block); the
// dims before them are walked one index at a time.
constexpr int64_t kTile = 16;

template <typename T>
void transpose_plane(const T* x, T* y, int64_t rows, int64_t cols, int64_t row_step, int64_t col_step) {
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile)
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) y[r * cols + c] = x[r * row_step + c * col_step];
}

struct Bytes8 {
  char b[8];
};

void transpose_plane_bytes(const char* x, char* y, int64_t rows, int64_t cols, int64_t row_step, int64_t col_step,
                           size_t eb) {
  switch (eb) {
    case 1:
      return transpose_plane(x, y, rows, cols, row_step, col_step);
    case 2:
      return transpose_plane(reinterpret_cast<const uint16_t*>(x), reinterpret_cast<uint16_t*>(y), rows, cols, row_step,
                             col_step);
    case 4:
      return transpose_plane(reinterpret_cast<const uint32_t*>(x), reinterpret_cast<uint32_t*>(y), rows, cols, row_step,
                             col_step);
    default:
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          std::memcpy(y + (r * cols + c) * eb, x + (r * row_step + c * col_step) * eb, eb);
  }
}

void transpose(const TransposeArgs& a) {
  const TransposeShape& s = *a.shape;
  const size_t eb = static_cast<size_t>(a.elem_bytes);
  const char* x = static_cast<const char*>(a.x);
  char* y = static_cast<char*>(a.y);
  int64_t in_stride[kMaxDims] = {}, out_dims[kMaxDims] = {}, step[kMaxDims] = {};
  in_stride[s.rank - 1] = 1;
  for (int d = s.rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * s.in_shape[d + 1];
  for (int i = 0; i < s.rank; ++i) {
    out_dims[i] = s.in_shape[s.perm[i]];
    step[i] = in_stride[s.perm[i]];  // input elements per step of output dim i
  }
  if (s.rank == 1) {
    std::memcpy(y + a.row_begin * eb, x + a.row_begin * eb, (a.row_end - a.row_begin) * eb);
    return;
  }
  if (s.rank == 2) {
    transpose_plane_bytes(x + a.row_begin * step[0] * eb, y + a.row_begin * out_dims[1] * eb, a.row_end - a.row_begin,
                          out_dims[1], step[0], step[1], eb);
    return;
  }
  // Outer output dims 0 .. rank-3 (dim 0 limited to the range), then a plane.
  const int outer = s.rank - 2;
  const int64_t plane = out_dims[s.rank - 2] * out_dims[s.rank - 1];
  int64_t idx[kMaxDims] = {};
  idx[0] = a.row_begin;
  int64_t out_off = a.row_begin, in_off = a.row_begin * step[0];
  for (int d = 1; d < outer; ++d) out_off *= out_dims[d];
  while (idx[0] < a.row_end) {
    transpose_plane_bytes(x + in_off * eb, y + out_off * plane * eb, out_dims[s.rank - 2], out_dims[s.rank - 1],
                          step[s.rank - 2], step[s.rank - 1], eb);
    ++out_off;
    int d = outer - 1;
    ++idx[d];
    in_off += step[d];
    while (d > 0 && idx[d] == out_dims[d]) {
      in_off -= idx[d] * step[d];
      idx[d] = 0;
      --d;
      ++idx[d];
      in_off += step[d];
    }
  }
}

// --- The table ---

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
void conv_f32(const ConvF32Args& a) {
  if (a.w->method == ConvMethod::Direct) return conv_direct_reference(a);
  conv_gemm_f32(bias_act_f32, a);
}

}  // namespace

const CnnKernels& scalar_cnn_kernels() {
  static const CnnKernels table = {"scalar",
                                   conv_f32,
                                   depthwise_f32,
                                   maxpool_f32,
                                   avgpool_f32,
                                   global_avgpool_f32,
                                   global_maxpool_f32,
                                   binary_f32,
                                   activation_f32,
                                   bias_act_f32,
                                   softmax_f32,
                                   reduce_mean_f32,
                                   lrn_f32,
                                   concat,
                                   split,
                                   pad,
                                   transpose,
                                   /*direct_max_k=*/0};
  return table;
}

}  // namespace edgeopt
