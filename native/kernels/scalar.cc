// Scalar reference kernels: the definition every SIMD table is tested against.
// Plain C++, compiled for the baseline ISA; keep them obvious rather than fast.
#include <algorithm>

#include "../core/cnn_kernels.h"
#include "../core/kernels.h"
#include "../core/quantize.h"
#include "../core/sparse.h"

namespace edgeopt {
namespace {

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) {
  out->n = n;
  out->k = k;
  out->data.assign(w, w + static_cast<size_t>(n) * k);
  out->col_sums = weight_column_sums(w, n, k);
  out->packer = &scalar_kernels();
}

void gemm_u8s8(const GemmU8S8Args& p) {
  const int k = p.w->k;
  for (int r = 0; r < p.m; ++r) {
    const uint8_t* a = p.a + r * p.lda;
    for (int j = p.n_begin; j < p.n_end; ++j) {
      const int8_t* w = p.w->data.data() + static_cast<size_t>(j) * k;
      int32_t acc = 0;
      for (int i = 0; i < k; ++i) acc += static_cast<int32_t>(a[i]) * static_cast<int32_t>(w[i]);
      p.c[r * p.ldc + j] = acc - p.a_zero_point[r] * p.w->col_sums[j];
    }
  }
}

void pack_f32(const float* w, int n, int k, PackedF32* out) {
  out->n = n;
  out->k = k;
  out->data.assign(w, w + static_cast<size_t>(n) * k);
  out->packer = &scalar_kernels();
}

void gemm_f32(const GemmF32Args& p) {
  const int k = p.w->k;
  for (int r = 0; r < p.m; ++r) {
    const float* x = p.x + r * p.ldx;
    for (int j = p.n_begin; j < p.n_end; ++j) {
      const float* w = p.w->data.data() + static_cast<size_t>(j) * k;
      float acc = 0.0f;
      for (int i = 0; i < k; ++i) acc += x[i] * w[i];
      p.y[r * p.ldy + j] = acc;
    }
  }
}

void epilogue_s32(const EpilogueArgs& p) {
  for (int r = 0; r < p.m; ++r) {
    for (int j = 0; j < p.n; ++j) {
      const float s = p.a_scale[r] * p.w_scale[j * p.w_scale_stride];
      float v = static_cast<float>(p.c[r * p.ldc + j]) * s;
      if (p.bias) v = v + p.bias[j];
      if (p.relu) v = std::max(v, 0.0f);
      p.y[r * p.ldy + j] = v;
    }
  }
}

void quantize_rows_u8(const float* x, int m, int k, uint8_t* q, float* scale, int32_t* zp) {
  for (int r = 0; r < m; ++r) {
    quantize_row_u8(x + static_cast<size_t>(r) * k, k, q + static_cast<size_t>(r) * k, scale + r, zp + r);
  }
}

void bias_act_f32(float* y, int m, int n, const float* bias, bool relu) {
  for (int r = 0; r < m; ++r) {
    float* row = y + static_cast<size_t>(r) * n;
    for (int j = 0; j < n; ++j) {
      float v = bias ? row[j] + bias[j] : row[j];
      row[j] = relu ? std::max(v, 0.0f) : v;
    }
  }
}

void relu_f32(float* x, size_t count) {
  for (size_t i = 0; i < count; ++i) x[i] = std::max(x[i], 0.0f);
}

// Eight independent multiply-add chains, so the loop measures throughput, not
// latency. The empty asm keeps the compiler from vectorizing or folding it.
uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (kind != PeakKind::Fp32) {
    int32_t acc[8] = {0, 1, 2, 3, 4, 5, 6, 7}, a = 3, b = -5;
    for (uint64_t i = 0; i < iterations; ++i) {
      for (int32_t& v : acc) v += a * b;
      __asm__ volatile("" : "+r"(a), "+r"(b));
    }
    int32_t s = 0;
    for (int32_t v : acc) s += v;
    __asm__ volatile("" ::"r"(s));
  } else {
    float acc[8] = {0, 1, 2, 3, 4, 5, 6, 7}, a = 1.0f, b = 1e-7f;
    for (uint64_t i = 0; i < iterations; ++i) {
      for (float& v : acc) v = v + a * b;
      __asm__ volatile("" : "+x"(a), "+x"(b));
    }
    float s = 0;
    for (float v : acc) s += v;
    __asm__ volatile("" ::"x"(s));
  }
  return iterations * 8 * 2;
}

void depthwise_s8(const DepthwiseS8Args& a) {
  for (int p = 0; p < a.pixels; ++p)
    for (int ch = 0; ch < a.c; ++ch) {
      int32_t acc = a.init[ch];
      for (int t = 0; t < a.taps; ++t) acc += int32_t{a.x[t][p * a.step + ch]} * a.w[t * a.c + ch];
      a.acc[static_cast<size_t>(p) * a.c + ch] = acc;
    }
}

KernelTable make_table() {
  KernelTable t;
  t.name = "scalar";
  t.tile_n = 1;
  t.sparse = &sparse_scalar_kernels();
  t.pack_s8 = pack_s8;
  t.gemm_u8s8 = gemm_u8s8;
  t.pack_f32 = pack_f32;
  t.gemm_f32 = gemm_f32;
  t.epilogue_s32 = epilogue_s32;
  t.quantize_rows_u8 = quantize_rows_u8;
  t.bias_act_f32 = bias_act_f32;
  t.relu_f32 = relu_f32;
  t.peak_probe = peak_probe;
  t.cnn = &scalar_cnn_kernels();
  t.depthwise_s8 = depthwise_s8;
  return t;
}

}  // namespace

const KernelTable& scalar_kernels() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace edgeopt
