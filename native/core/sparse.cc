#include "sparse.h"

#include <algorithm>
#include <string>

#include "error.h"
#include "parallel_gemm.h"
#include "quantize.h"

namespace edgeopt {

static void check_shape(int n, int k) {
  if (n <= 0 || k <= 0 || k > 32768)
    throw Error("E_SHAPE", "sparse int8 weights need n > 0 and 0 < k <= 32768, got n=" + std::to_string(n) +
                               " k=" + std::to_string(k));
}

void pack_csr_s8(const int8_t* w, int n, int k, SparseS8* out) {
  check_shape(n, k);
  out->n = n;
  out->k = k;
  out->row_ptr.assign(1, 0);
  out->idx.clear();
  out->val.clear();
  out->nnz = 0;
  for (int j = 0; j < n; ++j) {
    const int8_t* row = w + static_cast<size_t>(j) * k;
    for (int i = 0; i < k; ++i)
      if (row[i]) {
        out->idx.push_back(static_cast<uint16_t>(i));
        out->val.push_back(row[i]);
        ++out->nnz;
      }
    while (out->idx.size() % kSparseStep) {
      out->idx.push_back(0);
      out->val.push_back(0);
    }
    out->row_ptr.push_back(static_cast<uint32_t>(out->idx.size()));
  }
  out->col_sums = weight_column_sums(w, n, k);
}

// Visits the non-zero positions of group g (4 along K) of row `row`; stops after 3.
template <typename F>
static int group_nonzeros(const int8_t* row, int k, int g, F&& f) {
  int count = 0;
  for (int p = 0; p < 4 && count < 3; ++p) {
    const int i = 4 * g + p;
    if (i < k && row[i]) f(count++, p);
  }
  return count;
}

bool is_2_4(const int8_t* w, int n, int k) {
  const int groups = (k + 3) / 4;
  for (int j = 0; j < n; ++j)
    for (int g = 0; g < groups; ++g)
      if (group_nonzeros(w + static_cast<size_t>(j) * k, k, g, [](int, int) {}) > 2) return false;
  return true;
}

// The code of the position pair that covers the group's non-zeros (p[0] < p[1] when two).
static int pair_code(const int* p, int count) {
  int want0 = count > 0 ? p[0] : 0, want1 = count > 1 ? p[1] : (want0 == 3 ? 3 : want0 + 1);
  if (count == 1 && want0 == 3) want0 = 2;
  for (int c = 0; c < 6; ++c)
    if (kPairPos[c][0] == want0 && kPairPos[c][1] == want1) return c;
  return 0;
}

void pack_24_s8(const int8_t* w, int n, int k, Sparse24S8* out) {
  check_shape(n, k);
  if (!is_2_4(w, n, k)) throw Error("E_VALUE", "the weights are not 2:4 sparse");
  out->n = n;
  out->k = k;
  out->groups = (k + 3) / 4;
  const size_t tiles = (n + k24Tile - 1) / k24Tile, per_tile = static_cast<size_t>(out->groups);
  out->val.assign(tiles * per_tile * k24Tile * 2, 0);
  out->code.assign(tiles * per_tile * k24Tile / 2, 0);
  for (int j = 0; j < n; ++j) {
    const int8_t* row = w + static_cast<size_t>(j) * k;
    const size_t t = j / k24Tile, c = j % k24Tile;
    for (int g = 0; g < out->groups; ++g) {
      int p[2] = {0, 0};
      const int count = group_nonzeros(row, k, g, [&](int slot, int at) { p[slot] = at; });
      const int code = pair_code(p, count);
      const size_t tg = t * per_tile + g;
      for (int s = 0; s < 2; ++s) {
        const int i = 4 * g + kPairPos[code][s];
        out->val[(tg * k24Tile + c) * 2 + s] = i < k ? row[i] : 0;
      }
      out->code[tg * (k24Tile / 2) + c / 2] |= static_cast<uint8_t>(code << (4 * (c % 2)));
    }
  }
  out->col_sums = weight_column_sums(w, n, k);
}

void pack_win_s8(const int8_t* w, int n, int k, SparseWinS8* out) {
  check_shape(n, k);
  out->n = n;
  out->k = k;
  out->blocks = (n + kWinBlock - 1) / kWinBlock;
  out->block_ptr.assign(1, 0);
  out->win.clear();
  out->data.clear();
  out->nnz = 0;
  const int last_start = std::max(0, k - kWinWidth);
  std::vector<int> pos[kWinBlock];
  for (int b = 0; b < out->blocks; ++b) {
    size_t next[kWinBlock] = {};
    for (int c = 0; c < kWinBlock; ++c) {
      pos[c].clear();
      const int j = b * kWinBlock + c;
      if (j < n)
        for (int i = 0; i < k; ++i)
          if (w[static_cast<size_t>(j) * k + i]) pos[c].push_back(i);
      out->nnz += pos[c].size();
    }
    // Greedy: the window starts at the first pending kept weight of the block
    // (no later than k - 16); every channel takes up to 2 of its own inside it.
    for (;;) {
      int start = k;
      for (int c = 0; c < kWinBlock; ++c)
        if (next[c] < pos[c].size()) start = std::min(start, pos[c][next[c]]);
      if (start == k) break;
      start = std::min(start, last_start);
      int8_t rec[2 * kWinWidth] = {};
      for (int c = 0; c < kWinBlock; ++c)
        for (int h = 0; h < 2 && next[c] < pos[c].size() && pos[c][next[c]] < start + kWinWidth; ++h) {
          const int i = pos[c][next[c]++];
          rec[2 * c + h] = static_cast<int8_t>(i - start);
          rec[kWinWidth + 2 * c + h] = w[static_cast<size_t>(b * kWinBlock + c) * k + i];
        }
      out->win.push_back(static_cast<uint16_t>(start));
      out->data.insert(out->data.end(), rec, rec + 2 * kWinWidth);
    }
    out->block_ptr.push_back(static_cast<uint32_t>(out->win.size()));
  }
  out->col_sums = weight_column_sums(w, n, k);
}

const SparseKernels& sparse_kernels_for(const KernelTable& kt) {
  return kt.sparse ? *kt.sparse : sparse_scalar_beside_simd_kernels();
}

void gemm_csr_parallel(const SparseKernels& sk, ThreadPool* pool, const CsrArgs& a) {
  // Work per (row, channel) is the mean non-zero count, which sizes the chunks.
  const int per_row = static_cast<int>(a.w->idx.size() / static_cast<size_t>(a.w->n)) + 1;
  split_channels(sk.gemm_csr, pool, a, per_row, 1);  // channels are independent
}

void gemm_24_parallel(const SparseKernels& sk, ThreadPool* pool, const Csr24Args& a) {
  split_channels(sk.gemm_24, pool, a, a.w->groups * 2, k24Tile);
}

void gemm_win_parallel(const SparseKernels& sk, ThreadPool* pool, const WinArgs& a) {
  const int per_row = static_cast<int>(a.w->win.size() * 2 / static_cast<size_t>(a.w->n)) + 1;
  split_channels(sk.gemm_win, pool, a, per_row, kWinBlock);
}

FormatChoice choose_weight_format(const int8_t* w, int n, int k, SparsePolicy policy, const SparseKernels& sk) {
  size_t nnz = 0;
  const size_t total = static_cast<size_t>(n) * k;
  for (size_t i = 0; i < total; ++i) nnz += w[i] != 0;
  const double density = static_cast<double>(nnz) / static_cast<double>(total);
  FormatChoice c;
  if (policy != SparsePolicy::Never) c = sk.choose(density, is_2_4(w, n, k), policy == SparsePolicy::Always);
  c.density = density;
  return c;
}

}  // namespace edgeopt
