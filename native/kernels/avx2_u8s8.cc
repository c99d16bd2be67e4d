// AVX2 int8 GEMM: C = (A - zp) x W^T, u8 activations, s8 weights, exact.
//
// AVX2 has no vpdpbusd, so an exact u8 x s8 dot product needs care. Two
// layouts, chosen per weight matrix when it is packed:
//
// - Pairs (any weights): both operands widened to int16 and multiplied with
//   vpmaddwd, whose int32 pair sums are exact (|255*-128*2| < 2^31).
// - Quads (weights whose k pairs all have |w0| + |w1| <= 128): vpmaddubsw
//   multiplies the bytes directly. Its int16 pair sums saturate only beyond
//   32767, and under that bound they reach at most 255 * 128 = 32640, so they
//   are exact; vpmaddwd by 1 widens them. Every 7-bit or narrower
//   quantization meets the bound (|w| <= 63). Full-range 8-bit layers do not:
//   uniform random weights have half their pairs over it, trained ones a few
//   percent. A matrix with at most 1/256 of its pairs over the bound
//   keeps those few out of the tiles, in a per-channel list
//   (PackedS8::spill_*) the GEMM adds afterwards; more, and it uses pairs.
//   Quads run 1.15-1.3x faster at 64-256 rows (register-only, `npm run bench
//   -- kernels` peak lines on Zen 3: 197 against 165 GOP/s) and 1.5-2x for
//   one row, as they need no widening.
//
// Both sum each channel in int32, so results equal the scalar reference bit
// for bit whatever the layout, blocking, row count or thread split.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../core/quantize.h"
#include "avx2.h"
#include "row_blocks.h"

namespace edgeopt {
namespace avx2 {
namespace {

constexpr int kTile = 16;  // output channels per packed tile
enum Layout { kPairs = 0, kQuads = 1 };
// A row panel's activations stay in L2 (512 KB on Zen 3, more on most other
// cores) next to the weight tile all its rows are using.
constexpr size_t kPanelBytes = 192 * 1024;
constexpr int kSpillShare = 256;  // quads when at most 1/256 of the k pairs spill

inline int tiles_of(int n) { return (n + kTile - 1) / kTile; }
inline int steps_of(int k, int step) { return (k + step - 1) / step; }
inline bool fits_maddubs(int w0, int w1) { return std::abs(w0) + std::abs(w1) <= 128; }

// Pairs tile: for each pair of k (k padded to even), 16 channels x 2 bytes
// {w[c][2p], w[c][2p+1]}: vpmovsxbw of 16 bytes gives 8 channels' int16 pairs.
void pack_pairs(const int8_t* w, int n, int k, PackedS8* out) {
  const int kp = steps_of(k, 2);
  out->layout = kPairs;
  out->data.assign(static_cast<size_t>(tiles_of(n)) * kp * 2 * kTile, 0);
  for (int j = 0; j < n; ++j) {
    const int8_t* row = w + static_cast<size_t>(j) * k;
    int8_t* tile = out->data.data() + static_cast<size_t>(j / kTile) * kp * 2 * kTile + (j % kTile) * 2;
    for (int i = 0; i < k; ++i) tile[static_cast<size_t>(i / 2) * 2 * kTile + (i % 2)] = row[i];
  }
}

// Quads tile: for each group of 4 k (k padded), 16 channels x 4 bytes: a
// ymm of 32 bytes holds 8 channels' quads, as vpmaddubsw against a broadcast
// activation quad wants them. Pairs over the bound stay zero here and go to
// the spill list.
void pack_quads(const int8_t* w, int n, int k, PackedS8* out) {
  const int kq = steps_of(k, 4);
  out->layout = kQuads;
  out->data.assign(static_cast<size_t>(tiles_of(n)) * kq * 4 * kTile, 0);
  out->spill_begin.assign(static_cast<size_t>(n) + 1, 0);
  for (int j = 0; j < n; ++j) {
    const int8_t* row = w + static_cast<size_t>(j) * k;
    int8_t* tile = out->data.data() + static_cast<size_t>(j / kTile) * kq * 4 * kTile + (j % kTile) * 4;
    for (int i = 0; i < k; i += 2) {
      const int w0 = row[i], w1 = i + 1 < k ? row[i + 1] : 0;
      int8_t* dst = tile + static_cast<size_t>(i / 4) * 4 * kTile + i % 4;
      if (fits_maddubs(w0, w1)) {
        dst[0] = static_cast<int8_t>(w0);
        dst[1] = static_cast<int8_t>(w1);
        continue;
      }
      for (int q = i; q < std::min(i + 2, k); ++q) {
        out->spill_k.push_back(q);
        out->spill_w.push_back(row[q]);
      }
    }
    out->spill_begin[j + 1] = static_cast<int32_t>(out->spill_k.size());
  }
}

// Where a microkernel's results go, and the columns it may write.
struct OutS32 {
  int32_t* c;
  size_t ldc;
  const int32_t* zp;        // per row
  const int32_t* col_sums;  // per column
  int n_begin, n_end;
};

// Stores 8 channels' sums starting at column j, minus the zero-point term.
EDGEOPT_AVX2 inline void store8_s32(const OutS32& o, int r, int j, __m256i acc) {
  int32_t* dst = o.c + r * o.ldc;
  if (j >= o.n_begin && j + 8 <= o.n_end) {
    const __m256i cs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.col_sums + j));
    const __m256i v = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(o.zp[r]), cs));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), v);
    return;
  }
  alignas(32) int32_t tmp[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc);
  for (int q = std::max(j, o.n_begin); q < std::min(j + 8, o.n_end); ++q) dst[q] = tmp[q - j] - o.zp[r] * o.col_sums[q];
}

