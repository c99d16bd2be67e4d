// Sparse int8 weights: pruned layers packed once, at load, into formats whose
// kernels skip the zeros, so pruning pays off in speed and not only in size.
//
// - SparseS8 (unstructured): CSR per output channel, 16-bit column indices
//   (int8 layers have K <= 32768) and int8 values; every row is padded with
//   (index 0, value 0) entries to a multiple of kSparseStep, so the SIMD kernels
//   never run a tail. The padding adds 0 to every sum.
// - Sparse24S8 (2:4): at most 2 non-zeros in every group of 4 along K; the two
//   kept values of each group (0 where fewer) and their two 2-bit positions,
//   stored as one of the 6 position pairs in a nibble (half the weight bytes
//   plus 1 bit per weight: 0.625 of the dense size).
//
// - SparseWinS8 (unstructured, few rows): output channels in blocks of 8; each
//   block is a stream of steps, a step being one 16-byte K window (its start, a
//   uint16) and, per channel, up to 2 of its kept weights inside the window: 16
//   window positions (bytes 0..15) and 16 values (0 in unused slots). The AVX2
//   kernel selects the 16 activations with one vpshufb on the window and does one
//   vpmaddwd per step: no indexed load per weight. Windows never pass k - 16
//   (when k >= 16), so the kernel reads no byte past a row.
//
// The kernels compute exactly what gemm_u8s8 does on the dense weights,
// C[r][j] = sum_k A[r][k] * W[j][k] - zp[r] * col_sums[j], with the same column
// sums (pruned weights are 0, so they are the sums of the kept values). int32
// sums are exact and order-free, so results are bit-identical to the dense
// scalar reference for any blocking and any thread split.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "thread_pool.h"

namespace edgeopt {

constexpr int kSparseStep = 8;

struct SparseS8 {
  int n = 0, k = 0;
  std::vector<uint32_t> row_ptr;  // n + 1 offsets into idx/val, multiples of kSparseStep
  std::vector<uint16_t> idx;
  std::vector<int8_t> val;
  std::vector<int32_t> col_sums;
  size_t nnz = 0;  // non-zeros, without padding
};

// 2:4 weights in tiles of 16 output channels (n padded with empty channels).
// A group's two slots hold the kept values at positions kPairPos[code] of the
// group; the code (0..5) is the pair of 2-bit positions, one nibble a channel.
constexpr int k24Tile = 16;
constexpr uint8_t kPairPos[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
struct Sparse24S8 {
  int n = 0, k = 0;
  int groups = 0;             // ceil(k / 4)
  std::vector<int8_t> val;    // [tiles][groups][16 channels][2 slots]
  std::vector<uint8_t> code;  // [tiles][groups][8 bytes]: channel c in byte c / 2, bits 4 * (c % 2)
  std::vector<int32_t> col_sums;
};

constexpr int kWinBlock = 8, kWinWidth = 16;
struct SparseWinS8 {
  int n = 0, k = 0;
  int blocks = 0;                   // ceil(n / 8)
  std::vector<uint32_t> block_ptr;  // blocks + 1 offsets in steps
  std::vector<uint16_t> win;        // per step: window start
  std::vector<int8_t> data;         // per step: 16 positions (slot 2c + h: channel c), then 16 values
  std::vector<int32_t> col_sums;
  size_t nnz = 0;
};

// Arguments of the sparse GEMMs: gemm_u8s8's, with the sparse weights.
template <typename W>
struct SparseGemmArgs {
  const uint8_t* a;
  size_t lda;
  const int32_t* a_zero_point;
  int m;
  const W* w;
  int32_t* c;
  size_t ldc;
  int n_begin, n_end;
};
using CsrArgs = SparseGemmArgs<SparseS8>;
using Csr24Args = SparseGemmArgs<Sparse24S8>;
using WinArgs = SparseGemmArgs<SparseWinS8>;

enum class WeightFormat { Dense, Csr, TwoFour, Window };

// Which packing a layer's calls get: calls of fewer than split_rows rows run
// `few`, larger calls `many` (one format for every call when they are equal).
struct FormatChoice {
  WeightFormat few = WeightFormat::Dense, many = WeightFormat::Dense;
  int split_rows = 1;
  double density = 1.0;
  WeightFormat for_rows(int m) const { return m < split_rows ? few : many; }
  bool uses(WeightFormat f) const { return few == f || many == f; }
};

struct SparseKernels {
  const char* name;      // "sparse-scalar", "sparse-avx2"
  const char* name_24;   // "sparse24-scalar", ...
  const char* name_win;  // "sparsewin-scalar", ...
  void (*gemm_csr)(const CsrArgs&);
  void (*gemm_24)(const Csr24Args&);
  void (*gemm_win)(const WinArgs&);
  // The formats that beat this ISA's dense kernel for a layer of this density
  // (two_four: the weights are 2:4), from the crossovers `npm run bench --
  // sparse` measured (README "Sparse kernels"); with `always`, a sparse format
  // for every call even where dense is faster.
  FormatChoice (*choose)(double density, bool two_four, bool always);
};

const SparseKernels& sparse_scalar_kernels();
// The scalar kernels beside a SIMD dense table without sparse kernels of its
// own (arm64): auto keeps dense there, as no crossover was measured.
const SparseKernels& sparse_scalar_beside_simd_kernels();
#if defined(__x86_64__) || defined(_M_X64)
const SparseKernels& sparse_avx2_kernels();
// The same kernels beside the x86 tables whose dense GEMM outruns AVX2's
// (avx512, avxvnni, avx512vnni, amx): auto runs them for one row only.
const SparseKernels& sparse_avx2_one_row_kernels();
#endif
// The sparse kernels that go with a dense table (KernelTable::sparse).
const SparseKernels& sparse_kernels_for(const KernelTable& kt);

void pack_csr_s8(const int8_t* w, int n, int k, SparseS8* out);
// True when every group of 4 along K (the last one padded with zeros) has at most 2 non-zeros.
bool is_2_4(const int8_t* w, int n, int k);
void pack_24_s8(const int8_t* w, int n, int k, Sparse24S8* out);  // requires is_2_4
void pack_win_s8(const int8_t* w, int n, int k, SparseWinS8* out);

// Split over output channels on the pool, like gemm_u8s8_parallel.
void gemm_csr_parallel(const SparseKernels& sk, ThreadPool* pool, const CsrArgs& args);
void gemm_24_parallel(const SparseKernels& sk, ThreadPool* pool, const Csr24Args& args);
void gemm_win_parallel(const SparseKernels& sk, ThreadPool* pool, const WinArgs& args);

// Which kernels a layer gets: Auto follows the sparse table's measured
// crossovers, so a pruned layer is never slower than dense; Always packs every
// layer sparse; Never keeps dense.
enum class SparsePolicy { Auto, Always, Never };
FormatChoice choose_weight_format(const int8_t* w, int n, int k, SparsePolicy policy, const SparseKernels& sk);

}  // namespace edgeopt
