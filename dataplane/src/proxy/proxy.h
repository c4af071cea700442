// The proxy as a whole: worker threads, their listening sockets, the health
// checker, and the apply path that turns a config document into a running
// snapshot. apply() is called from the control thread or on SIGHUP.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "banyan/common/result.h"
#include "health/checker.h"
#include "health/health_state.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "tls/context.h"

namespace banyan::dp::proxy {

class Proxy {
 public:
  explicit Proxy(size_t workers);
  ~Proxy();

  // Validates `document`, opens sockets for new listeners, and switches every
  // worker to the new snapshot; returns once all of them run it. On any error
  // nothing changes and the error names the JSON pointer at fault.
  common::Result<uint64_t> apply(std::string document);
  common::Result<uint64_t> applyFile(const std::string& path);

  void start();
  // SIGTERM: stop accepting, let in-flight work finish (settings.drain_timeout_ms), stop.
  void drainAndStop();

  std::string statsJson();
  std::string healthJson() const;
  std::string configDocument();
  size_t workerCount() const { return workers_.size(); }

 private:
  std::shared_ptr<const Snapshot> current();

  std::mutex apply_mu_;
  std::mutex snap_mu_;
  std::shared_ptr<const Snapshot> snap_;
  uint64_t serial_ = 0;
  bool started_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  // bind key -> one listening socket per worker (owned by the workers).
  std::unordered_map<std::string, std::vector<int>> listen_fds_;
  std::string access_log_target_;
  int access_log_fd_ = -1;
  bool access_log_owned_ = false;
  health::HealthRegistry health_registry_;
  CounterRegistry listener_counters_;
  CounterRegistry member_counters_;
  PolicyCounterRegistry policy_counters_;
  health::HealthChecker health_;
  tls::TlsContextProvider tls_;  // apply path only (under apply_mu_)
  PersistenceRegistry persistence_;  // apply path only
};

}  // namespace banyan::dp::proxy
