// The amphora heartbeat: what banyan-agent sends to the provider's health manager
// every heartbeat interval, and the codec both sides use. The byte format is in
// docs/heartbeat.md: a fixed header, a zlib-compressed JSON body and an HMAC-SHA256
// over both, keyed with [health_manager] heartbeat_key. Pure functions, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::common {

// The format version this code writes; decodeHeartbeat accepts only this one.
inline constexpr uint8_t kHeartbeatFormatVersion = 1;
// A datagram above this is refused without looking at it (the largest UDP payload).
inline constexpr size_t kHeartbeatMaxDatagram = 65507;
// Decompressed body limit: a zlib bomb stops here.
inline constexpr size_t kHeartbeatMaxBody = 4u << 20;

// Statuses use Octavia's operating_status words, so the health manager stores them
// as they are: ONLINE, DEGRADED, ERROR, OFFLINE, NO_MONITOR, DRAINING.
struct HeartbeatListener {
  std::string id;
  std::string status;
  // Absolute counters since the proxy process started (see proxy_epoch).
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t active_connections = 0;
  uint64_t total_connections = 0;
  uint64_t request_errors = 0;
  bool operator==(const HeartbeatListener&) const = default;
};

struct HeartbeatMember {
  std::string id;
  std::string status;
  bool operator==(const HeartbeatMember&) const = default;
};

struct HeartbeatPool {
  std::string id;
  std::string status;
  std::vector<HeartbeatMember> members;
  bool operator==(const HeartbeatPool&) const = default;
};

struct Heartbeat {
  std::string amphora_id;
  uint64_t sequence = 0;     // +1 per datagram since the agent started
  uint64_t proxy_epoch = 0;  // changes when banyan-proxy restarts: counters start over
  uint64_t generation = 0;   // the proxy config document's generation that is live
  std::vector<HeartbeatListener> listeners;
  std::vector<HeartbeatPool> pools;
  bool operator==(const Heartbeat&) const = default;
};

// Serializes, compresses and signs. The key must not be empty (a broken invariant:
// the sender does not run without one).
std::vector<uint8_t> encodeHeartbeat(const Heartbeat& heartbeat, std::string_view key);

// Checks size, framing, signature (constant-time), version and body, in that order;
// each refusal has its own message (docs/heartbeat.md lists them) and code
// kInvalidArgument. Nothing past the framing is parsed before the signature matches.
Result<Heartbeat> decodeHeartbeat(std::span<const uint8_t> datagram, std::string_view key);

}  // namespace banyan::common
