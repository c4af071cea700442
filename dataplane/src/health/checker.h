// Active health checks of pool members (Octavia health monitors, HAProxy check
// semantics): TCP connect, HTTP(S) status, TLS-HELLO (a ServerHello comes
// back), PING (ICMP echo) and UDP-CONNECT (no ICMP port unreachable) probes,
// rise/fall counting, and the resulting status written into the shared
// MemberHealth the workers read. On UDP pools one success is enough to rise
// (keepalived, which runs Octavia's UDP checks, does not use max_retries).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/model.h"
#include "health/health_state.h"

namespace banyan::dp::health {

enum class ParseStatus { Done, NeedMore, Invalid };

struct StatusLineParse {
  ParseStatus status = ParseStatus::NeedMore;
  uint16_t code = 0;  // set when status == Done
};

// Parses the start of an HTTP/1.x response from the bytes received so far:
// "HTTP/1.<digit> <3 digits>" followed by SP, CR or LF (RFC 9112 §4; the reason
// phrase is ignored). NeedMore while `bytes` is a valid but incomplete prefix.
StatusLineParse parseStatusLine(std::string_view bytes);

// Probes the members of every pool that has an enabled health monitor, on its
// own thread and event loop (one thread checks thousands of members: probes are
// non-blocking). Writes MemberHealth::status for the members it checks; the
// registry is borrowed and must outlive the checker.
//
// Semantics (Octavia on HAProxy): a probe every `delay`; one that does not finish
// within `timeout` fails; a member starts ONLINE when monitoring begins, goes
// ERROR after `max_retries_down` consecutive failures and back ONLINE after
// `max_retries` consecutive successes. Disabled members, and members of disabled
// pools, are not probed and reported OFFLINE (their MemberHealth is left alone).
// Members of pools without an enabled monitor get NoMonitor (counts as up).
class HealthChecker {
 public:
  explicit HealthChecker(HealthRegistry& registry);
  ~HealthChecker();  // stops the thread
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  void start();
  void stop();

  // Thread-safe; takes effect asynchronously on the checker's loop (a config
  // applied before start() takes effect when it starts). A member that keeps its
  // id and pool keeps its status and counters; a changed probe (type, target or
  // request) restarts its probes and its consecutive counts, keeping the status.
  void apply(std::shared_ptr<const config::Config> config);

  // Thread-safe JSON: {"members":[{"pool_id","member_id","address","protocol_port",
  //   "monitor":"TCP|HTTP|HTTPS|TLS-HELLO|PING|UDP-CONNECT|none",
  //   "status":"ONLINE|ERROR|NO_MONITOR|OFFLINE",
  //   "consecutive_successes","consecutive_failures",
  //   "last_check":{"at_ms","ok","detail"} or null before the first probe,
  //   "transitions":[{"at_ms","from","to","reason"}] (last 16, oldest first)}]}
  // Members appear in config order.
  std::string statusJson() const;

  // Thread-safe: number of probes started so far.
  uint64_t probesStarted() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace banyan::dp::health