template <int MR, int T>
EDGEOPT_AVX2 inline void store_block(const OutS32& o, int r0, int j0, __m256i (&acc)[MR][T][2]) {
  EDGEOPT_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) {
    store8_s32(o, r0 + r, j0 + t * kTile, acc[r][t][0]);
    store8_s32(o, r0 + r, j0 + t * kTile + 8, acc[r][t][1]);
  }
}

// An activation word: may alias the uint8 rows the quads layout reads in place.
typedef int32_t __attribute__((may_alias)) Word;

// The two layouts: how a step's weights for 8 channels load, and how they
// multiply against a broadcast activation word into 8 int32 sums.
struct Pairs {
  static constexpr int kStep = 2, kRows = 6;  // 12 accumulators + 2 weights + 1 activation
  EDGEOPT_AVX2 static __m256i weights(const int8_t* wp) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp)));
  }
  EDGEOPT_AVX2 static __m256i dot(__m256i av, __m256i wv) { return _mm256_madd_epi16(wv, av); }
};

struct Quads {
  static constexpr int kStep = 4, kRows = 4;  // 8 accumulators + 2 weights + activation, product, ones
  EDGEOPT_AVX2 static __m256i weights(const int8_t* wp) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp));
  }
  EDGEOPT_AVX2 static __m256i dot(__m256i av, __m256i wv) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(av, wv), _mm256_set1_epi16(1));
  }
};

// Microkernel: MR rows x T tiles (16*T channels) over the whole of k, every
// channel one int32 accumulator. `a` points at the first row's activation
// words (one per step, rows lda words apart), `w` at the first tile.
template <class L, int MR, int T>
EDGEOPT_MICROKERNEL void block(const Word* a, size_t lda, int steps, const int8_t* w, size_t tile_bytes, int r0, int j0,
                               const OutS32& o) {
  constexpr size_t kStepBytes = L::kStep * kTile, kHalf = kStepBytes / 2;  // of a tile; 8 channels
  __m256i acc[MR][T][2];
  EDGEOPT_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) acc[r][t][0] = acc[r][t][1] = _mm256_setzero_si256();
  for (int p = 0; p < steps; ++p) {
    __m256i wv[T][2];
    EDGEOPT_UNROLL
    for (int t = 0; t < T; ++t) {
      const int8_t* wp = w + t * tile_bytes + static_cast<size_t>(p) * kStepBytes;
      wv[t][0] = L::weights(wp);
      wv[t][1] = L::weights(wp + kHalf);
    }
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(a[r * lda + p]);
      EDGEOPT_UNROLL
      for (int t = 0; t < T; ++t) {
        acc[r][t][0] = _mm256_add_epi32(acc[r][t][0], L::dot(av, wv[t][0]));
        acc[r][t][1] = _mm256_add_epi32(acc[r][t][1], L::dot(av, wv[t][1]));
      }
    }
  }
  store_block<MR, T>(o, r0, j0, acc);
}

// The activation words of rows [0, m), `lda` words apart. Pairs: the
// zero-extended int16 pair (a[2p], a[2p+1]); quads: the bytes a[4p..4p+3],
// read in place when k is a multiple of 4; past k, zeros.
struct RowWords {
  const Word* p;
  size_t lda;
};

template <class L>
RowWords row_words(const GemmU8S8Args& g, int steps);

// One activation row as k/2 int32 words, each the zero-extended int16 pair
// (a[2p], a[2p+1]): the operand vpmaddwd multiplies against a weight pair.
EDGEOPT_AVX2 void widen_pairs(const uint8_t* a, int k, int32_t* out) {
  int i = 0;
  for (; i + 16 <= k; i += 16) {
    const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i / 2), v);
  }
  for (; i < k; i += 2) {
    const uint32_t hi = i + 1 < k ? a[i + 1] : 0;
    out[i / 2] = static_cast<int32_t>(a[i] | (hi << 16));
  }
}

// Kept per thread across calls.
template <>
EDGEOPT_AVX2 RowWords row_words<Pairs>(const GemmU8S8Args& g, int steps) {
  thread_local std::vector<int32_t> words;
  words.resize(static_cast<size_t>(g.m) * steps);
  for (int r = 0; r < g.m; ++r) widen_pairs(g.a + r * g.lda, g.w->k, words.data() + static_cast<size_t>(r) * steps);
  return {words.data(), static_cast<size_t>(steps)};
}

