#include "plan.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "error.h"
#include "parallel_gemm.h"

namespace edgeopt {

Plan::Plan(const KernelTable& kernels, int threads) : kernels_(kernels) {
  if (threads < 0) throw Error("E_ARGUMENT", "threads must be >= 0, got " + std::to_string(threads));
  if (threads == 0) threads = ThreadPool::default_threads();
  if (threads > 1) pool_ = std::make_unique<ThreadPool>(threads);
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

void Plan::add_dense_s8(const int8_t* w, int n, int k, const float* scales, bool per_channel,
                        const float* bias, bool relu) {
  expect_input(k);
  PlanLayer l(PlanLayer::Kind::DenseS8);
  l.k = k;
  l.n = n;
  kernels_.pack_s8(w, n, k, &l.w_s8);
  l.w_scale.assign(scales, scales + (per_channel ? n : 1));
  if (bias) l.bias.assign(bias, bias + n);
  l.relu = relu;
  layers_.push_back(std::move(l));
  width_ = n;
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

void Plan::run(const float* x, int m, float* y) const {
  if (layers_.empty()) throw Error("E_SHAPE", "the plan has no layers");
  std::vector<float> cur(x, x + static_cast<size_t>(m) * input_features_), next;
  std::vector<uint8_t> q;
  std::vector<int32_t> acc, zp(m);
  std::vector<float> a_scale(m);
  int width = input_features_;
  for (const PlanLayer& l : layers_) {
    switch (l.kind) {
      case PlanLayer::Kind::DenseF32: {
        next.assign(static_cast<size_t>(m) * l.n, 0.0f);
        gemm_f32_parallel(kernels_, pool_.get(), {cur.data(), static_cast<size_t>(l.k), m, &l.w_f32, next.data(),
                           static_cast<size_t>(l.n), 0, l.n});
        kernels_.bias_act_f32(next.data(), m, l.n, l.bias.empty() ? nullptr : l.bias.data(), l.relu);
        cur.swap(next);
        width = l.n;
        break;
      }
      case PlanLayer::Kind::DenseS8: {
        q.resize(static_cast<size_t>(m) * l.k);
        acc.resize(static_cast<size_t>(m) * l.n);
        kernels_.quantize_rows_u8(cur.data(), m, l.k, q.data(), a_scale.data(), zp.data());
        gemm_u8s8_parallel(kernels_, pool_.get(), {q.data(), static_cast<size_t>(l.k), zp.data(), m, &l.w_s8, acc.data(),
                            static_cast<size_t>(l.n), 0, l.n});
        next.resize(static_cast<size_t>(m) * l.n);
        kernels_.epilogue_s32({acc.data(), static_cast<size_t>(l.n), m, l.n, a_scale.data(), l.w_scale.data(),
                               l.w_scale.size() > 1 ? 1 : 0, l.bias.empty() ? nullptr : l.bias.data(), l.relu,
                               next.data(), static_cast<size_t>(l.n)});
        cur.swap(next);
        width = l.n;
        break;
      }
      case PlanLayer::Kind::Relu:
        kernels_.relu_f32(cur.data(), cur.size());
        break;
      case PlanLayer::Kind::Softmax:
        softmax_rows(cur.data(), m, width);
        break;
    }
  }
  std::copy(cur.begin(), cur.end(), y);
}

}  // namespace edgeopt
