// Scalar sparse kernels: the obvious loops over the formats of sparse.h, the
// reference the SIMD ones are tested against (and what arm64 runs).
#include <algorithm>

#include "../core/sparse.h"

namespace edgeopt {
namespace {

void gemm_csr(const CsrArgs& p) {
  const SparseS8& w = *p.w;
  for (int r = 0; r < p.m; ++r) {
    const uint8_t* a = p.a + r * p.lda;
    for (int j = p.n_begin; j < p.n_end; ++j) {
      int32_t acc = 0;
      for (uint32_t e = w.row_ptr[j]; e < w.row_ptr[j + 1]; ++e) acc += a[w.idx[e]] * static_cast<int32_t>(w.val[e]);
      p.c[r * p.ldc + j] = acc - p.a_zero_point[r] * w.col_sums[j];
    }
  }
}

void gemm_24(const Csr24Args& p) {
  const Sparse24S8& w = *p.w;
  for (int r = 0; r < p.m; ++r) {
    const uint8_t* a = p.a + r * p.lda;
    for (int j = p.n_begin; j < p.n_end; ++j) {
      const size_t tile = static_cast<size_t>(j / k24Tile) * w.groups, c = j % k24Tile;
      int32_t acc = 0;
      for (int g = 0; g < w.groups; ++g) {
        const int8_t* v = &w.val[((tile + g) * k24Tile + c) * 2];
        const int code = (w.code[(tile + g) * (k24Tile / 2) + c / 2] >> (4 * (c % 2))) & 15;
        for (int s = 0; s < 2; ++s) {
          const int i = 4 * g + kPairPos[code][s];
          if (i < w.k) acc += a[i] * static_cast<int32_t>(v[s]);  // past K the value is 0
        }
      }
      p.c[r * p.ldc + j] = acc - p.a_zero_point[r] * w.col_sums[j];
    }
  }
}

void gemm_win(const WinArgs& p) {
  const SparseWinS8& w = *p.w;
  for (int r = 0; r < p.m; ++r) {
    const uint8_t* a = p.a + r * p.lda;
    for (int b = p.n_begin / kWinBlock; b * kWinBlock < p.n_end; ++b) {
      int32_t acc[kWinBlock] = {};
      for (uint32_t s = w.block_ptr[b]; s < w.block_ptr[b + 1]; ++s) {
        const int8_t* d = &w.data[static_cast<size_t>(s) * 2 * kWinWidth];
        for (int q = 0; q < 2 * kWinBlock; ++q)  // unused slots hold value 0 at a position inside the row
          if (w.win[s] + d[q] < w.k) acc[q / 2] += a[w.win[s] + d[q]] * static_cast<int32_t>(d[kWinWidth + q]);
      }
      for (int j = std::max(p.n_begin, b * kWinBlock); j < std::min(p.n_end, (b + 1) * kWinBlock); ++j)
        p.c[r * p.ldc + j] = acc[j - b * kWinBlock] - p.a_zero_point[r] * w.col_sums[j];
    }
  }
}

// Crossovers against the scalar dense loop (which the compiler vectorizes with
// SSE2), measured by `npm run bench -- sparse --isa=scalar`: CSR breaks even
// between 80 and 90 % sparsity at batch 1 and 8; 2:4 runs at 0.2-0.3x, never
// picked by auto. Always: 2:4 where the weights are 2:4, else CSR.
FormatChoice choose_scalar(double density, bool two_four, bool always) {
  using F = WeightFormat;
  if (density <= 0.12) return {F::Csr, F::Csr};
  if (always) return two_four ? FormatChoice{F::TwoFour, F::TwoFour} : FormatChoice{F::Csr, F::Csr};
  return {};
}

// Beside a SIMD dense table they were never measured against (arm64's NEON
// tables: qemu timings mean nothing): a scalar loop over 10 % of the weights
// can lose to sdot over all of them, so auto keeps dense; always still packs
// sparse.
FormatChoice choose_unmeasured(double density, bool two_four, bool always) {
  return always ? choose_scalar(density, two_four, true) : FormatChoice{};
}

}  // namespace

const SparseKernels& sparse_scalar_kernels() {
  static const SparseKernels table = {"sparse-scalar", "sparse24-scalar", "sparsewin-scalar", gemm_csr,
                                      gemm_24,         gemm_win,          choose_scalar};
  return table;
}

const SparseKernels& sparse_scalar_beside_simd_kernels() {
  static const SparseKernels table = {"sparse-scalar", "sparse24-scalar", "sparsewin-scalar", gemm_csr,
                                      gemm_24,         gemm_win,          choose_unmeasured};
  return table;
}

}  // namespace edgeopt