template <>
RowWords row_words<Quads>(const GemmU8S8Args& g, int steps) {
  const int k = g.w->k;
  if (k % 4 == 0 && g.lda % 4 == 0 && reinterpret_cast<uintptr_t>(g.a) % 4 == 0)
    return {reinterpret_cast<const Word*>(g.a), g.lda / 4};
  thread_local std::vector<int32_t> words;
  words.assign(static_cast<size_t>(g.m) * steps, 0);
  for (int r = 0; r < g.m; ++r) std::memcpy(words.data() + static_cast<size_t>(r) * steps, g.a + r * g.lda, k);
  return {words.data(), static_cast<size_t>(steps)};
}

// Rows [r0, r0+MR) over tiles [t_begin, t_end): T tiles at a time, then singles.
template <class L, int MR, int T>
EDGEOPT_AVX2 void row_block(const RowWords& a, int steps, const PackedS8& w, int r0, int t_begin, int t_end,
                            const OutS32& o) {
  const size_t tile_bytes = static_cast<size_t>(steps) * L::kStep * kTile;
  const Word* rows = a.p + r0 * a.lda;
  int t = t_begin;
  for (; T > 1 && t + T <= t_end; t += T)
    block<L, MR, T>(rows, a.lda, steps, w.data.data() + t * tile_bytes, tile_bytes, r0, t * kTile, o);
  for (; t < t_end; ++t)
    block<L, MR, 1>(rows, a.lda, steps, w.data.data() + t * tile_bytes, tile_bytes, r0, t * kTile, o);
}

// Row panels whose activations fit next to one weight tile in L2; in each,
// a tile at a time for all full row blocks, so the weights stream from memory
// once per panel instead of once per row block.
template <class L>
EDGEOPT_AVX2 void gemm_layout(const GemmU8S8Args& g) {
  constexpr int MR = L::kRows;
  const int steps = steps_of(g.w->k, L::kStep);
  const RowWords a = row_words<L>(g, steps);
  const OutS32 o{g.c, g.ldc, g.a_zero_point, g.w->col_sums.data(), g.n_begin, g.n_end};
  const int t_begin = g.n_begin / kTile, t_end = tiles_of(g.n_end);
  const size_t row_bytes = static_cast<size_t>(steps) * 4;
  const int panel = std::max<int>(MR, static_cast<int>(kPanelBytes / row_bytes) / MR * MR);
  for (int p0 = 0; p0 < g.m; p0 += panel) {
    const int p1 = std::min(g.m, p0 + panel), full_end = p0 + (p1 - p0) / MR * MR;
    for (int t = t_begin; t < t_end && full_end > p0; ++t)
      for (int r = p0; r < full_end; r += MR) row_block<L, MR, 1>(a, steps, *g.w, r, t, t + 1, o);
    // Fewer rows than a full block: more tiles per pass, so enough independent
    // accumulator chains hide the multiply latency.
    with_row_count<MR - 1>(p1 - full_end, [&](auto rows) {
      constexpr int R = decltype(rows)::value;
      row_block<L, R, tiles_for_rows(R, 12, 2, 4)>(a, steps, *g.w, full_end, t_begin, t_end, o);
    });
  }
}

// C += A x (the pairs left out of the quads tiles). The zero-point term
// already subtracted used the whole matrix's column sums.
void add_spills(const GemmU8S8Args& g) {
  const PackedS8& w = *g.w;
  for (int r = 0; r < g.m; ++r) {
    const uint8_t* a = g.a + r * g.lda;
    int32_t* c = g.c + r * g.ldc;
    for (int j = g.n_begin; j < g.n_end; ++j) {
      int32_t s = 0;
      for (int q = w.spill_begin[j]; q < w.spill_begin[j + 1]; ++q) s += a[w.spill_k[q]] * w.spill_w[q];
      c[j] += s;
    }
  }
}

}  // namespace

void pack_s8(const int8_t* w, int n, int k, PackedS8* out) {
  out->n = n;
  out->k = k;
  out->spill_begin.clear();
  out->spill_k.clear();
  out->spill_w.clear();
  out->col_sums = weight_column_sums(w, n, k);
  size_t over = 0, pairs = 0;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < k; i += 2, ++pairs) {
      const int8_t* row = w + static_cast<size_t>(j) * k;
      over += !fits_maddubs(row[i], i + 1 < k ? row[i + 1] : 0);
    }
  if (over * kSpillShare <= pairs)
    pack_quads(w, n, k, out);
  else
    pack_pairs(w, n, k, out);
  out->packer = &avx2_kernels();
}

EDGEOPT_AVX2 void gemm_u8s8(const GemmU8S8Args& g) {
  if (g.m <= 0 || g.n_begin >= g.n_end) return;
  if (g.w->layout == kQuads) {
    gemm_layout<Quads>(g);
    if (!g.w->spill_k.empty()) add_spills(g);
  } else {
    gemm_layout<Pairs>(g);
  }
}

}  // namespace avx2
}  // namespace edgeopt
#endif
