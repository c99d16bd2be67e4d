// An execution plan: a chain of layers whose weights were packed once, at load,
// for one kernel table. Immutable after building, so any number of threads may
// run it at once; each run allocates its own scratch. Dense layers split their
// output channels over the process's pool for the plan's thread count, shared
// with every other plan (one run at a time uses it; a concurrent run computes
// on its calling thread, with identical results).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels.h"
#include "requantize.h"
#include "sparse.h"
#include "static_quant.h"
#include "thread_pool.h"

namespace edgeopt {

struct PlanLayer {
  enum class Kind { DenseF32, DenseS8, Relu, Softmax };
  explicit PlanLayer(Kind k) : kind(k) {}
  Kind kind;
  int k = 0, n = 0;  // input and output features
  PackedF32 w_f32;
  PackedS8 w_s8;
  std::vector<float> w_scale;  // DenseS8: n (per channel), 1 (per tensor) or n * groups scales
  // DenseS8 with scales per group of K (group_size > 0): one packed block per group.
  int group_size = 0;
  std::vector<PackedS8> w_groups;
  int32_t w_zero_point = 0;  // asymmetric weights: W = (q - w_zero_point) * scale
  std::vector<float> bias;   // empty when the layer has none
  bool relu = false;
  bool static_input = false;  // DenseS8: quantize the input with `input`, not per row
  StaticActivation input{1.0f, 0};
  // DenseS8 with a static int8 output (requantize.h): integer requantization per
  // channel instead of the float epilogue; the layer emits (q - zp) * scale.
  bool static_output = false;
  StaticActivation output{1.0f, 0};
  std::vector<QuantizedMultiplier> out_multiplier;
  std::vector<int32_t> bias_q;
  // DenseS8 packings (sparse.h): the formats `sparse` picks for few and many
  // rows are packed, w_s8 only when one of them is dense.
  FormatChoice sparse;
  SparseS8 w_csr;
  Sparse24S8 w_24;
  SparseWinS8 w_win;
};

class Plan {
 public:
  // threads: intra-op threads including the caller; 0 = hardware concurrency.
  explicit Plan(const KernelTable& kernels, int threads = 0);

  // W is [n][k] row-major (output-channel major). Throws E_SHAPE when k does
  // not match the previous layer's width.
  void add_dense_f32(const float* w, int n, int k, const float* bias, bool relu);
  void add_dense_s8(const int8_t* w, int n, int k, const float* scales, bool per_channel, const float* bias, bool relu);
  // The general int8 layer: `scales` holds scale_count values (1, n, or
  // n * ceil(k / group_size) with group_size > 0, row-major [n][groups]);
  // weights are asymmetric when zero_point != 0.
  struct S8Layer {
    const int8_t* w;
    int n, k;
    const float* scales;
    size_t scale_count;
    int group_size;
    int32_t zero_point;
    const float* bias;
    bool relu;
    // Calibrated per-tensor int8 input parameters (static_quant.h); null = dynamic per-row uint8.
    const StaticActivation* static_input = nullptr;
    // Dense or sparse kernels (per-group-scaled layers stay dense).
    SparsePolicy sparse = SparsePolicy::Auto;
    // Static int8 output (needs a static input and symmetric, non-grouped weights); null = float epilogue.
    const StaticActivation* static_output = nullptr;
  };
  void add_dense_s8(const S8Layer& layer);
  void add_relu();
  void add_softmax();

  int input_features() const { return input_features_; }
  int output_features() const { return width_; }
  const KernelTable& kernels() const { return kernels_; }
  int threads() const { return pool_ ? pool_->threads() : 1; }
  // Per layer, the kernel it runs: "dense-avx2", "sparse-avx2", "sparse24-avx2",
  // "sparsewin-avx2<16/sparse-avx2" (the first below 16 rows, the second from
  // 16); "" for Relu/Softmax.
  std::vector<std::string> layer_kernels() const;

  // y (m x output_features) = plan(x (m x input_features)).
  void run(const float* x, int m, float* y) const;

 private:
  void expect_input(int k);
  static void set_static_output(PlanLayer& l, StaticActivation out);
  void gemm_s8(const PlanLayer& l, const uint8_t* q, const int32_t* zp, int m, int32_t* acc) const;
  void run_grouped_s8(const PlanLayer& l, const uint8_t* q, const int32_t* zp, const float* a_scale, int m,
                      float* y) const;
  const KernelTable& kernels_;
  std::shared_ptr<ThreadPool> pool_;  // shared_thread_pool(threads); null for one thread
  std::vector<PlanLayer> layers_;
  int input_features_ = -1;
  int width_ = -1;
};

// Row-wise softmax in place, max-subtracted (shared by plans and tests).
void softmax_rows(float* x, int m, int n);

}  // namespace edgeopt
