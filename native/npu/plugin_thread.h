// Every call into one NPU plugin runs on that plugin's own thread, under a
// deadline. Vendor code that never returns then holds only that thread, never
// libuv's pool or the JS thread: the caller stops waiting after the timeout and
// the plugin is "wedged" from then on (every later call fails at once with the
// reason). A wedged thread is left behind, still inside the plugin; to keep
// that safe, a task must own (or share) everything it touches, and the state
// the thread uses outlives this object.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace edgeopt {

class PluginThread {
 public:
  PluginThread();
  // Joins the thread; a wedged one is detached instead (it may never return).
  ~PluginThread();
  PluginThread(const PluginThread&) = delete;
  PluginThread& operator=(const PluginThread&) = delete;

  // Runs `task` on the plugin thread and returns once it is done. Throws
  // E_PLUGIN "<who>: <what> did not return within N ms" when it runs longer
  // than `timeout` (the thread is then wedged), "<who>: <what> threw ..." when
  // it throws, and the wedge reason when the thread is already wedged.
  void run(const std::string& who, const char* what, std::chrono::milliseconds timeout, std::function<void()> task);

  // Empty while calls run; else why they are refused.
  std::string wedged() const;

 private:
  struct Call;
  struct Shared;
  static void loop(std::shared_ptr<Shared> shared);
  void wedge(const std::string& reason);
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace edgeopt
