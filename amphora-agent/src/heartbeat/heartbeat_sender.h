// Sends the amphora's signed heartbeat (common/heartbeat.h) to every health manager
// in [health_manager] controller_ip_port_list each heartbeat_interval. Statuses and
// counters come from banyan-proxy's control API (/config, /stats, /health). One
// thread owned by this object; settings can be replaced at any time
// (PUT /1.0/agent-config) and take effect at the next beat.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "banyan/common/heartbeat.h"
#include "banyan/common/result.h"
#include "proxy_control/proxy_control.h"

namespace banyan::agent::heartbeat {

struct HeartbeatSettings {
  std::vector<std::string> targets;  // "192.0.2.1:5555", "[2001:db8::1]:5555"
  double interval_s = 10;
  std::string key;                   // secret; never logged
};

struct Target {
  std::string address;  // IP literal, no brackets
  uint16_t port = 0;
};

// "IPv4:port" or "[IPv6]:port"; kInvalidArgument naming the entry otherwise.
common::Result<Target> parseTarget(std::string_view text);
// Checks every target, the interval (0.01 s – 3600 s) and a non-empty key.
common::Result<void> validateSettings(const HeartbeatSettings& settings);

// Pure: the heartbeat for the proxy's current config, stats and health answers. The
// roll-up follows Octavia's operating statuses: a member is OFFLINE when admin-down,
// DRAINING at weight 0, else the health checker's status (NO_MONITOR when it has
// none); a pool is ERROR when every member is down, DEGRADED when some are; a
// listener is DEGRADED when it is full and OFFLINE when admin-down.
common::Result<common::Heartbeat> buildHeartbeat(std::string_view amphora_id, uint64_t sequence,
                                                 uint64_t proxy_epoch, std::string_view config_doc,
                                                 std::string_view stats_json, std::string_view health_json);

class HeartbeatSender {
 public:
  HeartbeatSender(std::string amphora_id, const proxy_control::ProxyControl& control,
                  std::function<uint64_t()> proxy_epoch, HeartbeatSettings settings);
  ~HeartbeatSender();  // stop()
  HeartbeatSender(const HeartbeatSender&) = delete;
  HeartbeatSender& operator=(const HeartbeatSender&) = delete;

  void start();
  void stop();
  common::Result<void> update(HeartbeatSettings settings);  // validated first
  HeartbeatSettings settings() const;
  uint64_t sent() const { return sent_.load(); }  // datagrams sent (all targets)

  // One beat now: query the proxy, build, sign, send to every target. kUnavailable
  // when the proxy does not answer (no heartbeat then: the health manager must see
  // an amphora whose proxy is gone as silent).
  common::Result<void> beatOnce();

 private:
  void run();

  const std::string amphora_id_;
  const proxy_control::ProxyControl& control_;
  std::function<uint64_t()> proxy_epoch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  HeartbeatSettings settings_;
  bool stopping_ = false;
  bool settings_changed_ = false;
  uint64_t sequence_ = 0;
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

}  // namespace banyan::agent::heartbeat
