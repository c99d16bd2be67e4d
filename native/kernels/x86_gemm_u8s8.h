// The int8 GEMM of every x86 table, C = (A - zp) x W^T over weights packed
// in a layout of x86.h, written once for any vector width and dot-product
// sequence. Include inside a target region (core/requantize.h before it).
//
// A layout L says how a k step multiplies:
//   using V;                 vector operations (Ymm, Zmm)
//   kStep                    k per step: 2 (kPairs) or 4 (quads)
//   kWiden                   activation words are zero-extended uint8 pairs
//                            (vpmaddwd), else the 4 bytes in place
//   weights(p) -> V::I       V::kLanes channels' step of weights at p
//   dot(acc, a, w) -> V::I   acc + each channel's step of products, int32
//   kRows, kBudget, kMaxTiles  the register plan: full blocks of kRows rows;
//                            kBudget accumulator registers, tiles per call
//                            chosen by tiles_for_rows (row_blocks.h)
//   kPanelBytes              activations of a row panel, kept in L2 next to
//                            the weight tiles all its rows use (L2: 512 KB on
//                            Zen 2/3, 1 MB on Zen 4/5 and Skylake-SP, 2 MB on
//                            Sapphire Rapids)
// Every channel is one int32 accumulator over the whole of k, so any blocking
// gives the same sums.
#pragma once
#include <type_traits>

#include "x86_requantize.h"

namespace edgeopt {
namespace {

#ifndef PF
#define PF 0
#endif
// An activation word: may alias the uint8 rows a quads layout reads in place.
typedef int32_t __attribute__((may_alias)) Word;

// Where a microkernel's sums go: c[r][j] = sum - zp[r] * col_sums[j] for j in [n_begin, n_end).
struct OutS32 {
  int32_t* c;
  size_t ldc;
  const int32_t* zp;
  const int32_t* col_sums;
  int n_begin, n_end;

