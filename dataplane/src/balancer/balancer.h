// Member selection for one pool: ROUND_ROBIN (smooth weighted), LEAST_CONNECTIONS
// (weighted), SOURCE_IP and SOURCE_IP_PORT (weighted Maglev lookup table).
// Pure: no sockets, no clock. One Selector per pool per worker thread (not
// thread-safe); the caller owns the member views and passes them on every pick.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "balancer/maglev_table.h"

namespace banyan::dp::balancer {

enum class Algorithm { RoundRobin, LeastConnections, SourceIp, SourceIpPort };

// What the selector needs to know of each member at pick time.
struct MemberView {
  uint64_t id_hash = 0;   // stable hash of the member id (Maglev permutation seed)
  uint32_t weight = 1;    // 0 = drain: never picked for new traffic
  bool backup = false;
  bool usable = true;     // admin_state_up && health is not down
  uint32_t active = 0;    // active connections/requests (LEAST_CONNECTIONS)
};

class Selector {
 public:
  explicit Selector(Algorithm algorithm) : algorithm_(algorithm) {}

  // Returns the index into `members` of the chosen member, or -1 when none can
  // take traffic. Backup members are chosen only when no non-backup member is
  // usable with weight > 0; then all usable backups share traffic by weight.
  // `hash` is the client key for SOURCE_IP / SOURCE_IP_PORT, ignored otherwise.
  // `members` must keep the same order and size between calls for round-robin
  // smoothness; when the usable set changes the Maglev table is rebuilt.
  // Steady state (eligible set unchanged) allocates nothing and costs
  // O(members) for the eligibility scan; the Maglev lookup itself is O(1).
  int pick(std::span<const MemberView> members, uint64_t hash);

  Algorithm algorithm() const { return algorithm_; }

 private:
  // Fills eligible_ with the indices (in member order) that may take traffic now.
  void collectEligible(std::span<const MemberView> members);
  int pickRoundRobin(std::span<const MemberView> members);
  int pickLeastConnections(std::span<const MemberView> members);
  int pickMaglev(std::span<const MemberView> members, uint64_t hash);

  Algorithm algorithm_;
  std::vector<int64_t> current_;  // smooth weighted round-robin state
  uint32_t lc_cursor_ = 0;        // tie-breaking rotation for least connections
  std::vector<int> eligible_;     // scratch: indices eligible on this pick
  std::vector<uint64_t> maglev_key_;  // eligibility signature of the built table
  bool maglev_built_ = false;         // maglev_key_ describes maglev_
  std::vector<MaglevEntry> maglev_entries_;  // scratch for rebuilds
  MaglevTable maglev_;
};

// Hash of the client source address (and port, for SOURCE_IP_PORT); IPv4 and
// IPv4-mapped IPv6 hash alike. Unknown families hash to a fixed value.
uint64_t hashSourceAddress(const struct sockaddr_storage& addr, bool with_port);

// Stable 64-bit hash of a string (member ids), identical on every amphora.
uint64_t hashString(std::string_view s);

}  // namespace banyan::dp::balancer
