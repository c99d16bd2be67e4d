// AVX2 sparse kernels (formats in core/sparse.h). Only functions
// use AVX2 (see x86_isa.h); sparse_kernels_for() hands them out only with the
// x86 dense tables (all need AVX2), which dispatch.cc picks after cpuid said yes.
//
// Products always go through vpmaddwd on int16 operands (activations 0..255
// zero-extended, weights sign-extended), whose int32 pair sums are exact: no
// vpmaddubsw saturation. Where a kernel has only one product per pair, the
// other half of the pair is 0.
#if defined(__x86_64__) || defined(_M_X64)
#include <memory>

#include "../core/sparse.h"
#include "x86.h"
#include "x86_isa.h"

EDGEOPT_TARGET_BEGIN(EDGEOPT_ISA_AVX2)
namespace edgeopt {
namespace {

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// --- CSR, few rows: gather the activations of 8 non-zeros at a time ---------

// a32: MR rows of k activations as int32.
template <int MR>
void csr_gather(const CsrArgs& p, const int32_t* a32, int r0) {
  const SparseS8& w = *p.w;
  for (int j = p.n_begin; j < p.n_end; ++j) {
    __m256i acc[MR];
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) acc[r] = _mm256_setzero_si256();
    for (uint32_t e = w.row_ptr[j]; e < w.row_ptr[j + 1]; e += kSparseStep) {
      const __m256i vi = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&w.idx[e])));
      const __m256i vw = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(&w.val[e])));
      EDGEOPT_UNROLL
      for (int r = 0; r < MR; ++r) {
        const __m256i va = _mm256_i32gather_epi32(a32 + static_cast<size_t>(r) * w.k, vi, 4);
        acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(va, vw));
      }
    }
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) p.c[(r0 + r) * p.ldc + j] = hsum(acc[r]) - p.a_zero_point[r0 + r] * w.col_sums[j];
  }
}

// --- CSR, many rows: rows in the lanes, two non-zeros per vpmaddwd ---------

// at: the block's activations transposed and widened, [k][16 * V] int16 (rows
// past m are 0). A channel's non-zeros go in pairs (k1, k2): vpunpck{l,h}wd
// interleaves the rows' a[k1] and a[k2] into int16 pairs, and one vpmaddwd
// against the broadcast weight pair (w1, w2) gives 8 rows' a1*w1 + a2*w2,
// exact in int32. Rows land in the lanes in unpack order: acc[v][0] holds rows
// 16v + {0..3, 8..11}, acc[v][1] rows 16v + {4..7, 12..15}.
// Where row i of a block lands in the flattened accumulators acc[V][2][8].
constexpr int lane_slot(int i) { return 16 * (i / 16) + 8 * ((i / 4) % 2) + i % 4 + 4 * ((i % 16) / 8); }

template <int V>
void csr_rows(const CsrArgs& p, const int16_t* at, int r0) {
  const SparseS8& w = *p.w;
  constexpr int W = 16 * V;
  const int rows = std::min(W, p.m - r0);
  alignas(32) int32_t zpl[W] = {};  // the rows' zero points in lane order
  for (int i = 0; i < rows; ++i) zpl[lane_slot(i)] = p.a_zero_point[r0 + i];
  for (int j = p.n_begin; j < p.n_end; ++j) {
    __m256i acc[V][2];
    EDGEOPT_UNROLL
    for (int v = 0; v < V; ++v) acc[v][0] = acc[v][1] = _mm256_setzero_si256();
    for (uint32_t e = w.row_ptr[j]; e < w.row_ptr[j + 1]; e += kSparseStep) {
      // Weights e..e+7 as int16: four (w1, w2) words, in both 128-bit lanes so
      // an in-lane shuffle broadcasts one.
      const __m256i w16 =
          _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(&w.val[e]))));
      const __m256i wp[4] = {_mm256_shuffle_epi32(w16, 0x00), _mm256_shuffle_epi32(w16, 0x55),
                             _mm256_shuffle_epi32(w16, 0xaa), _mm256_shuffle_epi32(w16, 0xff)};
      EDGEOPT_UNROLL
      for (int q = 0; q < 4; ++q) {
        const int16_t* c1 = at + static_cast<size_t>(w.idx[e + 2 * q]) * W;
        const int16_t* c2 = at + static_cast<size_t>(w.idx[e + 2 * q + 1]) * W;
        EDGEOPT_UNROLL
        for (int v = 0; v < V; ++v) {
          const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c1 + 16 * v));
          const __m256i a2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c2 + 16 * v));
          acc[v][0] = _mm256_add_epi32(acc[v][0], _mm256_madd_epi16(_mm256_unpacklo_epi16(a1, a2), wp[q]));
          acc[v][1] = _mm256_add_epi32(acc[v][1], _mm256_madd_epi16(_mm256_unpackhi_epi16(a1, a2), wp[q]));
        }
      }
    }
    // Minus zp[r] * col_sums[j], then each lane to its row of C.
    const __m256i cs = _mm256_set1_epi32(w.col_sums[j]);
    alignas(32) int32_t lanes[W];
    EDGEOPT_UNROLL
    for (int v = 0; v < V; ++v) EDGEOPT_UNROLL
    for (int h = 0; h < 2; ++h) {
      const __m256i zp = _mm256_load_si256(reinterpret_cast<const __m256i*>(zpl + 16 * v + 8 * h));
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 16 * v + 8 * h),
                         _mm256_sub_epi32(acc[v][h], _mm256_mullo_epi32(zp, cs)));
    }
    for (int i = 0; i < rows; ++i) p.c[(r0 + i) * p.ldc + j] = lanes[lane_slot(i)];
  }
}

