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

// Per team member: whether a thread plays it (claimed once, by its own thread
// or adopted by the first member), and how many barriers it has reached; each
// on its own cache line, so a waiter reads one line per other member.
class Members {
 public:
  explicit Members(int count) : members_(static_cast<size_t>(count)) {}
  int count() const { return static_cast<int>(members_.size()); }
  bool claim(int m) {
    bool expected = false;
    return members_[m].claimed.compare_exchange_strong(expected, true, std::memory_order_acq_rel);
  }
  void arrive(int m, int64_t barrier) { members_[m].reached.store(barrier, std::memory_order_release); }
  // Until every member has reached `barrier`.
  void wait(int64_t barrier) const {
    for (const Member& other : members_) {
      if (other.reached.load(std::memory_order_acquire) >= barrier) continue;
      const auto start = std::chrono::steady_clock::now();
      for (int spins = 0; other.reached.load(std::memory_order_acquire) < barrier; ++spins) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
        // A member that is not scheduled (a busy machine): stop burning this core.
        if (spins % 256 == 255 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(100))
          std::this_thread::yield();
      }
    }
  }

 private:
  struct alignas(64) Member {
    std::atomic<bool> claimed{false};
    std::atomic<int64_t> reached{0};
  };
  std::vector<Member> members_;
};

}  // namespace

