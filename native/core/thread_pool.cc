#include "thread_pool.h"

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

void ThreadPool::run_tasks() {
  for (int i = next_.fetch_add(1, std::memory_order_relaxed); i < tasks_;
       i = next_.fetch_add(1, std::memory_order_relaxed))
    fn_(ctx_, i);
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpin && published_.load(std::memory_order_acquire) == seen; ++i) cpu_relax();
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    run_tasks();
    // The owner waits for every worker to check in, so no worker can miss a
    // job or see the next one's fields half written.
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int tasks, void (*fn)(void*, int), void* ctx) {
  if (tasks <= 0) return;
  if (tasks == 1 || workers_.empty() || !busy_.try_lock()) {
    for (int i = 0; i < tasks; ++i) fn(ctx, i);
    return;
  }
  std::lock_guard<std::mutex> own(busy_, std::adopt_lock);
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = fn;
    ctx_ = ctx;
    tasks_ = tasks;
    next_.store(0, std::memory_order_relaxed);
    active_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    published_.store(++generation_, std::memory_order_release);
  }
  wake_.notify_all();
  run_tasks();
  for (int i = 0; i < kSpin && active_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return active_.load(std::memory_order_acquire) == 0; });
}

}  // namespace edgeopt
