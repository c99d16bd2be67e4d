#include "thread_pool.h"

#include <algorithm>
#include <chrono>
#include <map>

namespace edgeopt {
namespace {

// A worker spins this long after its last job before it sleeps: the layers of
// one inference follow each other within microseconds, and waking a sleeping
// thread costs tens of microseconds (more in a VM).
constexpr auto kSpin = std::chrono::microseconds(100);
// The owner spins this long for tasks still running on a worker, then yields.
constexpr auto kOwnerSpin = std::chrono::microseconds(100);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

// Spins until done() or `budget` has passed (the clock read every 32 pauses); true if done.
template <typename Done>
bool spin_until(Done done, std::chrono::microseconds budget) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() - start > budget) return done();
  }
}

// Unit u of `units` over `tasks` tasks: [begin, end).
inline int unit_begin(int u, int units, int tasks) { return static_cast<int>(int64_t{u} * tasks / units); }

}  // namespace

int ThreadPool::default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::shared_ptr<ThreadPool> ThreadPool::shared(int threads) {
  static std::mutex mu;
  // Never destroyed: at exit a libuv thread may still be inside a parallel section.
  static auto* pools = new std::map<int, std::shared_ptr<ThreadPool>>();
  std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<ThreadPool>& pool = (*pools)[threads];
  if (!pool) pool = std::make_shared<ThreadPool>(threads);
  return pool;
}

ThreadPool::ThreadPool(int threads)
    : max_units_(std::max(8, 4 * threads)), claims_(new Claim[static_cast<size_t>(max_units_)]) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

// A unit is claimed by storing the job's sequence number in it: a worker still
// holding an older job finds every unit it could want claimed by a newer or
// the same one.
bool ThreadPool::claim(int unit, uint64_t sequence) {
  std::atomic<uint64_t>& c = claims_[unit].sequence;
  uint64_t seen = c.load(std::memory_order_relaxed);
  while (seen < sequence)
    if (c.compare_exchange_weak(seen, sequence, std::memory_order_acq_rel, std::memory_order_relaxed)) return true;
  return false;
}

void ThreadPool::run_units(int thread, uint64_t sequence, const Job& job) {
  const int threads = this->threads();
  auto run = [&](int u) {
    if (!claim(u, sequence)) return;
    const int end = unit_begin(u + 1, job.units, job.tasks);
    for (int task = unit_begin(u, job.units, job.tasks); task < end; ++task) job.fn(job.ctx, task);
    done_.fetch_add(1, std::memory_order_acq_rel);
  };
  // Own units front to back; then each other thread's back to front, away from where its owner works.
  for (int u = unit_begin(thread, threads, job.units); u < unit_begin(thread + 1, threads, job.units); ++u) run(u);
  if (job.team && thread != 0) return;  // a team's workers play their own member only
  for (int k = 1; k < threads; ++k) {
    const int other = (thread + k) % threads;
    for (int u = unit_begin(other + 1, threads, job.units) - 1; u >= unit_begin(other, threads, job.units); --u) run(u);
  }
}

void ThreadPool::worker_loop(int thread) {
  uint64_t seen = 0;  // the sequence of the last job this worker ran
  for (;;) {
    auto published = [&] {
      const uint64_t s = sequence_.load(std::memory_order_acquire);
      return s != seen && s % 2 == 0;
    };
    if (!spin_until(published, kSpin)) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return stop_ || sequence_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      if (stop_) return;
      continue;  // re-check: the owner may be writing the next job
    }
    const uint64_t s = sequence_.load(std::memory_order_acquire);
    const Job job{fn_.load(std::memory_order_relaxed), ctx_.load(std::memory_order_relaxed),
                  tasks_.load(std::memory_order_relaxed), units_.load(std::memory_order_relaxed),
                  team_.load(std::memory_order_relaxed)};
    std::atomic_thread_fence(std::memory_order_acquire);
    if (sequence_.load(std::memory_order_relaxed) != s || s % 2) continue;  // torn: read it again
    seen = s;
    run_units(thread, s, job);
  }
}

void ThreadPool::parallel_for(int tasks, void (*fn)(void*, int), void* ctx) {
  if (tasks <= 0) return;
  if (tasks == 1 || workers_.empty() || !busy_.try_lock()) {
    for (int i = 0; i < tasks; ++i) fn(ctx, i);
    return;
  }
  std::lock_guard<std::mutex> own(busy_, std::adopt_lock);
  run_job({fn, ctx, tasks, std::min(tasks, max_units_), false}, false);
}

bool ThreadPool::run_team(void (*fn)(void*, int), void* ctx, bool short_job) {
  if (!busy_.try_lock()) return false;
  std::lock_guard<std::mutex> own(busy_, std::adopt_lock);
  run_job({fn, ctx, threads(), threads(), true}, short_job);
  return true;
}

void ThreadPool::run_job(const Job& job, bool short_job) {
  const uint64_t s = sequence_.load(std::memory_order_relaxed);
  // Only this thread writes the job (busy_): s is even here.
  sequence_.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  fn_.store(job.fn, std::memory_order_relaxed);
  ctx_.store(job.ctx, std::memory_order_relaxed);
  tasks_.store(job.tasks, std::memory_order_relaxed);
  units_.store(job.units, std::memory_order_relaxed);
  team_.store(job.team, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint64_t next = s + 2;
  sequence_.store(next, std::memory_order_seq_cst);
  // A short team job wakes sleeping workers only when it follows the last job
  // within their spin time: the wake-up costs the caller more than a small
  // CNN gains from the worker (figures in bench/analysis.md), and after a
  // longer pause a woken worker would only spin and sleep again. The first
  // call of a burst runs on the caller alone (it takes every member); the
  // next ones wake the workers.
  bool solo = false;
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    solo = short_job && std::chrono::steady_clock::now() - last_end_ >= kSpin;
    // Not under mu_: a worker preempted between locking it and sleeping would
    // hold the caller up for the rest of its time slice. A wake-up lost in
    // that window keeps the worker out of this job only: tasks no thread
    // started are the caller's, and a team adopts members that never showed up.
    if (!solo) wake_.notify_all();
  }
  if (solo) {
    // The caller claims every member (the workers never see them) and calls member 0 first.
    std::vector<char> taken(static_cast<size_t>(job.units));
    for (int u = 0; u < job.units; ++u) taken[u] = claim(u, next);
    for (int u = 0; u < job.units; ++u)
      if (taken[u]) {
        job.fn(job.ctx, u);
        done_.fetch_add(1, std::memory_order_acq_rel);
      }
  } else {
    run_units(0, next, job);
  }
  // Every unit is claimed now (team units by their own threads, soon); wait for those still running.
  auto finished = [&] { return done_.load(std::memory_order_acquire) == job.units; };
  while (!spin_until(finished, kOwnerSpin)) std::this_thread::yield();
  last_end_ = std::chrono::steady_clock::now();
}

}  // namespace edgeopt
