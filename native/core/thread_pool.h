// The intra-op thread pool: a fixed set of workers created once per process and
// thread count (ThreadPool::shared), woken for each parallel section. Not libuv's
// pool: those threads run whole inferences (CompiledProgram::run via AsyncWorker);
// these split one op across cores.
//
// Built for ops of a few microseconds (a small CNN's layers), where moving data
// between cores costs as much as the work: tasks have a home thread, so the
// same slice of every layer (the same rows of an image) stays on the same core
// from one op to the next, and the hand-off is one cache line each way.
#pragma once
#include <atomic>
#include <chrono>
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
  // thread, and returns when all calls are done. fn must not throw. Thread t
  // (the caller is 0) first runs its own contiguous share of the tasks,
  // about [t * tasks / threads, (t + 1) * tasks / threads), then takes any
  // task of another share that has not started: a worker that is not
  // scheduled (a busy machine) just leaves its share to the others, and the
  // caller waits only for tasks already running. When another thread is already inside
  // parallel_for on this pool, all tasks run on the calling thread: the caller
  // never waits for a foreign job, and since tasks partition the work, results
  // are the same.
  void parallel_for(int tasks, void (*fn)(void* ctx, int task), void* ctx);

  // Calls fn(ctx, member) once for every member in [0, threads()), member 0
  // on the caller and each other on its own thread, at the same time, and
  // returns true when all are done: members that have started may wait for
  // each other (a barrier), which parallel_for's tasks must never do. A member
  // whose thread has not started it when member 0 returns is called on the
  // caller after that, so fn must let member 0 take over members that never
  // showed up (TeamPlan adopts them) rather than wait for them. Returns false
  // without calling fn when another thread is inside this pool (run the work
  // some other way then). short_job: the caller expects the team to take
  // about as long as waking a sleeping worker (tens of µs; a small CNN), so
  // after a pause it runs on the caller alone instead (see run_job).
  bool run_team(void (*fn)(void* ctx, int member), void* ctx, bool short_job = false);

  // std::thread::hardware_concurrency(), at least 1.
  static int default_threads();

  // The process's pool of `threads` threads (the caller included; >= 2), shared
  // by every program that asks for that count: two models never spin two sets of
  // workers. Created on first use and kept until the process exits (one per
  // distinct count), so loading and unloading models never starts or stops
  // threads. Thread safe.
  static std::shared_ptr<ThreadPool> shared(int threads);

 private:
  static constexpr int kLine = 64;
  // One unit's claim: the sequence number of the job that last claimed it,
  // alone on its cache line, so threads claiming their own units never share one.
  struct alignas(kLine) Claim {
    std::atomic<uint64_t> sequence{0};
  };
  struct Job {
    void (*fn)(void*, int);
    void* ctx;
    int tasks, units;  // units: claimable groups of consecutive tasks
    bool team;         // run_team: one unit per thread; the caller takes the others only after its own
  };
  // Publishes the job, runs the caller's part and waits for the rest (busy_ held).
  void run_job(const Job& job, bool short_job);
  void worker_loop(int thread);
  // Thread `thread`'s own units of the job, then any unclaimed unit of the others.
  void run_units(int thread, uint64_t sequence, const Job& job);
  bool claim(int unit, uint64_t sequence);

  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the thread that owns the current job
  int max_units_;
  std::unique_ptr<Claim[]> claims_;

  // The job, under a sequence lock: sequence_ is odd while the owner writes the
  // fields and even once they are published (64 bits: it never wraps).
  alignas(kLine) std::atomic<uint64_t> sequence_{0};
  std::atomic<void (*)(void*, int)> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int> tasks_{0}, units_{0};
  std::atomic<bool> team_{false};
  alignas(kLine) std::atomic<int> done_{0};  // units of the current job finished
  alignas(kLine) std::atomic<int> sleepers_{0};
  std::chrono::steady_clock::time_point last_end_{};  // when the last job ended (under busy_)
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // under mu_
};

}  // namespace edgeopt