  // Stores V::kLanes channels' sums starting at column j; of a partly used
  // tile (24, 40, 72 or 120 channels end in one), the lanes in range, masked.
  template <class V>
  void store(int r, int j, typename V::I acc) const {
    int32_t* dst = c + r * ldc;
    if (j >= n_begin && j + V::kLanes <= n_end) {
      V::store(dst + j, V::sub(acc, V::mullo(V::set1(zp[r]), V::load(col_sums + j))));
      return;
    }
    const int lo = std::max(j, n_begin) - j, hi = std::min(j + V::kLanes, n_end) - j;
    if (lo >= hi) return;
    V::store_lanes(dst + j, V::sub(acc, V::mullo(V::set1(zp[r]), V::load_lanes(col_sums + j, lo, hi))), lo, hi);
  }
};

// The same sums through KernelTable::epilogue_s32's float epilogue while they
// are in registers (gemm_u8s8_dequant): y[r][j] = relu?(float(c[r][j]) *
// (a_scale[r] * w_scale[j]) + bias[j]), the operations of epilogue_s32_simd
// and scalar.cc in their order, so the floats are the same bit for bit.
struct OutF32 {
  OutS32 s32;  // zero-point terms and column range (its c is unused)
  const EpilogueArgs* e;
};

// Requantized int8 outputs while the sums are in registers (gemm_u8s8_requant):
// y[r][j] = clamp(zp + requantize(sum + bias[j]), lo, hi), requantize_s8's
// formula, for j in [n_begin, n_end). The sums are the uint8 rows' own (no
// zero-point term: the caller folded it into bias).
struct OutS8 {
  const RequantizeS8Args* q;
  int n_begin, n_end;
};

// A microkernel's MR x T x kVecs sums to their outputs, one vector at a time.
template <class V, int MR, int T, int kVecs, class Out>
inline void store_block(const Out& o, int r0, int j0, const typename V::I (&acc)[MR][T][kVecs]) {
  EDGEOPT_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
  for (int v = 0; v < kVecs; ++v) o.template store<V>(r0 + r, j0 + t * x86::kTile + v * V::kLanes, acc[r][t][v]);
}

// OutS8's store_block: the sums to an L1 buffer first, then column by column,
// each column's bias, multiplier and shift loaded once for the block's rows.
// Requantizing straight from the 24 accumulator registers left too few for
// its constants: the compiler spilled more than the buffer costs.
template <class V, int MR, int T, int kVecs>
inline void store_block_s8(const OutS8& o, int r0, int j0, const typename V::I (&acc)[MR][T][kVecs]) {
  using I = typename V::I;
  alignas(64) int32_t sums[T * kVecs][MR][V::kLanes];
  EDGEOPT_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
  for (int v = 0; v < kVecs; ++v) V::store(sums[t * kVecs + v][r], acc[r][t][v]);
  const RequantizeS8Args& q = *o.q;
  for (int col = 0; col < T * kVecs; ++col) {
    const int j = j0 + col * V::kLanes;
    const int first = std::max(j, o.n_begin) - j, end = std::min(j + V::kLanes, o.n_end) - j;
    if (first >= end) continue;
    const bool whole = first == 0 && end == V::kLanes;
    const RequantColumn<V> column(whole ? V::load(q.bias + j) : V::load_lanes(q.bias + j, first, end),
                                  whole ? V::load(q.m0 + j) : V::load_lanes(q.m0 + j, first, end),
                                  whole ? V::load(q.right + j) : V::load_lanes(q.right + j, first, end), q.zero_point,
                                  q.lo, q.hi);
    auto rows = [&](auto clamps) {
      for (int r = 0; r < MR; ++r) {
        const I y = column.template apply<decltype(clamps)::value>(V::load(sums[col][r]));
        int8_t* dst = q.y + (r0 + r) * q.ldy + j;
        if (whole) {
          V::store_s8(dst, y);
        } else {
          int8_t bytes[V::kLanes];
          V::store_s8(bytes, y);
          std::memcpy(dst + first, bytes + first, static_cast<size_t>(end - first));
        }
      }
    };
    with_clamp(q.lo, q.hi, rows);
  }
}

// OutF32's store_block: each vector's column parameters loaded once for all
// MR rows; of a partly used tile, the lanes in range, masked (the others are
// computed on zeros and not stored). The same operations in the same order.
template <class V, int MR, int T, int kVecs>
inline void store_block_f32(const OutF32& o, int r0, int j0, const typename V::I (&acc)[MR][T][kVecs]) {
  const OutS32& s = o.s32;
  const EpilogueArgs& e = *o.e;
  EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
  for (int v = 0; v < kVecs; ++v) {
    const int j = j0 + t * x86::kTile + v * V::kLanes;
    const int first = std::max(j, s.n_begin) - j, end = std::min(j + V::kLanes, s.n_end) - j;
    if (first >= end) continue;
    const bool whole = first == 0 && end == V::kLanes;
    const typename V::I col_sums = whole ? V::load(s.col_sums + j) : V::load_lanes(s.col_sums + j, first, end);
    const typename V::F ws = !e.w_scale_stride ? V::set1_f(e.w_scale[0])
                             : whole           ? V::load_f(e.w_scale + j)
                                               : V::load_f_lanes(e.w_scale + j, first, end);
    const typename V::F bias = !e.bias ? V::zero_f()
                               : whole ? V::load_f(e.bias + j)
                                       : V::load_f_lanes(e.bias + j, first, end);
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) {
      const typename V::I c = V::sub(acc[r][t][v], V::mullo(V::set1(s.zp[r0 + r]), col_sums));
      typename V::F y = V::mul_f(V::to_float(c), V::mul_f(V::set1_f(e.a_scale[r0 + r]), ws));
      if (e.bias) y = V::add_f(y, bias);
      if (e.relu) y = V::max_f(V::zero_f(), y);
      float* dst = e.y + (r0 + r) * e.ldy + j;
      if (whole)
        V::store_f(dst, y);
      else
        V::store_f_lanes(dst, y, first, end);
    }
  }
}

// How far ahead of its loads a one-row microkernel prefetches each tile: the
// hardware prefetcher alone left part of the read bandwidth unused on the
// 1x4096x4096 GEMV (`npm run bench -- kernels`).
constexpr size_t kGemvPrefetch = 2048;

// Microkernel: MR rows x T tiles over all steps. `a` points at the first
// row's activation words (rows lda words apart), `w` at the first tile.
template <class L, int MR, int T, class Out>
EDGEOPT_MICROKERNEL void u8s8_block(const Word* a, size_t lda, int steps, const int8_t* w, size_t tile_bytes, int r0,
                                    int j0, const Out& o) {
  using V = typename L::V;
  using I = typename V::I;
  constexpr int kVecs = x86::kTile / V::kLanes;
  constexpr size_t kStepBytes = L::kStep * x86::kTile, kVecBytes = kStepBytes / kVecs;
  I acc[MR][T][kVecs];
  EDGEOPT_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
  for (int v = 0; v < kVecs; ++v) acc[r][t][v] = V::zero();
  for (int p = 0; p < steps; ++p) {
    I wv[T][kVecs];
    if (MR == 1) {  // a GEMV streams its weights once: ask for them ahead
      EDGEOPT_UNROLL
      for (int t = 0; t < T; ++t)
        _mm_prefetch(reinterpret_cast<const char*>(w + t * tile_bytes + p * kStepBytes + kGemvPrefetch), _MM_HINT_T0);
    }
    EDGEOPT_UNROLL
    for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
    for (int v = 0; v < kVecs; ++v) wv[t][v] = L::weights(w + t * tile_bytes + p * kStepBytes + v * kVecBytes);
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) {
      const I av = V::set1(a[r * lda + p]);
      EDGEOPT_UNROLL
      for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
      for (int v = 0; v < kVecs; ++v) acc[r][t][v] = L::dot(acc[r][t][v], av, wv[t][v]);
    }
  }
  if constexpr (std::is_same_v<Out, OutS8>)
    store_block_s8<V, MR, T, kVecs>(o, r0, j0, acc);
  else if constexpr (std::is_same_v<Out, OutF32>)
    store_block_f32<V, MR, T, kVecs>(o, r0, j0, acc);
  else
    store_block<V, MR, T, kVecs>(o, r0, j0, acc);
}

