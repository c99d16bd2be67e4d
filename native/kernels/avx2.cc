// AVX2 + FMA kernel table: fp32 GEMM, epilogues, quantization and the peak
// probe; the int8 GEMM is in avx2_u8s8.cc. See avx2.h for the rules on
// target attributes.
#if defined(__x86_64__) || defined(_M_X64)
#include "avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../core/kernels.h"
#include "../core/quantize.h"
#include "../core/sparse.h"
#include "row_blocks.h"

namespace edgeopt {
namespace {

// fp32 weights are packed in tiles of 16 output channels: for each k, the 16
// channels' weights. Padding is zero.
constexpr int kTile = 16;

inline int tiles_of(int n) { return (n + kTile - 1) / kTile; }

void pack_f32(const float* w, int n, int k, PackedF32* out) {
  out->n = n;
  out->k = k;
  out->data.assign(static_cast<size_t>(tiles_of(n)) * k * kTile, 0.0f);
  for (int j = 0; j < n; ++j) {
    float* tile = out->data.data() + static_cast<size_t>(j / kTile) * k * kTile + (j % kTile);
    for (int i = 0; i < k; ++i) tile[static_cast<size_t>(i) * kTile] = w[static_cast<size_t>(j) * k + i];
  }
  out->packer = &avx2_kernels();
}

// fp32 with a long K and a full row block: K is cut into blocks so a tile's
// slice (16 KB per 256 k) stays in L1/L2 while every row block uses it; the
// accumulators go through y between blocks. A float FMA chain continued from
// its stored value in the same k order gives the same bits, so blocking never
// changes a result. Short K runs in one pass, row blocks outer.
constexpr int kPanel = 4;  // tiles per panel when blocking
constexpr int kBlockK = 256;
constexpr int kBlockMinK = 2048;  // full-K tile slices above 128 KB

// fp32: one FMA chain per channel in k order, so results do not depend on
// the block shape, the K blocking, the row count or the thread split.
EDGEOPT_AVX2 inline __m256 load8_f32(const float* y, size_t ldy, int n_begin, int n_end, int r, int j) {
  const float* src = y + r * ldy;
  if (j >= n_begin && j + 8 <= n_end) return _mm256_loadu_ps(src + j);
  alignas(32) float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int q = std::max(j, n_begin); q < std::min(j + 8, n_end); ++q) tmp[q - j] = src[q];
  return _mm256_load_ps(tmp);
}

EDGEOPT_AVX2 inline void store8_f32(float* y, size_t ldy, int n_begin, int n_end, int r, int j, __m256 acc) {
  float* dst = y + r * ldy;
  if (j >= n_begin && j + 8 <= n_end) {
    _mm256_storeu_ps(dst + j, acc);
    return;
  }
  alignas(32) float tmp[8];
  _mm256_store_ps(tmp, acc);
  for (int q = std::max(j, n_begin); q < std::min(j + 8, n_end); ++q) dst[q] = tmp[q - j];
}

template <int MR, int T>
EDGEOPT_MICROKERNEL void f32_block(const GemmF32Args& p, int r0, int t0, int k0, int kn) {
  const size_t tile_floats = static_cast<size_t>(p.w->k) * kTile;
  const float* w = p.w->data.data() + t0 * tile_floats + static_cast<size_t>(k0) * kTile;
  const float* x = p.x + r0 * p.ldx + k0;
  __m256 acc[MR][T][2];
  EDGEOPT_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) {
    const int j = (t0 + t) * kTile;
    acc[r][t][0] = k0 == 0 ? _mm256_setzero_ps() : load8_f32(p.y, p.ldy, p.n_begin, p.n_end, r0 + r, j);
    acc[r][t][1] = k0 == 0 ? _mm256_setzero_ps() : load8_f32(p.y, p.ldy, p.n_begin, p.n_end, r0 + r, j + 8);
  }
  for (int i = 0; i < kn; ++i) {
    __m256 wv[T][2];
    EDGEOPT_UNROLL
    for (int t = 0; t < T; ++t) {
      wv[t][0] = _mm256_loadu_ps(w + t * tile_floats + static_cast<size_t>(i) * kTile);
      wv[t][1] = _mm256_loadu_ps(w + t * tile_floats + static_cast<size_t>(i) * kTile + 8);
    }
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) {
      const __m256 xv = _mm256_broadcast_ss(x + r * p.ldx + i);
      EDGEOPT_UNROLL
      for (int t = 0; t < T; ++t) {
        acc[r][t][0] = _mm256_fmadd_ps(wv[t][0], xv, acc[r][t][0]);
        acc[r][t][1] = _mm256_fmadd_ps(wv[t][1], xv, acc[r][t][1]);
      }
    }
  }
  EDGEOPT_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) {
    const int j = (t0 + t) * kTile;
    store8_f32(p.y, p.ldy, p.n_begin, p.n_end, r0 + r, j, acc[r][t][0]);
    store8_f32(p.y, p.ldy, p.n_begin, p.n_end, r0 + r, j + 8, acc[r][t][1]);
  }
}

