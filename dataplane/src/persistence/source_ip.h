// SOURCE_IP session persistence: clients are keyed by their address masked by
// persistence_granularity, so one table entry covers a client network.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "banyan/common/result.h"
#include "persistence/stick_table.h"

namespace banyan::dp::persistence {

// Prefix lengths kept of IPv4 and IPv6 client addresses.
struct Granularity {
  uint8_t ipv4_prefix = 32;
  uint8_t ipv6_prefix = 128;
};

// Octavia's persistence_granularity: an IPv4 netmask ("255.255.255.0", the
// keepalived form) or an IPv6 one ("ffff:ffff:ffff:ffff::"); the mask must be
// contiguous. It sets the prefix of its own family; the other family keeps
// whole addresses. "/N" sets both families' prefix to N where it fits (N ≤ 32
// for IPv4). Empty: the default 255.255.255.255 (one entry per address).
common::Result<Granularity> parseGranularity(std::string_view text);

// The table key of a client: family byte, then the masked address (5 or 17
// bytes). IPv4-mapped IPv6 addresses (dual-stack sockets) count as IPv4, so a
// client gets one entry whichever socket it arrived on. No allocation.
struct SourceIpKey {
  uint8_t bytes[17] = {};
  uint8_t size = 0;  // 0: not an IP address (unix socket): no persistence
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(bytes), size);
  }
};
SourceIpKey sourceIpKey(const sockaddr_storage& client, const Granularity& granularity);

// A per-worker SOURCE_IP table. To share one across workers (see
// SharedStickTable for why that matters), keep a SharedStickTable and key it by
// sourceIpKey(...).view() directly.
class SourceIpTable {
 public:
  SourceIpTable(const Granularity& granularity, const StickTableOptions& options);

  std::optional<std::string_view> lookup(const sockaddr_storage& client, TimePoint now);
  void store(const sockaddr_storage& client, std::string_view member_id, TimePoint now);
  size_t forgetMember(std::string_view member_id) { return table_.forgetMember(member_id); }
  size_t size() const { return table_.size(); }
  const StickTableCounters& counters() const { return table_.counters(); }

 private:
  Granularity granularity_;
  StickTable table_;
};

}  // namespace banyan::dp::persistence
