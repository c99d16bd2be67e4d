#include "dense.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "activation.h"
#include "error.h"
#include "parallel_gemm.h"

namespace edgeopt {

DenseF32::DenseF32(const KernelTable& kt, const float* w, int n, int k, const float* bias, const Activation& act)
    : kt_(kt), n_(n), k_(k), act_(act) {
  if (n <= 0 || k <= 0) throw Error("E_SHAPE", "dense layer needs n, k > 0");
  kt.pack_f32(w, n, k, &w_);
  if (bias) bias_.assign(bias, bias + n);
}

std::string DenseF32::kernel_name() const { return std::string("dense-") + kt_.name; }

void DenseF32::run(const float* x, int m, float* y, ThreadPool* pool) const {
  gemm_f32_parallel(kt_, pool, {x, static_cast<size_t>(k_), m, &w_, y, static_cast<size_t>(n_), 0, n_});
  const bool relu = act_.kind == ActKind::Relu;
  if (act_.kind == ActKind::None || relu) {
    kt_.bias_act_f32(y, m, n_, bias_.empty() ? nullptr : bias_.data(), relu);
    return;
  }
  kt_.bias_act_f32(y, m, n_, bias_.empty() ? nullptr : bias_.data(), false);
  const size_t count = static_cast<size_t>(m) * n_;
  for (size_t i = 0; i < count; ++i) y[i] = activate(y[i], act_);
}

DenseS8::DenseS8(const KernelTable& kt, const Spec& s) : kt_(kt), n_(s.n), k_(s.k) {
  if (s.n <= 0 || s.k <= 0) throw Error("E_SHAPE", "int8 layer needs n, k > 0");
  if (s.group_size < 0 || s.group_size > s.k) throw Error("E_ARGUMENT", "group_size must be in 0..k");
  const int groups = s.group_size ? (s.k + s.group_size - 1) / s.group_size : 1;
  const size_t n = static_cast<size_t>(s.n);
  const bool ok = s.group_size ? s.scale_count == n * groups : (s.scale_count == 1 || s.scale_count == n);
  if (!ok)
    throw Error("E_SHAPE", "int8 layer has " + std::to_string(s.scale_count) +
                               " scales, which fits neither its channels nor its groups");
  group_size_ = s.group_size;
  w_zero_point_ = s.zero_point;
  if (s.group_size) {
    // Each group is its own [n][len] block, so the kernels' column sums (and the
    // zero-point correction they feed) are per group too.
    std::vector<int8_t> block;
    for (int g = 0; g < groups; ++g) {
      const int begin = g * s.group_size, len = std::min(s.group_size, s.k - begin);
      block.resize(n * len);
      for (size_t j = 0; j < n; ++j) std::copy_n(s.w + j * s.k + begin, len, block.data() + j * len);
      w_groups_.emplace_back();
      kt.pack_s8(block.data(), s.n, len, &w_groups_.back());
    }
  } else {
    const SparseKernels& sk = sparse_kernels_for(kt);
    sparse_ = choose_weight_format(s.w, s.n, s.k, s.sparse, sk);
    if (sparse_.uses(WeightFormat::Csr)) pack_csr_s8(s.w, s.n, s.k, &w_csr_);
    if (sparse_.uses(WeightFormat::TwoFour)) pack_24_s8(s.w, s.n, s.k, &w_24_);
    if (sparse_.uses(WeightFormat::Window)) pack_win_s8(s.w, s.n, s.k, &w_win_);
    if (sparse_.uses(WeightFormat::Dense)) kt.pack_s8(s.w, s.n, s.k, &w_s8_);
  }
  w_scale_.assign(s.scales, s.scales + s.scale_count);
  if (s.bias) bias_.assign(s.bias, s.bias + n);
  relu_ = s.relu;
  if (s.static_input) {
    if (!(s.static_input->scale > 0) || s.static_input->zero_point < -128 || s.static_input->zero_point > 127)
      throw Error("E_VALUE", "static activation needs scale > 0 and zero point in -128..127");
    static_input_ = true;
    input_ = *s.static_input;
  }
  if (s.static_output) {
    const StaticActivation out = *s.static_output;
    if (!static_input_ || group_size_ || w_zero_point_)
      throw Error("E_ARGUMENT",
                  "a static int8 output needs a static input and symmetric per-channel or per-tensor weights");
    if (!(out.scale > 0) || out.zero_point < -128 || out.zero_point > 127)
      throw Error("E_VALUE", "static output needs scale > 0 and zero point in -128..127");
    static_output_ = true;
    output_ = out;
    // The per-channel multipliers and int32 biases of integer requantization.
    for (int j = 0; j < n_; ++j) {
      const float ws = w_scale_[w_scale_.size() > 1 ? j : 0];
      out_multiplier_.push_back(quantize_multiplier(static_cast<double>(input_.scale) * ws / out.scale));
      bias_q_.push_back(bias_.empty() ? 0 : quantize_bias(bias_[j], input_.scale, ws));
    }
  }
}

// y = (q - zp_out) * s_out with q the requantized int8 output (ReLU clamps at zp_out).
void DenseS8::requantize(const int32_t* acc, int m, float* y) const {
  const int32_t lo = relu_ ? std::max(output_.zero_point, -128) : -128;
  for (int r = 0; r < m; ++r)
    for (int j = 0; j < n_; ++j) {
      const size_t i = static_cast<size_t>(r) * n_ + j;
      const int32_t sum = saturate_int32(static_cast<int64_t>(acc[i]) + bias_q_[j]);
      const int32_t q =
          std::clamp(output_.zero_point + multiply_by_quantized_multiplier(sum, out_multiplier_[j]), lo, 127);
      y[i] = static_cast<float>(q - output_.zero_point) * output_.scale;
    }
}

// acc[r][j] -= w_zero_point * sum_k (q[r][k] - zp[r]) over the layer's K range.
static void subtract_weight_zero_point(int32_t* acc, size_t ldc, int m, int n, const uint8_t* q, size_t ldq, int k,
                                       const int32_t* zp, int32_t w_zero_point) {
  for (int r = 0; r < m; ++r) {
    int32_t row_sum = 0;
    for (int i = 0; i < k; ++i) row_sum += q[r * ldq + i];
    const int32_t correction = w_zero_point * (row_sum - k * zp[r]);
    for (int j = 0; j < n; ++j) acc[r * ldc + j] -= correction;
  }
}

// Group-wise scales: y = sum over groups (in order) of float(acc_g) * (a_scale * w_scale[j][g]),
// then + bias, then ReLU. The TS twin sums in the same order, so results are identical.
void DenseS8::run_grouped(const uint8_t* q, const int32_t* zp, const float* a_scale, int m, float* y, ThreadPool* pool,
                          std::vector<int32_t>& acc) const {
  const int groups = static_cast<int>(w_groups_.size());
  std::fill(y, y + static_cast<size_t>(m) * n_, 0.0f);
  for (int g = 0; g < groups; ++g) {
    const PackedS8& w = w_groups_[g];
    const uint8_t* qg = q + static_cast<size_t>(g) * group_size_;
    gemm_u8s8_parallel(kt_, pool, {qg, static_cast<size_t>(k_), zp, m, &w, acc.data(), static_cast<size_t>(n_), 0, n_});
    if (w_zero_point_) subtract_weight_zero_point(acc.data(), n_, m, n_, qg, k_, w.k, zp, w_zero_point_);
    for (int r = 0; r < m; ++r)
      for (int j = 0; j < n_; ++j) {
        const float s = a_scale[r] * w_scale_[static_cast<size_t>(j) * groups + g];
        float& v = y[static_cast<size_t>(r) * n_ + j];
        v = v + static_cast<float>(acc[static_cast<size_t>(r) * n_ + j]) * s;
      }
  }
  kt_.bias_act_f32(y, m, n_, bias_.empty() ? nullptr : bias_.data(), relu_);
}

// The layer's int32 accumulators with the packing chosen for m rows (all give identical results).
void DenseS8::gemm(const uint8_t* q, const int32_t* zp, int m, int32_t* acc, ThreadPool* pool) const {
  const size_t k = static_cast<size_t>(k_), n = static_cast<size_t>(n_);
  switch (sparse_.for_rows(m)) {
    case WeightFormat::Window:
      return gemm_win_parallel(sparse_kernels_for(kt_), pool, {q, k, zp, m, &w_win_, acc, n, 0, n_});
    case WeightFormat::Csr:
      return gemm_csr_parallel(sparse_kernels_for(kt_), pool, {q, k, zp, m, &w_csr_, acc, n, 0, n_});
    case WeightFormat::TwoFour:
      return gemm_24_parallel(sparse_kernels_for(kt_), pool, {q, k, zp, m, &w_24_, acc, n, 0, n_});
    case WeightFormat::Dense:
      return gemm_u8s8_parallel(kt_, pool, {q, k, zp, m, &w_s8_, acc, n, 0, n_});
  }
}

std::string DenseS8::kernel_name() const {
  const std::string dense = std::string("dense-") + kt_.name;
  if (group_size_) return dense;
  const SparseKernels& sk = sparse_kernels_for(kt_);
  auto name = [&](WeightFormat f) -> std::string {
    return f == WeightFormat::TwoFour  ? sk.name_24
           : f == WeightFormat::Window ? sk.name_win
           : f == WeightFormat::Csr    ? sk.name
                                       : dense;
  };
  const FormatChoice& c = sparse_;
  return c.few == c.many ? name(c.few) : name(c.few) + "<" + std::to_string(c.split_rows) + "/" + name(c.many);
}

// Static int8 quantization fed to the uint8 GEMM as q + 128 with zero point zp + 128:
// (q + 128) - (zp + 128) = q - zp, so the int32 accumulators equal an int8 NPU's.
static void quantize_static_rows(StaticActivation a, const float* x, int m, int k, uint8_t* q, float* scale,
                                 int32_t* zero_point) {
  for (size_t i = 0; i < static_cast<size_t>(m) * k; ++i)
    q[i] = static_cast<uint8_t>(quantize_static_s8(x[i], a) + 128);
  std::fill(scale, scale + m, a.scale);
  std::fill(zero_point, zero_point + m, a.zero_point + 128);
}

void DenseS8::run(const float* x, int m, float* y, ThreadPool* pool, Scratch& s) const {
  s.q.resize(static_cast<size_t>(m) * k_);
  s.zp.resize(m);
  s.a_scale.resize(m);
  if (static_input_) {
    quantize_static_rows(input_, x, m, k_, s.q.data(), s.a_scale.data(), s.zp.data());
  } else {
    kt_.quantize_rows_u8(x, m, k_, s.q.data(), s.a_scale.data(), s.zp.data());
  }
  const EpilogueArgs epilogue{nullptr,
                              static_cast<size_t>(n_),
                              m,
                              n_,
                              s.a_scale.data(),
                              w_scale_.data(),
                              w_scale_.size() > 1 ? 1 : 0,
                              bias_.empty() ? nullptr : bias_.data(),
                              relu_,
                              y,
                              static_cast<size_t>(n_)};
  // The common case, dense weights with a float output: the epilogue runs on
  // the sums in registers, no m x n int32 matrix goes through memory.
  const bool fused = kt_.gemm_u8s8_dequant && !group_size_ && !w_zero_point_ && !static_output_ &&
                     sparse_.for_rows(m) == WeightFormat::Dense;
  if (fused)
    return gemm_u8s8_dequant_parallel(
        kt_, pool, {s.q.data(), static_cast<size_t>(k_), s.zp.data(), m, &w_s8_, nullptr, 0, 0, n_}, epilogue);
  s.acc.resize(static_cast<size_t>(m) * n_);
  if (group_size_) return run_grouped(s.q.data(), s.zp.data(), s.a_scale.data(), m, y, pool, s.acc);
  gemm(s.q.data(), s.zp.data(), m, s.acc.data(), pool);
  if (w_zero_point_)
    subtract_weight_zero_point(s.acc.data(), n_, m, n_, s.q.data(), k_, k_, s.zp.data(), w_zero_point_);
  if (static_output_) return requantize(s.acc.data(), m, y);
  EpilogueArgs unfused = epilogue;
  unfused.c = s.acc.data();
  kt_.epilogue_s32(unfused);
}

void softmax_rows(float* x, int m, int n) {
  for (int r = 0; r < m; ++r) {
    float* row = x + static_cast<size_t>(r) * n;
    float mx = -INFINITY;
    for (int j = 0; j < n; ++j) mx = std::max(mx, row[j]);
    float sum = 0.0f;
    for (int j = 0; j < n; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    for (int j = 0; j < n; ++j) row[j] = row[j] / sum;
  }
}

}  // namespace edgeopt