template <int MR, int T>
EDGEOPT_AVX2 void f32_rows(const GemmF32Args& p, int r0, int t_begin, int t_end, int k0, int kn) {
  int t = t_begin;
  for (; T > 1 && t + T <= t_end; t += T) f32_block<MR, T>(p, r0, t, k0, kn);
  for (; t < t_end; ++t) f32_block<MR, 1>(p, r0, t, k0, kn);
}

EDGEOPT_AVX2 void gemm_f32(const GemmF32Args& p) {
  if (p.m <= 0 || p.n_begin >= p.n_end) return;
  const int k = p.w->k;
  const int t_begin = p.n_begin / kTile, t_end = tiles_of(p.n_end);
  const bool blocked = k > kBlockMinK && p.m >= 6;
  const int block_k = blocked ? kBlockK : k, panel = blocked ? kPanel : t_end - t_begin;
  for (int k0 = 0; k0 < k; k0 += block_k) {
    const int kn = std::min(block_k, k - k0);
    for (int tp = t_begin; tp < t_end; tp += panel) {
      const int tpe = std::min(t_end, tp + panel);
      // Few rows: more tiles per pass, so enough independent FMA chains hide latency.
      for_row_blocks<6>(p.m, [&](int r, auto rows) {
        constexpr int R = decltype(rows)::value;
        f32_rows<R, tiles_for_rows(R, 12, 2, 4)>(p, r, tp, tpe, k0, kn);
      });
    }
  }
}

// Float element-wise kernels: the same operations in the same order as
// scalar.cc, without FMA. _mm256_max_ps(zero, v) is `0 > v ? 0 : v`, which is
// std::max(v, 0.0f) exactly, including for -0 and NaN.
EDGEOPT_AVX2 void epilogue_s32(const EpilogueArgs& p) {
  const __m256 zero = _mm256_setzero_ps();
  for (int r = 0; r < p.m; ++r) {
    const int32_t* c = p.c + r * p.ldc;
    float* y = p.y + r * p.ldy;
    const __m256 as = _mm256_set1_ps(p.a_scale[r]);
    int j = 0;
    for (; j + 8 <= p.n; j += 8) {
      const __m256 ws = p.w_scale_stride ? _mm256_loadu_ps(p.w_scale + j) : _mm256_set1_ps(p.w_scale[0]);
      __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + j))),
                               _mm256_mul_ps(as, ws));
      if (p.bias) v = _mm256_add_ps(v, _mm256_loadu_ps(p.bias + j));
      if (p.relu) v = _mm256_max_ps(zero, v);
      _mm256_storeu_ps(y + j, v);
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

EDGEOPT_AVX2 float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

EDGEOPT_AVX2 float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

// round_even(x / s) + zp clamped as std::clamp(v, 0, 255) does; NaN goes to 0,
// as the scalar float -> uint8 cast does on x86.
EDGEOPT_AVX2 inline __m256i quant8(const float* x, __m256 s, __m256 zp) {
  __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, zp), _mm256_setzero_ps()), _mm256_set1_ps(255.0f));
  return _mm256_cvttps_epi32(v);
}

// quantize_row_u8 (quantize.h) vectorized. min/max ignore NaN the way
// std::min/std::max do (the running value is the second operand); lanes start
// at +0, so the result equals the scalar fold. q uses true division and
// round-half-even, like round_even(x / s).
EDGEOPT_AVX2 void quantize_row(const float* x, int k, uint8_t* q, float* scale, int32_t* zero_point) {
  __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    lo = _mm256_min_ps(v, lo);
    hi = _mm256_max_ps(v, hi);
  }
  float l = hmin(lo), h = hmax(hi);
  for (; i < k; ++i) {
    l = std::min(l, x[i]);
    h = std::max(h, x[i]);
  }
  const RowGrid g = row_grid(l, h);
  const float s = g.scale, zp_f = g.zero_point;
  const __m256 sv = _mm256_set1_ps(s), zv = _mm256_set1_ps(zp_f);
  i = 0;
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (; i + 32 <= k; i += 32) {
    const __m256i a = _mm256_packus_epi32(quant8(x + i, sv, zv), quant8(x + i + 8, sv, zv));
    const __m256i b = _mm256_packus_epi32(quant8(x + i + 16, sv, zv), quant8(x + i + 24, sv, zv));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), bytes);
  }
  for (; i < k; ++i) q[i] = quantize_u8(x[i], g);
  *scale = g.scale;
  *zero_point = static_cast<int32_t>(g.zero_point);
}

EDGEOPT_AVX2 void quantize_rows_u8(const float* x, int m, int k, uint8_t* q, float* scale, int32_t* zp) {
  for (int r = 0; r < m; ++r)
    quantize_row(x + static_cast<size_t>(r) * k, k, q + static_cast<size_t>(r) * k, scale + r, zp + r);
}

