#include "thread_pool.h"

#include <map>

namespace edgeopt {
namespace {

// Spin this many pauses (some tens of microseconds) before sleeping: layers of
// one inference follow each other within microseconds, and a condition-variable
// wake-up costs more than a small GEMV.
constexpr int kSpin = 4000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

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

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::run_tasks(const Job& job) {
  const uint64_t gen = static_cast<uint64_t>(job.generation) << 32;
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    if ((c & ~0xffffffffull) != gen) return;  // another job by now
    const int task = static_cast<int>(c & 0xffffffffu);
    if (task >= job.tasks) return;
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
    job.fn(job.ctx, task);
    if (completed_.fetch_add(1, std::memory_order_acq_rel) + 1 == job.tasks) {
      std::lock_guard<std::mutex> lock(mu_);  // the owner may be about to sleep on done_
      done_.notify_one();
    }
    c = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpin && published_.load(std::memory_order_acquire) == seen; ++i) cpu_relax();
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || job_.generation != seen; });
      if (stop_) return;
      job = job_;  // a consistent copy; its tasks can only be claimed while it is current
      seen = job.generation;
    }
    run_tasks(job);
  }
}

void ThreadPool::parallel_for(int tasks, void (*fn)(void*, int), void* ctx) {
  if (tasks <= 0) return;
  if (tasks == 1 || workers_.empty() || !busy_.try_lock()) {
    for (int i = 0; i < tasks; ++i) fn(ctx, i);
    return;
  }
  std::lock_guard<std::mutex> own(busy_, std::adopt_lock);
  Job job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job = {fn, ctx, tasks, job_.generation + 1};
    if (job.generation == 0) job.generation = 1;  // 0 means "no job yet" to the workers
    job_ = job;
    completed_.store(0, std::memory_order_relaxed);
    claim_.store(static_cast<uint64_t>(job.generation) << 32, std::memory_order_release);
    published_.store(job.generation, std::memory_order_release);
  }
  wake_.notify_all();
  run_tasks(job);
  // Only tasks a worker claimed can still be running; wait for those.
  for (int i = 0; i < kSpin && completed_.load(std::memory_order_acquire) != tasks; ++i) cpu_relax();
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return completed_.load(std::memory_order_acquire) == tasks; });
}

}  // namespace edgeopt
