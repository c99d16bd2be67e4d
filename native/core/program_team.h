// Team runs of a compiled program on a ThreadPool of two or more threads: every
// thread runs the whole op list, each computing its own slice of every op's
// output pixels (program_ops.h's TeamRole), so the rows an op writes on a core
// are the rows the next op reads there, and the threads meet at a barrier only
// before an op that reads pixels another thread wrote (a 3x3 or strided
// convolution, an op after a serial one). A small CNN's ops last a
// few microseconds, about what handing an op's data to another core costs:
// splitting each op on its own (ThreadPool::parallel_for per op) made two
// threads slower than one. Results are bit-identical to the op-by-op run: every
// output element is computed once, by the same kernel call on the same inputs.
#pragma once
#include <atomic>
#include <memory>
#include <vector>

#include "program_ops.h"
#include "thread_pool.h"

namespace edgeopt {

class TeamPlan {
 public:
  // The plan for `ops`, or null when none splits or an op that cannot take part
  // (TeamRole::None: a large dense layer, an fp32 op) sits between split ones;
  // such ops may run before or after the team, on the caller, splitting
  // themselves. Tensors keep their arena offsets except outputs that would
  // overwrite bytes another thread may still be reading (the arena reuses dead
  // tensors' bytes): those move to fresh bytes past arena_bytes.
  static std::unique_ptr<TeamPlan> build(const std::vector<std::unique_ptr<CompiledProgram::Op>>& ops,
                                         const std::vector<TensorSpec>& tensors, int64_t arena_bytes, int alignment);

  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  int64_t arena_bytes() const { return arena_bytes_; }
  int barriers() const;

  // Runs the ops: the serial ones before the first split op and after the last
  // on the calling thread alone, the rest on every thread of `pool` (or on the
  // caller alone when another caller holds the pool). c has the plan's tensors
  // (and an arena of arena_bytes per image) and no pool; the serial ops before
  // and after the team get `pool` in it while they run.
  void run(const std::vector<std::unique_ptr<CompiledProgram::Op>>& ops, RunContext& c, ThreadPool& pool) const;

 private:
  struct Step {
    TeamRole role;   // Serial, Pixelwise or Spatial
    int64_t pixels;  // output pixels per image (split roles)
    bool barrier;    // every thread waits here for the others first
  };
  std::vector<Step> steps_;
  int first_ = 0, last_ = -1;                    // the ops the team runs; the caller runs the rest
  mutable std::atomic<int64_t> last_run_ns_{0};  // how long the team part of the last run took
  std::vector<TensorSpec> tensors_;
  int64_t arena_bytes_ = 0;
};

}  // namespace edgeopt
