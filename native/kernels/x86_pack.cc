// x86 weight packings (layouts in x86.h), baseline code: packing runs once
// per layer at load, on any CPU.
#if defined(__x86_64__) || defined(_M_X64)
#include <algorithm>
#include <cstdlib>

#include "../core/quantize.h"
#include "x86.h"

namespace edgeopt {
namespace x86 {
namespace {

constexpr int kSpillShare = 256;  // quads when at most 1/256 of the k pairs spill

inline bool fits_maddubs(int w0, int w1) { return std::abs(w0) + std::abs(w1) <= 128; }

void start(const int8_t* w, int n, int k, Layout layout, PackedS8* out, const KernelTable* packer) {
  out->n = n;
  out->k = k;
  out->layout = layout;
  out->spill_begin.clear();
  out->spill_k.clear();
  out->spill_w.clear();
  out->col_sums = weight_column_sums(w, n, k);
  out->packer = packer;
}

void pack_pairs(const int8_t* w, int n, int k, PackedS8* out) {
  const size_t stride = tile_stride(*out);
  out->data.assign(tiles_of(n) * stride, 0);
  for (int j = 0; j < n; ++j) {
    const int8_t* row = w + static_cast<size_t>(j) * k;
    int8_t* tile = out->data.data() + (j / kTile) * stride + (j % kTile) * 2;
    for (int i = 0; i < k; ++i) tile[static_cast<size_t>(i / 2) * 2 * kTile + (i % 2)] = row[i];
  }
}

// With `spill`, pairs over vpmaddubsw's bound stay zero in the tiles and go
// to the spill list.
void pack_quads(const int8_t* w, int n, int k, bool spill, PackedS8* out) {
  const size_t stride = tile_stride(*out);
  out->data.assign(tiles_of(n) * stride, 0);
  if (spill) out->spill_begin.assign(static_cast<size_t>(n) + 1, 0);
  for (int j = 0; j < n; ++j) {
    const int8_t* row = w + static_cast<size_t>(j) * k;
    int8_t* tile = out->data.data() + (j / kTile) * stride + (j % kTile) * 4;
    for (int i = 0; i < k; i += 2) {
      const int w0 = row[i], w1 = i + 1 < k ? row[i + 1] : 0;
      int8_t* dst = tile + static_cast<size_t>(i / 4) * 4 * kTile + i % 4;
      if (!spill || fits_maddubs(w0, w1)) {
        dst[0] = static_cast<int8_t>(w0);
        if (i + 1 < k) dst[1] = static_cast<int8_t>(w1);
        continue;
      }
      for (int q = i; q < std::min(i + 2, k); ++q) {
        out->spill_k.push_back(q);
        out->spill_w.push_back(row[q]);
      }
    }
    if (spill) out->spill_begin[j + 1] = static_cast<int32_t>(out->spill_k.size());
  }
}

}  // namespace

void pack_s8_exact(const int8_t* w, int n, int k, PackedS8* out, const KernelTable* packer) {
  size_t over = 0, pairs = 0;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < k; i += 2, ++pairs) {
      const int8_t* row = w + static_cast<size_t>(j) * k;
      over += !fits_maddubs(row[i], i + 1 < k ? row[i + 1] : 0);
    }
  const bool quads = over * kSpillShare <= pairs;
  start(w, n, k, quads ? kQuads : kPairs, out, packer);
  if (quads)
    pack_quads(w, n, k, true, out);
  else
    pack_pairs(w, n, k, out);
}

void pack_s8_quads(const int8_t* w, int n, int k, Layout layout, PackedS8* out, const KernelTable* packer) {
  start(w, n, k, layout, out, packer);
  pack_quads(w, n, k, false, out);
}

void pack_f32_tiles(const float* w, int n, int k, PackedF32* out, const KernelTable* packer) {
  out->n = n;
  out->k = k;
  const size_t stride = tile_stride_f32(k);
  out->data.assign(tiles_of(n) * stride, 0.0f);
  for (int j = 0; j < n; ++j) {
    float* tile = out->data.data() + (j / kTile) * stride + (j % kTile);
    for (int i = 0; i < k; ++i) tile[static_cast<size_t>(i) * kTile] = w[static_cast<size_t>(j) * k + i];
  }
  out->packer = packer;
}

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

}  // namespace x86
}  // namespace edgeopt
#endif
