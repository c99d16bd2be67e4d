// Internals of the Program executor shared by program.cc (dense ops, the run
// loop) and program_cnn.cc (the CNN ops): where a run keeps its tensors, and
// the interface of an op ready to run.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "program.h"

namespace edgeopt {

// Where one run keeps its tensors: the chunk's arena and the caller's buffers.
struct RunContext {
  const std::vector<TensorSpec>* tensors;
  uint8_t* arena;
  std::vector<float*> external;  // per tensor index (roots only), null otherwise
  int batch;
  ThreadPool* pool;
  DenseS8::Scratch* s8;
  std::vector<float>* conv_scratch;

  // Tensor t's first image (constants: their data; a batch of arena tensors is batch * offset in).
  float* f(int t) const {
    const TensorSpec& s = (*tensors)[t];
    if (s.kind == TensorSpec::Kind::Constant) return const_cast<float*>(static_cast<const float*>(s.data));
    const int r = s.alias >= 0 ? s.alias : t;
    if (external[r]) return external[r];
    return reinterpret_cast<float*>(arena + static_cast<int64_t>(batch) * (*tensors)[r].offset);
  }
  template <typename T>
  T* at(int t) const {
    return reinterpret_cast<T*>(f(t));
  }
  int64_t per_image(int t) const {
    const TensorSpec& s = (*tensors)[t];
    return s.kind == TensorSpec::Kind::Constant ? 0 : s.elements;
  }
};

// How an op takes part in a team run (program_team.h): every thread of the pool
// runs the whole program, each computing its own slice of each op's output
// pixels (pixel = image * pixels per image + position), with a barrier only
// where an op reads what another thread wrote.
enum class TeamRole : uint8_t {
  None,       // cannot: runs before or after the team, splitting itself; elsewhere the program runs op by op
  Serial,     // runs whole on the team's first thread
  Pixelwise,  // output pixel p reads pixel p of each input only, as many pixels in as out
  Spatial,    // an output pixel may read any pixel of the inputs
};
struct TeamShape {
  TeamRole role = TeamRole::None;
  int64_t pixels = 0;  // of the output, per image; 0 for Pixelwise: the first input's
  std::vector<int> inputs;
  int output = -1;
};

struct CompiledProgram::Op {
  virtual ~Op() = default;
  virtual void run(const RunContext& c) const = 0;
  virtual std::string kernel() const { return ""; }
  virtual TeamShape team() const { return {}; }
  // Team runs of Pixelwise and Spatial ops: output pixels [begin, end) of the
  // batch, with `pixels` output pixels per image. Never splits further (c.pool is null).
  virtual void run_pixels(const RunContext& c, int64_t begin, int64_t end, int64_t pixels) const {
    (void)c, (void)begin, (void)end, (void)pixels;
  }
};

// The int8 ops (program_int8.cc); dense int8 convolutions run on kt's GEMM.
std::unique_ptr<CompiledProgram::Op> compile_int8_op(const KernelTable& kt, const OpVariant& v,
                                                     const std::vector<TensorSpec>& t);

// The CNN ops (program_cnn.cc), for tables with CNN kernels.
std::unique_ptr<CompiledProgram::Op> compile_cnn_op(const KernelTable& kt, const OpVariant& v,
                                                    const std::vector<TensorSpec>& t);

}  // namespace edgeopt