// Below this many rows, gathering per row beats the transposed blocks (measured, bench/sparse.js).
constexpr int kGatherMaxRows = 3;

void gemm_csr(const CsrArgs& p) {
  if (p.m <= 0 || p.n_begin >= p.n_end) return;
  const int k = p.w->k;
  if (p.m <= kGatherMaxRows) {
    std::unique_ptr<int32_t[]> a32(new int32_t[static_cast<size_t>(p.m) * k]);
    for (int r = 0; r < p.m; ++r)
      for (int i = 0; i < k; ++i) a32[static_cast<size_t>(r) * k + i] = p.a[r * p.lda + i];
    return with_row_count<kGatherMaxRows>(p.m, [&](auto rows) { csr_gather<decltype(rows)::value>(p, a32.get(), 0); });
  }
  // 32 rows a block (16 when there are no more); the block is k * 64 bytes,
  // read at random rows, so it should stay in L2.
  const int V = p.m > 16 ? 2 : 1, W = 16 * V;
  thread_local std::vector<int16_t> at;
  at.resize(static_cast<size_t>(k) * W);
  for (int r0 = 0; r0 < p.m; r0 += W) {
    const int rows = std::min(W, p.m - r0);
    if (rows < W) std::fill(at.begin(), at.end(), int16_t{0});
    // k outer: the writes run sequentially and the rows' read lines stay in L1.
    const uint8_t* src = p.a + r0 * p.lda;
    for (int i = 0; i < k; ++i) {
      int16_t* dst = at.data() + static_cast<size_t>(i) * W;
      for (int r = 0; r < rows; ++r) dst[r] = src[r * p.lda + i];
    }
    if (V == 2)
      csr_rows<2>(p, at.data(), r0);
    else
      csr_rows<1>(p, at.data(), r0);
  }
}

// --- 2:4: per group, a row's 6 possible activation pairs in one register ------

// pairs: MR rows of [groups][8] int32, entry c = a[4g + p0] | a[4g + p1] << 16
// for (p0, p1) = kPairPos[c] (0 past K). vpermd picks each channel's pair by its
// code; vpmaddwd against the channel's two int16 weights gives its group sum.
void build_pairs(const uint8_t* a, int k, int groups, int32_t* out) {
  for (int g = 0; g < groups; ++g) {
    uint32_t q[4];
    for (int i = 0; i < 4; ++i) q[i] = 4 * g + i < k ? a[4 * g + i] : 0;
    for (int c = 0; c < 6; ++c) out[8 * g + c] = static_cast<int32_t>(q[kPairPos[c][0]] | q[kPairPos[c][1]] << 16);
    out[8 * g + 6] = out[8 * g + 7] = 0;
  }
}

inline void store_tile(const Csr24Args& p, int r, int j0, __m256i lo, __m256i hi) {
  alignas(32) int32_t lanes[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), lo);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 8), hi);
  for (int j = std::max(j0, p.n_begin); j < std::min(j0 + 16, p.n_end); ++j)
    p.c[r * p.ldc + j] = lanes[j - j0] - p.a_zero_point[r] * p.w->col_sums[j];
}

template <int MR>
void gemm_24_rows(const Csr24Args& p, const int32_t* pairs, int r0) {
  const Sparse24S8& w = *p.w;
  const size_t row_pairs = static_cast<size_t>(w.groups) * 8;
  const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), seven = _mm256_set1_epi32(7);
  for (int t = p.n_begin / k24Tile; t * k24Tile < p.n_end; ++t) {
    const int8_t* val = w.val.data() + static_cast<size_t>(t) * w.groups * k24Tile * 2;
    const uint8_t* code = w.code.data() + static_cast<size_t>(t) * w.groups * (k24Tile / 2);
    __m256i acc[MR][2];
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int g = 0; g < w.groups; ++g) {
      int32_t cw[2];
      std::memcpy(cw, code + static_cast<size_t>(g) * 8, 8);
      const __m256i sel0 = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(cw[0]), shifts), seven);
      const __m256i sel1 = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(cw[1]), shifts), seven);
      const int8_t* v = val + static_cast<size_t>(g) * 32;
      const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
      const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + 16)));
      EDGEOPT_UNROLL
      for (int r = 0; r < MR; ++r) {
        const __m256i tg = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pairs + r * row_pairs + 8 * g));
        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_permutevar8x32_epi32(tg, sel0), w0));
        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_permutevar8x32_epi32(tg, sel1), w1));
      }
    }
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) store_tile(p, r0 + r, t * k24Tile, acc[r][0], acc[r][1]);
  }
}

