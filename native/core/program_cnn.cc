// The CNN ops of a compiled Program (program.h): each packs what it needs at
// load and runs the kernels helper's parallel drivers (parallel_cnn.h) over a
// chunk of images.
#include <string>
#include <vector>

#include "error.h"
#include "parallel_cnn.h"
#include "program_ops.h"

namespace edgeopt {
namespace {

struct ConvOp : CompiledProgram::Op {
  int x, y;
  const CnnKernels& cnn;
  PackedConvF32 w;
  ConvOp(const KernelTable& kt, const ConvSpec& s, const std::vector<TensorSpec>& t) : x(s.x), y(s.y), cnn(*kt.cnn) {
    pack_conv_f32(kt, s.shape, static_cast<const float*>(t[s.weight].data),
                  s.bias >= 0 ? static_cast<const float*>(t[s.bias].data) : nullptr, s.act, &w);
  }
  void run(const RunContext& c) const override {
    const size_t need = conv_parallel_scratch_floats(w, c.pool);
    if (c.conv_scratch->size() < need) c.conv_scratch->resize(need);
    conv_f32_parallel(cnn, c.pool, w, c.f(x), c.f(y), c.batch, c.conv_scratch->data());
  }
  std::string kernel() const override {
    static const char* const kMethod[] = {"gemm-", "im2col-", "depthwise-", "direct-"};
    return kMethod[static_cast<int>(w.method)] + std::string(cnn.name);
  }
};

struct PoolOp : CompiledProgram::Op {
  PoolSpec s;
  const CnnKernels& cnn;
  PoolOp(const KernelTable& kt, const PoolSpec& p) : s(p), cnn(*kt.cnn) { check_pool_shape(s.shape); }
  void run(const RunContext& c) const override {
    pool_f32_parallel(cnn, c.pool, s.kind, s.shape, c.f(s.x), c.f(s.y), c.batch);
  }
};

struct GlobalPoolOp : CompiledProgram::Op {
  GlobalPoolSpec s;
  const CnnKernels& cnn;
  GlobalPoolOp(const KernelTable& kt, const GlobalPoolSpec& p) : s(p), cnn(*kt.cnn) {}
  void run(const RunContext& c) const override {
    global_pool_f32_parallel(cnn, c.pool, s.kind, c.f(s.x), c.f(s.y), c.batch, s.pixels, s.c);
  }
};

struct BinaryOp : CompiledProgram::Op {
  BinarySpec s;
  const CnnKernels& cnn;
  BinaryOp(const KernelTable& kt, const BinarySpec& b) : s(b), cnn(*kt.cnn) {}
  void run(const RunContext& c) const override {
    // The batch is one more leading dim: activations advance by their per-image size, constants do not.
    const int rank = static_cast<int>(s.shape.size()) + 1;
    int64_t dims[kMaxDims + 1], as[kMaxDims + 1], bs[kMaxDims + 1];
    dims[0] = c.batch;
    as[0] = c.per_image(s.a);
    bs[0] = c.per_image(s.b);
    for (int d = 1; d < rank; ++d) dims[d] = s.shape[d - 1], as[d] = s.a_strides[d - 1], bs[d] = s.b_strides[d - 1];
    const BroadcastShape shape = make_broadcast(rank, dims, as, bs);
    binary_f32_parallel(cnn, c.pool, s.fn, shape, c.f(s.a), c.f(s.b), c.f(s.y), s.act);
  }
};

struct UnaryOp : CompiledProgram::Op {
  UnarySpec s;
  const CnnKernels& cnn;
  UnaryOp(const KernelTable& kt, const UnarySpec& u) : s(u), cnn(*kt.cnn) {}
  void run(const RunContext& c) const override {
    activation_f32_parallel(cnn, c.pool, c.f(s.x), c.f(s.y), static_cast<size_t>(c.batch) * c.per_image(s.x), s.act);
  }
};

struct AxisOp : CompiledProgram::Op {
  AxisSpec s;
  const CnnKernels& cnn;
  AxisOp(const KernelTable& kt, const AxisSpec& a) : s(a), cnn(*kt.cnn) {}
  void run(const RunContext& c) const override {
    const int64_t outer = s.outer * c.batch;
    if (s.softmax)
      softmax_f32_parallel(cnn, c.pool, c.f(s.x), c.f(s.y), outer, s.axis, s.inner);
    else
      reduce_mean_f32_parallel(cnn, c.pool, c.f(s.x), c.f(s.y), outer, s.axis, s.inner);
  }
};

struct ConcatOp : CompiledProgram::Op {
  ConcatSpec s;
  const CnnKernels& cnn;
  ConcatOp(const KernelTable& kt, const ConcatSpec& q) : s(q), cnn(*kt.cnn) {}
  void run(const RunContext& c) const override {
    std::vector<const void*> in(s.inputs.size());
    for (size_t i = 0; i < in.size(); ++i) in[i] = c.f(s.inputs[i]);
    concat_parallel(cnn, c.pool, static_cast<int>(in.size()), in.data(), s.sizes.data(), c.f(s.y), s.outer * c.batch,
                    4);
  }
};

struct SplitOp : CompiledProgram::Op {
  SplitSpec s;
  const CnnKernels& cnn;
  SplitOp(const KernelTable& kt, const SplitSpec& q) : s(q), cnn(*kt.cnn) {}
  void run(const RunContext& c) const override {
    std::vector<void*> out(s.outputs.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = c.f(s.outputs[i]);
    split_parallel(cnn, c.pool, static_cast<int>(out.size()), c.f(s.x), s.sizes.data(), out.data(), s.outer * c.batch,
                   4);
  }
};

struct PadOp : CompiledProgram::Op {
  PadSpec s;
  const CnnKernels& cnn;
  PadOp(const KernelTable& kt, const PadSpec& q) : s(q), cnn(*kt.cnn) {}
  void run(const RunContext& c) const override {
    const int rank = static_cast<int>(s.in_shape.size()) + 1;
    int64_t in[kMaxDims], b[kMaxDims], e[kMaxDims];
    in[0] = c.batch, b[0] = 0, e[0] = 0;
    for (int d = 1; d < rank; ++d) in[d] = s.in_shape[d - 1], b[d] = s.begin[d - 1], e[d] = s.end[d - 1];
    const PadShape shape = make_pad(rank, in, b, e);
    pad_parallel(cnn, c.pool, shape, c.f(s.x), c.f(s.y), 4, &s.value);
  }
};

struct TransposeOp : CompiledProgram::Op {
  TransposeSpec s;
  const CnnKernels& cnn;
  TransposeOp(const KernelTable& kt, const TransposeSpec& q) : s(q), cnn(*kt.cnn) {}
  // A team's first thread (a CNN's NCHW input made NHWC before the team starts).
  TeamShape team() const override { return {TeamRole::Serial, 0, {s.x}, s.y}; }
  void run(const RunContext& c) const override {
    const int rank = static_cast<int>(s.in_shape.size()) + 1;
    int64_t in[kMaxDims];
    int perm[kMaxDims];
    in[0] = c.batch, perm[0] = 0;
    for (int d = 1; d < rank; ++d) in[d] = s.in_shape[d - 1], perm[d] = s.perm[d - 1] + 1;
    const TransposeShape shape = make_transpose(rank, in, perm);
    transpose_parallel(cnn, c.pool, shape, c.f(s.x), c.f(s.y), 4);
  }
};

struct LrnOp : CompiledProgram::Op {
  LrnSpec s;
  const CnnKernels& cnn;
  LrnOp(const KernelTable& kt, const LrnSpec& l) : s(l), cnn(*kt.cnn) {}
  void run(const RunContext& c) const override {
    lrn_f32_parallel(cnn, c.pool, c.f(s.x), c.f(s.y), static_cast<int64_t>(c.batch) * s.h * s.w, s.c, s.size, s.alpha,
                     s.beta, s.bias);
  }
};

}  // namespace

std::unique_ptr<CompiledProgram::Op> compile_cnn_op(const KernelTable& kt, const OpVariant& v,
                                                    const std::vector<TensorSpec>& t) {
  return std::visit(
      [&](const auto& s) -> std::unique_ptr<CompiledProgram::Op> {
        using S = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<S, ConvSpec>)
          return std::make_unique<ConvOp>(kt, s, t);
        else if constexpr (std::is_same_v<S, PoolSpec>)
          return std::make_unique<PoolOp>(kt, s);
        else if constexpr (std::is_same_v<S, GlobalPoolSpec>)
          return std::make_unique<GlobalPoolOp>(kt, s);
        else if constexpr (std::is_same_v<S, BinarySpec>)
          return std::make_unique<BinaryOp>(kt, s);
        else if constexpr (std::is_same_v<S, UnarySpec>)
          return std::make_unique<UnaryOp>(kt, s);
        else if constexpr (std::is_same_v<S, AxisSpec>)
          return std::make_unique<AxisOp>(kt, s);
        else if constexpr (std::is_same_v<S, ConcatSpec>)
          return std::make_unique<ConcatOp>(kt, s);
        else if constexpr (std::is_same_v<S, SplitSpec>)
          return std::make_unique<SplitOp>(kt, s);
        else if constexpr (std::is_same_v<S, PadSpec>)
          return std::make_unique<PadOp>(kt, s);
        else if constexpr (std::is_same_v<S, TransposeSpec>)
          return std::make_unique<TransposeOp>(kt, s);
        else if constexpr (std::is_same_v<S, LrnSpec>)
          return std::make_unique<LrnOp>(kt, s);
        else
          throw Error("E_UNSUPPORTED_OP", "not a CNN op");
      },
      v);
}

}  // namespace edgeopt
