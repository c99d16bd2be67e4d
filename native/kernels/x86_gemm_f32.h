// The fp32 GEMM of every x86 table, Y = X x W^T over x86::pack_f32_tiles
// weights, for any vector width. Include inside a target region, after
// x86_ymm.h (and x86_zmm.h).
//
// A plan P says: using V; kRows, kBudget, kMaxTiles (the register plan, as
// for the int8 layouts of x86_gemm_u8s8.h); kPanel (tiles per K-blocked pass).
//
// One FMA chain per output in k order, so results do not depend on the block
// shape, the K blocking, the row count or the thread split. With a long K and
// a full row block, K is cut into blocks so a tile's slice (16 KB per 256 k)
// stays in L1/L2 while every row block uses it; the accumulators go through y
// between blocks, and a float FMA chain continued from its stored value in the
// same k order gives the same bits. Short K runs in one pass, row blocks outer.
#pragma once

namespace edgeopt {
namespace {

constexpr int kF32BlockK = 256;
constexpr int kF32BlockMinK = 2048;  // full-K tile slices above 128 KB

// V::kLanes columns of row r from column j, those inside [n_begin, n_end)
// (others 0). Masked, not through a buffer: a call to memset or memcpy in the
// microkernel makes GCC keep the accumulators in memory across it.
template <class V>
inline typename V::F load_columns(const GemmF32Args& p, int r, int j) {
  const float* src = p.y + r * p.ldy;
  if (j >= p.n_begin && j + V::kLanes <= p.n_end) return V::load_f(src + j);
  return V::load_f_lanes(src + j, std::max(0, p.n_begin - j), std::min(V::kLanes, p.n_end - j));
}

template <class V>
inline void store_columns(const GemmF32Args& p, int r, int j, typename V::F acc) {
  float* dst = p.y + r * p.ldy;
  if (j >= p.n_begin && j + V::kLanes <= p.n_end) return V::store_f(dst + j, acc);
  V::store_f_lanes(dst + j, acc, std::max(0, p.n_begin - j), std::min(V::kLanes, p.n_end - j));
}

// MR rows x T tiles, k in [k0, k0 + kn), continuing the sums in y unless k0 == 0.
template <class P, int MR, int T>
EDGEOPT_MICROKERNEL void f32_block(const GemmF32Args& p, int r0, int t0, int k0, int kn) {
  using V = typename P::V;
  using F = typename V::F;
  constexpr int kVecs = x86::kTile / V::kLanes;
  const size_t tile_floats = x86::tile_stride_f32(p.w->k);
  const float* w = p.w->data.data() + t0 * tile_floats + static_cast<size_t>(k0) * x86::kTile;
  const float* x = p.x + r0 * p.ldx + k0;
  F acc[MR][T][kVecs];
  EDGEOPT_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
  for (int v = 0; v < kVecs; ++v) {
    const int j = (t0 + t) * x86::kTile + v * V::kLanes;
    acc[r][t][v] = k0 == 0 ? V::zero_f() : load_columns<V>(p, r0 + r, j);
  }
  for (int i = 0; i < kn; ++i) {
    F wv[T][kVecs];
    EDGEOPT_UNROLL
    for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
    for (int v = 0; v < kVecs; ++v)
      wv[t][v] = V::load_f(w + t * tile_floats + static_cast<size_t>(i) * x86::kTile + v * V::kLanes);
    EDGEOPT_UNROLL
    for (int r = 0; r < MR; ++r) {
      const F xv = V::set1_f(x[r * p.ldx + i]);
      EDGEOPT_UNROLL
      for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
      for (int v = 0; v < kVecs; ++v) acc[r][t][v] = V::fmadd(wv[t][v], xv, acc[r][t][v]);
    }
  }
  EDGEOPT_UNROLL
  for (int r = 0; r < MR; ++r) EDGEOPT_UNROLL
  for (int t = 0; t < T; ++t) EDGEOPT_UNROLL
  for (int v = 0; v < kVecs; ++v) store_columns<V>(p, r0 + r, (t0 + t) * x86::kTile + v * V::kLanes, acc[r][t][v]);
}

template <class P, int MR, int T>
void f32_rows(const GemmF32Args& p, int r0, int t_begin, int t_end, int k0, int kn) {
  int t = t_begin;
  for (; T > 1 && t + T <= t_end; t += T) f32_block<P, MR, T>(p, r0, t, k0, kn);
  for (; t < t_end; ++t) f32_block<P, MR, 1>(p, r0, t, k0, kn);
}

template <class P>
void gemm_f32_tiles(const GemmF32Args& p) {
  if (p.m <= 0 || p.n_begin >= p.n_end) return;
  const int k = p.w->k;
  const int t_begin = p.n_begin / x86::kTile, t_end = x86::tiles_of(p.n_end);
  const bool blocked = k > kF32BlockMinK && p.m >= P::kRows;
  const int block_k = blocked ? kF32BlockK : k, panel = blocked ? P::kPanel : t_end - t_begin;
  for (int k0 = 0; k0 < k; k0 += block_k) {
    const int kn = std::min(block_k, k - k0);
    for (int tp = t_begin; tp < t_end; tp += panel) {
      const int tpe = std::min(t_end, tp + panel);
      for_row_blocks<P::kRows>(p.m, [&](int r, auto rows) {
        constexpr int R = decltype(rows)::value;
        f32_rows<P, R, tiles_for_rows(R, P::kBudget, x86::kTile / P::V::kLanes, P::kMaxTiles)>(p, r, tp, tpe, k0, kn);
      });
    }
  }
}

}  // namespace
}  // namespace edgeopt