// The activation words of rows [0, m), `lda` words apart; past k, zeros.
struct RowWords {
  const Word* p;
  size_t lda;
};

// Kept per thread across calls: the words when they cannot be read in place.
template <class L>
RowWords row_words(const GemmU8S8Args& g, int steps) {
  using V = typename L::V;
  const int k = g.w->k;
  thread_local std::vector<int32_t> words;
  if constexpr (L::kWiden) {  // word p = a[2p] | a[2p+1] << 16
    words.resize(static_cast<size_t>(g.m) * steps);
    for (int r = 0; r < g.m; ++r) {
      const uint8_t* a = g.a + r * g.lda;
      int32_t* out = words.data() + static_cast<size_t>(r) * steps;
      int i = 0;
      for (; i + 2 * V::kLanes <= k; i += 2 * V::kLanes) V::store(out + i / 2, V::u8_to_u16(a + i));
      for (; i < k; i += 2) out[i / 2] = static_cast<int32_t>(a[i] | (i + 1 < k ? a[i + 1] << 16 : 0));
    }
    return {words.data(), static_cast<size_t>(steps)};
  } else {  // word p = bytes a[4p..4p+3]
    if (steps * 4 == k && g.lda % 4 == 0 && reinterpret_cast<uintptr_t>(g.a) % 4 == 0)
      return {reinterpret_cast<const Word*>(g.a), g.lda / 4};
    words.assign(static_cast<size_t>(g.m) * steps, 0);
    for (int r = 0; r < g.m; ++r) std::memcpy(words.data() + static_cast<size_t>(r) * steps, g.a + r * g.lda, k);
    return {words.data(), static_cast<size_t>(steps)};
  }
}