void gemm_24(const Csr24Args& p) {
  if (p.m <= 0 || p.n_begin >= p.n_end) return;
  const Sparse24S8& w = *p.w;
  constexpr int kRows = 4;
  const size_t row_pairs = static_cast<size_t>(w.groups) * 8;
  std::unique_ptr<int32_t[]> pairs(new int32_t[row_pairs * std::min(p.m, kRows)]);
  for_row_blocks<kRows>(p.m, [&](int r0, auto rows) {
    constexpr int R = decltype(rows)::value;
    for (int r = 0; r < R; ++r) build_pairs(p.a + (r0 + r) * p.lda, w.k, w.groups, pairs.get() + r * row_pairs);
    gemm_24_rows<R>(p, pairs.get(), r0);
  });
}

// --- Window format: one vpshufb selects each step's 16 activations ------------

// a: MR rows, lda apart, each readable for win + 16 bytes.
template <int MR>
void win_rows(const WinArgs& p, const uint8_t* a, size_t lda, int r0) {
  const SparseWinS8& w = *p.w;
  for (int b = p.n_begin / kWinBlock; b * kWinBlock < p.n_end; ++b) {
    __m256i acc[MR];
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) acc[r] = _mm256_setzero_si256();
    const int8_t* d = w.data.data() + static_cast<size_t>(w.block_ptr[b]) * 2 * kWinWidth;
    for (uint32_t s = w.block_ptr[b]; s < w.block_ptr[b + 1]; ++s, d += 2 * kWinWidth) {
      const __m128i iv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d));
      const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + kWinWidth)));
      const uint8_t* ap = a + w.win[s];
      EDGEOPT_UNROLL
      for (int r = 0; r < MR; ++r) {
        const __m128i av = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ap + r * lda));
        acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_shuffle_epi8(av, iv)), wv));
      }
    }
    alignas(32) int32_t lanes[kWinBlock];
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[r]);
      for (int j = std::max(p.n_begin, b * kWinBlock); j < std::min(p.n_end, (b + 1) * kWinBlock); ++j)
        p.c[(r0 + r) * p.ldc + j] = lanes[j - b * kWinBlock] - p.a_zero_point[r0 + r] * w.col_sums[j];
    }
  }
}

void gemm_win(const WinArgs& p) {
  if (p.m <= 0 || p.n_begin >= p.n_end) return;
  const int k = p.w->k;
  const uint8_t* a = p.a;
  size_t lda = p.lda;
  std::unique_ptr<uint8_t[]> padded;
  if (k < kWinWidth) {  // windows start at 0 and pass the row: copy the rows, zero-padded to 16
    padded.reset(new uint8_t[static_cast<size_t>(p.m) * kWinWidth]());
    for (int r = 0; r < p.m; ++r) std::memcpy(padded.get() + r * kWinWidth, p.a + r * p.lda, k);
    a = padded.get();
    lda = kWinWidth;
  }
  for_row_blocks<4>(p.m, [&](int r, auto rows) { win_rows<decltype(rows)::value>(p, a + r * lda, lda, r); });
}

}  // namespace
}  // namespace edgeopt
EDGEOPT_TARGET_END

namespace edgeopt {
namespace {

// Crossovers against the AVX2 dense kernel (`npm run bench -- sparse`,
// figures in docs/benchmarks.md): at <= 20 % kept the window format wins
// below 16 rows and CSR from there; up to 35 % the window format wins below
// 8 rows and dense from there. 2:4 never beats dense here. Always: the
// window format.
FormatChoice choose_avx2(double density, bool /*two_four*/, bool always) {
  using F = WeightFormat;
  if (density <= 0.2) return {F::Window, F::Csr, 16};
  if (density <= 0.35 || always) return {F::Window, always ? F::Window : F::Dense, 8};
  return {};
}

// Beside a faster dense kernel (avx512's zmm vpmaddwd, the VNNI tables'
// vpdpbusd; amx runs the VNNI kernel for one row), measured with
// `npm run bench -- sparse --isa=avx512|avxvnni|avx512vnni`: the window
// format wins for one row at <= 20 % kept; from 4 rows, and at 30 % kept,
// every sparse kernel loses to dense. Always: the window format.
FormatChoice choose_beside_faster_dense(double density, bool /*two_four*/, bool always) {
  using F = WeightFormat;
  if (density <= 0.2) return {F::Window, always ? F::Window : F::Dense, 2};
  if (always) return {F::Window, F::Window};
  return {};
}

}  // namespace

const SparseKernels& sparse_avx2_one_row_kernels() {
  static const SparseKernels table = {"sparse-avx2", "sparse24-avx2", "sparsewin-avx2",          gemm_csr,
                                      gemm_24,       gemm_win,        choose_beside_faster_dense};
  return table;
}

const SparseKernels& sparse_avx2_kernels() {
  static const SparseKernels table = {"sparse-avx2", "sparse24-avx2", "sparsewin-avx2", gemm_csr,
                                      gemm_24,       gemm_win,        choose_avx2};
  return table;
}

}  // namespace edgeopt
#endif
