#include "plan.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "error.h"
#include "parallel_gemm.h"

namespace edgeopt {

Plan::Plan(const KernelTable& kernels, int threads) : kernels_(kernels) {
  if (threads < 0) throw Error("E_ARGUMENT", "threads must be >= 0, got " + std::to_string(threads));
  if (threads == 0) threads = ThreadPool::default_threads();
  if (threads > 1) pool_ = shared_thread_pool(threads);
}

void Plan::expect_input(int k) {
  if (k <= 0) throw Error("E_SHAPE", "layer input width must be positive, got " + std::to_string(k));
  if (width_ >= 0 && width_ != k)
    throw Error("E_SHAPE", "layer expects " + std::to_string(k) + " inputs but the previous layer gives " +
                               std::to_string(width_));
  if (input_features_ < 0) input_features_ = k;
}

void Plan::add_dense_f32(const float* w, int n, int k, const float* bias, bool relu) {
  expect_input(k);
  PlanLayer l(PlanLayer::Kind::DenseF32);
  l.k = k;
  l.n = n;
  kernels_.pack_f32(w, n, k, &l.w_f32);
  if (bias) l.bias.assign(bias, bias + n);
  l.relu = relu;
  layers_.push_back(std::move(l));
  width_ = n;
}

void Plan::add_dense_s8(const int8_t* w, int n, int k, const float* scales, bool per_channel, const float* bias,
                        bool relu) {
  add_dense_s8({w, n, k, scales, per_channel ? static_cast<size_t>(n) : 1, 0, 0, bias, relu});
}

void Plan::add_dense_s8(const S8Layer& s) {
  expect_input(s.k);
  if (s.group_size < 0 || s.group_size > s.k) throw Error("E_ARGUMENT", "group_size must be in 0..k");
  const int groups = s.group_size ? (s.k + s.group_size - 1) / s.group_size : 1;
  const size_t n = static_cast<size_t>(s.n);
  const bool ok = s.group_size ? s.scale_count == n * groups : (s.scale_count == 1 || s.scale_count == n);
  if (!ok)
    throw Error("E_SHAPE", "int8 layer has " + std::to_string(s.scale_count) +
                               " scales, which fits neither its channels nor its groups");
  PlanLayer l(PlanLayer::Kind::DenseS8);
  l.k = s.k;
  l.n = s.n;
  l.group_size = s.group_size;
  l.w_zero_point = s.zero_point;
  if (s.group_size) {
    // Each group is its own [n][len] block, so the kernels' column sums (and the
    // zero-point correction they feed) are per group too.
    std::vector<int8_t> block;
    for (int g = 0; g < groups; ++g) {
      const int begin = g * s.group_size, len = std::min(s.group_size, s.k - begin);
      block.resize(n * len);
      for (size_t j = 0; j < n; ++j) std::copy_n(s.w + j * s.k + begin, len, block.data() + j * len);
      l.w_groups.emplace_back();
      kernels_.pack_s8(block.data(), s.n, len, &l.w_groups.back());
    }
  } else {
    const SparseKernels& sk = sparse_kernels_for(kernels_);
    l.sparse = choose_weight_format(s.w, s.n, s.k, s.sparse, sk);
    if (l.sparse.uses(WeightFormat::Csr)) pack_csr_s8(s.w, s.n, s.k, &l.w_csr);
    if (l.sparse.uses(WeightFormat::TwoFour)) pack_24_s8(s.w, s.n, s.k, &l.w_24);
    if (l.sparse.uses(WeightFormat::Window)) pack_win_s8(s.w, s.n, s.k, &l.w_win);
    if (l.sparse.uses(WeightFormat::Dense)) kernels_.pack_s8(s.w, s.n, s.k, &l.w_s8);
  }
  l.w_scale.assign(s.scales, s.scales + s.scale_count);
  if (s.bias) l.bias.assign(s.bias, s.bias + n);
  l.relu = s.relu;
  if (s.static_input) {
    if (!(s.static_input->scale > 0) || s.static_input->zero_point < -128 || s.static_input->zero_point > 127)
      throw Error("E_VALUE", "static activation needs scale > 0 and zero point in -128..127");
    l.static_input = true;
    l.input = *s.static_input;
  }
  if (s.static_output) set_static_output(l, *s.static_output);
  layers_.push_back(std::move(l));
  width_ = s.n;
}

// Precomputes the per-channel multipliers and int32 biases of integer requantization.
void Plan::set_static_output(PlanLayer& l, StaticActivation out) {
  if (!l.static_input || l.group_size || l.w_zero_point)
    throw Error("E_ARGUMENT",
                "a static int8 output needs a static input and symmetric per-channel or per-tensor weights");
  if (!(out.scale > 0) || out.zero_point < -128 || out.zero_point > 127)
    throw Error("E_VALUE", "static output needs scale > 0 and zero point in -128..127");
  l.static_output = true;
  l.output = out;
  for (int j = 0; j < l.n; ++j) {
    const float ws = l.w_scale[l.w_scale.size() > 1 ? j : 0];
    l.out_multiplier.push_back(quantize_multiplier(static_cast<double>(l.input.scale) * ws / out.scale));
    l.bias_q.push_back(l.bias.empty() ? 0 : quantize_bias(l.bias[j], l.input.scale, ws));
  }
}

// y = (q - zp_out) * s_out with q the requantized int8 output (ReLU clamps at zp_out).
static void requantize_rows(const PlanLayer& l, const int32_t* acc, int m, float* y) {
  const int32_t lo = l.relu ? std::max(l.output.zero_point, -128) : -128;
  for (int r = 0; r < m; ++r)
    for (int j = 0; j < l.n; ++j) {
      const size_t i = static_cast<size_t>(r) * l.n + j;
      const int32_t sum = saturate_int32(static_cast<int64_t>(acc[i]) + l.bias_q[j]);
      const int32_t q =
          std::clamp(l.output.zero_point + multiply_by_quantized_multiplier(sum, l.out_multiplier[j]), lo, 127);
      y[i] = static_cast<float>(q - l.output.zero_point) * l.output.scale;
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
void Plan::run_grouped_s8(const PlanLayer& l, const uint8_t* q, const int32_t* zp, const float* a_scale, int m,
                          float* y) const {
  const int groups = static_cast<int>(l.w_groups.size());
  std::vector<int32_t> acc(static_cast<size_t>(m) * l.n);
  std::fill(y, y + static_cast<size_t>(m) * l.n, 0.0f);
  for (int g = 0; g < groups; ++g) {
    const PackedS8& w = l.w_groups[g];
    const uint8_t* qg = q + static_cast<size_t>(g) * l.group_size;
    gemm_u8s8_parallel(kernels_, pool_.get(),
                       {qg, static_cast<size_t>(l.k), zp, m, &w, acc.data(), static_cast<size_t>(l.n), 0, l.n});
    if (l.w_zero_point) subtract_weight_zero_point(acc.data(), l.n, m, l.n, qg, l.k, w.k, zp, l.w_zero_point);
    for (int r = 0; r < m; ++r)
      for (int j = 0; j < l.n; ++j) {
        const float s = a_scale[r] * l.w_scale[static_cast<size_t>(j) * groups + g];
        float& v = y[static_cast<size_t>(r) * l.n + j];
        v = v + static_cast<float>(acc[static_cast<size_t>(r) * l.n + j]) * s;
      }
  }
  kernels_.bias_act_f32(y, m, l.n, l.bias.empty() ? nullptr : l.bias.data(), l.relu);
}

// The layer's int32 accumulators with the packing chosen for m rows (all give identical results).
void Plan::gemm_s8(const PlanLayer& l, const uint8_t* q, const int32_t* zp, int m, int32_t* acc) const {
  const size_t k = static_cast<size_t>(l.k), n = static_cast<size_t>(l.n);
  switch (l.sparse.for_rows(m)) {
    case WeightFormat::Window:
      return gemm_win_parallel(sparse_kernels_for(kernels_), pool_.get(), {q, k, zp, m, &l.w_win, acc, n, 0, l.n});
    case WeightFormat::Csr:
      return gemm_csr_parallel(sparse_kernels_for(kernels_), pool_.get(), {q, k, zp, m, &l.w_csr, acc, n, 0, l.n});
    case WeightFormat::TwoFour:
      return gemm_24_parallel(sparse_kernels_for(kernels_), pool_.get(), {q, k, zp, m, &l.w_24, acc, n, 0, l.n});
    case WeightFormat::Dense:
      return gemm_u8s8_parallel(kernels_, pool_.get(), {q, k, zp, m, &l.w_s8, acc, n, 0, l.n});
  }
}

std::vector<std::string> Plan::layer_kernels() const {
  std::vector<std::string> out;
  const std::string dense = std::string("dense-") + kernels_.name;
  const SparseKernels& sk = sparse_kernels_for(kernels_);
  for (const PlanLayer& l : layers_) {
    if (l.kind == PlanLayer::Kind::Relu || l.kind == PlanLayer::Kind::Softmax) {
      out.emplace_back();
    } else if (l.kind == PlanLayer::Kind::DenseF32) {
      out.push_back(dense);
    } else {
      auto name = [&](WeightFormat f) -> std::string {
        return f == WeightFormat::TwoFour  ? sk.name_24
               : f == WeightFormat::Window ? sk.name_win
               : f == WeightFormat::Csr    ? sk.name
                                           : dense;
      };
      const FormatChoice& c = l.sparse;
      out.push_back(c.few == c.many ? name(c.few)
                                    : name(c.few) + "<" + std::to_string(c.split_rows) + "/" + name(c.many));
    }
  }
  return out;
}

void Plan::add_relu() {
  if (width_ < 0) throw Error("E_SHAPE", "a plan cannot start with Relu: its width is unknown");
  layers_.emplace_back(PlanLayer::Kind::Relu);
}

void Plan::add_softmax() {
  if (width_ < 0) throw Error("E_SHAPE", "a plan cannot start with Softmax: its width is unknown");
  layers_.emplace_back(PlanLayer::Kind::Softmax);
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

// Static int8 quantization fed to the uint8 GEMM as q + 128 with zero point zp + 128:
// (q + 128) - (zp + 128) = q - zp, so the int32 accumulators equal an int8 NPU's.
static void quantize_static_rows(StaticActivation a, const float* x, int m, int k, uint8_t* q, float* scale,
                                 int32_t* zero_point) {
  for (size_t i = 0; i < static_cast<size_t>(m) * k; ++i)
    q[i] = static_cast<uint8_t>(quantize_static_s8(x[i], a) + 128);
  std::fill(scale, scale + m, a.scale);
  std::fill(zero_point, zero_point + m, a.zero_point + 128);
}

namespace {

// Per-thread buffers reused across runs: allocating them per call cost about a
// thousand page faults for a 64-row call on a 4096-wide model. Buffers that grew
// past kKeepBytes are released after the run, so one huge batch does not pin
// memory on a pool thread forever.
struct RunScratch {
  std::vector<float> cur, next, a_scale;
  std::vector<uint8_t> q;
  std::vector<int32_t> acc, zp;

  void trim() {
    constexpr size_t kKeepBytes = 8u << 20;
    auto trim_one = [](auto& v) {
      if (v.capacity() * sizeof(v[0]) > kKeepBytes) std::vector<std::decay_t<decltype(v[0])>>().swap(v);
    };
    trim_one(cur), trim_one(next), trim_one(a_scale), trim_one(q), trim_one(acc), trim_one(zp);
  }
};

}  // namespace

void Plan::run(const float* x, int m, float* y) const {
  if (layers_.empty()) throw Error("E_SHAPE", "the plan has no layers");
  thread_local RunScratch scratch;
  struct Trim {
    RunScratch& s;
    ~Trim() { s.trim(); }
  } trim_after{scratch};
  auto& [cur, next, a_scale, q, acc, zp] = scratch;
  cur.assign(x, x + static_cast<size_t>(m) * input_features_);
  zp.resize(m);
  a_scale.resize(m);
  int width = input_features_;
  for (const PlanLayer& l : layers_) {
    switch (l.kind) {
      case PlanLayer::Kind::DenseF32: {
        next.resize(static_cast<size_t>(m) * l.n);  // every element is written by the GEMM
        gemm_f32_parallel(
            kernels_, pool_.get(),
            {cur.data(), static_cast<size_t>(l.k), m, &l.w_f32, next.data(), static_cast<size_t>(l.n), 0, l.n});
        kernels_.bias_act_f32(next.data(), m, l.n, l.bias.empty() ? nullptr : l.bias.data(), l.relu);
        cur.swap(next);
        width = l.n;
        break;
      }
      case PlanLayer::Kind::DenseS8: {
        q.resize(static_cast<size_t>(m) * l.k);
        acc.resize(static_cast<size_t>(m) * l.n);
        next.resize(static_cast<size_t>(m) * l.n);
        if (l.static_input) {
          quantize_static_rows(l.input, cur.data(), m, l.k, q.data(), a_scale.data(), zp.data());
        } else {
          kernels_.quantize_rows_u8(cur.data(), m, l.k, q.data(), a_scale.data(), zp.data());
        }
        if (l.group_size) {
          run_grouped_s8(l, q.data(), zp.data(), a_scale.data(), m, next.data());
          cur.swap(next);
          width = l.n;
          break;
        }
        gemm_s8(l, q.data(), zp.data(), m, acc.data());
        if (l.w_zero_point)
          subtract_weight_zero_point(acc.data(), l.n, m, l.n, q.data(), l.k, l.k, zp.data(), l.w_zero_point);
        if (l.static_output) {
          requantize_rows(l, acc.data(), m, next.data());
        } else {
          kernels_.epilogue_s32({acc.data(), static_cast<size_t>(l.n), m, l.n, a_scale.data(), l.w_scale.data(),
                                 l.w_scale.size() > 1 ? 1 : 0, l.bias.empty() ? nullptr : l.bias.data(), l.relu,
                                 next.data(), static_cast<size_t>(l.n)});
        }
        cur.swap(next);
        width = l.n;
        break;
      }
      case PlanLayer::Kind::Relu:
        kernels_.relu_f32(cur.data(), static_cast<size_t>(m) * width);
        break;
      case PlanLayer::Kind::Softmax:
        softmax_rows(cur.data(), m, width);
        break;
    }
  }
  std::copy_n(cur.begin(), static_cast<size_t>(m) * width, y);
}

}  // namespace edgeopt
