#include "program_team.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace edgeopt {
namespace {

// Where a tensor's current contents came from, for the barrier decisions.
struct Written {
  TeamRole role = TeamRole::None;  // None: outside the run (an input, a constant)
  int64_t pixels = 0;
  int segment = -1;  // ops between two barriers form a segment
};

struct Range {
  int64_t begin, end;
  bool overlaps(const Range& o) const { return begin < o.end && o.begin < end; }
};

// Thread `member`'s first output pixel of `total` (multiples of 8 pixels, so a
// GEMM's row blocks stay whole).
int64_t share(int64_t total, int member, int threads) {
  if (member >= threads) return total;
  return std::min(total, total * member / threads / 8 * 8);
}

// A barrier for the team's threads (sense by phase number).
struct alignas(64) Barrier {
  std::atomic<int> arrived{0};
  alignas(64) std::atomic<int> phase{0};
  void wait(int threads) {
    const int p = phase.load(std::memory_order_acquire);
    if (arrived.fetch_add(1, std::memory_order_acq_rel) == threads - 1) {
      arrived.store(0, std::memory_order_relaxed);
      phase.store(p + 1, std::memory_order_release);
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    for (int spins = 0; phase.load(std::memory_order_acquire) == p; ++spins) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      __asm__ volatile("yield");
#endif
      // A member that is not scheduled (a busy machine): stop burning its core.
      if (spins % 256 == 255 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(100))
        std::this_thread::yield();
    }
  }
};

}  // namespace

std::unique_ptr<TeamPlan> TeamPlan::build(const std::vector<std::unique_ptr<CompiledProgram::Op>>& ops,
                                          const std::vector<TensorSpec>& tensors, int64_t arena_bytes, int alignment) {
  auto plan = std::make_unique<TeamPlan>();
  plan->tensors_ = tensors;
  plan->arena_bytes_ = arena_bytes;
  std::vector<TensorSpec>& t = plan->tensors_;
  auto root = [&](int i) { return t[i].alias >= 0 ? t[i].alias : i; };
  auto range = [&](int r) { return Range{t[r].offset, t[r].offset + t[r].bytes}; };
  auto in_arena = [&](int r) { return t[r].kind == TensorSpec::Kind::Arena; };
  std::vector<Written> written(t.size());
  std::vector<Range> touched;  // arena bytes read or written in this segment
  int segment = 0;
  bool splits = false;
  for (const auto& op : ops) {
    TeamShape shape = op->team();
    if (shape.role == TeamRole::None || shape.output < 0) return nullptr;
    int64_t pixels = shape.pixels;
    const int out = root(shape.output);
    if (shape.role == TeamRole::Pixelwise && pixels == 0) {
      const Written& w = written[root(shape.inputs.at(0))];
      if (w.role == TeamRole::Pixelwise || w.role == TeamRole::Spatial) pixels = w.pixels;
    }
    // A split needs whole pixels of every tensor it touches.
    bool whole = pixels > 0 && t[out].elements % pixels == 0;
    for (int in : shape.inputs) whole = whole && t[root(in)].elements % std::max<int64_t>(pixels, 1) == 0;
    if (shape.role != TeamRole::Serial && !whole) shape.role = TeamRole::Serial;
    // Read after write: another thread wrote (part of) an input in this segment.
    bool barrier = false;
    for (int in : shape.inputs) {
      const Written& w = written[root(in)];
      if (w.role == TeamRole::None || w.segment != segment) continue;
      const bool mine = w.role != TeamRole::Serial && shape.role == TeamRole::Pixelwise && w.pixels == pixels;
      const bool first_only = w.role == TeamRole::Serial && shape.role == TeamRole::Serial;
      barrier = barrier || !(mine || first_only);
    }
    if (barrier) {
      ++segment;
      touched.clear();
    }
    for (int in : shape.inputs)
      if (in_arena(root(in))) touched.push_back(range(root(in)));
    // Write after read or write: the output's bytes may still be in use by another thread.
    if (in_arena(out)) {
      const Range r = range(out);
      if (std::any_of(touched.begin(), touched.end(), [&](const Range& o) { return o.overlaps(r); })) {
        plan->arena_bytes_ = (plan->arena_bytes_ + alignment - 1) / alignment * alignment;
        t[out].offset = plan->arena_bytes_;
        plan->arena_bytes_ += t[out].bytes;
      }
      touched.push_back(range(out));
    }
    written[out] = {shape.role, pixels, segment};
    splits = splits || shape.role != TeamRole::Serial;
    plan->steps_.push_back({shape.role, pixels, barrier});
  }
  plan->arena_bytes_ = (plan->arena_bytes_ + alignment - 1) / alignment * alignment;
  if (!splits) return nullptr;
  return plan;
}

int TeamPlan::barriers() const {
  return static_cast<int>(std::count_if(steps_.begin(), steps_.end(), [](const Step& s) { return s.barrier; }));
}

bool TeamPlan::run(const std::vector<std::unique_ptr<CompiledProgram::Op>>& ops, const RunContext& c,
                   ThreadPool& pool) const {
  struct Team {
    const TeamPlan& plan;
    const std::vector<std::unique_ptr<CompiledProgram::Op>>& ops;
    const RunContext& c;
    int threads;
    Barrier barrier;
    static void member(void* p, int m) {
      Team& team = *static_cast<Team*>(p);
      for (size_t i = 0; i < team.ops.size(); ++i) {
        const Step& s = team.plan.steps_[i];
        if (s.barrier) team.barrier.wait(team.threads);
        if (s.role == TeamRole::Serial) {
          if (m == 0) team.ops[i]->run(team.c);
          continue;
        }
        const int64_t total = team.c.batch * s.pixels;
        const int64_t begin = share(total, m, team.threads), end = share(total, m + 1, team.threads);
        if (begin < end) team.ops[i]->run_pixels(team.c, begin, end, s.pixels);
      }
    }
  } team{*this, ops, c, pool.threads(), {}};
  return pool.run_team(&Team::member, &team);
}

}  // namespace edgeopt
