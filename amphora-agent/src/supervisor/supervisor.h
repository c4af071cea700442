// Keeps one banyan-proxy running for the agent: attaches to a proxy that already
// answers on the control socket (the agent restarted, the proxy kept serving), or
// starts one as a child with the stored config, and restarts it with backoff when it
// dies. A monitor thread owned by this object does the watching; the public methods
// are thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "banyan/common/result.h"
#include "proxy_control/proxy_control.h"

namespace banyan::agent::supervisor {

struct SupervisorOptions {
  std::string proxy_binary;    // path of banyan-proxy
  std::string config_path;     // the stored document the proxy starts from
  std::string control_socket;  // --control
  std::string pid_file;        // written with the child's pid ("" = none)
  std::string log_level = "info";
  int check_interval_ms = 200;       // how often the child / attached proxy is checked
  int ready_timeout_ms = 10000;      // a started proxy must answer within this
  int restart_backoff_min_ms = 100;  // doubled after each quick death, up to max
  int restart_backoff_max_ms = 5000;
};

class ProxySupervisor {
 public:
  ProxySupervisor(SupervisorOptions options, const proxy_control::ProxyControl& control);
  ~ProxySupervisor();  // stop(true)
  ProxySupervisor(const ProxySupervisor&) = delete;
  ProxySupervisor& operator=(const ProxySupervisor&) = delete;

  // Attaches or starts, waits until the control socket answers, starts the monitor.
  // An error says the first start failed; the monitor runs anyway and keeps retrying.
  common::Result<void> start();
  // Stops the monitor; with stop_proxy, SIGTERM to a child we started (SIGKILL after
  // kill_after_ms) and waits for it. An attached proxy is never signalled.
  void stop(bool stop_proxy = true, int kill_after_ms = 5000);

  pid_t childPid() const;  // 0 when attached or not running
  bool attached() const { return attached_.load(); }
  // Changes whenever a different proxy process is in charge (its counters restart).
  uint64_t epoch() const { return epoch_.load(); }
  int restarts() const { return restarts_.load(); }

 private:
  common::Result<void> spawnLocked();
  bool waitReady(pid_t pid);
  void monitor();

  SupervisorOptions options_;
  const proxy_control::ProxyControl& control_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  pid_t child_ = 0;
  std::atomic<bool> attached_{false};
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int> restarts_{0};
  std::thread thread_;
};

}  // namespace banyan::agent::supervisor
