// The intra-op thread pool: a fixed set of workers created once per process and
// thread count (ThreadPool::shared), woken for each parallel section. Not libuv's
// pool: those threads run whole inferences (CompiledProgram::run via AsyncWorker);
// these split one op across cores.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
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
  // thread, and returns when all calls are done. fn must not throw. Tasks go
  // to whoever claims them first, and the caller waits only for claimed tasks:
  // a worker that is not scheduled (a busy machine) just leaves its share to
  // the caller. When another thread is already inside parallel_for on this
  // pool, all tasks run on the calling thread: the caller never waits for a
  // foreign job, and since tasks partition the work, results are the same.
  void parallel_for(int tasks, void (*fn)(void* ctx, int task), void* ctx);

  // std::thread::hardware_concurrency(), at least 1.
  static int default_threads();

  // The process's pool of `threads` threads (the caller included; >= 2), shared
  // by every program that asks for that count: two models never spin two sets of
  // workers. Created on first use and kept until the process exits (one per
  // distinct count), so loading and unloading models never starts or stops
  // threads. Thread safe.
  static std::shared_ptr<ThreadPool> shared(int threads);

 private:
  struct Job {
    void (*fn)(void*, int);
    void* ctx;
    int tasks;
    uint32_t generation;
  };
  void worker_loop();
  // Claims and runs tasks of `job` until none are left; false once the job is over.
  void run_tasks(const Job& job);

  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the thread that owns the current job

  std::mutex mu_;
  std::condition_variable wake_, done_;
  Job job_{nullptr, nullptr, 0, 0};  // written under mu_
  bool stop_ = false;
  std::atomic<uint32_t> published_{0};  // job_.generation, for spinning workers
  // (generation << 32) | next task index: a worker claims a task with one CAS,
  // so a worker still holding an old job can never claim a task of a new one.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> completed_{0};  // tasks of the current job finished
};

}  // namespace edgeopt