EDGEOPT_AVX2 void bias_act_f32(float* y, int m, int n, const float* bias, bool relu) {
  const __m256 zero = _mm256_setzero_ps();
  for (int r = 0; r < m; ++r) {
    float* row = y + static_cast<size_t>(r) * n;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
      __m256 v = _mm256_loadu_ps(row + j);
      if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
      if (relu) v = _mm256_max_ps(zero, v);
      _mm256_storeu_ps(row + j, v);
    }
    for (; j < n; ++j) {
      const float v = bias ? row[j] + bias[j] : row[j];
      row[j] = relu ? std::max(v, 0.0f) : v;
    }
  }
}

EDGEOPT_AVX2 void relu_f32(float* x, size_t count) {
  const __m256 zero = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, _mm256_max_ps(zero, _mm256_loadu_ps(x + i)));
  for (; i < count; ++i) x[i] = std::max(x[i], 0.0f);
}

// Register-only loops with the microkernels' arithmetic: 12 independent
// accumulators, per step 12 x (vpmaddwd + vpaddd) for int8, 12 x (vpmaddubsw +
// vpmaddwd by 1 + vpaddd) for narrow int8 (avx2_u8s8.cc's two layouts) and 12
// vfmadd231ps for fp32. Written in asm because the compiler otherwise folds the
// loop-invariant multiplies or spills the accumulators; the operands' values do
// not change the timing of these instructions (zeros keep FMA off denormals).
#define EDGEOPT_MADD_ADD(acc) "vpmaddwd %%ymm0, %%ymm1, %%ymm2\n\tvpaddd %%ymm2, %%" acc ", %%" acc "\n\t"
#define EDGEOPT_MADDUBS_ADD(acc) \
  "vpmaddubsw %%ymm0, %%ymm1, %%ymm2\n\tvpmaddwd %%ymm3, %%ymm2, %%ymm2\n\tvpaddd %%ymm2, %%" acc ", %%" acc "\n\t"
#define EDGEOPT_FMA(acc) "vfmadd231ps %%ymm0, %%ymm1, %%" acc "\n\t"
// clang-format off
#define EDGEOPT_12(OP) \
  OP("ymm4") OP("ymm5") OP("ymm6") OP("ymm7") OP("ymm8") OP("ymm9") OP("ymm10") OP("ymm11") OP("ymm12") \
  OP("ymm13") OP("ymm14") OP("ymm15")
// clang-format on

EDGEOPT_AVX2 uint64_t peak_probe(PeakKind kind, uint64_t iterations) {
  if (iterations == 0) return 0;
  uint64_t n = iterations;
  if (kind == PeakKind::Int8) {
    __asm__ volatile(
        "vpxor %%xmm0, %%xmm0, %%xmm0\n\tvpxor %%xmm1, %%xmm1, %%xmm1\n\t"
        "1:\n\t" EDGEOPT_12(EDGEOPT_MADD_ADD) "dec %0\n\tjnz 1b\n\tvzeroupper"
        : "+r"(n)
        :
        : "cc", "xmm0", "xmm1", "xmm2", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
          "xmm13", "xmm14", "xmm15");
    return iterations * 12 * 16 * 2;  // 16 multiply-adds per vpmaddwd
  }
  if (kind == PeakKind::Int8Narrow) {
    __asm__ volatile(
        "vpxor %%xmm0, %%xmm0, %%xmm0\n\tvpxor %%xmm1, %%xmm1, %%xmm1\n\tvpxor %%xmm3, %%xmm3, %%xmm3\n\t"
        "1:\n\t" EDGEOPT_12(EDGEOPT_MADDUBS_ADD) "dec %0\n\tjnz 1b\n\tvzeroupper"
        : "+r"(n)
        :
        : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15");
    return iterations * 12 * 32 * 2;  // 32 multiply-adds per vpmaddubsw
  }
  __asm__ volatile(
      "vpxor %%xmm0, %%xmm0, %%xmm0\n\tvpxor %%xmm1, %%xmm1, %%xmm1\n\t"
      "1:\n\t" EDGEOPT_12(EDGEOPT_FMA) "dec %0\n\tjnz 1b\n\tvzeroupper"
      : "+r"(n)
      :
      : "cc", "xmm0", "xmm1", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
        "xmm14", "xmm15");
  return iterations * 12 * 8 * 2;  // 8 lanes per vfmadd231ps
}

KernelTable make_table() {
  KernelTable t;
  t.name = "avx2";
  t.tile_n = kTile;
  t.sparse = &sparse_avx2_kernels();
  t.pack_s8 = avx2::pack_s8;
  t.gemm_u8s8 = avx2::gemm_u8s8;
  t.pack_f32 = pack_f32;
  t.gemm_f32 = gemm_f32;
  t.epilogue_s32 = epilogue_s32;
  t.quantize_rows_u8 = quantize_rows_u8;
  t.bias_act_f32 = bias_act_f32;
  t.relu_f32 = relu_f32;
  t.peak_probe = peak_probe;
  return t;
}

}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace edgeopt
#endif
