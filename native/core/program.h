// A Program (lib/engine/program.ts) in C++: the parsed op structs (one variant
// per op, reusing the kernel shape structs of cnn_kernels.h), their
// validation, and the executor. The binding parses the JS object once into a
// ProgramSpec (native/addon/program_spec.cc); the executor and the NPU host
// (native/addon/npu_wrap.cc) both take that spec. Plain C++: no Node.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "cnn_kernels.h"
#include "dense.h"
#include "kernels.h"
#include "requantize.h"
#include "sparse.h"
#include "static_quant.h"
#include "thread_pool.h"

namespace edgeopt {

class TeamPlan;  // program_team.h

enum class DType : uint8_t { F32, I8, U8, I32 };
size_t dtype_bytes(DType t);

struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // per image (constants: their own shape)
  int64_t elements = 0;
  // Constant: `data` (valid while the spec is being compiled; the executor copies or packs it).
  // View: `alias` names the root. External: a program input or an output's root. Arena: `offset`.
  enum class Kind : uint8_t { Constant, View, External, Arena } kind = Kind::Arena;
  const void* data = nullptr;
  int alias = -1;
  int64_t offset = -1;
  int64_t bytes = 0;  // per image (elements * dtype size)
};

struct ConvSpec {
  int x, y, weight, bias;  // bias -1 when absent
  ConvShape shape;
  Activation act;
};
struct DenseSpec {
  int x, y, weight, bias;
  int m, n, k;
  Activation act;
};
struct QDenseSpec {
  int x, y, weight, scales, bias;
  int m, n, k;
  int32_t zero_point = 0;
  int group_size = 0;
  bool has_input = false, has_output = false;
  StaticActivation input{1.0f, 0}, output{1.0f, 0};
  Activation act;  // None or Relu
  SparsePolicy sparse = SparsePolicy::Auto;
};
struct PoolSpec {
  int x, y;
  PoolKind kind;
  PoolShape shape;
};
struct GlobalPoolSpec {
  int x, y;
  PoolKind kind;
  int64_t pixels;
  int c;
};
struct BinarySpec {
  int a, b, y;
  BinaryFn fn;
  std::vector<int64_t> shape, a_strides, b_strides;
  Activation act;
};
struct UnarySpec {
  int x, y;
  Activation act;
};
struct AxisSpec {  // softmax and reducemean over [outer][axis][inner]
  int x, y;
  bool softmax;
  int64_t outer, axis, inner;
};
struct ConcatSpec {
  std::vector<int> inputs;
  int y;
  int64_t outer;
  std::vector<int64_t> sizes;
};
struct SplitSpec {
  int x;
  std::vector<int> outputs;
  int64_t outer;
  std::vector<int64_t> sizes;
};
struct PadSpec {
  int x, y;
  std::vector<int64_t> in_shape, begin, end;
  float value;
};
struct TransposeSpec {
  int x, y;
  std::vector<int64_t> in_shape;
  std::vector<int> perm;
};
struct LrnSpec {
  int x, y;
  int h, w, c, size;
  float alpha, beta, bias;
};

// The int8 ops (program.ts QuantizeOp ... QConcatOp): integers only, every real number was turned into
// multipliers, biases and tables when lowering. Run by program_int8.cc; the TS twin is
// lib/backends/ts/cnn/int8.ts.
struct QuantizeSpec {  // quantize (float -> int8) or dequantize (int8 -> float)
  int x, y;
  bool dequantize;
  int64_t count;
  StaticActivation grid;
};
struct QConvSpec {
  int x, y, weight, bias, multipliers, shifts;  // weight int8 OHWI; bias/multipliers/shifts int32 [outC]
  ConvShape shape;
  int32_t input_zero_point, output_zero_point, lo, hi;
};
struct QLutSpec {
  int x, y, table;  // table int8 [256]
  int64_t count;
};
struct QBinarySpec {
  int a, b, y;
  bool mul;  // else add
  int64_t count;
  int32_t a_zero_point, b_zero_point, output_zero_point;
  int left_shift;
  QuantizedMultiplier a_rescale, b_rescale, output;
  int32_t lo, hi;
};
struct QPoolSpec {
  int x, y;
  PoolKind kind;
  PoolShape shape;
};
struct QGlobalAvgPoolSpec {
  int x, y;
  int64_t pixels;
  int c;
  int32_t input_zero_point, output_zero_point;
  QuantizedMultiplier output;
};
struct QConcatSpec {
  std::vector<int> inputs;
  int y;
  int64_t outer;
  std::vector<int64_t> sizes;
  std::vector<bool> rescale;
  std::vector<int32_t> zero_points;
  std::vector<QuantizedMultiplier> multipliers;
  int32_t output_zero_point;
};

