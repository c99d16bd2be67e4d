// The intra-op thread pool: a fixed set of workers created once (per Plan),
// woken for each parallel section. Not libuv's pool: those threads run whole
// inferences (Plan::run via AsyncWorker); these split one GEMM across cores.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace edgeopt {

class ThreadPool {
 public:
  // `threads` counts the calling thread too: threads - 1 workers are started.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(ctx, i) for every i in [0, tasks), on the workers and the calling
  // thread, and returns when all calls are done. fn must not throw. When
  // another thread is already inside parallel_for on this pool, all tasks run
  // on the calling thread instead: the caller never waits for a foreign job,
  // and since tasks partition the work, results are the same either way.
  void parallel_for(int tasks, void (*fn)(void* ctx, int task), void* ctx);

  // std::thread::hardware_concurrency(), at least 1.
  static int default_threads();

 private:
  void worker_loop();
  void run_tasks();

  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the thread that owns the current job

  std::mutex mu_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;  // bumped per job (under mu_), read by spinning workers
  std::atomic<uint64_t> published_{0};
  bool stop_ = false;

  // The current job.
  void (*fn_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  int tasks_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> active_{0};  // workers still inside the current job
};

}  // namespace edgeopt