// Rows [r0, r0+MR) over tiles [t_begin, t_end): T tiles at a time, then a
// pair, then singles. The pair matters for narrow layers (24, 72 or 120
// channels: two tiles left over after groups of three): a single tile
// broadcasts each row's activations for one vpdpbusd, so it runs at the
// speed of the loads.
template <class L, int MR, int T, class Out>
void u8s8_rows(const RowWords& a, int steps, const PackedS8& w, int r0, int t_begin, int t_end, const Out& o) {
  const size_t tile_bytes = x86::tile_stride(w);
  const Word* rows = a.p + r0 * a.lda;
  int t = t_begin;
  for (; T > 1 && t + T <= t_end; t += T)
    u8s8_block<L, MR, T>(rows, a.lda, steps, w.data.data() + t * tile_bytes, tile_bytes, r0, t * x86::kTile, o);
  if constexpr (T > 2)
    for (; t + 2 <= t_end; t += 2)
      u8s8_block<L, MR, 2>(rows, a.lda, steps, w.data.data() + t * tile_bytes, tile_bytes, r0, t * x86::kTile, o);
  for (; t < t_end; ++t)
    u8s8_block<L, MR, 1>(rows, a.lda, steps, w.data.data() + t * tile_bytes, tile_bytes, r0, t * x86::kTile, o);
}

template <class L, int R>
constexpr int u8s8_tiles() {
  return tiles_for_rows(R, L::kBudget, x86::kTile / L::V::kLanes, L::kMaxTiles);
}

// Row panels whose activations fit in L2; in each, a group of tiles at a time
// for all full row blocks, so the weights stream from memory once per panel
// instead of once per row block; then the rows left, more tiles per pass.
template <class L, class Out>
void gemm_u8s8_panels(const GemmU8S8Args& g, const Out& o) {
  constexpr int MR = L::kRows, kGroup = u8s8_tiles<L, MR>();
  const int steps = x86::packed_steps(*g.w);
  const RowWords a = row_words<L>(g, steps);
  const int t_begin = g.n_begin / x86::kTile, t_end = x86::tiles_of(g.n_end);
  const size_t row_bytes = static_cast<size_t>(steps) * 4;
  const int panel = std::max<int>(MR, static_cast<int>(L::kPanelBytes / row_bytes) / MR * MR);
  for (int p0 = 0; p0 < g.m; p0 += panel) {
    const int p1 = std::min(g.m, p0 + panel), full_end = p0 + (p1 - p0) / MR * MR;
    for (int t = t_begin; t < t_end && full_end > p0; t += kGroup)
      for (int r = p0; r < full_end; r += MR)
        u8s8_rows<L, MR, kGroup>(a, steps, *g.w, r, t, std::min(t + kGroup, t_end), o);
    with_row_count<MR - 1>(p1 - full_end, [&](auto rows) {
      constexpr int R = decltype(rows)::value;
      u8s8_rows<L, R, u8s8_tiles<L, R>()>(a, steps, *g.w, full_end, t_begin, t_end, o);
    });
  }
}

// gemm_u8s8 of a layout, or with an epilogue `e` its gemm_u8s8_dequant: the
// float outputs (OutF32) instead of the int32 sums.
template <class L>
void gemm_u8s8_layout(const GemmU8S8Args& g, const EpilogueArgs* e = nullptr) {
  const OutS32 s32{g.c, g.ldc, g.a_zero_point, g.w->col_sums.data(), g.n_begin, g.n_end};
  if (e) return gemm_u8s8_panels<L>(g, OutF32{s32, e});
  gemm_u8s8_panels<L>(g, s32);
}

// gemm_u8s8_requant of a layout.
template <class L>
void gemm_u8s8_requant_layout(const GemmU8S8Args& g, const RequantizeS8Args& q) {
  if (g.m <= 0 || g.n_begin >= g.n_end) return;
  gemm_u8s8_panels<L>(g, OutS8{&q, g.n_begin, g.n_end});
}

// The exact vpmaddwd / vpmaddubsw layouts (x86::pack_s8_exact).
template <class Vec>
struct PairsDot {
  using V = Vec;
  static constexpr int kStep = 2;
  static constexpr bool kWiden = true;
  static typename V::I weights(const int8_t* p) { return V::s8_to_s16(p); }
  static typename V::I dot(typename V::I acc, typename V::I a, typename V::I w) { return V::add(acc, V::madd16(w, a)); }
};