using OpVariant = std::variant<ConvSpec, DenseSpec, QDenseSpec, PoolSpec, GlobalPoolSpec, BinarySpec, UnarySpec,
                               AxisSpec, ConcatSpec, SplitSpec, PadSpec, TransposeSpec, LrnSpec, QuantizeSpec,
                               QConvSpec, QLutSpec, QBinarySpec, QPoolSpec, QGlobalAvgPoolSpec, QConcatSpec>;

struct OpSpec {
  std::string node;  // the graph node, for errors and placement
  OpVariant op;
};

struct IoSpec {
  std::string name;
  int tensor;
};

struct ProgramSpec {
  std::string name;
  std::vector<TensorSpec> tensors;
  std::vector<OpSpec> ops;
  std::vector<IoSpec> inputs, outputs;
  int64_t arena_bytes = 0;
};

// The op's program.ts name ("conv", "dense", ...).
const char* op_name(const OpVariant& op);

// Marks inputs and output roots External, checks every index, size, shape,
// stride and offset against the tensors and the arena: E_FORMAT / E_SHAPE
// naming the op's node. Nothing is run or allocated from an unchecked number.
void validate_program(ProgramSpec& spec);

// Per-image element count of tensor t's root (the region an op may touch for one image).
int64_t root_elements(const ProgramSpec& spec, int t);

// The executor: weights packed once for one kernel table, one arena per run
// (batch x per-image bytes, reused per thread), large batches in chunks, each
// op over a chunk of images with its intra-op threads on a shared pool.
class CompiledProgram {
 public:
  // Throws E_UNSUPPORTED_OP for an op this build cannot run natively (naming it).
  CompiledProgram(const ProgramSpec& spec, const KernelTable& kt, int threads);
  ~CompiledProgram();

  // inputs[i] / outputs[j]: batch x the per-image elements of program input i / output j.
  // op_seconds (optional, one per op): each op's wall time is added to it (the profile).
  void run(const float* const* inputs, float* const* outputs, int batch,
           std::vector<double>* op_seconds = nullptr) const;

  size_t input_count() const { return inputs_.size(); }
  size_t output_count() const { return outputs_.size(); }
  int64_t input_elements(size_t i) const { return inputs_[i].elements; }
  int64_t output_elements(size_t i) const { return outputs_[i].elements; }
  const KernelTable& kernels() const { return kt_; }
  int threads() const { return pool_ ? pool_->threads() : 1; }
  // Per op, its kernel ("dense-avx2", "sparse-avx2", ..., "" for ops without a choice).
  const std::vector<std::string>& op_kernels() const { return op_kernels_; }

  struct Op;  // an op ready to run (program.cc)
  // Barriers of a team run (program_team.h), or -1 when this program runs op by op.
  int team_barriers() const;

 private:
  struct Io {
    int root;
    int64_t elements;
  };
  const KernelTable& kt_;
  std::shared_ptr<ThreadPool> pool_;
  std::vector<TensorSpec> tensors_;          // data pointers re-pointed at owned_ constants
  std::vector<std::vector<uint8_t>> owned_;  // constant bytes the ops read at run time
  std::vector<std::unique_ptr<Op>> ops_;
  std::unique_ptr<TeamPlan> team_;  // set when every op can take part in a team run
  std::vector<Io> inputs_, outputs_;
  std::vector<std::string> op_kernels_;
  int64_t arena_bytes_;
};

// Names of the ops the native executor runs (the engine places the rest on TypeScript).
std::vector<std::string> native_program_ops();

}  // namespace edgeopt
