// The Program's dense and qdense ops (program.ts DenseOp/QDenseOp): weights
// packed once at load for one kernel table, then run over any number of rows
// (a batch times the op's rows per image). Immutable after building, so any
// number of threads may run one at once; scratch comes from the caller. The
// GEMMs split their output channels over a ThreadPool; results do not depend
// on the thread count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cnn_kernels.h"
#include "kernels.h"
#include "requantize.h"
#include "sparse.h"
#include "static_quant.h"
#include "thread_pool.h"

namespace edgeopt {

// y[m][n] = act(x[m][k] W^T + bias).
class DenseF32 {
 public:
  DenseF32(const KernelTable& kt, const float* w, int n, int k, const float* bias, const Activation& act);
  void run(const float* x, int m, float* y, ThreadPool* pool) const;
  int n() const { return n_; }
  int k() const { return k_; }
  std::string kernel_name() const;

 private:
  const KernelTable& kt_;
  int n_, k_;
  PackedF32 w_;
  std::vector<float> bias_;
  Activation act_;
};

// The int8 layer: dynamic per-row uint8 (or static int8) input quantization,
// exact int32 GEMM (dense or sparse packing), weight zero-point correction,
// then per-channel/tensor/group dequantization + bias + ReLU, or integer
// requantization to a static int8 output.
class DenseS8 {
 public:
  struct Spec {
    const int8_t* w;
    int n, k;
    // 1, n, or n * ceil(k / group_size) scales (row-major [n][groups]) with group_size > 0.
    const float* scales;
    size_t scale_count;
    int group_size;
    int32_t zero_point;  // asymmetric weights: W = (q - zero_point) * scale
    const float* bias;
    bool relu;
    const StaticActivation* static_input = nullptr;  // null: dynamic per-row uint8
    SparsePolicy sparse = SparsePolicy::Auto;
    // Needs a static input and symmetric, non-grouped weights; null = float epilogue.
    const StaticActivation* static_output = nullptr;
  };
  DenseS8(const KernelTable& kt, const Spec& spec);

  // Scratch per call: m * (k bytes + 2 per-row values), and m * n int32s where
  // the table has no fused epilogue (KernelTable::gemm_u8s8_dequant).
  struct Scratch {
    std::vector<uint8_t> q;
    std::vector<int32_t> acc, zp;
    std::vector<float> a_scale;
  };
  void run(const float* x, int m, float* y, ThreadPool* pool, Scratch& scratch) const;
  int n() const { return n_; }
  int k() const { return k_; }
  // "dense-avx2", "sparse-avx2", "sparse24-avx2", "sparsewin-avx2<16/sparse-avx2" (the first below 16 rows).
  std::string kernel_name() const;

 private:
  void gemm(const uint8_t* q, const int32_t* zp, int m, int32_t* acc, ThreadPool* pool) const;
  void run_grouped(const uint8_t* q, const int32_t* zp, const float* a_scale, int m, float* y, ThreadPool* pool,
                   std::vector<int32_t>& acc) const;
  void requantize(const int32_t* acc, int m, float* y) const;

  const KernelTable& kt_;
  int n_, k_;
  PackedS8 w_s8_;
  std::vector<float> w_scale_;
  int group_size_ = 0;
  std::vector<PackedS8> w_groups_;
  int32_t w_zero_point_ = 0;
  std::vector<float> bias_;
  bool relu_ = false;
  bool static_input_ = false;
  StaticActivation input_{1.0f, 0};
  bool static_output_ = false;
  StaticActivation output_{1.0f, 0};
  std::vector<QuantizedMultiplier> out_multiplier_;
  std::vector<int32_t> bias_q_;
  FormatChoice sparse_;
  SparseS8 w_csr_;
  Sparse24S8 w_24_;
  SparseWinS8 w_win_;
};

// Row-wise softmax in place, max-subtracted (the softmax of a Dense head).
void softmax_rows(float* x, int m, int n);

}  // namespace edgeopt