template <class Vec>
struct QuadsDot {
  using V = Vec;
  static constexpr int kStep = 4;
  static constexpr bool kWiden = false;
  static typename V::I weights(const int8_t* p) { return V::load(p); }
  static typename V::I dot(typename V::I acc, typename V::I a, typename V::I w) {
    return V::add(acc, V::madd16(V::maddubs(a, w), V::ones16()));
  }
};

// gemm_u8s8 of the tables packed by x86::pack_s8_exact.
template <class Pairs, class Quads>
void gemm_u8s8_exact(const GemmU8S8Args& g) {
  if (g.m <= 0 || g.n_begin >= g.n_end) return;
  if (g.w->layout == x86::kPairs) return gemm_u8s8_layout<Pairs>(g);
  gemm_u8s8_layout<Quads>(g);
  if (!g.w->spill_k.empty()) x86::add_spills(g);
}

// The int32 sums of g's columns with zero points zp, in per-thread scratch
// (rows w->n apart): the fused forms' path when a spill list must be added first.
template <class Pairs, class Quads>
const int32_t* exact_sums(const GemmU8S8Args& g, const int32_t* zp) {
  thread_local std::vector<int32_t> sums;
  sums.resize(static_cast<size_t>(g.m) * g.w->n);
  GemmU8S8Args s = g;
  s.a_zero_point = zp;
  s.c = sums.data();
  s.ldc = static_cast<size_t>(g.w->n);
  gemm_u8s8_exact<Pairs, Quads>(s);
  return sums.data();
}

// Its gemm_u8s8_dequant: fused when no spill list needs adding to the int32
// sums first; otherwise those sums in per-thread scratch, then the table's
// epilogue_s32.
template <class Pairs, class Quads, void (*Epilogue)(const EpilogueArgs&)>
void gemm_u8s8_dequant_exact(const GemmU8S8Args& g, const EpilogueArgs& e) {
  if (g.m <= 0 || g.n_begin >= g.n_end) return;
  if (g.w->layout == x86::kPairs) return gemm_u8s8_layout<Pairs>(g, &e);
  if (g.w->spill_k.empty()) return gemm_u8s8_layout<Quads>(g, &e);
  EpilogueArgs p = e;
  p.c = exact_sums<Pairs, Quads>(g, g.a_zero_point) + g.n_begin;
  p.ldc = static_cast<size_t>(g.w->n);
  p.n = g.n_end - g.n_begin;
  p.w_scale = e.w_scale + g.n_begin * e.w_scale_stride;
  p.bias = e.bias ? e.bias + g.n_begin : nullptr;
  p.y = e.y + g.n_begin;
  Epilogue(p);
}

// Its gemm_u8s8_requant: fused unless a spill list needs adding to the sums
// first; then the raw sums (zero points 0) in per-thread scratch and the
// table's requantize_s8.
template <class Pairs, class Quads, void (*Requantize)(const RequantizeS8Args&)>
void gemm_u8s8_requant_exact(const GemmU8S8Args& g, const RequantizeS8Args& q) {
  if (g.m <= 0 || g.n_begin >= g.n_end) return;
  if (g.w->layout == x86::kPairs) return gemm_u8s8_requant_layout<Pairs>(g, q);
  if (g.w->spill_k.empty()) return gemm_u8s8_requant_layout<Quads>(g, q);
  thread_local std::vector<int32_t> zeros;
  zeros.assign(g.m, 0);
  RequantizeS8Args p = q;
  p.c = exact_sums<Pairs, Quads>(g, zeros.data()) + g.n_begin;
  p.ldc = static_cast<size_t>(g.w->n);
  p.m = g.m;
  p.n = g.n_end - g.n_begin;
  p.bias = q.bias + g.n_begin;
  p.m0 = q.m0 + g.n_begin;
  p.right = q.right + g.n_begin;
  p.y = q.y + g.n_begin;
  Requantize(p);
}

}  // namespace
}  // namespace edgeopt
