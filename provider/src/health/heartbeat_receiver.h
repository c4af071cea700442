// The health manager's ear: a UDP socket that receives amphora heartbeats, checks
// their signature and freshness, and hands the good ones to a handler.
//
// One receiving thread per receiver; the handler runs on it, so a slow handler delays
// later datagrams (the kernel buffers them; the socket's receive buffer is enlarged for
// bursts). Every refusal is counted, never logged per datagram: a flood of forged
// packets must not flood the log (STYLE.md "Count, don't chat").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "banyan/common/heartbeat.h"
#include "banyan/common/result.h"

namespace banyan::provider::health {

struct HeartbeatReceiverOptions {
  std::string bind_ip = "127.0.0.1";  // Octavia's [health_manager] bind_ip
  uint16_t bind_port = 5555;          // Octavia's default; 0 picks a free port
  std::string key;                    // [health_manager] heartbeat_key; must not be empty
  // A sequence number at or below the last one accepted is a replay, unless the
  // amphora has been silent this long: then its agent restarted and counts from 0.
  std::chrono::milliseconds restart_grace{30000};
};

struct HeartbeatReceiverCounters {
  uint64_t received = 0;
  uint64_t accepted = 0;
  uint64_t refused = 0;  // bad signature, framing, version or body
  uint64_t stale = 0;    // replayed or out-of-order sequence numbers
};

class HeartbeatReceiver {
 public:
  using Handler = std::function<void(const common::Heartbeat& heartbeat, const std::string& source)>;

  static common::Result<std::unique_ptr<HeartbeatReceiver>> start(const HeartbeatReceiverOptions& options,
                                                                   Handler handler);
  virtual ~HeartbeatReceiver() = default;
  virtual uint16_t port() const = 0;
  virtual HeartbeatReceiverCounters counters() const = 0;
  virtual void stop() = 0;  // also done by the destructor
};

}  // namespace banyan::provider::health