std::unique_ptr<TeamPlan> TeamPlan::build(const std::vector<std::unique_ptr<CompiledProgram::Op>>& ops,
                                          const std::vector<TensorSpec>& tensors, int64_t arena_bytes, int alignment) {
  auto plan = std::make_unique<TeamPlan>();
  plan->tensors_ = tensors;
  plan->arena_bytes_ = arena_bytes;
  std::vector<TensorSpec>& t = plan->tensors_;
  auto root = [&](int i) { return t[i].alias >= 0 ? t[i].alias : i; };
  // Each op's role and output pixels; an element-wise op takes its input's pixels.
  std::vector<TeamShape> shapes;
  std::vector<int64_t> pixels_of(t.size(), 0);  // of split outputs
  for (const auto& op : ops) {
    TeamShape shape = op->team();
    if (shape.output < 0 || shape.inputs.empty()) shape.role = TeamRole::None;
    if (shape.role == TeamRole::None) {
      shapes.push_back(shape);
      continue;
    }
    const int out = root(shape.output);
    if (shape.role == TeamRole::Pixelwise && shape.pixels == 0) shape.pixels = pixels_of[root(shape.inputs[0])];
    // A split needs whole pixels of every tensor it touches.
    bool whole = shape.pixels > 0 && t[out].elements % shape.pixels == 0;
    for (int in : shape.inputs) whole = whole && t[root(in)].elements % std::max<int64_t>(shape.pixels, 1) == 0;
    if (!whole) shape.role = TeamRole::Serial;
    pixels_of[out] = shape.role == TeamRole::Serial ? 0 : shape.pixels;
    shapes.push_back(shape);
  }
  auto split = [](const TeamShape& s) { return s.role == TeamRole::Pixelwise || s.role == TeamRole::Spatial; };
  const auto first = std::find_if(shapes.begin(), shapes.end(), split);
  if (first == shapes.end()) return nullptr;
  plan->first_ = static_cast<int>(first - shapes.begin());
  plan->last_ = static_cast<int>(shapes.rend() - std::find_if(shapes.rbegin(), shapes.rend(), split)) - 1;
  // Ops that cannot take part may come before or after the team, not inside it.
  for (int i = plan->first_; i <= plan->last_; ++i)
    if (shapes[i].role == TeamRole::None) return nullptr;
  // Barriers and moved outputs, over the ops the team runs (the serial ops
  // before and after it run on the caller alone, with nothing else running).
  auto range = [&](int r) { return Range{t[r].offset, t[r].offset + t[r].bytes}; };
  auto in_arena = [&](int r) { return t[r].kind == TensorSpec::Kind::Arena; };
  std::vector<Written> written(t.size());
  std::vector<Range> touched;  // arena bytes read or written in this segment
  int segment = 0;
  plan->steps_.resize(shapes.size(), {TeamRole::Serial, 0, false});
  for (int i = plan->first_; i <= plan->last_; ++i) {
    const TeamShape& shape = shapes[i];
    const int out = root(shape.output);
    // Read after write: another thread wrote (part of) an input in this segment,
    // unless each thread reads just the pixels it wrote, or both ops are the first thread's.
    bool barrier = false;
    for (int in : shape.inputs) {
      const Written& w = written[root(in)];
      if (w.role == TeamRole::None || w.segment != segment) continue;
      const bool own_slices =
          w.role != TeamRole::Serial && shape.role == TeamRole::Pixelwise && w.pixels == shape.pixels;
      const bool first_only = w.role == TeamRole::Serial && shape.role == TeamRole::Serial;
      barrier = barrier || !(own_slices || first_only);
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
    written[out] = {shape.role, shape.pixels, segment};
    plan->steps_[i] = {shape.role, shape.pixels, barrier};
  }
  plan->arena_bytes_ = (plan->arena_bytes_ + alignment - 1) / alignment * alignment;
  return plan;
}

int TeamPlan::barriers() const {
  return static_cast<int>(std::count_if(steps_.begin(), steps_.end(), [](const Step& s) { return s.barrier; }));
}

void TeamPlan::run(const std::vector<std::unique_ptr<CompiledProgram::Op>>& ops, RunContext& c,
                   ThreadPool& pool) const {
  // Member 0 is the caller. A member whose thread has not claimed it by the
  // first barrier (asleep, or not scheduled on a busy machine) is adopted by
  // member 0, which catches up on its shares and plays it from then on, so a
  // team never waits for a thread that has not started; a member's thread
  // that comes later finds it claimed and returns (so does ThreadPool::run_team
  // calling it on the caller after member 0).
  struct Team {
    const TeamPlan& plan;
    const std::vector<std::unique_ptr<CompiledProgram::Op>>& ops;
    const RunContext& c;
    Members members;
    void run_share(int i, int m) const {
      const Step& s = plan.steps_[i];
      if (s.role == TeamRole::Serial) {
        if (m == 0) ops[i]->run(c);
        return;
      }
      const int64_t total = c.batch * s.pixels;
      const int64_t begin = share(total, m, members.count()), end = share(total, m + 1, members.count());
      if (begin < end) ops[i]->run_pixels(c, begin, end, s.pixels);
    }
    static void member(void* p, int m) {
      Team& team = *static_cast<Team*>(p);
      if (!team.members.claim(m)) return;
      std::vector<int> played{m};
      int64_t barriers = 0;
      for (int i = team.plan.first_; i <= team.plan.last_; ++i) {
        if (team.plan.steps_[i].barrier) {
          ++barriers;
          for (int o : played) team.members.arrive(o, barriers);
          for (int o = 1; m == 0 && barriers == 1 && o < team.members.count(); ++o) {
            if (!team.members.claim(o)) continue;
            for (int k = team.plan.first_; k < i; ++k) team.run_share(k, o);
            team.members.arrive(o, barriers);
            played.push_back(o);
          }
          team.members.wait(barriers);
        }
        for (int o : played) team.run_share(i, o);
      }
    }
  } team{*this, ops, c, Members(pool.threads())};
  // The serial ops before and after the team may split themselves on the pool.
  c.pool = &pool;
  for (int i = 0; i < first_; ++i) ops[i]->run(c);
  c.pool = nullptr;
  // A run shorter than about ten wake-ups of a sleeping worker goes alone after a pause (ThreadPool::run_team).
  const auto start = std::chrono::steady_clock::now();
  if (!pool.run_team(&Team::member, &team, last_run_ns_.load(std::memory_order_relaxed) < 200'000))
    for (int i = first_; i <= last_; ++i) ops[i]->run(c);  // the pool is busy: this caller runs alone
  last_run_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count(),
      std::memory_order_relaxed);
  c.pool = &pool;
  for (size_t i = last_ + 1; i < ops.size(); ++i) ops[i]->run(c);
  c.pool = nullptr;
}

}  // namespace edgeopt
