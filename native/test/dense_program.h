// Test helper: a two-layer dense Program (x -> dense/qdense + ReLU -> dense/qdense -> y)
// built as a ProgramSpec, the way the binding would parse it, and compiled.
#pragma once
#include <memory>
#include <random>
#include <vector>

#include "../core/program.h"
#include "../core/quantize.h"

namespace edgeopt::test {

struct DenseProgram {
  std::vector<float> w1, w2, b1, b2, s1, s2;
  std::vector<int8_t> q1, q2;
  ProgramSpec spec;
};

// k inputs, h hidden units, o outputs; int8: per-channel first layer, per-tensor second.
inline std::unique_ptr<DenseProgram> dense_program(bool int8, std::mt19937& rng, int k, int h, int o,
                                                   SparsePolicy sparse = SparsePolicy::Auto) {
  auto d = std::make_unique<DenseProgram>();
  std::normal_distribution<float> nd(0.0f, 1.0f);
  d->w1.resize(h * k), d->w2.resize(o * h), d->b1.resize(h), d->b2.resize(o);
  for (auto* v : {&d->w1, &d->w2, &d->b1, &d->b2})
    for (auto& e : *v) e = nd(rng);
  ProgramSpec& p = d->spec;
  p.name = "dense-test";
  auto tensor = [&](DType t, std::vector<int64_t> shape, const void* data, int64_t offset = -1) {
    TensorSpec s;
    s.dtype = t;
    s.shape = std::move(shape);
    s.data = data;
    s.kind = data ? TensorSpec::Kind::Constant : offset >= 0 ? TensorSpec::Kind::Arena : TensorSpec::Kind::External;
    s.offset = offset;
    p.tensors.push_back(s);
    return static_cast<int>(p.tensors.size()) - 1;
  };
  const int x = tensor(DType::F32, {k}, nullptr), hidden = tensor(DType::F32, {h}, nullptr, 0),
            y = tensor(DType::F32, {o}, nullptr);
  Activation relu;
  relu.kind = ActKind::Relu;
  if (int8) {
    d->q1.resize(d->w1.size()), d->q2.resize(d->w2.size()), d->s1.resize(h), d->s2.resize(1);
    quantize_symmetric_s8(d->w1.data(), h, k, 8, true, d->q1.data(), d->s1.data());
    quantize_symmetric_s8(d->w2.data(), o, h, 8, false, d->q2.data(), d->s2.data());
    auto qdense = [&](int in, int out, int w, int s, int bias, int n, int kk, Activation act) {
      QDenseSpec q{};
      q.x = in, q.y = out, q.weight = w, q.scales = s, q.bias = bias, q.m = 1, q.n = n, q.k = kk;
      q.act = act, q.sparse = sparse;
      return q;
    };
    const QDenseSpec a =
        qdense(x, hidden, tensor(DType::I8, {h, k}, d->q1.data()), tensor(DType::F32, {h}, d->s1.data()),
               tensor(DType::F32, {h}, d->b1.data()), h, k, relu);
    const QDenseSpec b = qdense(hidden, y, tensor(DType::I8, {o, h}, d->q2.data()),
                                tensor(DType::F32, {1}, d->s2.data()), -1, o, h, Activation{});
    p.ops.push_back({"fc1", a});
    p.ops.push_back({"fc2", b});
  } else {
    p.ops.push_back({"fc1", DenseSpec{x, hidden, tensor(DType::F32, {h, k}, d->w1.data()),
                                      tensor(DType::F32, {h}, d->b1.data()), 1, h, k, relu}});
    p.ops.push_back({"fc2", DenseSpec{hidden, y, tensor(DType::F32, {o, h}, d->w2.data()),
                                      tensor(DType::F32, {o}, d->b2.data()), 1, o, h, Activation{}}});
  }
  p.inputs = {{"x", x}};
  p.outputs = {{"y", y}};
  p.arena_bytes = ((4 * h + 63) / 64) * 64;
  validate_program(p);
  return d;
}

}  // namespace edgeopt::test
