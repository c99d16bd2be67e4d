#include "plugin_thread.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>

#include "../core/error.h"

namespace edgeopt {

struct PluginThread::Call {
  std::function<void()> task;
  std::mutex mu;
  std::condition_variable cv;
  enum class State { Queued, Running, Done, Refused } state = State::Queued;
  std::chrono::steady_clock::time_point started;
  std::string error;  // Done: what the task threw; Refused: the wedge reason
};

struct PluginThread::Shared {
  mutable std::mutex mu;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Call>> queue;
  bool stop = false;
  std::string wedged;
};

PluginThread::PluginThread() : shared_(std::make_shared<Shared>()) { thread_ = std::thread(loop, shared_); }

PluginThread::~PluginThread() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop = true;
  }
  shared_->wake.notify_all();
  if (wedged().empty())
    thread_.join();
  else
    thread_.detach();  // still inside the plugin; it owns `shared` and exits if the call ever returns
}

std::string PluginThread::wedged() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->wedged;
}

void PluginThread::loop(std::shared_ptr<Shared> shared) {
  for (;;) {
    std::shared_ptr<Call> call;
    {
      std::unique_lock<std::mutex> lock(shared->mu);
      shared->wake.wait(lock, [&] { return shared->stop || !shared->queue.empty(); });
      if (shared->stop) return;
      call = shared->queue.front();
      shared->queue.pop_front();
    }
    {
      std::lock_guard<std::mutex> lock(call->mu);
      if (call->state != Call::State::Queued) continue;  // refused while it waited
      call->state = Call::State::Running;
      call->started = std::chrono::steady_clock::now();
    }
    call->cv.notify_all();
    std::string error;
    try {
      call->task();
    } catch (const std::exception& e) {
      error = std::string("threw a C++ exception: ") + e.what();
    } catch (...) {
      error = "threw an unknown C++ exception";
    }
    call->task = nullptr;  // drop what it owns here, not in a waiter that may be gone
    {
      std::lock_guard<std::mutex> lock(call->mu);
      call->error = error;
      call->state = Call::State::Done;
    }
    call->cv.notify_all();
  }
}

// From now on every call fails with `reason`, including those already queued.
void PluginThread::wedge(const std::string& reason) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  if (shared_->wedged.empty()) shared_->wedged = reason;
  for (const std::shared_ptr<Call>& queued : shared_->queue) {
    {
      std::lock_guard<std::mutex> call_lock(queued->mu);
      queued->state = Call::State::Refused;
      queued->error = shared_->wedged;
    }
    queued->cv.notify_all();
  }
  shared_->queue.clear();
}

void PluginThread::run(const std::string& who, const char* what, std::chrono::milliseconds timeout,
                       std::function<void()> task) {
  auto call = std::make_shared<Call>();
  call->task = std::move(task);
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (!shared_->wedged.empty()) throw Error("E_PLUGIN", shared_->wedged);
    shared_->queue.push_back(call);
  }
  shared_->wake.notify_one();
  std::unique_lock<std::mutex> lock(call->mu);
  // Queued calls wait for their turn without a deadline: the call ahead of them has one.
  call->cv.wait(lock, [&] { return call->state != Call::State::Queued; });
  if (call->state == Call::State::Refused) throw Error("E_PLUGIN", call->error);
  const bool done =
      call->cv.wait_until(lock, call->started + timeout, [&] { return call->state == Call::State::Done; });
  if (!done) {
    lock.unlock();
    const std::string reason = who + ": " + what + " did not return within " + std::to_string(timeout.count()) +
                               " ms; the plugin is marked broken and is not called again";
    wedge(reason);
    throw Error("E_PLUGIN", reason);
  }
  if (!call->error.empty()) throw Error("E_PLUGIN", who + ": " + what + " " + call->error);
}

}  // namespace edgeopt
